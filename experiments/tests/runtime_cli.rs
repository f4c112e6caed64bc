//! `claimlab embed`, `perplexity` and `generate` on the real pinned models.

mod common;

use common::claimlab;

#[test]
fn embed_reproduces_the_published_similarity() {
    let out = claimlab()
        .args([
            "embed",
            "--json",
            "A man is eating food.",
            "A man is eating a piece of bread.",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cos = v["cosine"][0][1].as_f64().unwrap();
    // sentence-transformers documents 0.755 for this pair.
    assert!((cos - 0.755).abs() < 0.002, "cos = {cos}");
    assert_eq!(v["embeddings"][0].as_array().unwrap().len(), 384);
}

#[test]
fn generate_names_paris() {
    let out = claimlab()
        .args(["generate", "--max-tokens", "3", "The capital of France is"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("The capital of France is Paris"), "{s}");
}

#[test]
fn perplexity_of_a_short_text_is_finite_and_json() {
    let f = common::tmpfile(
        "text.txt",
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary \
         election produced no evidence that any irregularities took place. The jury further said \
         in term-end presentments that the City Executive Committee, which had over-all charge of \
         the election, deserves the praise and thanks of the City of Atlanta.",
    );
    let out = claimlab()
        .args(["perplexity", "--json", "--context", "32", "--stride", "16"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ppl = v["perplexity"].as_f64().unwrap();
    assert!(ppl.is_finite() && ppl > 1.0 && ppl < 1000.0, "ppl = {ppl}");
    // A missing file is a clear error with status 2.
    let out = claimlab()
        .args(["perplexity", "/nonexistent.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.txt"));
    let _ = std::fs::remove_dir_all(f.parent().unwrap());
}

#[test]
fn embed_rejects_a_decoder() {
    let gguf = claimlab_weights::Cache::new(None)
        .unwrap()
        .model(claimlab_weights::Pinned::SmolLm2)
        .unwrap();
    let out = claimlab()
        .args(["embed", "--model"])
        .arg(&gguf)
        .arg("hello")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BERT encoder"));
}

/// Perplexity of `model` (or the pinned SmolLM2) on a short Brown-like text, via `--json`.
fn short_perplexity(model: Option<&std::path::Path>, text: &std::path::Path) -> f64 {
    let mut cmd = claimlab();
    cmd.args(["--json", "perplexity", "--context", "32", "--stride", "16"]);
    if let Some(m) = model {
        cmd.arg("--model").arg(m);
    }
    let v = common::ok_json(&cmd.arg(text).output().unwrap());
    v["perplexity"].as_f64().unwrap()
}

#[test]
fn convert_to_f32_keeps_the_model_exactly_and_q8_0_nearly() {
    let text = common::tmpfile(
        "text.txt",
        "The jury said it did find that many of Georgia's registration and election laws are \
         outmoded or inadequate and often ambiguous. It recommended that Fulton legislators act \
         to have these laws studied and revised to the end of modernizing and improving them.",
    );
    let dir = common::tmpdir("convert");
    let fetched = common::ok_json(&claimlab().args(["--json", "fetch"]).output().unwrap());
    let q41 = fetched
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "smollm2")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let base = short_perplexity(None, &text);
    for (ty, tol) in [("f32", 1e-9), ("q8_0", 0.02)] {
        let out = dir.join(format!("smollm2-{ty}.gguf"));
        let v = common::ok_json(
            &claimlab()
                .args(["--json", "convert", &q41, "--type", ty, "--out"])
                .arg(&out)
                .output()
                .unwrap(),
        );
        assert_eq!(v["tensors"], 272, "{v}");
        let ppl = short_perplexity(Some(&out), &text);
        // F32 holds the dequantised Q4_1 values exactly: the same perplexity to rounding.
        assert!(
            ((ppl - base) / base).abs() <= tol,
            "{ty}: perplexity {ppl} against {base}"
        );
    }
    // Overwriting the input is refused with a clean error (exit status 2, no panic).
    let f32_path = dir.join("smollm2-f32.gguf");
    let err = common::failed(
        &claimlab()
            .args(["convert", "--type", "f16", "--out"])
            .arg(&f32_path)
            .arg(&f32_path)
            .output()
            .unwrap(),
    );
    assert!(err.contains("overwrite"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(text.parent().unwrap());
}
