//! The crate's error type.

/// Everything that can go wrong while loading, tokenising or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The weights reader failed (file, header, dtype, hash, fetch ...).
    #[error(transparent)]
    Weights(#[from] claimlab_weights::Error),
    /// The model file is readable but not an architecture or layout this runtime runs.
    #[error("unsupported model: {reason}")]
    UnsupportedModel {
        /// What is missing or unexpected.
        reason: String,
    },
    /// A weight tensor has a different number of elements than the configuration implies.
    #[error("tensor {tensor}: expected {expected} elements ({shape:?}), found {actual}")]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// The shape the configuration implies, outermost first.
        shape: Vec<usize>,
        /// Element count implied by `shape`.
        expected: usize,
        /// Element count found.
        actual: usize,
    },
    /// A weight override names a tensor the model does not have, or has the wrong length.
    #[error("weight override {tensor}: {reason}")]
    BadOverride {
        /// Tensor name given in the override map.
        tensor: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The tokenizer could not be built or failed on an input.
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// Message from the `tokenizers` crate or our own check.
        reason: String,
    },
    /// A token id is not below the vocabulary size.
    #[error("token {token} at index {index} is out of range for vocabulary size {vocab_size}")]
    TokenOutOfRange {
        /// Position in the input.
        index: usize,
        /// The offending id.
        token: u32,
        /// Vocabulary size of the model.
        vocab_size: usize,
    },
    /// The input is longer than the model's position table.
    #[error("sequence of {len} tokens exceeds the model's {max} positions")]
    TooLong {
        /// Input length in tokens.
        len: usize,
        /// Number of positions the model supports.
        max: usize,
    },
    /// An input that must be non-empty is empty.
    #[error("empty input: {what}")]
    Empty {
        /// Which input.
        what: &'static str,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// Its value, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A computation produced NaN or infinity.
    #[error("non-finite value in {what} ({count} values, first at index {first_index})")]
    NonFinite {
        /// Which quantity.
        what: &'static str,
        /// How many values are non-finite.
        count: usize,
        /// Index of the first one.
        first_index: usize,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn tokenizer(e: impl std::fmt::Display) -> Self {
        Error::Tokenizer {
            reason: e.to_string(),
        }
    }

    pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: &str) -> Self {
        Error::InvalidParam {
            name,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}
