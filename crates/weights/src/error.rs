//! The crate's error type: every variant names the file it is about.

use std::path::PathBuf;

/// Everything that can go wrong while fetching, verifying or reading weights and text.
///
/// Every variant that concerns a file carries its path; parse errors carry the byte offset at which
/// the problem was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file ends before a structure that starts at `offset` is complete.
    #[error(
        "{path}: truncated at byte {offset}: needed {needed} bytes, only {available} available"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Byte offset where the incomplete structure starts.
        offset: u64,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// The bytes at `offset` do not follow the format (bad magic, bad JSON, bad string, ...).
    #[error("{path}: malformed at byte {offset}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor uses an element type this crate does not know.
    #[error("{path}: tensor {tensor:?} at byte {offset}: unknown dtype {dtype}")]
    UnknownDtype {
        /// The file.
        path: PathBuf,
        /// Byte offset of the tensor's entry in the header.
        offset: u64,
        /// Tensor name.
        tensor: String,
        /// The dtype as written in the file.
        dtype: String,
    },
    /// The byte length a tensor's shape and dtype imply differs from what the file gives it.
    #[error("{path}: tensor {tensor:?}: shape and dtype need {expected_bytes} bytes, file gives {actual_bytes}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// Bytes implied by shape and dtype.
        expected_bytes: u64,
        /// Bytes given by the file (or the caller).
        actual_bytes: u64,
    },
    /// A tensor's data lies (partly) outside the file.
    #[error(
        "{path}: tensor {tensor:?}: data bytes {start}..{end} outside the file ({file_len} bytes)"
    )]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// Absolute start offset.
        start: u64,
        /// Absolute end offset (exclusive).
        end: u64,
        /// File length in bytes.
        file_len: u64,
    },
    /// Two tensors' data ranges overlap.
    #[error("{path}: data of tensors {first:?} and {second:?} overlap")]
    Overlap {
        /// The file.
        path: PathBuf,
        /// The tensor that starts first.
        first: String,
        /// The tensor that starts inside it.
        second: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error(
        "{path}: tensor {tensor:?} has {count} non-finite values (first at element {first_index})"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// How many elements are NaN or infinite.
        count: usize,
        /// Index of the first one, in row-major order.
        first_index: usize,
    },
    /// No tensor of that name.
    #[error("{path}: no tensor named {tensor:?}")]
    NotFound {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        tensor: String,
    },
    /// An external command (pip, npm) failed while fetching pinned data.
    #[error("fetch failed: `{command}`: {detail}\nTo place the files by hand: {manual}")]
    Fetch {
        /// The command line that failed.
        command: String,
        /// Its exit status and error output, or why it could not start.
        detail: String,
        /// Instructions to put the files in place manually.
        manual: String,
    },
    /// A file's sha256 differs from the pinned one.
    #[error("{path}: sha256 {actual} does not match the pinned {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned hash (lowercase hex).
        expected: String,
        /// The hash found.
        actual: String,
    },
    /// The file parses but is not a model this crate can describe.
    #[error("{path}: unsupported model: {reason}")]
    UnsupportedModel {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A value count that is not a whole number of the type's blocks (quantisation input).
    #[error("{n_elems} values are not a whole number of {dtype} blocks of {block_elems}")]
    NotWholeBlocks {
        /// The requested type.
        dtype: crate::dtype::DType,
        /// How many values were given.
        n_elems: u64,
        /// Elements per block of `dtype`.
        block_elems: usize,
    },
    /// A tensor or metadata value handed to the GGUF writer is inconsistent.
    #[error("{path}: cannot write {item:?}: {reason}")]
    InvalidWrite {
        /// The output file.
        path: PathBuf,
        /// The tensor name or metadata key.
        item: String,
        /// What is wrong.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
