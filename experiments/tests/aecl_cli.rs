//! `claimlab run` on the attention energy concentration claims (`papers/aecl.md`), quick mode on
//! the real pinned models: every verdict is computed (not `failed`) and the figures are written.

mod common;

#[test]
fn aecl_claims_run_quick_on_real_weights() {
    let ids = ["aecl-2", "aecl-3.energy"];
    let (d, js) = common::run_claims_quick("aecl", &ids);
    for id in ids {
        common::assert_verdict(&js, id);
    }
    for fig in ["aecl-2_funnel", "aecl-3.energy_fraction"] {
        common::assert_figure(&d, fig);
    }
    let _ = std::fs::remove_dir_all(&d);
}
