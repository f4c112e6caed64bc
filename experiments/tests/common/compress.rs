//! Helpers of the `claimlab compress` tests: a scratch directory and a successful run's JSON.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty scratch directory unique to this process, `kind` (the test file) and `tag`.
pub(crate) fn tmpdir(kind: &str, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("claimlab-{kind}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir is writable");
    d
}

/// Runs `claimlab --json compress ARGS --out OUT_PATH`, asserts it succeeded, and parses its
/// stdout.
pub(crate) fn compress(args: &[&str], out_path: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_claimlab"))
        .args(["--json", "compress"])
        .args(args)
        .arg("--out")
        .arg(out_path)
        .output()
        .expect("the claimlab binary runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}
