//! Safetensors header parser.
//!
//! Layout: `u64` header length N, N bytes of JSON (`{"name": {"dtype": "F32", "shape": [..],
//! "data_offsets": [begin, end]}, "__metadata__": {..}}`), then the data; offsets are relative to
//! byte 8 + N.

use std::path::Path;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::roles::{classify, Role};
use crate::tensor::{check_layout, Format, ParsedFile, TensorInfo};

/// Parses safetensors bytes (a whole file) into its tensor table, checking every offset.
///
/// This is the entry point [`crate::Model::open`] uses, exposed for fuzzing; errors name the path
/// `<bytes>`.
///
/// # Errors
/// Any [`Error`] describing malformed input; never panics.
pub fn parse_safetensors_bytes(bytes: &[u8]) -> Result<ParsedFile> {
    parse_safetensors(bytes, Path::new("<bytes>"))
}

pub(crate) fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<ParsedFile> {
    let mut r = Reader::new(bytes, path);
    let n = r.u64()?;
    let header = r.take(n)?;
    let data_start = 8 + n;
    let json: serde_json::Value = serde_json::from_slice(header).map_err(|e| Error::Malformed {
        path: path.to_path_buf(),
        offset: 8 + json_offset(header, e.line(), e.column()),
        reason: format!("bad JSON header: {e}"),
    })?;
    let malformed = |reason: String| Error::Malformed {
        path: path.to_path_buf(),
        offset: 8,
        reason,
    };
    let obj = json
        .as_object()
        .ok_or_else(|| malformed("header is not a JSON object".into()))?;
    let mut tensors = Vec::with_capacity(obj.len());
    let mut notes = Vec::new();
    let mut st_metadata = Vec::new();
    for (name, v) in obj {
        if name == "__metadata__" {
            if let Some(m) = v.as_object() {
                for (k, v) in m {
                    st_metadata.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
                }
            }
            continue;
        }
        let dtype_s = v.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| {
            malformed(format!("tensor {name:?}: missing or non-string \"dtype\""))
        })?;
        let dtype = match dtype_s {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "I64" => DType::I64,
            other => {
                return Err(Error::UnknownDtype {
                    path: path.to_path_buf(),
                    offset: 8,
                    tensor: name.clone(),
                    dtype: other.to_owned(),
                })
            }
        };
        let shape_v = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| malformed(format!("tensor {name:?}: missing or non-array \"shape\"")))?;
        let mut shape = Vec::with_capacity(shape_v.len().min(16));
        for d in shape_v {
            let d = d
                .as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| malformed(format!("tensor {name:?}: bad dimension {d}")))?;
            shape.push(d);
        }
        let offs = v
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| {
                malformed(format!(
                    "tensor {name:?}: \"data_offsets\" must be two integers"
                ))
            })?;
        let (begin, end) = offs;
        if end < begin {
            return Err(malformed(format!(
                "tensor {name:?}: data_offsets end {end} < begin {begin}"
            )));
        }
        let n_elems = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| malformed(format!("tensor {name:?}: element count overflows")))?;
        let expected = dtype
            .bytes_for(n_elems)
            .ok_or_else(|| malformed(format!("tensor {name:?}: byte size overflows")))?;
        if expected != end - begin {
            return Err(Error::ShapeMismatch {
                path: path.to_path_buf(),
                tensor: name.clone(),
                expected_bytes: expected,
                actual_bytes: end - begin,
            });
        }
        let (mut role, param, layer) = classify(name);
        if dtype == DType::I64 {
            notes.push(format!("skipped I64 buffer {name}"));
            role = Role::Other;
        }
        tensors.push(TensorInfo {
            name: name.clone(),
            dtype,
            shape,
            role,
            param,
            layer,
            offset: data_start.saturating_add(begin),
            nbytes: end - begin,
        });
    }
    tensors.sort_by(|a, b| a.offset.cmp(&b.offset).then_with(|| a.name.cmp(&b.name)));
    check_layout(path, bytes.len() as u64, &tensors)?;
    Ok(ParsedFile {
        format: Format::Safetensors,
        tensors,
        metadata: None,
        st_metadata,
        notes,
    })
}

/// Byte offset inside `text` of serde_json's (1-based line, 1-based column) position.
fn json_offset(text: &[u8], line: usize, column: usize) -> u64 {
    let mut off = 0usize;
    for _ in 1..line {
        match text[off..].iter().position(|&b| b == b'\n') {
            Some(p) => off += p + 1,
            None => return text.len() as u64,
        }
    }
    (off + column.saturating_sub(1)).min(text.len()) as u64
}
