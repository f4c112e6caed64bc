//! The crate's error type.

/// Everything that data or parameters can make go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input matrix or label vector is empty.
    #[error("empty input")]
    Empty,
    /// The input holds NaN or ±∞; `index` is the first offending position (row-major), `count`
    /// how many there are.
    #[error("non-finite input at index {index} ({count} non-finite values in all)")]
    NonFinite {
        /// Row-major index of the first non-finite value.
        index: usize,
        /// Number of non-finite values.
        count: usize,
    },
    /// Two inputs disagree in size.
    #[error("size mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which size.
        what: &'static str,
        /// The size the first input fixes.
        expected: usize,
        /// The size found.
        got: usize,
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
    /// Only one class is present where two are needed (in all the data, or in one split part).
    #[error("only one class present in {0}")]
    OneClass(&'static str),
    /// The data are degenerate for the method (zero covariance, no concept signal at all).
    #[error("degenerate input: {0}")]
    Degenerate(&'static str),
    /// A matrix decomposition failed (faer reported no convergence).
    #[error("decomposition failed: {0}")]
    Decomposition(&'static str),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
