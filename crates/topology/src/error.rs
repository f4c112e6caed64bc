//! The crate's one error type.

/// Everything that data or parameters can make go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input holds no points (or no distances where at least one point was promised).
    #[error("empty input: {what}")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// A coordinate, distance or diagram value is NaN or infinite where a finite value is required.
    #[error("non-finite value at index {index} ({count} non-finite values in all)")]
    NonFinite {
        /// Index of the first offending value (flat index into the input).
        index: usize,
        /// How many offending values the input holds.
        count: usize,
    },
    /// Two sizes that must agree do not.
    #[error("size mismatch for {what}: expected {expected}, found {found}")]
    SizeMismatch {
        /// Which sizes disagree.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        found: usize,
    },
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// Its value, formatted.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A distance is negative.
    #[error("negative distance {value} at index {index}")]
    NegativeDistance {
        /// Flat index into the lower-triangular distance array.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A diagram point has death before birth, or a birth that is not finite.
    #[error("invalid diagram point {index}: birth {birth}, death {death}")]
    InvalidInterval {
        /// Index of the point in its diagram.
        index: usize,
        /// Its birth.
        birth: f64,
        /// Its death.
        death: f64,
    },
    /// A simplex count or index does not fit the 64-bit combinatorial number system.
    #[error("overflow: {what}")]
    Overflow {
        /// What overflowed.
        what: &'static str,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
