//! The crate's error type.

/// Errors returned by every fallible function of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input that must hold at least one element was empty.
    #[error("input `{name}` is empty")]
    Empty {
        /// Name of the argument.
        name: &'static str,
    },
    /// An input held NaN or ±∞.
    #[error("non-finite value in `{name}` at index {index} ({count} non-finite values in total)")]
    NonFinite {
        /// Name of the argument.
        name: &'static str,
        /// Index of the first non-finite value.
        index: usize,
        /// How many non-finite values the input holds.
        count: usize,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        /// Name of the parameter.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Two inputs disagree in size.
    #[error("size mismatch for `{name}`: expected {expected}, got {got}")]
    SizeMismatch {
        /// Name of the argument whose size is wrong.
        name: &'static str,
        /// The size it should have.
        expected: usize,
        /// The size it has.
        got: usize,
    },
    /// The input is degenerate for this estimator (e.g. repeated samples for a kNN estimator).
    #[error("degenerate input: {reason}")]
    Degenerate {
        /// What is degenerate.
        reason: String,
    },
    /// An encoded stream could not be decoded.
    #[error("corrupt stream at byte {offset}: {reason}")]
    CorruptStream {
        /// Byte offset where decoding failed.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Rejects NaN and ±∞ in an f64 slice.
pub(crate) fn check_finite(name: &'static str, xs: &[f64]) -> Result<()> {
    let mut first = None;
    let mut count = 0usize;
    for (i, x) in xs.iter().enumerate() {
        if !x.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        Some(index) => Err(Error::NonFinite { name, index, count }),
        None => Ok(()),
    }
}

/// Rejects NaN and ±∞ in an f32 slice.
pub(crate) fn check_finite_f32(name: &'static str, xs: &[f32]) -> Result<()> {
    let mut first = None;
    let mut count = 0usize;
    for (i, x) in xs.iter().enumerate() {
        if !x.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        Some(index) => Err(Error::NonFinite { name, index, count }),
        None => Ok(()),
    }
}

/// Rejects an empty slice.
pub(crate) fn check_nonempty<T>(name: &'static str, xs: &[T]) -> Result<()> {
    if xs.is_empty() {
        Err(Error::Empty { name })
    } else {
        Ok(())
    }
}

/// Builds an [`Error::InvalidParam`].
pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Display,
    reason: &'static str,
) -> Error {
    Error::InvalidParam {
        name,
        value: value.to_string(),
        reason,
    }
}
