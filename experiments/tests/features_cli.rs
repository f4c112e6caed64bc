//! `claimlab features` end to end on MiniLM (quick sizes), `claimlab run` on the `sys-2.*` claims
//! (quick), and a clear error for an unknown concept.

mod common;

#[test]
fn find_reports_every_layer_and_a_best_layer() {
    let js = common::ok_json(&common::run(&[
        "features",
        "find",
        "--concept",
        "capital",
        "--model",
        "minilm",
        "--quick",
        "--json",
    ]));
    assert_eq!(js["command"], "find");
    let id = &js["results"][0]["identified"];
    let acc = id["accuracy"].as_array().expect("accuracy per layer");
    assert_eq!(acc.len(), 6, "MiniLM has 6 blocks");
    let best = id["best_layer"].as_u64().expect("best layer") as usize;
    let a = acc[best].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&a));
    assert!(acc.iter().all(|x| x.as_f64().unwrap() <= a + 1e-12));
    assert_eq!(id["top_neurons"].as_array().unwrap().len(), 10);
}

#[test]
fn erase_drops_the_probe_and_saves_the_edit() {
    let d = common::tmpdir("features-erase");
    let file = d.join("edit.safetensors");
    let js = common::ok_json(&common::run(&[
        "features",
        "erase",
        "--concept",
        "news",
        "--model",
        "minilm",
        "--quick",
        "--json",
        "--save",
        file.to_str().unwrap(),
    ]));
    let r = &js["results"][0];
    let after = r["probe_after"]["test_accuracy"].as_f64().unwrap();
    let majority = r["probe_after"]["majority_rate"].as_f64().unwrap();
    assert!(after.is_finite() && majority > 0.0);
    // The edit names the MLP down projection (and its bias) of the chosen layer.
    assert!(!r["edited"].as_array().unwrap().is_empty());
    let bytes = std::fs::read(&file).expect("edit written");
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert!(header
        .as_object()
        .unwrap()
        .values()
        .all(|t| t["dtype"] == "F32"));
}

#[test]
fn unknown_concept_is_a_clean_error() {
    let err = common::failed(&common::run(&[
        "features",
        "find",
        "--concept",
        "colour",
        "--model",
        "minilm",
        "--quick",
    ]));
    assert!(err.contains("unknown concept"), "{err}");
}

#[test]
fn sys_2_claims_run_quick() {
    let ids = [
        "sys-2.identify",
        "sys-2.remove",
        "sys-2.flow",
        "sys-2.topology",
        "sys-2.cost",
        "sys-2.exhaustive",
    ];
    let (d, js) = common::run_claims_quick("sys2-claims", &ids);
    for id in ids {
        common::assert_verdict(&js, id);
    }
    for stem in [
        "sys-2.identify_probe",
        "sys-2.remove_probe",
        "sys-2.flow_transfer",
        "sys-2.topology_bottleneck",
        "sys-2.cost_scaling",
        "sys-2.exhaustive_parallel",
    ] {
        common::assert_figure(&d, stem);
    }
}
