//! Tensor table entries and the checks every format's table must pass.

use std::path::Path;

use serde::Serialize;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gguf::GgufMetadata;
use crate::roles::{Param, Role};

/// The container format of a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Format {
    /// Hugging Face safetensors (JSON header, raw little-endian data).
    Safetensors,
    /// GGML's GGUF (version 2 or 3).
    Gguf,
}

/// One tensor of a model file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorInfo {
    /// Name as stored in the file.
    pub name: String,
    /// Storage type.
    pub dtype: DType,
    /// Row-major shape, outermost first as in PyTorch (`[out_features, in_features]`). GGUF stores
    /// its dimensions innermost first; the reader reverses them so both formats agree.
    pub shape: Vec<usize>,
    /// What the tensor does.
    pub role: Role,
    /// Weight or bias.
    pub param: Param,
    /// Layer index for per-layer tensors.
    pub layer: Option<usize>,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Length of the data in bytes.
    pub nbytes: u64,
}

impl TensorInfo {
    /// Number of elements (product of the shape; 1 for a scalar).
    #[must_use]
    pub fn n_elems(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// The result of parsing a model file's header and tensor table (no tensor data is read).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParsedFile {
    /// Which format.
    pub format: Format,
    /// Tensors in file order (safetensors: by data offset; GGUF: table order).
    pub tensors: Vec<TensorInfo>,
    /// GGUF metadata (`None` for safetensors).
    pub metadata: Option<GgufMetadata>,
    /// Safetensors `__metadata__` entries (empty for GGUF).
    pub st_metadata: Vec<(String, String)>,
    /// Notes about skipped tensors and the like.
    pub notes: Vec<String>,
}

/// Checks that every tensor's data lies inside the file and that no two overlap.
pub(crate) fn check_layout(path: &Path, file_len: u64, tensors: &[TensorInfo]) -> Result<()> {
    for t in tensors {
        let end = t.offset.checked_add(t.nbytes);
        match end {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(Error::OutOfRange {
                    path: path.to_path_buf(),
                    tensor: t.name.clone(),
                    start: t.offset,
                    end: end.unwrap_or(u64::MAX),
                    file_len,
                })
            }
        }
    }
    let mut order: Vec<usize> = (0..tensors.len())
        .filter(|&i| tensors[i].nbytes > 0)
        .collect();
    order.sort_by_key(|&i| (tensors[i].offset, i));
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        if b.offset < a.offset + a.nbytes {
            return Err(Error::Overlap {
                path: path.to_path_buf(),
                first: a.name.clone(),
                second: b.name.clone(),
            });
        }
    }
    Ok(())
}
