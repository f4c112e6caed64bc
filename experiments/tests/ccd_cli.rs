//! `claimlab run` on the remaining compression-distillation claims (`ccd-5.1`, `ccd-6.1`,
//! `ccd-7.1`, `ccd-7.2`, `ccd-8.1`, `ccd-9.size`, `ccd-9.memory`, `ccd-9.runtime`), quick mode on
//! the real pinned models: every verdict is computed (not `failed`) and the figures are written.
//! `ccd-6.1` (many perplexity evaluations) has a test of its own so it can be run alone.

mod common;

#[test]
fn ccd_claims_run_quick_on_real_weights() {
    let ids = [
        "ccd-5.1",
        "ccd-7.1",
        "ccd-7.2",
        "ccd-8.1",
        "ccd-9.size",
        "ccd-9.memory",
        "ccd-9.runtime",
    ];
    let (d, js) = common::run_claims_quick("ccd-claims", &ids);
    for id in ids {
        common::assert_verdict(&js, id);
    }
    // The arithmetic part of ccd-9.size cannot come out any other way: 300 B is not 3-5 KB.
    assert_eq!(common::assert_verdict(&js, "ccd-9.size"), "refuted");
    for fig in [
        "ccd-5.1_ratio_vs_rate",
        "ccd-7.1_memory",
        "ccd-7.2_runtime",
        "ccd-8.1_tiny_models",
        "ccd-9.size_tiny_models",
        "ccd-9.memory_extrapolation",
        "ccd-9.runtime_extrapolation",
    ] {
        common::assert_figure(&d, fig);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ccd_6_1_runs_quick_on_real_weights() {
    let (d, js) = common::run_claims_quick("ccd-6-1", &["ccd-6.1"]);
    common::assert_verdict(&js, "ccd-6.1");
    common::assert_figure(&d, "ccd-6.1_loss_vs_eps");
    let _ = std::fs::remove_dir_all(&d);
}
