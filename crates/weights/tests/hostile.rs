//! Small model files built by hand: valid ones check the reader's description, hostile ones check
//! that every kind of bad input gives its own error naming the file (and offset), never a panic.

use std::path::Path;

use claimlab_weights::{
    parse_gguf_bytes, parse_safetensors_bytes, Architecture, DType, Error, Format, GgufValue,
    Model, Param, Role,
};

mod common;
use common::*;

fn assert_names_file(e: &Error, path: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{msg:?} does not name {path:?}"
    );
}

// ------------------------------------------------------------------ valid files

#[test]
fn tiny_llama_gguf_is_described() {
    let d = tmp_dir("tiny-llama");
    let p = write(&d, "tiny.gguf", &tiny_llama().bytes());
    let m = Model::open(&p).unwrap();
    assert_eq!(m.format(), Format::Gguf);
    let c = m.config();
    assert_eq!(c.arch, Architecture::LlamaDecoder);
    assert_eq!(
        (
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.n_kv_heads,
            c.head_dim,
            c.d_ff,
            c.vocab_size
        ),
        (2, 32, 4, 2, 8, 64, 3)
    );
    assert_eq!(c.max_positions, Some(128));
    assert!((c.rope_theta.unwrap() - 10000.0).abs() < 1e-9);
    assert!((c.norm_eps - 1e-5).abs() < 1e-10);
    assert!(c.tied_embeddings);
    assert_eq!(m.tensors().len(), 10);
    let k = m.find(Role::Key, Some(1), Param::Weight).unwrap();
    assert_eq!(k.shape, [16, 32]);
    assert_eq!(k.name, "blk.1.attn_k.weight");
    let emb = m.tensor_info("token_embd.weight").unwrap();
    assert_eq!((emb.dtype, emb.shape.clone()), (DType::Q8_0, vec![3, 32]));
    let e = m.tensor_f32("token_embd.weight").unwrap();
    assert_eq!(e.len(), 96);
    assert!((e[32 + 5] - 2.5).abs() < 1e-6);
    let gate = m.find(Role::MlpGate, Some(0), Param::Weight).unwrap();
    assert_eq!(gate.shape, [64, 32]);
    assert_eq!(m.n_params(), 96 + 2 * (32 + 1024 + 512 + 2048) + 32);
    assert!(matches!(m.tensor_f32("nope"), Err(Error::NotFound { .. })));
    assert_eq!(m.raw_bytes(emb).len(), 3 * 34);
    let md = m.gguf_metadata().unwrap();
    assert_eq!(
        md.get("llama.block_count").and_then(GgufValue::as_u64),
        Some(2)
    );
    assert_eq!(
        md.get("tokenizer.ggml.tokens")
            .and_then(GgufValue::as_array)
            .map(<[_]>::len),
        Some(3)
    );
    // Every tensor's data starts on the 32-byte alignment.
    assert!(m.tensors().iter().all(|t| t.offset % 32 == 0));
    let json = serde_json::to_value(m.description()).unwrap();
    assert_eq!(json["config"]["n_kv_heads"], 2);
}

#[test]
fn gguf_metadata_of_every_type() {
    let mut g = tiny_llama();
    g.kv("t.u8", 0, &[200])
        .kv("t.i8", 1, &[0xFE])
        .kv("t.u16", 2, &60000u16.to_le_bytes())
        .kv("t.i16", 3, &(-300i16).to_le_bytes())
        .kv("t.i32", 5, &(-7i32).to_le_bytes())
        .kv("t.bool", 7, &[1])
        .kv("t.u64", 10, &(1u64 << 40).to_le_bytes())
        .kv("t.i64", 11, &(-5i64).to_le_bytes())
        .kv("t.f64", 12, &2.5f64.to_le_bytes());
    // Nested array: array of 2 arrays of u8.
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend(2u64.to_le_bytes());
    for vals in [[1u8, 2], [3, 4]] {
        nested.extend(0u32.to_le_bytes());
        nested.extend(2u64.to_le_bytes());
        nested.extend(vals);
    }
    g.kv("t.nested", 9, &nested);
    // general.alignment = 64 changes where the data section starts.
    g.kv_u32("general.alignment", 64);
    g.alignment = 64;
    let parsed = parse_gguf_bytes(&g.bytes()).unwrap();
    let md = parsed.metadata.unwrap();
    assert_eq!(md.get("t.u8"), Some(&GgufValue::U8(200)));
    assert_eq!(md.get("t.i8"), Some(&GgufValue::I8(-2)));
    assert_eq!(md.get("t.u16"), Some(&GgufValue::U16(60000)));
    assert_eq!(md.get("t.i16"), Some(&GgufValue::I16(-300)));
    assert_eq!(md.get("t.i32"), Some(&GgufValue::I32(-7)));
    assert_eq!(md.get("t.bool"), Some(&GgufValue::Bool(true)));
    assert_eq!(md.get("t.u64").and_then(GgufValue::as_u64), Some(1 << 40));
    assert_eq!(md.get("t.i64"), Some(&GgufValue::I64(-5)));
    assert_eq!(md.get("t.i64").and_then(GgufValue::as_u64), None);
    assert!((md.get("t.f64").and_then(GgufValue::as_f64).unwrap() - 2.5).abs() < 1e-12);
    let nested = md.get("t.nested").and_then(GgufValue::as_array).unwrap();
    assert_eq!(nested[1].as_array().unwrap()[0], GgufValue::U8(3));
    assert!(parsed.tensors.iter().all(|t| t.offset % 64 == 0));
    assert_eq!(md.iter().count(), md.len());
}

#[test]
fn bert_directory_is_described() {
    let d = tmp_dir("bert-dir");
    let header = r#"{"__metadata__": {"format": "pt"},
        "embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [5, 4], "data_offsets": [0, 80]},
        "encoder.layer.0.attention.self.query.weight": {"dtype": "F16", "shape": [4, 4], "data_offsets": [80, 112]},
        "encoder.layer.0.attention.self.query.bias": {"dtype": "BF16", "shape": [4], "data_offsets": [112, 120]},
        "embeddings.position_ids": {"dtype": "I64", "shape": [1, 2], "data_offsets": [120, 136]}}"#;
    let mut data = f32s(&[0.25; 20]);
    data.extend([0x00, 0x3C].repeat(16)); // f16 1.0
    data.extend([0x80, 0x3F].repeat(4)); // bf16 1.0
    data.extend([0u8; 16]);
    write(&d, "model.safetensors", &st(header, &data));
    write(&d, "config.json", bert_config().as_bytes());
    write(&d, "tokenizer.json", b"{}");
    let m = Model::open(&d).unwrap();
    assert_eq!(m.format(), Format::Safetensors);
    let c = m.config();
    assert_eq!(c.arch, Architecture::BertEncoder);
    assert_eq!(
        (
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.head_dim,
            c.d_ff,
            c.vocab_size
        ),
        (1, 4, 2, 2, 8, 5)
    );
    assert_eq!(m.tensors().len(), 4);
    assert_eq!(m.n_params(), 20 + 16 + 4);
    assert_eq!(m.tensor_bytes(), 120);
    assert_eq!(m.notes(), ["skipped I64 buffer embeddings.position_ids"]);
    assert!(m.tokenizer_json_path().is_some());
    let q = m.find(Role::Query, Some(0), Param::Weight).unwrap();
    assert_eq!(q.dtype, DType::F16);
    assert!(m
        .tensor_f32(&q.name)
        .unwrap()
        .iter()
        .all(|&v| (v - 1.0).abs() < 1e-9));
    let b = m.find(Role::Query, Some(0), Param::Bias).unwrap();
    assert!(m
        .tensor_f32(&b.name)
        .unwrap()
        .iter()
        .all(|&v| (v - 1.0).abs() < 1e-9));
    assert!(matches!(
        m.tensor_f32("embeddings.position_ids"),
        Err(Error::UnknownDtype { .. })
    ));
    // Opening the file directly gives the same model.
    let m2 = Model::open(&d.join("model.safetensors")).unwrap();
    assert_eq!(m2.n_params(), m.n_params());
}

// ------------------------------------------------------------------ hostile GGUF

#[test]
fn gguf_bad_magic_and_version() {
    let mut b = tiny_llama().bytes();
    b[0] = b'X';
    assert!(matches!(
        parse_gguf_bytes(&b),
        Err(Error::Malformed { offset: 0, .. })
    ));
    let mut b = tiny_llama().bytes();
    b[4] = 9;
    assert!(matches!(
        parse_gguf_bytes(&b),
        Err(Error::Malformed { offset: 4, .. })
    ));
}

#[test]
fn gguf_every_truncation_is_an_error() {
    let full = tiny_llama().bytes();
    let d = tmp_dir("gguf-trunc");
    // Every prefix up to the end of the tensor table, then a few inside the data.
    for cut in (0..full.len()).step_by(7).chain([full.len() - 1]) {
        let res = parse_gguf_bytes(&full[..cut]);
        assert!(
            matches!(
                res,
                Err(Error::Truncated { .. } | Error::OutOfRange { .. } | Error::Malformed { .. })
            ),
            "cut {cut}: {res:?}"
        );
    }
    // Through a file: the error names it, with the offset of the incomplete field.
    let p = write(&d, "cut.gguf", &full[..30]);
    let err = Model::open(&p).unwrap_err();
    assert_names_file(&err, &p);
    // The metadata pairs start at byte 24; ten pairs need at least 10 × 13 bytes, 6 are left.
    assert!(
        matches!(
            err,
            Error::Truncated {
                offset: 24,
                needed: 130,
                available: 6,
                ..
            }
        ),
        "{err:?}"
    );
    // Cut inside the first key's text (20 bytes from 32), with a pair count that fits.
    let mut short = full[..40].to_vec();
    short[16..24].copy_from_slice(&1u64.to_le_bytes());
    let err = parse_gguf_bytes(&short).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                offset: 32,
                needed: 20,
                available: 8,
                ..
            }
        ),
        "{err:?}"
    );
    // The empty file.
    let p = write(&d, "empty.gguf", b"");
    assert!(matches!(
        Model::open(&p),
        Err(Error::Truncated { offset: 0, .. })
    ));
}

#[test]
fn gguf_absurd_counts_do_not_allocate() {
    let mut b = tiny_llama().bytes();
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(
        parse_gguf_bytes(&b),
        Err(Error::Truncated { offset, needed: u64::MAX, .. }) if offset > 24
    ));
    let mut b = tiny_llama().bytes();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(
        parse_gguf_bytes(&b),
        Err(Error::Truncated { offset: 24, .. })
    ));
    // An array claiming 2^60 elements.
    let mut g = tiny_llama();
    let mut arr = 4u32.to_le_bytes().to_vec();
    arr.extend((1u64 << 60).to_le_bytes());
    g.kv("huge", 9, &arr);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Truncated { .. })
    ));
    // A string claiming 2^63 bytes.
    let mut g = tiny_llama();
    g.kv("s", 8, &(1u64 << 63).to_le_bytes());
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Truncated { .. })
    ));
    // A tensor with 2^40 × 2^40 elements (overflows the byte count).
    let mut g = tiny_llama();
    g.info("big", &[1 << 40, 1 << 40], 0, 0);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn gguf_unknown_dtypes_and_value_types() {
    let mut g = tiny_llama();
    g.info("weird", &[32], 99, 0);
    let b = g.bytes();
    match parse_gguf_bytes(&b) {
        Err(Error::UnknownDtype {
            tensor,
            dtype,
            offset,
            ..
        }) => {
            assert_eq!(tensor, "weird");
            assert!(dtype.contains("99"));
            // The type field sits 4 + 8 bytes before the end of the tensor table entry's offset
            // field: check it really holds 99.
            let o = offset as usize;
            assert_eq!(u32::from_le_bytes(b[o..o + 4].try_into().unwrap()), 99);
        }
        other => panic!("{other:?}"),
    }
    let mut g = tiny_llama();
    g.kv("bad", 42, &[0; 8]);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
    let mut g = tiny_llama();
    g.kv("badbool", 7, &[2]);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
    let mut g = tiny_llama();
    g.kv("badutf8", 8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE]);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn gguf_out_of_range_overlap_and_misalignment() {
    let mut g = tiny_llama();
    g.info("past_end", &[32], 0, 1 << 20);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::OutOfRange { tensor, .. }) if tensor == "past_end"
    ));
    let mut g = tiny_llama();
    g.info("wrap", &[32], 0, u64::MAX - 31);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::OutOfRange { .. })
    ));
    let mut g = tiny_llama();
    // Same offset as token_embd.weight (relative 0).
    g.info("alias", &[32], 0, 0);
    match parse_gguf_bytes(&g.bytes()) {
        Err(Error::Overlap { first, second, .. }) => {
            let mut pair = [first, second];
            pair.sort();
            assert_eq!(pair, ["alias".to_owned(), "token_embd.weight".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    let mut g = tiny_llama();
    g.info("misaligned", &[32], 0, 4);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
    let mut g = tiny_llama();
    g.info("blk.0.attn_q.weight", &[32], 0, 0);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
    // A Q8_0 row of 33 elements is not a whole number of blocks.
    let mut g = tiny_llama();
    g.info("ragged", &[33], 8, 0);
    assert!(matches!(
        parse_gguf_bytes(&g.bytes()),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn gguf_non_finite_values_are_reported() {
    let d = tmp_dir("gguf-nan");
    let mut g = tiny_llama();
    let mut v = vec![0.5f32; 64];
    v[3] = f32::NAN;
    v[10] = f32::INFINITY;
    v[11] = f32::NEG_INFINITY;
    g.tensor("bad.weight", &[64], 0, &f32s(&v));
    // A Q8_0 block whose scale is f16 NaN (0x7E00): all 32 values NaN... except that 0 × NaN is
    // NaN too, so every element counts.
    let mut q = 0x7E00u16.to_le_bytes().to_vec();
    q.extend([1u8; 32]);
    g.tensor("badq.weight", &[32], 8, &q);
    let p = write(&d, "nan.gguf", &g.bytes());
    let m = Model::open(&p).unwrap();
    match m.tensor_f32("bad.weight") {
        Err(e @ Error::NonFinite { .. }) => {
            assert_names_file(&e, &p);
            let Error::NonFinite {
                tensor,
                count,
                first_index,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!((tensor.as_str(), count, first_index), ("bad.weight", 3, 3));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.tensor_f32("badq.weight"),
        Err(Error::NonFinite {
            count: 32,
            first_index: 0,
            ..
        })
    ));
}

#[test]
fn gguf_missing_architecture_keys() {
    let mut g = Gguf::new();
    g.kv_str("general.architecture", "llama");
    g.tensor("token_embd.weight", &[4, 2], 0, &f32s(&[0.0; 8]));
    let d = tmp_dir("gguf-nokeys");
    let p = write(&d, "nokeys.gguf", &g.bytes());
    let err = Model::open(&p).unwrap_err();
    assert!(matches!(err, Error::UnsupportedModel { .. }));
    assert!(err.to_string().contains("llama.embedding_length"));
    let mut g = Gguf::new();
    g.kv_str("general.architecture", "mamba");
    let p = write(&d, "mamba.gguf", &g.bytes());
    assert!(matches!(
        Model::open(&p),
        Err(Error::UnsupportedModel { .. })
    ));
}

// ------------------------------------------------------------------ hostile safetensors

const ONE_TENSOR: &str = r#"{"encoder.layer.0.output.dense.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}"#;

#[test]
fn safetensors_header_errors() {
    // Fewer than 8 bytes.
    assert!(matches!(
        parse_safetensors_bytes(&[1, 2, 3]),
        Err(Error::Truncated {
            offset: 0,
            needed: 8,
            available: 3,
            ..
        })
    ));
    // Header length past the end.
    let mut b = st(ONE_TENSOR, &[0; 16]);
    b[0..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(
        parse_safetensors_bytes(&b),
        Err(Error::Truncated { offset: 8, needed, .. }) if needed == 1 << 62
    ));
    // Bad JSON: the offset points into the header at the bad character.
    let bad = r#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]} oops}"#;
    match parse_safetensors_bytes(&st(bad, &[0; 4])) {
        Err(Error::Malformed { offset, .. }) => {
            assert_eq!(offset as usize, 8 + bad.find("oops").unwrap());
        }
        other => panic!("{other:?}"),
    }
    // Not an object; missing fields.
    assert!(matches!(
        parse_safetensors_bytes(&st("[1, 2]", &[])),
        Err(Error::Malformed { .. })
    ));
    for h in [
        r#"{"t": {"shape": [1], "data_offsets": [0, 4]}}"#,
        r#"{"t": {"dtype": "F32", "data_offsets": [0, 4]}}"#,
        r#"{"t": {"dtype": "F32", "shape": [1]}}"#,
        r#"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#,
        r#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#,
        r#"{"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}}"#,
    ] {
        assert!(
            matches!(
                parse_safetensors_bytes(&st(h, &[0; 4])),
                Err(Error::Malformed { .. })
            ),
            "{h}"
        );
    }
}

#[test]
fn safetensors_table_errors() {
    let unknown = r#"{"t": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}"#;
    assert!(matches!(
        parse_safetensors_bytes(&st(unknown, &[0; 4])),
        Err(Error::UnknownDtype { dtype, tensor, .. }) if dtype == "F8_E4M3" && tensor == "t"
    ));
    let mismatch = r#"{"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}"#;
    assert!(matches!(
        parse_safetensors_bytes(&st(mismatch, &[0; 16])),
        Err(Error::ShapeMismatch {
            expected_bytes: 12,
            actual_bytes: 16,
            ..
        })
    ));
    let past = r#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#;
    assert!(matches!(
        parse_safetensors_bytes(&st(past, &[0; 8])),
        Err(Error::OutOfRange { end, file_len, .. }) if end > file_len
    ));
    let overlap = r#"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#;
    assert!(matches!(
        parse_safetensors_bytes(&st(overlap, &[0; 16])),
        Err(Error::Overlap { first, second, .. }) if first == "a" && second == "b"
    ));
}

#[test]
fn safetensors_files_and_directories() {
    let d = tmp_dir("st-files");
    // No config.json beside the file.
    let p = write(
        &d,
        "model.safetensors",
        &st(ONE_TENSOR, &f32s(&[1.0, 2.0, 3.0, 4.0])),
    );
    let err = Model::open(&p).unwrap_err();
    assert!(matches!(err, Error::UnsupportedModel { .. }), "{err:?}");
    assert!(err.to_string().contains("config.json"));
    // With it: values come back in order.
    write(&d, "config.json", bert_config().as_bytes());
    let m = Model::open(&p).unwrap();
    let v = m.tensor_f32("encoder.layer.0.output.dense.weight").unwrap();
    assert_eq!(v.len(), 4);
    assert!((v[3] - 4.0).abs() < 1e-9);
    // NaN is reported with name, count and first index.
    let nan = write(
        &d,
        "model.safetensors",
        &st(ONE_TENSOR, &f32s(&[1.0, f32::NAN, 3.0, f32::NAN])),
    );
    let m = Model::open(&nan).unwrap();
    assert!(matches!(
        m.tensor_f32("encoder.layer.0.output.dense.weight"),
        Err(Error::NonFinite {
            count: 2,
            first_index: 1,
            ..
        })
    ));
    // A bad config.json.
    write(&d, "config.json", b"{not json");
    assert!(matches!(Model::open(&d), Err(Error::Malformed { .. })));
    write(&d, "config.json", br#"{"model_type": "t5"}"#);
    assert!(matches!(
        Model::open(&d),
        Err(Error::UnsupportedModel { .. })
    ));
    // A directory without model files; a missing path.
    let empty = tmp_dir("st-empty");
    write(&empty, "README.md", b"nothing here");
    let err = Model::open(&empty).unwrap_err();
    assert!(matches!(err, Error::UnsupportedModel { .. }));
    assert_names_file(&err, &empty);
    assert!(matches!(
        Model::open(&empty.join("missing.gguf")),
        Err(Error::Io { .. })
    ));
    // A truncated safetensors file through Model::open names the file.
    let p = write(&empty, "x.safetensors", &st(ONE_TENSOR, &[0; 16])[..20]);
    let err = Model::open(&p).unwrap_err();
    assert!(matches!(err, Error::Truncated { offset: 8, .. }));
    assert_names_file(&err, &p);
}
