//! `Model`: a memory-mapped model file with its tensor table, roles and configuration.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gguf::{parse_gguf, GgufMetadata};
use crate::quant::dequantize_into;
use crate::roles::{Param, Role};
use crate::safetensors::parse_safetensors;
use crate::tensor::{Format, ParsedFile, TensorInfo};

/// Network family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Architecture {
    /// BERT-style encoder (post-norm LayerNorm, GELU MLP, learned positions).
    BertEncoder,
    /// llama-style decoder (pre-norm RMSNorm, SwiGLU MLP, RoPE, grouped-query attention).
    LlamaDecoder,
}

/// Sizes and constants of a model, from `config.json` or GGUF metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelConfig {
    /// Network family.
    pub arch: Architecture,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Hidden (residual) width.
    pub d_model: usize,
    /// Attention (query) heads.
    pub n_heads: usize,
    /// Key/value heads (equal to `n_heads` without grouped-query attention).
    pub n_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// MLP hidden width.
    pub d_ff: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Maximum positions (learned table size or training context), if known.
    pub max_positions: Option<usize>,
    /// LayerNorm / RMSNorm epsilon.
    pub norm_eps: f64,
    /// RoPE base frequency (decoders).
    pub rope_theta: Option<f64>,
    /// Whether the output head reuses the token embedding.
    pub tied_embeddings: bool,
}

/// Serialisable summary of a model: what `inspect --json` prints.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ModelDescription {
    /// The file (or directory) opened.
    pub path: PathBuf,
    /// The container format.
    pub format: Format,
    /// Sizes and constants.
    pub config: ModelConfig,
    /// Number of tensors in the file (including skipped buffers).
    pub n_tensors: usize,
    /// Parameters (elements of all tensors except skipped integer buffers).
    pub n_params: u64,
    /// Bytes of tensor data (excluding skipped buffers).
    pub tensor_bytes: u64,
    /// Size of the model file in bytes.
    pub file_bytes: u64,
    /// Storage bits per parameter, tensor data only.
    pub bits_per_param: f64,
    /// Parameters per dtype name.
    pub params_by_dtype: BTreeMap<String, u64>,
    /// Notes (skipped buffers and the like).
    pub notes: Vec<String>,
    /// Every tensor with its role, dtype, shape and location.
    pub tensors: Vec<TensorInfo>,
}

enum Storage {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Map(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A model file opened for reading: memory-mapped data, tensor table with roles, configuration.
pub struct Model {
    path: PathBuf,
    file: PathBuf,
    format: Format,
    storage: Storage,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    config: ModelConfig,
    metadata: Option<GgufMetadata>,
    notes: Vec<String>,
    tokenizer: Option<PathBuf>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("n_tensors", &self.tensors.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[allow(unsafe_code)]
fn map_file(path: &Path) -> Result<Storage> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        // mmap of an empty file fails on some platforms; an empty buffer parses to a clear error.
        return Ok(Storage::Owned(Vec::new()));
    }
    // SAFETY: the map is read-only and lives inside `Model`, which hands out only `&[u8]` views
    // tied to its own lifetime. The one hazard is another process truncating or rewriting the file
    // while it is mapped (undefined behaviour in Rust terms, SIGBUS in practice); model files in
    // the cache are written once by atomic rename and never modified in place, and user files are
    // documented as read-only while open.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Storage::Map(map))
}

impl Model {
    /// Opens a `.gguf` file, a `.safetensors` file (with `config.json` beside it), or a Hugging Face
    /// style directory (`config.json`, `model.safetensors` or one other `*.safetensors`, optionally
    /// `tokenizer.json`; a directory with a single `.gguf` works too).
    ///
    /// # Errors
    /// [`Error::Io`] when files cannot be read; parse errors ([`Error::Truncated`],
    /// [`Error::Malformed`], [`Error::UnknownDtype`], [`Error::ShapeMismatch`],
    /// [`Error::OutOfRange`], [`Error::Overlap`]); [`Error::UnsupportedModel`] for a directory
    /// without model files, a missing `config.json` or an architecture this crate cannot describe.
    pub fn open(path: &Path) -> Result<Model> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let file = if meta.is_dir() {
            model_file_in_dir(path)?
        } else {
            path.to_path_buf()
        };
        let storage = map_file(&file)?;
        let bytes = storage.bytes();
        let is_gguf = bytes.starts_with(b"GGUF")
            || file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        let parsed = if is_gguf {
            parse_gguf(bytes, &file)?
        } else {
            parse_safetensors(bytes, &file)?
        };
        Model::from_parsed(path.to_path_buf(), file, storage, parsed)
    }

    /// Builds a model from GGUF bytes held in memory (no file); errors name `<bytes>`.
    ///
    /// # Errors
    /// As [`Model::open`].
    pub fn from_gguf_bytes(bytes: Vec<u8>) -> Result<Model> {
        let p = PathBuf::from("<bytes>");
        let parsed = parse_gguf(&bytes, &p)?;
        Model::from_parsed(p.clone(), p, Storage::Owned(bytes), parsed)
    }

    /// Builds a model from safetensors bytes and the text of its `config.json`, both held in
    /// memory; errors name `<bytes>`.
    ///
    /// # Errors
    /// As [`Model::open`].
    pub fn from_safetensors_bytes(bytes: Vec<u8>, config_json: &[u8]) -> Result<Model> {
        let p = PathBuf::from("<bytes>");
        let parsed = parse_safetensors(&bytes, &p)?;
        let config = crate::config::config_from_json_bytes(&p, config_json, &parsed.tensors)?;
        Model::assemble(p.clone(), p, Storage::Owned(bytes), parsed, config, None)
    }

    fn from_parsed(
        path: PathBuf,
        file: PathBuf,
        storage: Storage,
        parsed: ParsedFile,
    ) -> Result<Model> {
        let (config, tokenizer) = match parsed.format {
            Format::Gguf => {
                let md = parsed.metadata.as_ref().expect("GGUF parse gives metadata");
                (
                    crate::config::config_from_gguf(&file, md, &parsed.tensors)?,
                    None,
                )
            }
            Format::Safetensors => {
                let dir = file.parent().unwrap_or(Path::new("."));
                let cfg_path = dir.join("config.json");
                let cfg = crate::config::config_from_json(&cfg_path, &parsed.tensors)?;
                let tok = dir.join("tokenizer.json");
                (cfg, tok.is_file().then_some(tok))
            }
        };
        Model::assemble(path, file, storage, parsed, config, tokenizer)
    }

    fn assemble(
        path: PathBuf,
        file: PathBuf,
        storage: Storage,
        parsed: ParsedFile,
        config: ModelConfig,
        tokenizer: Option<PathBuf>,
    ) -> Result<Model> {
        let by_name = parsed
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Model {
            path,
            file,
            format: parsed.format,
            storage,
            tensors: parsed.tensors,
            by_name,
            config,
            metadata: parsed.metadata,
            notes: parsed.notes,
            tokenizer,
        })
    }

    /// The path given to [`Model::open`].
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model file actually mapped (differs from [`Model::path`] for directories).
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The container format.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// Sizes and constants.
    #[must_use]
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// All tensors, in file order (including skipped integer buffers, whose role is `Other`).
    #[must_use]
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo> {
        self.by_name
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| Error::NotFound {
                path: self.file.clone(),
                tensor: name.to_owned(),
            })
    }

    /// The tensor with this role, layer and parameter kind, if any.
    #[must_use]
    pub fn find(&self, role: Role, layer: Option<usize>, param: Param) -> Option<&TensorInfo> {
        self.tensors
            .iter()
            .find(|t| t.role == role && t.layer == layer && t.param == param)
    }

    /// Zero-copy view of a tensor's stored bytes.
    ///
    /// # Panics
    /// When `t` does not come from this model and lies outside its file (a caller bug).
    #[must_use]
    pub fn raw_bytes(&self, t: &TensorInfo) -> &[u8] {
        &self.storage.bytes()[t.offset as usize..(t.offset + t.nbytes) as usize]
    }

    /// The tensor converted to `f32`, row-major in `shape` order.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::UnknownDtype`] for integer buffers; [`Error::NonFinite`] when
    /// any value is NaN or infinite (with the count and first index).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let t = self.tensor_info(name)?;
        let n = usize::try_from(t.n_elems()).map_err(|_| Error::UnsupportedModel {
            path: self.file.clone(),
            reason: format!("tensor {name:?} too large for this platform"),
        })?;
        if matches!(t.dtype, DType::I64 | DType::Other(_)) {
            return Err(Error::UnknownDtype {
                path: self.file.clone(),
                offset: t.offset,
                tensor: name.to_owned(),
                dtype: format!("{} (integer buffer, not convertible to f32)", t.dtype),
            });
        }
        let mut out = vec![0.0f32; n];
        dequantize_into(t.dtype, self.raw_bytes(t), &mut out).map_err(|e| match e {
            Error::ShapeMismatch {
                expected_bytes,
                actual_bytes,
                ..
            } => Error::ShapeMismatch {
                path: self.file.clone(),
                tensor: name.to_owned(),
                expected_bytes,
                actual_bytes,
            },
            other => other,
        })?;
        let mut count = 0usize;
        let mut first = usize::MAX;
        for (i, x) in out.iter().enumerate() {
            if !x.is_finite() {
                count += 1;
                first = first.min(i);
            }
        }
        if count > 0 {
            return Err(Error::NonFinite {
                path: self.file.clone(),
                tensor: name.to_owned(),
                count,
                first_index: first,
            });
        }
        Ok(out)
    }

    /// Total parameters, excluding skipped integer buffers.
    #[must_use]
    pub fn n_params(&self) -> u64 {
        self.counted().map(TensorInfo::n_elems).sum()
    }

    /// Total bytes of tensor data, excluding skipped integer buffers.
    #[must_use]
    pub fn tensor_bytes(&self) -> u64 {
        self.counted().map(|t| t.nbytes).sum()
    }

    fn counted(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.iter().filter(|t| t.dtype != DType::I64)
    }

    /// Notes made while reading (for example `skipped I64 buffer embeddings.position_ids`).
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// GGUF metadata (GGUF files only).
    #[must_use]
    pub fn gguf_metadata(&self) -> Option<&GgufMetadata> {
        self.metadata.as_ref()
    }

    /// `tokenizer.json` beside a safetensors file, if present.
    #[must_use]
    pub fn tokenizer_json_path(&self) -> Option<PathBuf> {
        self.tokenizer.clone()
    }

    /// A serialisable summary: configuration, totals and every tensor.
    #[must_use]
    pub fn description(&self) -> ModelDescription {
        let mut by_dtype = BTreeMap::new();
        for t in self.counted() {
            *by_dtype.entry(t.dtype.name().to_owned()).or_insert(0) += t.n_elems();
        }
        let n_params = self.n_params();
        let tensor_bytes = self.tensor_bytes();
        ModelDescription {
            path: self.path.clone(),
            format: self.format,
            config: self.config.clone(),
            n_tensors: self.tensors.len(),
            n_params,
            tensor_bytes,
            file_bytes: self.storage.bytes().len() as u64,
            bits_per_param: if n_params == 0 {
                0.0
            } else {
                tensor_bytes as f64 * 8.0 / n_params as f64
            },
            params_by_dtype: by_dtype,
            notes: self.notes.clone(),
            tensors: self.tensors.clone(),
        }
    }
}

fn model_file_in_dir(dir: &Path) -> Result<PathBuf> {
    let preferred = dir.join("model.safetensors");
    if preferred.is_file() {
        return Ok(preferred);
    }
    let mut st = Vec::new();
    let mut gg = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in rd {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        match p.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => st.push(p),
            Some("gguf") => gg.push(p),
            _ => {}
        }
    }
    st.sort();
    gg.sort();
    match (st.len(), gg.len()) {
        (1, _) => Ok(st.remove(0)),
        (0, 1) => Ok(gg.remove(0)),
        (0, 0) => Err(Error::UnsupportedModel {
            path: dir.to_path_buf(),
            reason: "directory holds no model.safetensors, *.safetensors or *.gguf".into(),
        }),
        (n, _) if n > 1 => Err(Error::UnsupportedModel {
            path: dir.to_path_buf(),
            reason: format!(
                "{n} safetensors files (sharded checkpoints are not supported); open one file"
            ),
        }),
        (_, n) => Err(Error::UnsupportedModel {
            path: dir.to_path_buf(),
            reason: format!("{n} gguf files; open one file"),
        }),
    }
}

/// Entry points for fuzzers: parse bytes as the reader would, then convert every tensor. Any
/// outcome other than a panic is acceptable; used by `crates/weights/fuzz` and by the seeded
/// mutation test in the normal suite.
pub mod fuzzing {
    use super::Model;
    use crate::dtype::DType;

    /// Largest tensor (elements) converted while fuzzing, so huge-but-valid inputs stay fast.
    const MAX_ELEMS: u64 = 1 << 20;

    fn convert_all(m: &Model) {
        for t in m.tensors() {
            if t.n_elems() <= MAX_ELEMS && !matches!(t.dtype, DType::I64 | DType::Other(_)) {
                let _ = m.tensor_f32(&t.name);
            }
        }
        let _ = m.description();
        let _ = m.n_params();
    }

    /// Parses `data` as GGUF, builds the model description and converts every tensor.
    pub fn gguf(data: &[u8]) {
        let _ = crate::gguf::parse_gguf_bytes(data);
        if let Ok(m) = Model::from_gguf_bytes(data.to_vec()) {
            convert_all(&m);
        }
    }

    /// Parses `data` as safetensors (with a fixed BERT `config.json`) and converts every tensor.
    pub fn safetensors(data: &[u8]) {
        const CONFIG: &[u8] = br#"{"model_type": "bert", "hidden_size": 4, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 5}"#;
        if let Ok(m) = Model::from_safetensors_bytes(data.to_vec(), CONFIG) {
            convert_all(&m);
        }
    }
}
