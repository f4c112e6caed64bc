//! `claimlab run` on the pipeline claims about ordering, fronts, budgets and calibration
//! (`pipe-thm2`, `pipe-pareto`, `pipe-thm3`, `pipe-lagrangian`, `pipe-thm4`, `pipe-scale`,
//! `pipe-thm5`), quick mode on the real pinned models: every verdict is computed (not `failed`) and
//! the figures are written.

mod common;

#[test]
fn pipeline_budget_claims_run_quick_on_real_weights() {
    let claims = [
        ("pipe-thm2", "pipe-thm2_rule_rank"),
        ("pipe-thm4", "pipe-thm4_deviation"),
        ("pipe-scale", "pipe-scale_rmse"),
        ("pipe-lagrangian", "pipe-lagrangian_allocations"),
        ("pipe-pareto", "pipe-pareto_front"),
        ("pipe-thm3", "pipe-thm3_chord"),
        ("pipe-thm5", "pipe-thm5_allocations"),
    ];
    let ids: Vec<&str> = claims.iter().map(|c| c.0).collect();
    let (d, js) = common::run_claims_quick("pipe-a", &ids);
    for (id, fig) in claims {
        common::assert_verdict(&js, id);
        common::assert_figure(&d, fig);
    }
    let _ = std::fs::remove_dir_all(&d);
}
