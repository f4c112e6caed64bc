//! GGUF v3 writer: metadata in the caller's order, tensors in the caller's order, data aligned to
//! `general.alignment` (default 32) with zero padding after every tensor (as GGML's own writer
//! does), written to a temporary file beside the target and renamed into place.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gguf::GgufValue;
use crate::model::Model;
use crate::tensor::Format;

/// Builds a GGUF v3 file: ordered metadata and tensors (borrowed or owned bytes), then
/// [`GgufWriter::write`].
///
/// Shapes are given outermost first (PyTorch order, as [`crate::TensorInfo::shape`]); the file
/// stores them innermost first (GGML's `ne`).
///
/// Metadata limits: an empty [`GgufValue::Array`] carries no element type, so it is written as an
/// empty array of `uint8`; arrays must be homogeneous.
///
/// ```
/// use claimlab_weights::{GgufValue, GgufWriter, DType, Model};
/// let dir = std::env::temp_dir().join(format!("gguf-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("tiny.gguf");
/// let mut w = GgufWriter::new();
/// w.set_metadata("general.name", GgufValue::String("tiny".into()));
/// let bytes: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
/// w.add_tensor("w", DType::F32, &[2, 3], bytes)?;
/// w.write(&path)?;
/// let parsed = claimlab_weights::parse_gguf_bytes(&std::fs::read(&path).unwrap())?;
/// assert_eq!(parsed.tensors[0].shape, vec![2, 3]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), claimlab_weights::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct GgufWriter<'a> {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<Pending<'a>>,
    names: HashSet<String>,
}

#[derive(Debug)]
struct Pending<'a> {
    name: String,
    ggml_id: u32,
    shape: Vec<usize>,
    bytes: Cow<'a, [u8]>,
}

fn invalid(path: &Path, item: &str, reason: impl Into<String>) -> Error {
    Error::InvalidWrite {
        path: path.to_path_buf(),
        item: item.to_owned(),
        reason: reason.into(),
    }
}

const NO_FILE: &str = "<gguf writer>";

impl<'a> GgufWriter<'a> {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`: replaces the value in place if the key exists, else appends.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: GgufValue) {
        let key = key.into();
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// Appends a tensor: `shape` outermost first, `bytes` in GGML storage layout.
    ///
    /// # Errors
    /// [`Error::InvalidWrite`] for a duplicate name, a type without a GGML id, an innermost
    /// dimension that is not a whole number of the type's blocks, or a byte length that differs
    /// from what shape and type need.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        bytes: impl Into<Cow<'a, [u8]>>,
    ) -> Result<()> {
        let p = Path::new(NO_FILE);
        if self.names.contains(name) {
            return Err(invalid(p, name, "duplicate tensor name"));
        }
        let Some(ggml_id) = dtype.ggml_id() else {
            return Err(invalid(p, name, format!("{dtype} has no GGML type id")));
        };
        let inner = shape.last().copied().unwrap_or(1);
        if !inner.is_multiple_of(dtype.block_elems()) {
            return Err(invalid(
                p,
                name,
                format!(
                    "innermost dimension {inner} is not a multiple of the {dtype} block size {}",
                    dtype.block_elems()
                ),
            ));
        }
        let n = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .ok_or_else(|| invalid(p, name, "element count overflows"))?;
        let bytes = bytes.into();
        let need = dtype.bytes_for(n);
        if need != Some(bytes.len() as u64) {
            return Err(invalid(
                p,
                name,
                format!(
                    "shape {shape:?} as {dtype} needs {need:?} bytes, {} given",
                    bytes.len()
                ),
            ));
        }
        self.names.insert(name.to_owned());
        self.tensors.push(Pending {
            name: name.to_owned(),
            ggml_id,
            shape: shape.to_vec(),
            bytes,
        });
        Ok(())
    }

    /// The alignment of the data section: `general.alignment`, or 32.
    fn alignment(&self, path: &Path) -> Result<u64> {
        match self.metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => Ok(32),
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => Ok(a),
                _ => Err(invalid(
                    path,
                    "general.alignment",
                    format!("{v:?} is not a positive power of two"),
                )),
            },
        }
    }

    /// Writes the file to `path` (through a temporary file in the same directory, renamed into
    /// place, so an interrupted write leaves no partial `path`). Returns the file size in bytes.
    ///
    /// # Errors
    /// [`Error::InvalidWrite`] for a bad `general.alignment` or a heterogeneous array;
    /// [`Error::Io`] when the file cannot be written or renamed.
    pub fn write(&self, path: &Path) -> Result<u64> {
        let alignment = self.alignment(path)?;
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut header, k);
            header.extend_from_slice(&value_type(v).to_le_bytes());
            put_value(&mut header, v).map_err(|reason| invalid(path, k, reason))?;
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_str(&mut header, &t.name);
            header.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for &d in t.shape.iter().rev() {
                header.extend_from_slice(&(d as u64).to_le_bytes());
            }
            header.extend_from_slice(&t.ggml_id.to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.bytes.len() as u64).div_ceil(alignment) * alignment;
        }
        let pad = |n: u64| (n.div_ceil(alignment) * alignment - n) as usize;
        header.resize(header.len() + pad(header.len() as u64), 0);

        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let file_name = path
            .file_name()
            .ok_or_else(|| invalid(path, "", "output path has no file name"))?;
        let tmp_name = format!(
            ".{}.tmp-{}",
            file_name.to_string_lossy(),
            std::process::id()
        );
        let tmp = match dir {
            Some(d) => d.join(tmp_name),
            None => PathBuf::from(tmp_name),
        };
        let result = (|| -> std::io::Result<u64> {
            let file = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            w.write_all(&header)?;
            let zeros = vec![0u8; alignment as usize];
            let mut total = header.len() as u64;
            for t in &self.tensors {
                w.write_all(&t.bytes)?;
                let p = pad(t.bytes.len() as u64);
                w.write_all(&zeros[..p])?;
                total += (t.bytes.len() + p) as u64;
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(total)
        })();
        let total = match result {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io(&tmp, e));
            }
        };
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
        Ok(total)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn value_type(v: &GgufValue) -> u32 {
    match v {
        GgufValue::U8(_) => 0,
        GgufValue::I8(_) => 1,
        GgufValue::U16(_) => 2,
        GgufValue::I16(_) => 3,
        GgufValue::U32(_) => 4,
        GgufValue::I32(_) => 5,
        GgufValue::F32(_) => 6,
        GgufValue::Bool(_) => 7,
        GgufValue::String(_) => 8,
        GgufValue::Array(_) => 9,
        GgufValue::U64(_) => 10,
        GgufValue::I64(_) => 11,
        GgufValue::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &GgufValue) -> std::result::Result<(), String> {
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.push(*x as u8),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(u8::from(*x)),
        GgufValue::String(s) => put_str(out, s),
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Array(items) => {
            let et = items.first().map_or(0, value_type);
            if let Some(bad) = items.iter().position(|i| value_type(i) != et) {
                return Err(format!(
                    "array is not homogeneous: element {bad} has type {} but element 0 has {et}",
                    value_type(&items[bad])
                ));
            }
            out.extend_from_slice(&et.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i)?;
            }
        }
    }
    Ok(())
}

/// llama.cpp's `general.file_type` (`llama_ftype`) for a model whose matrices are mostly `dtype`
/// (K-quants map to the `_M` mixes).
fn llama_ftype(dtype: DType) -> Option<u32> {
    Some(match dtype {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q8_0 => 7,
        DType::Q5_0 => 8,
        DType::Q5_1 => 9,
        DType::Q2_K => 10,
        DType::Q3_K => 12,
        DType::Q4_K => 15,
        DType::Q5_K => 17,
        DType::Q6_K => 18,
        DType::BF16 => 32,
        _ => return None,
    })
}

/// Copies a GGUF model to `out`: every metadata key and tensor in the original order, with the
/// named tensors' type and bytes replaced (shape kept).
///
/// With at least one replacement, `general.file_type` (when present) is set to llama.cpp's file
/// type for the type holding the most elements among tensors of two or more dimensions (K-quants
/// as their `_M` mix), keeping the key's integer type; llama.cpp uses this key only to name the
/// model's type in its logs. Without replacements the file is reproduced byte for byte when the
/// original stores its tensors in table order with zero padding (as GGML's writers do).
///
/// # Errors
/// [`Error::UnsupportedModel`] when `model` is not GGUF; [`Error::NotFound`] for a replacement
/// name the model lacks; [`Error::InvalidWrite`] when a replacement's bytes do not fit the
/// tensor's shape; as [`GgufWriter::write`].
pub fn copy_with_replacements(
    model: &Model,
    replacements: &HashMap<String, (DType, Vec<u8>)>,
    out: &Path,
) -> Result<()> {
    let (Format::Gguf, Some(meta)) = (model.format(), model.gguf_metadata()) else {
        return Err(Error::UnsupportedModel {
            path: model.file().to_path_buf(),
            reason: "copy_with_replacements needs a GGUF model".into(),
        });
    };
    for name in replacements.keys() {
        model.tensor_info(name)?;
    }
    let mut w = GgufWriter::new();
    for (k, v) in meta.iter() {
        w.set_metadata(k, v.clone());
    }
    let mut by_type: HashMap<DType, u64> = HashMap::new();
    for t in model.tensors() {
        let (dtype, bytes): (DType, Cow<'_, [u8]>) = match replacements.get(&t.name) {
            Some((d, b)) => (*d, Cow::Borrowed(b.as_slice())),
            None => (t.dtype, Cow::Borrowed(model.raw_bytes(t))),
        };
        if t.shape.len() >= 2 {
            *by_type.entry(dtype).or_default() += t.n_elems();
        }
        w.add_tensor(&t.name, dtype, &t.shape, bytes)
            .map_err(|e| match e {
                Error::InvalidWrite { item, reason, .. } => invalid(out, &item, reason),
                other => other,
            })?;
    }
    if !replacements.is_empty() {
        let dominant = by_type
            .into_iter()
            .max_by_key(|&(d, n)| (n, d.ggml_id()))
            .and_then(|(d, _)| llama_ftype(d));
        if let (Some(old), Some(ft)) = (meta.get("general.file_type"), dominant) {
            let v = match old {
                GgufValue::I32(_) => GgufValue::I32(ft as i32),
                GgufValue::U64(_) => GgufValue::U64(u64::from(ft)),
                _ => GgufValue::U32(ft),
            };
            w.set_metadata("general.file_type", v);
        }
    }
    w.write(out)?;
    Ok(())
}
