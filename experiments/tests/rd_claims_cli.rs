//! `claimlab run` on the rate-distortion and pipeline-error claims (`ccd-1.2`, `ccd-4.1`,
//! `pipe-thm1`, `pipe-thm1.linear`), quick mode on the real pinned MiniLM: every verdict is computed
//! (not `failed`) and the figures are written.

mod common;

#[test]
fn rd_and_pipeline_claims_run_quick_on_real_weights() {
    let ids = ["ccd-1.2", "ccd-4.1", "pipe-thm1", "pipe-thm1.linear"];
    let (d, js) = common::run_claims_quick("rd-claims", &ids);
    for id in ids {
        common::assert_verdict(&js, id);
    }
    for fig in [
        "ccd-1.2_entropy_vs_width",
        "ccd-4.1_curves",
        "pipe-thm1_actual_vs_bound",
        "pipe-thm1.linear_actual_vs_sum",
    ] {
        common::assert_figure(&d, fig);
    }
    let _ = std::fs::remove_dir_all(&d);
}
