//! GGUF writer: write then read back with the crate's own parser; errors; the real SmolLM2 file
//! copied byte for byte and with one tensor re-quantised (reads the pinned cache, fetching on
//! first use like `real_data.rs`).

use std::collections::HashMap;
use std::path::PathBuf;

use claimlab_testkit::rand::RngExt;
use claimlab_testkit::rng;
use claimlab_weights::{
    copy_with_replacements, dequantize, parse_gguf_bytes, quantize, Cache, DType, Error, GgufValue,
    GgufWriter, Model, Pinned,
};

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("claimlab-gguf-write-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn all_value_types() -> Vec<(String, GgufValue)> {
    use GgufValue as V;
    vec![
        ("general.architecture".into(), V::String("test".into())),
        ("a.u8".into(), V::U8(200)),
        ("a.i8".into(), V::I8(-100)),
        ("a.u16".into(), V::U16(60000)),
        ("a.i16".into(), V::I16(-30000)),
        ("a.u32".into(), V::U32(4_000_000_000)),
        ("a.i32".into(), V::I32(-2_000_000_000)),
        ("a.u64".into(), V::U64(u64::MAX - 1)),
        ("a.i64".into(), V::I64(i64::MIN + 1)),
        ("a.f32".into(), V::F32(-1.5e-7)),
        ("a.f64".into(), V::F64(std::f64::consts::PI)),
        ("a.bool".into(), V::Bool(true)),
        ("a.str".into(), V::String("héllo ▁wörld".into())),
        (
            "tokenizer.ggml.tokens".into(),
            V::Array(vec![
                V::String("<s>".into()),
                V::String("Ġthe".into()),
                V::String(String::new()),
            ]),
        ),
        ("a.ints".into(), V::Array((0..10).map(V::I32).collect())),
        (
            "a.nested".into(),
            V::Array(vec![
                V::Array(vec![V::U8(1), V::U8(2)]),
                V::Array(vec![V::U8(3)]),
            ]),
        ),
        ("general.alignment".into(), V::U32(64)),
    ]
}

#[test]
fn write_then_read_back() {
    let dir = scratch("roundtrip");
    let path = dir.join("t.gguf");
    let mut r = rng(21);
    let mut w = GgufWriter::new();
    let meta = all_value_types();
    for (k, v) in &meta {
        w.set_metadata(k.clone(), v.clone());
    }
    let x: Vec<f32> = (0..3 * 512).map(|_| r.random::<f32>() - 0.5).collect();
    let tensors: Vec<(&str, DType, Vec<usize>, Vec<u8>)> = vec![
        (
            "norm",
            DType::F32,
            vec![7],
            quantize(DType::F32, &x[..7]).unwrap(),
        ),
        (
            "m8",
            DType::Q8_0,
            vec![3, 64],
            quantize(DType::Q8_0, &x[..192]).unwrap(),
        ),
        (
            "k4",
            DType::Q4_K,
            vec![3, 2, 256],
            quantize(DType::Q4_K, &x).unwrap(),
        ),
        (
            "h",
            DType::F16,
            vec![5, 3],
            quantize(DType::F16, &x[..15]).unwrap(),
        ),
        (
            "scalar",
            DType::F32,
            vec![],
            quantize(DType::F32, &x[..1]).unwrap(),
        ),
    ];
    for (name, dtype, shape, bytes) in &tensors {
        w.add_tensor(name, *dtype, shape, bytes.as_slice()).unwrap();
    }
    let size = w.write(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(bytes.len() % 64, 0, "file ends padded to the alignment");
    let parsed = parse_gguf_bytes(&bytes).unwrap();
    let md = parsed.metadata.unwrap();
    assert_eq!(md.version, 3);
    let got: Vec<(String, GgufValue)> = md.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
    assert_eq!(got, meta);
    assert_eq!(parsed.tensors.len(), tensors.len());
    for (t, (name, dtype, shape, data)) in parsed.tensors.iter().zip(&tensors) {
        assert_eq!((&t.name[..], t.dtype, &t.shape), (*name, *dtype, shape));
        assert_eq!(t.offset % 64, 0, "{name} offset aligned");
        assert_eq!(
            &bytes[t.offset as usize..(t.offset + t.nbytes) as usize],
            &data[..]
        );
    }
    // Only the target remains in the directory (the temporary file was renamed).
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // set_metadata replaces in place.
    w.set_metadata("a.u8", GgufValue::U8(1));
    w.write(&path).unwrap();
    let md = parse_gguf_bytes(&std::fs::read(&path).unwrap())
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!(md.iter().nth(1), Some(("a.u8", &GgufValue::U8(1))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writer_errors() {
    let dir = scratch("errors");
    let mut w = GgufWriter::new();
    w.add_tensor("a", DType::F32, &[2], vec![0u8; 8]).unwrap();
    let bad = |r: Result<(), Error>, want: &str| match r {
        Err(Error::InvalidWrite { item, reason, .. }) => {
            assert!(reason.contains(want), "{item}: {reason}");
        }
        other => panic!("{other:?}"),
    };
    bad(
        w.add_tensor("a", DType::F32, &[2], vec![0u8; 8]),
        "duplicate",
    );
    bad(w.add_tensor("b", DType::F32, &[3], vec![0u8; 8]), "needs");
    bad(
        w.add_tensor("c", DType::Q8_0, &[2, 16], vec![0u8; 34]),
        "not a multiple",
    );
    bad(
        w.add_tensor("d", DType::Other(77), &[1], vec![0u8; 1]),
        "GGML type id",
    );
    let mut w2 = GgufWriter::new();
    w2.set_metadata("general.alignment", GgufValue::U32(48));
    bad(w2.write(&dir.join("x.gguf")).map(|_| ()), "power of two");
    let mut w3 = GgufWriter::new();
    w3.set_metadata(
        "k",
        GgufValue::Array(vec![GgufValue::U8(1), GgufValue::I8(1)]),
    );
    bad(w3.write(&dir.join("x.gguf")).map(|_| ()), "homogeneous");
    // A directory that does not exist: an Io error and no file left anywhere.
    let missing = dir.join("no/such/dir/x.gguf");
    assert!(matches!(w.write(&missing), Err(Error::Io { .. })));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn smollm2() -> PathBuf {
    Cache::new(None)
        .expect("cache directory")
        .model(Pinned::SmolLm2)
        .expect("fetch SmolLM2")
}

#[test]
fn smollm2_copy_is_byte_identical() {
    let src = smollm2();
    let model = Model::open(&src).unwrap();
    let dir = scratch("copy");
    let out = dir.join("copy.gguf");
    copy_with_replacements(&model, &HashMap::new(), &out).unwrap();
    let a = std::fs::read(&src).unwrap();
    let b = std::fs::read(&out).unwrap();
    assert_eq!(a.len(), b.len());
    let first_diff = a.iter().zip(&b).position(|(x, y)| x != y);
    assert_eq!(first_diff, None, "first differing byte");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn smollm2_requantise_one_tensor() {
    let model = Model::open(&smollm2()).unwrap();
    let name = "blk.0.ffn_down.weight";
    let info = model.tensor_info(name).unwrap().clone();
    assert_eq!(info.dtype, DType::Q4_1);
    let w = model.tensor_f32(name).unwrap();
    let q = quantize(DType::Q8_0, &w).unwrap();
    let expected = dequantize(DType::Q8_0, &q, w.len()).unwrap();
    let dir = scratch("requant");
    let out = dir.join("requant.gguf");
    let repl = HashMap::from([(name.to_owned(), (DType::Q8_0, q))]);
    copy_with_replacements(&model, &repl, &out).unwrap();
    let back = Model::open(&out).unwrap();
    assert_eq!(back.config(), model.config());
    let t = back.tensor_info(name).unwrap();
    assert_eq!((t.dtype, &t.shape), (DType::Q8_0, &info.shape));
    let got = back.tensor_f32(name).unwrap();
    assert_eq!(got, expected);
    // Q4_1 values re-quantised at 8 bits: within half a Q8_0 step (plus its f16 scale rounding).
    for (k, (xs, ys)) in w.chunks(32).zip(got.chunks(32)).enumerate() {
        let amax = xs.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
        for (x, y) in xs.iter().zip(ys) {
            assert!((x - y).abs() <= amax / 127.0 * 0.57 + 1e-6, "block {k}");
        }
    }
    // Every other tensor keeps its bytes; the file type stays "mostly Q4_1" (3).
    for t in model.tensors().iter().filter(|t| t.name != name) {
        let u = back.tensor_info(&t.name).unwrap();
        assert_eq!(model.raw_bytes(t), back.raw_bytes(u), "{}", t.name);
    }
    let ft = back
        .gguf_metadata()
        .unwrap()
        .get("general.file_type")
        .cloned();
    assert_eq!(ft.and_then(|v| v.as_u64()), Some(3));
    // A replacement name the model lacks, and bytes that do not fit the shape.
    let missing = HashMap::from([("nope".to_owned(), (DType::F32, vec![]))]);
    assert!(matches!(
        copy_with_replacements(&model, &missing, &out),
        Err(Error::NotFound { .. })
    ));
    let short = HashMap::from([(name.to_owned(), (DType::Q8_0, vec![0u8; 34]))]);
    assert!(matches!(
        copy_with_replacements(&model, &short, &out),
        Err(Error::InvalidWrite { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
