//! GGUF (versions 2 and 3) header, metadata and tensor-table parser.
//!
//! Layout: magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count, the metadata
//! key/value pairs, the tensor table (name, `u32` n_dims, `u64` ne[n_dims] innermost first, `u32`
//! GGML type, `u64` offset relative to the data section), padding to `general.alignment` (default
//! 32), then the data section.

use std::path::Path;

use serde::Serialize;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::roles::{classify, Role};
use crate::tensor::{check_layout, Format, ParsedFile, TensorInfo};

/// A GGUF metadata value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GgufValue {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Homogeneous array.
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer (any non-negative integer type).
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(u64::from(v)),
            GgufValue::U16(v) => Some(u64::from(v)),
            GgufValue::U32(v) => Some(u64::from(v)),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float (any numeric type).
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(f64::from(v)),
            GgufValue::F64(v) => Some(v),
            GgufValue::I8(v) => Some(f64::from(v)),
            GgufValue::I16(v) => Some(f64::from(v)),
            GgufValue::I32(v) => Some(f64::from(v)),
            GgufValue::I64(v) => Some(v as f64),
            GgufValue::U8(v) => Some(f64::from(v)),
            GgufValue::U16(v) => Some(f64::from(v)),
            GgufValue::U32(v) => Some(f64::from(v)),
            GgufValue::U64(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value as a bool.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// GGUF metadata: key/value pairs in file order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GgufMetadata {
    /// GGUF version (2 or 3).
    pub version: u32,
    entries: Vec<(String, GgufValue)>,
}

impl GgufMetadata {
    /// The value of `key`, if present (the first one if a key repeats).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// All pairs in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &GgufValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

const MAX_DIMS: u32 = 8;
const MAX_NESTING: usize = 4;

/// Parses GGUF bytes (a whole file) into its metadata and tensor table, checking every offset.
///
/// This is the entry point [`crate::Model::open`] uses, exposed for fuzzing; errors name the path
/// `<bytes>`.
///
/// # Errors
/// Any [`Error`] describing malformed input; never panics.
pub fn parse_gguf_bytes(bytes: &[u8]) -> Result<ParsedFile> {
    parse_gguf(bytes, Path::new("<bytes>"))
}

pub(crate) fn parse_gguf(bytes: &[u8], path: &Path) -> Result<ParsedFile> {
    let mut r = Reader::new(bytes, path);
    let magic = r.take(4)?;
    if magic != b"GGUF" {
        return Err(r.malformed(0, format!("bad magic {magic:02x?}, expected \"GGUF\"")));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(r.malformed(
            4,
            format!("unsupported GGUF version {version} (need 2 or 3)"),
        ));
    }
    let n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    // Each pair needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor entry at least
    // 8 + 4 + 4 + 8. Counts the rest of the file cannot hold are reported as truncation (at the
    // offset where the entries start) before anything is allocated.
    if n_kv > (r.remaining() / 13) as u64 {
        return Err(r.truncated(n_kv.saturating_mul(13)));
    }
    let mut entries = Vec::with_capacity(n_kv as usize);
    for _ in 0..n_kv {
        let key = read_string(&mut r)?;
        let at = r.pos;
        let ty = r.u32()?;
        let value = read_value(&mut r, ty, at, 0)?;
        entries.push((key, value));
    }
    let metadata = GgufMetadata { version, entries };
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
            _ => {
                return Err(
                    r.malformed(24, format!("general.alignment {v:?} is not a power of two"))
                )
            }
        },
    };
    if n_tensors > (r.remaining() / 24) as u64 {
        return Err(r.truncated(n_tensors.saturating_mul(24)));
    }
    struct Raw {
        name: String,
        at: usize,
        ne: Vec<u64>,
        dtype: DType,
        rel: u64,
    }
    let mut raws = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let at = r.pos;
        let name = read_string(&mut r)?;
        let n_dims = r.u32()?;
        if n_dims > MAX_DIMS {
            return Err(r.malformed(
                at,
                format!("tensor {name:?}: {n_dims} dimensions (at most {MAX_DIMS})"),
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            ne.push(r.u64()?);
        }
        let ty_at = r.pos;
        let ty = r.u32()?;
        let dtype = DType::from_ggml_id(ty).ok_or_else(|| Error::UnknownDtype {
            path: path.to_path_buf(),
            offset: ty_at as u64,
            tensor: name.clone(),
            dtype: format!("ggml type {ty}"),
        })?;
        let rel = r.u64()?;
        raws.push(Raw {
            name,
            at,
            ne,
            dtype,
            rel,
        });
    }
    let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
    let mut tensors = Vec::with_capacity(raws.len());
    let mut notes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for raw in raws {
        if !seen.insert(raw.name.clone()) {
            return Err(r.malformed(raw.at, format!("duplicate tensor name {:?}", raw.name)));
        }
        let n_elems = raw
            .ne
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                r.malformed(
                    raw.at,
                    format!("tensor {:?}: element count overflows", raw.name),
                )
            })?;
        let be = raw.dtype.block_elems() as u64;
        if raw.ne.first().is_some_and(|&d| d % be != 0) {
            return Err(r.malformed(
                raw.at,
                format!(
                    "tensor {:?}: row length {} is not a multiple of the {} block size {be}",
                    raw.name, raw.ne[0], raw.dtype
                ),
            ));
        }
        let nbytes = raw.dtype.bytes_for(n_elems).ok_or_else(|| {
            r.malformed(
                raw.at,
                format!("tensor {:?}: byte size overflows", raw.name),
            )
        })?;
        if raw.rel % alignment != 0 {
            return Err(r.malformed(
                raw.at,
                format!(
                    "tensor {:?}: data offset {} is not a multiple of the alignment {alignment}",
                    raw.name, raw.rel
                ),
            ));
        }
        let mut shape = Vec::with_capacity(raw.ne.len());
        for &d in raw.ne.iter().rev() {
            shape.push(usize::try_from(d).map_err(|_| {
                r.malformed(
                    raw.at,
                    format!("tensor {:?}: dimension {d} too large", raw.name),
                )
            })?);
        }
        let (mut role, param, layer) = classify(&raw.name);
        if raw.dtype == DType::I64 {
            notes.push(format!("skipped I64 buffer {}", raw.name));
            role = Role::Other;
        }
        tensors.push(TensorInfo {
            name: raw.name,
            dtype: raw.dtype,
            shape,
            role,
            param,
            layer,
            offset: data_start.saturating_add(raw.rel),
            nbytes,
        });
    }
    check_layout(path, bytes.len() as u64, &tensors)?;
    Ok(ParsedFile {
        format: Format::Gguf,
        tensors,
        metadata: Some(metadata),
        st_metadata: Vec::new(),
        notes,
    })
}

fn read_string(r: &mut Reader<'_>) -> Result<String> {
    let at = r.pos;
    let len = r.u64()?;
    let raw = r.take(len)?;
    match std::str::from_utf8(raw) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => Err(r.malformed(at + 8 + e.valid_up_to(), "string is not valid UTF-8")),
    }
}

/// Smallest encoded size of one value of GGUF type `ty`, `None` for unknown types.
fn min_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,
        9 => 12,
        _ => return None,
    })
}

fn read_value(r: &mut Reader<'_>, ty: u32, at: usize, depth: usize) -> Result<GgufValue> {
    Ok(match ty {
        0 => GgufValue::U8(r.u8()?),
        1 => GgufValue::I8(r.u8()? as i8),
        2 => GgufValue::U16(r.u16()?),
        3 => GgufValue::I16(r.u16()? as i16),
        4 => GgufValue::U32(r.u32()?),
        5 => GgufValue::I32(r.u32()? as i32),
        6 => GgufValue::F32(r.f32()?),
        7 => {
            let b_at = r.pos;
            match r.u8()? {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(r.malformed(b_at, format!("bool value {b} (must be 0 or 1)"))),
            }
        }
        8 => GgufValue::String(read_string(r)?),
        9 => {
            if depth >= MAX_NESTING {
                return Err(r.malformed(at, "arrays nested too deeply"));
            }
            let et_at = r.pos;
            let et = r.u32()?;
            let Some(min) = min_size(et) else {
                return Err(r.malformed(et_at, format!("unknown metadata value type {et}")));
            };
            let count = r.u64()?;
            if count
                .checked_mul(min)
                .is_none_or(|n| n > r.remaining() as u64)
            {
                return Err(r.truncated(count.saturating_mul(min)));
            }
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                items.push(read_value(r, et, et_at, depth + 1)?);
            }
            GgufValue::Array(items)
        }
        10 => GgufValue::U64(r.u64()?),
        11 => GgufValue::I64(r.u64()? as i64),
        12 => GgufValue::F64(r.f64()?),
        _ => return Err(r.malformed(at, format!("unknown metadata value type {ty}"))),
    })
}
