//! The crate's error type.

/// Everything that data or parameters can make go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input slice or matrix is empty.
    #[error("empty input")]
    Empty,
    /// The input holds NaN or ±∞; `index` is the first offending position, `count` how many there are.
    #[error("non-finite input at index {index} ({count} non-finite values in all)")]
    NonFinite {
        /// Index of the first non-finite value.
        index: usize,
        /// Number of non-finite values.
        count: usize,
    },
    /// A value lies outside the domain the method needs (non-positive data for a power law,
    /// a non-integer in discrete data).
    #[error("value {value} at index {index} is out of domain: {reason}")]
    OutOfDomain {
        /// Index of the first offending value.
        index: usize,
        /// The value.
        value: f64,
        /// What the method needs.
        reason: &'static str,
    },
    /// A parameter or configuration field is invalid.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// Offending value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The data are degenerate for the method (all equal, a tail of fewer than two distinct
    /// values, no xmin candidate left).
    #[error("degenerate input: {0}")]
    Degenerate(&'static str),
    /// An iterative method did not reach its tolerance.
    #[error("{method} did not converge in {iterations} iterations")]
    NoConvergence {
        /// Which method.
        method: &'static str,
        /// Iterations spent.
        iterations: usize,
    },
    /// The singular value decomposition failed (faer reported no convergence).
    #[error("singular value decomposition did not converge")]
    Svd,
    /// The requested combination is not implemented.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Rejects empty input and non-finite values.
pub(crate) fn check_finite(x: &[f64]) -> Result<()> {
    if x.is_empty() {
        return Err(Error::Empty);
    }
    let mut first = None;
    let mut count = 0;
    for (i, v) in x.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        Some(index) => Err(Error::NonFinite { index, count }),
        None => Ok(()),
    }
}
