//! Helpers shared by the command-line tests: run the `claimlab` binary, make scratch directories,
//! parse its JSON, and check a `claimlab run` report.
//!
//! Each test file that wants them says `mod common;`; not every file uses every helper.
#![allow(dead_code)]

pub(crate) mod compress;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `claimlab` binary built for this test run.
pub(crate) fn claimlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_claimlab"))
}

/// Runs `claimlab ARGS` and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    claimlab()
        .args(args)
        .output()
        .expect("the claimlab binary runs")
}

/// A fresh, empty scratch directory unique to this process and `tag`.
pub(crate) fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("claimlab-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir is writable");
    d
}

/// Writes `text` to a new file named `name` (in a scratch directory unique to this call) and
/// returns its path.
pub(crate) fn tmpfile(name: &str, text: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = tmpdir(&format!("file{n}"));
    let p = d.join(name);
    std::fs::write(&p, text).expect("temp file is writable");
    p
}

/// Asserts the run succeeded and parses its stdout as JSON.
pub(crate) fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Asserts the run failed cleanly (exit status 2, no panic) and returns its stderr.
pub(crate) fn failed(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs `claimlab run IDS --quick --quiet --out DIR`, asserts it succeeded, and returns the
/// output directory and its parsed `report.json`.
pub(crate) fn run_claims_quick(tag: &str, ids: &[&str]) -> (PathBuf, serde_json::Value) {
    let d = tmpdir(tag);
    let out = claimlab()
        .arg("run")
        .args(ids)
        .args(["--quick", "--quiet", "--out"])
        .arg(&d)
        .output()
        .expect("the claimlab binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(d.join("report.json")).expect("report.json is written");
    let js = serde_json::from_str(&text).expect("report.json is JSON");
    (d, js)
}

/// The outcome of claim `id` in a parsed report.
pub(crate) fn outcome<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["outcomes"]
        .as_array()
        .expect("report has outcomes")
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing from the report"))
}

/// Asserts that claim `id` reached a verdict (not `failed` or `not implemented`) with a reason.
pub(crate) fn assert_verdict(report: &serde_json::Value, id: &str) -> String {
    let o = outcome(report, id);
    let v = o["verdict"].as_str().expect("verdict is a string");
    assert!(
        ["supported", "refuted", "inconclusive"].contains(&v),
        "{id}: {v}: {}",
        o["why"]
    );
    assert!(
        !o["why"].as_str().unwrap_or_default().is_empty(),
        "{id} has no reason"
    );
    v.to_string()
}

/// Asserts that the figure `stem` was written as PNG and SVG under `dir/figures`.
pub(crate) fn assert_figure(dir: &Path, stem: &str) {
    for ext in ["png", "svg"] {
        let p = dir.join("figures").join(format!("{stem}.{ext}"));
        assert!(p.is_file(), "{} missing", p.display());
    }
}
