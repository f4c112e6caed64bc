//! `claimlab run sys-2.llm --quick`: the verdict is computed and the figure is written.

mod common;

#[test]
fn sys_llm_quick_runs() {
    let (dir, report) = common::run_claims_quick("sys-llm", &["sys-2.llm"]);
    common::assert_verdict(&report, "sys-2.llm");
    common::assert_figure(&dir, "sys-2.llm_accuracy");
    let o = common::outcome(&report, "sys-2.llm");
    let n = o["numbers"]["n"].as_u64().expect("neuron count");
    let k = o["numbers"]["correct"].as_u64().expect("correct count");
    assert_eq!(n, 9, "3 concepts × 3 neurons in --quick");
    assert!(k <= n);
    let p = o["numbers"]["p_value"].as_f64().expect("p-value");
    assert!((0.0..=1.0).contains(&p));
}
