//! `claimlab compress` on the pinned SmolLM2: a smaller GGUF that re-opens, within the target,
//! with a finite perplexity; bad arguments fail with a clear error.

use std::path::PathBuf;
use std::process::Command;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("claimlab-compress-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn compress_smollm2_to_6_bpw() {
    let d = tmpdir("6bpw");
    let out_path = d.join("out.gguf");
    let out = Command::new(env!("CARGO_BIN_EXE_claimlab"))
        .args([
            "--json",
            "compress",
            "--target-bpw",
            "6",
            "--eval-tokens",
            "256",
            "--out",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let js: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = claimlab_weights::Model::open(&out_path).unwrap();
    assert_eq!(m.tensors().len(), 272);
    let bytes = js["tensor_bytes"].as_u64().unwrap();
    assert_eq!(bytes, m.tensor_bytes());
    assert!(bytes <= js["target_bytes"].as_u64().unwrap());
    assert!(js["bpw"].as_f64().unwrap() <= 6.0);
    let (b, a) = (
        js["perplexity_before"].as_f64().unwrap(),
        js["perplexity_after"].as_f64().unwrap(),
    );
    assert!(
        b.is_finite() && a.is_finite() && a > 1.0 && b > 1.0,
        "{b} {a}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compress_rejects_bad_arguments() {
    let d = tmpdir("bad");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_claimlab"))
            .arg("compress")
            .args(args)
            .arg("--out")
            .arg(d.join("x.gguf"))
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(!o.status.success());
    let o = run(&["--target-bpw", "0"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("positive"));
    let o = run(&["--target-bpw", "1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("smallest size"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!d.join("x.gguf").exists());
    let _ = std::fs::remove_dir_all(&d);
}
