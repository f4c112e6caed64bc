//! `claimlab compress --model minilm`: an 8.5-bit (all Q8_0) round trip whose GGUF re-opens in our
//! reader with the safetensors' configuration and roles, weights within Q8_0's error bound,
//! embeddings within cosine 0.99 of the original and the same tokens from the GGUF's vocabulary;
//! the GGUF is compressed again (GGUF BERT input); bad requests fail before any output.

use std::process::Command;

mod common;

use common::compress::{compress, tmpdir};

use claimlab_weights::{Architecture, Cache, DType, Model, Pinned};
use experiments::tools::compress::bert::q8_0_bound;

#[test]
fn minilm_q8_round_trip_and_recompression() {
    let d = tmpdir("bert", "rt");
    let out_path = d.join("minilm.gguf");
    let js = compress(
        &["--model", "minilm", "--quick", "--target-bpw", "9"],
        &out_path,
    );
    let input = Model::open(&Cache::new(None).unwrap().model(Pinned::MiniLm).unwrap()).unwrap();
    let out = Model::open(&out_path).unwrap();
    // Same model description: configuration (epsilon stored as f32) and one output tensor per
    // input tensor with the same role, layer, kind and shape (pooler and position ids dropped).
    let (ci, co) = (input.config(), out.config());
    assert_eq!(co.arch, Architecture::BertEncoder);
    assert_eq!(
        (
            co.n_layers,
            co.d_model,
            co.n_heads,
            co.d_ff,
            co.vocab_size,
            co.max_positions
        ),
        (
            ci.n_layers,
            ci.d_model,
            ci.n_heads,
            ci.d_ff,
            ci.vocab_size,
            ci.max_positions
        )
    );
    assert!((co.norm_eps / ci.norm_eps - 1.0).abs() < 1e-6);
    let md = out.gguf_metadata().unwrap();
    assert_eq!(
        md.get("general.architecture").unwrap().as_str(),
        Some("bert")
    );
    assert_eq!(md.get("bert.pooling_type").unwrap().as_u64(), Some(1));
    assert_eq!(
        md.get("tokenizer.ggml.model").unwrap().as_str(),
        Some("bert")
    );
    assert_eq!(out.tensors().len(), input.tensors().len() - 3);
    let mut n_q8 = 0;
    for t in out.tensors() {
        let src = input.find(t.role, t.layer, t.param).unwrap();
        assert_eq!(t.shape, src.shape, "{}", t.name);
        let (a, b) = (
            input.tensor_f32(&src.name).unwrap(),
            out.tensor_f32(&t.name).unwrap(),
        );
        if t.dtype == DType::Q8_0 {
            n_q8 += 1;
            for (x, y) in a.chunks_exact(32).zip(b.chunks_exact(32)) {
                let bound = q8_0_bound(x);
                for (p, q) in x.iter().zip(y) {
                    assert!(f64::from((p - q).abs()) <= bound, "{}: {p} vs {q}", t.name);
                }
            }
        } else {
            assert_eq!(t.dtype, DType::F32, "{}", t.name);
            assert_eq!(a, b, "{}", t.name);
        }
    }
    // 6 blocks x 6 matrices + token and position embeddings.
    assert_eq!(n_q8, 38);
    assert!(js["tensor_bytes"].as_u64().unwrap() <= js["target_bytes"].as_u64().unwrap());
    assert_eq!(js["tensor_bytes"].as_u64().unwrap(), out.tensor_bytes());
    let cos = js["fidelity"]["mean_cosine"].as_f64().unwrap();
    assert!(cos > 0.99 && cos <= 1.0 + 1e-9, "{cos}");
    assert_eq!(js["tokenizer_mismatches"].as_u64(), Some(0));
    // The uniform baseline loses fidelity as bits fall.
    let u = js["uniform_per_row"].as_array().unwrap();
    let c = |i: usize| u[i]["fidelity"]["mean_cosine"].as_f64().unwrap();
    assert_eq!(u.len(), 7);
    assert!(c(0) < c(6), "{} {}", c(0), c(6));

    // The GGUF itself is a BERT input (GGUF names, vocabulary from its metadata).
    let again = d.join("again.gguf");
    let js2 = compress(
        &[
            "--model",
            out_path.to_str().unwrap(),
            "--quick",
            "--target-bpw",
            "6",
            "--validate",
            "0",
        ],
        &again,
    );
    assert!(js2["bpw"].as_f64().unwrap() <= 6.0);
    let cos2 = js2["fidelity"]["mean_cosine"].as_f64().unwrap();
    assert!(cos2 > 0.9 && cos2 <= 1.0 + 1e-9, "{cos2}");
    assert_eq!(js2["tokenizer_mismatches"].as_u64(), Some(0));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn minilm_bad_requests_fail_before_output() {
    let d = tmpdir("bert", "bad");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_claimlab"))
            .args(["compress", "--model", "minilm", "--quick"])
            .args(args)
            .arg("--out")
            .arg(d.join("x.gguf"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&["--target-bpw", "3"]);
    assert!(
        e.contains("smallest size") && e.contains("bits per weight"),
        "{e}"
    );
    let e = run(&["--target-bpw", "8", "--method", "gptq"]);
    assert!(e.contains("not supported for BERT"), "{e}");
    let e = run(&[
        "--target-bpw",
        "8",
        "--calib",
        d.join("missing.txt").to_str().unwrap(),
    ]);
    assert!(e.contains("does not exist"), "{e}");
    assert!(!d.join("x.gguf").exists());
    let _ = std::fs::remove_dir_all(&d);
}
