//! `claimlab run` on the rate-distortion and pipeline-error claims (`ccd-1.2`, `ccd-4.1`,
//! `pipe-thm1`, `pipe-thm1.linear`), quick mode on the real pinned MiniLM: every verdict is computed
//! (not `failed`) and the figures are written.

use std::path::PathBuf;
use std::process::Command;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("claimlab-rd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn rd_and_pipeline_claims_run_quick_on_real_weights() {
    let d = tmpdir("quick");
    let ids = ["ccd-1.2", "ccd-4.1", "pipe-thm1", "pipe-thm1.linear"];
    let out = Command::new(env!("CARGO_BIN_EXE_claimlab"))
        .arg("run")
        .args(ids)
        .args(["--quick", "--quiet", "--out"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let js: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    for id in ids {
        let o = js["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"));
        let v = o["verdict"].as_str().unwrap();
        assert!(
            ["supported", "refuted", "inconclusive"].contains(&v),
            "{id}: {v}: {}",
            o["why"]
        );
        assert!(!o["why"].as_str().unwrap().is_empty());
    }
    for fig in [
        "ccd-1.2_entropy_vs_width",
        "ccd-4.1_curves",
        "pipe-thm1_actual_vs_bound",
        "pipe-thm1.linear_actual_vs_sum",
    ] {
        assert!(
            d.join("figures").join(format!("{fig}.png")).is_file(),
            "{fig}.png"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
