//! The `claimlab` binary end to end: list, inspect on good and bad files, and the two plumbing
//! claims on the real pinned data (fetched through the product's own code path).

mod common;

use common::{claimlab, tmpdir};

#[test]
fn list_json_has_every_document_and_the_implemented_claims() {
    let out = claimlab().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    for prefix in ["ccd-", "pipe-", "sys-", "intro-", "aecl-"] {
        assert!(
            rows.iter()
                .any(|r| r["id"].as_str().unwrap().starts_with(prefix)),
            "{prefix}"
        );
    }
    let implemented: Vec<&str> = rows
        .iter()
        .filter(|r| r["implemented"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(implemented.contains(&"intro-1") && implemented.contains(&"intro-entropy"));
    assert!(rows
        .iter()
        .all(|r| !r["statement"].as_str().unwrap().is_empty()));
}

#[test]
fn inspect_missing_file_exits_2_without_panic() {
    let out = claimlab()
        .args(["inspect", "/nonexistent/model.gguf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn inspect_truncated_gguf_names_file_and_offset() {
    let d = tmpdir("trunc");
    let f = d.join("bad.gguf");
    // Magic, version 3, then the tensor count cut off after 3 bytes.
    std::fs::write(&f, b"GGUF\x03\x00\x00\x00\x01\x00\x00").unwrap();
    let out = claimlab()
        .args(["inspect", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.gguf") && err.contains("byte 8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The JSON form carries the same message.
    let out = claimlab()
        .args(["inspect", f.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("bad.gguf"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn unknown_claim_is_an_error() {
    let out = claimlab()
        .args(["run", "nope-1", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown claim"));
}

#[test]
fn inspect_pinned_minilm_describes_roles() {
    let out = claimlab()
        .args(["inspect", "minilm", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("encoder.layer.5.attention.self.query.weight"));
    assert!(s.contains("Query"));
}

#[test]
fn intro_claims_run_on_real_weights_and_write_the_report() {
    let d = tmpdir("report");
    let out = claimlab()
        .args(["run", "intro-1", "intro-entropy", "--quiet", "--out"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    let js: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    let verdict = |id: &str| common::assert_verdict(&js, id);
    // The source's numbers are wrong on real formats (Q4_1 is 5.0 bits/weight, ½log2(2πe) is
    // 2.05 bits): both rules in papers/intro.md say refuted.
    assert_eq!(verdict("intro-1"), "refuted");
    assert_eq!(verdict("intro-entropy"), "refuted");
    let sha = js["provenance"]["inputs"].as_array().unwrap();
    assert!(
        sha.iter()
            .any(|i| i["sha256"]
                == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
    );
    assert!(md.contains("| [intro-1](#intro-1) | **refuted** |"));
    for fig in ["intro-1_ratio", "intro-entropy_grid"] {
        common::assert_figure(&d, fig);
    }
    let _ = std::fs::remove_dir_all(&d);
}
