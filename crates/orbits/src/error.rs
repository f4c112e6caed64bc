//! The crate's one error type.

/// Everything that data can make go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Name of the parameter.
        name: &'static str,
        /// The offending value, rendered.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A list of images is not a permutation of `0..n`.
    #[error("not a permutation: point {point} at position {index} (degree {degree})")]
    NotAPermutation {
        /// Position in the image list (or cycle list) where the problem shows.
        index: usize,
        /// The offending point.
        point: usize,
        /// The degree the permutation was meant to have.
        degree: usize,
    },
    /// Two permutations (or a permutation and a group) act on different numbers of points.
    #[error("degree mismatch: expected {expected}, found {found}")]
    DegreeMismatch {
        /// The degree required.
        expected: usize,
        /// The degree given.
        found: usize,
    },
    /// A group was asked for from an empty list of generators.
    #[error("no generators given (use the trivial group constructor for the identity group)")]
    NoGenerators,
    /// Cycle notation that does not parse.
    #[error("cannot parse {what} at byte {offset}: {reason}")]
    Parse {
        /// What was being parsed (`"cycle notation"`, `"group expression"`).
        what: &'static str,
        /// Byte offset into the input.
        offset: usize,
        /// What went wrong.
        reason: String,
    },
    /// An exact count does not fit the fixed-width integer asked for.
    #[error("exact count overflows {bits}-bit integer in {context}")]
    Overflow {
        /// Where the overflow happened.
        context: &'static str,
        /// Width of the integer type.
        bits: u32,
    },
    /// A computation would exceed a size limit (enumeration of a group, colourings, partitions).
    #[error("{what} too large: {size} exceeds the limit {limit}")]
    TooLarge {
        /// What would be enumerated.
        what: &'static str,
        /// Its size (possibly a lower bound), rendered.
        size: String,
        /// The limit, rendered.
        limit: String,
    },
    /// A NaN or infinite value in the input.
    #[error("non-finite value at index {index} ({count} in total)")]
    NonFinite {
        /// Index of the first non-finite value.
        index: usize,
        /// How many non-finite values there are.
        count: usize,
    },
    /// Burnside's sum was not divisible by the group order: the fixed-point function or the list of
    /// group elements is inconsistent.
    #[error("Burnside sum {sum} is not divisible by the group order {order}")]
    NotDivisible {
        /// The sum of fixed-point counts, rendered.
        sum: String,
        /// The group order, rendered.
        order: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
