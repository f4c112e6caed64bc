//! `claimlab compress --entropy`, `compress encode` and `compress decode`: the entropy-coded
//! container decodes back to the GGUF byte for byte (a tiny synthetic GGUF of every block type,
//! MiniLM's compressed output, the pinned SmolLM2 GGUF), its sizes obey the coding bounds, and a
//! damaged container fails cleanly with the offset.

mod common;

use std::path::Path;

use claimlab_weights::{quantize, Cache, DType, GgufValue, GgufWriter, Pinned};

fn tiny_gguf(path: &Path) {
    let mut w = GgufWriter::new();
    w.set_metadata("general.architecture", GgufValue::String("llama".into()));
    let types = [
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q8_0,
        DType::Q2_K,
        DType::Q3_K,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
    ];
    let x: Vec<f32> = (0..4 * 256)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.05)
        .collect();
    let datas: Vec<(DType, Vec<u8>)> = types
        .iter()
        .map(|&dt| (dt, quantize(dt, &x).unwrap()))
        .collect();
    for (i, (dt, b)) in datas.iter().enumerate() {
        w.add_tensor(&format!("t{i}"), *dt, &[4, 256], b.as_slice())
            .unwrap();
    }
    let f: Vec<u8> = (0..8u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
    w.add_tensor("norm", DType::F32, &[8], f.as_slice())
        .unwrap();
    w.write(path).unwrap();
}

fn check_bounds(e: &serde_json::Value) {
    let f = |k: &str| e[k].as_f64().unwrap_or_else(|| panic!("{k} in {e}"));
    assert!(f("coded_bpw") <= f("gguf_bpw"), "{e}");
    assert!(f("index_coded_bpw") + 1e-3 >= f("index_entropy_bpw"), "{e}");
    assert!(f("index_entropy_mm_bpw") >= f("index_entropy_bpw"));
    assert!(e["container_bytes"].as_u64().unwrap() < e["gguf_file_bytes"].as_u64().unwrap());
}

#[test]
fn tiny_gguf_encodes_and_decodes_byte_identically_and_damage_is_reported() {
    let d = common::tmpdir("entropy-tiny");
    let g = d.join("tiny.gguf");
    tiny_gguf(&g);
    let c = d.join("tiny.rans");
    let js = common::ok_json(&common::run(&[
        "--json",
        "compress",
        "encode",
        g.to_str().unwrap(),
        "--out",
        c.to_str().unwrap(),
    ]));
    assert_eq!(js["coded_tensors"], 10);
    let back = d.join("back.gguf");
    let out = common::run(&[
        "compress",
        "decode",
        c.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&g).unwrap());
    // A flipped byte in the middle and a truncated file: exit 2, offset in the message, no output.
    let mut bytes = std::fs::read(&c).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = d.join("bad.rans");
    std::fs::write(&bad, &bytes).unwrap();
    let never = d.join("never.gguf");
    for input in [bad.clone(), {
        let t = d.join("short.rans");
        std::fs::write(&t, &std::fs::read(&c).unwrap()[..mid]).unwrap();
        t
    }] {
        let err = common::failed(&common::run(&[
            "compress",
            "decode",
            input.to_str().unwrap(),
            "--out",
            never.to_str().unwrap(),
        ]));
        assert!(err.contains("byte "), "{err}");
        assert!(!never.exists());
    }
    // Not a GGUF at all.
    let err = common::failed(&common::run(&[
        "compress",
        "encode",
        c.to_str().unwrap(),
        "--out",
        d.join("x.rans").to_str().unwrap(),
    ]));
    assert!(err.contains("GGUF"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn minilm_compress_with_entropy_decodes_to_the_same_gguf() {
    let d = common::tmpdir("entropy-minilm");
    let g = d.join("minilm.gguf");
    let js = common::ok_json(&common::run(&[
        "--json",
        "compress",
        "--model",
        "minilm",
        "--quick",
        "--target-bpw",
        "4.5",
        "--entropy",
        "--out",
        g.to_str().unwrap(),
    ]));
    let e = &js["entropy"];
    check_bounds(e);
    // Reference weights are the safetensors: every coded tensor has its R(D) bounds, the lower
    // below the Gaussian upper bound.
    assert_eq!(e["rd_tensors"], e["coded_tensors"]);
    let (lo, up) = (
        e["rd_lower_bpw"].as_f64().unwrap(),
        e["rd_gaussian_upper_bpw"].as_f64().unwrap(),
    );
    assert!(lo > 0.0 && lo <= up, "{lo} {up}");
    let c = d.join("minilm.gguf.rans");
    let back = d.join("back.gguf");
    let out = common::run(&[
        "compress",
        "decode",
        c.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&g).unwrap());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn pinned_smollm2_gguf_round_trips() {
    let src = Cache::new(None).unwrap().model(Pinned::SmolLm2).unwrap();
    let d = common::tmpdir("entropy-smollm2");
    let c = d.join("smollm2.rans");
    let js = common::ok_json(&common::run(&[
        "--json",
        "compress",
        "encode",
        src.to_str().unwrap(),
        "--out",
        c.to_str().unwrap(),
    ]));
    check_bounds(&js);
    let back = d.join("back.gguf");
    let out = common::run(&[
        "compress",
        "decode",
        c.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&src).unwrap());
    let _ = std::fs::remove_dir_all(&d);
}
