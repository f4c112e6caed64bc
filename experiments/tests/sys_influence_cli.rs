//! `claimlab run sys-2.data-influence --quick` on the real SmolLM2: the verdict is computed and is
//! inconclusive (the rule: training data absent), the proxy's numbers are finite with an interval
//! around the mean, and the figure files exist.

mod common;

#[test]
fn data_influence_runs_quick_on_real_weights() {
    let id = "sys-2.data-influence";
    let (d, js) = common::run_claims_quick("sys-influence", &[id]);
    assert_eq!(common::assert_verdict(&js, id), "inconclusive");
    let o = common::outcome(&js, id);
    let n = &o["numbers"];
    let s = &n["same_minus_other"];
    let mean = s["mean"].as_f64().expect("mean");
    let lo = s["ci95"][0].as_f64().expect("lower");
    let hi = s["ci95"][1].as_f64().expect("upper");
    assert!(mean.is_finite() && lo <= mean && mean <= hi, "{s}");
    assert_eq!(n["genres"].as_array().map(Vec::len), Some(15));
    assert_eq!(
        n["n_sentences"].as_u64(),
        n["per_genre"].as_u64().map(|p| 15 * p)
    );
    let share = n["knn_same_share"].as_f64().expect("share");
    assert!((0.0..=1.0).contains(&share));
    common::assert_figure(&d, "sys-2.data-influence_genre_cosine");
}
