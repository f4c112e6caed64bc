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
