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
    // The information-flow chain: one edge per pair of consecutive blocks.
    let flow = &js["results"][0]["flow"];
    let edges = flow["edges"].as_array().expect("flow edges");
    assert_eq!(edges.len(), 5);
    for (l, e) in edges.iter().enumerate() {
        assert_eq!(e["from"].as_u64(), Some(l as u64));
        assert_eq!(e["to"].as_u64(), Some(l as u64 + 1));
        let c = e["cosine"].as_f64().unwrap();
        assert!((-1.0 - 1e-9..=1.0 + 1e-9).contains(&c), "cosine {c}");
    }
}

/// Neuron ablation as the erase method: the edit zeroes the top neurons' columns.
#[test]
fn erase_by_ablation_edits_the_down_projection() {
    let js = common::ok_json(&common::run(&[
        "features",
        "erase",
        "--concept",
        "digit",
        "--model",
        "minilm",
        "--method",
        "ablation",
        "--quick",
        "--json",
    ]));
    let r = &js["results"][0];
    assert_eq!(r["method"], "Ablation");
    assert!(!r["edited"].as_array().unwrap().is_empty());
    let err = common::failed(&common::run(&[
        "features",
        "erase",
        "--concept",
        "digit",
        "--model",
        "minilm",
        "--method",
        "prune",
        "--quick",
    ]));
    assert!(err.contains("unknown method"), "{err}");
}

/// `validate` gives both edits with intervals and a verdict by the sys-2.remove rule.
#[test]
fn validate_reports_intervals_and_verdicts() {
    let js = common::ok_json(&common::run(&[
        "features",
        "validate",
        "--concept",
        "news",
        "--model",
        "minilm",
        "--quick",
        "--json",
    ]));
    let r = &js["results"][0];
    let vals = r["validations"].as_array().expect("validations");
    assert_eq!(vals.len(), 2, "LEACE and neuron ablation");
    for v in vals {
        let (lo, hi) = (
            v["unrelated"]["lo"].as_f64().unwrap(),
            v["unrelated"]["hi"].as_f64().unwrap(),
        );
        assert!(lo <= hi);
    }
    let verdicts = r["verdicts"].as_array().expect("verdicts");
    assert_eq!(verdicts.len(), 2);
    for v in verdicts {
        let s = v["verdict"].as_str().unwrap();
        assert!(["supported", "refuted", "inconclusive"].contains(&s), "{s}");
    }
}

/// Reads an f32 safetensors file into runtime overrides (name → values).
fn read_edit(path: &std::path::Path) -> claimlab_runtime::Overrides {
    let bytes = std::fs::read(path).expect("edit written");
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut ov = claimlab_runtime::Overrides::new();
    for (name, t) in header.as_object().unwrap() {
        assert_eq!(t["dtype"], "F32");
        let off: Vec<usize> = t["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let v = data[off[0]..off[1]]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        ov.insert(name.clone(), v);
    }
    ov
}

fn erase_and_save(
    model: &str,
    concept: &str,
    tag: &str,
) -> (std::path::PathBuf, serde_json::Value) {
    let d = common::tmpdir(tag);
    let js = common::ok_json(&common::run(&[
        "features",
        "erase",
        "--concept",
        concept,
        "--model",
        model,
        "--quick",
        "--json",
        "--save",
        d.to_str().unwrap(),
    ]));
    let r = js["results"][0].clone();
    let after = r["probe_after"]["test_accuracy"].as_f64().unwrap();
    let majority = r["probe_after"]["majority_rate"].as_f64().unwrap();
    assert!(after.is_finite() && majority > 0.0);
    // The edit names the MLP down projection (and its bias) of the chosen layer.
    assert!(!r["edited"].as_array().unwrap().is_empty());
    (d, r)
}

/// The saved MiniLM (whole model, safetensors) re-loaded from disk gives exactly the outputs of
/// the original model with the edit applied in memory, and differs from the unedited model.
#[test]
fn erase_saves_a_minilm_that_reloads_to_the_edit() {
    use claimlab_runtime::{BertModel, Hooks};
    let (_d, r) = erase_and_save("minilm", "news", "features-erase-minilm");
    let edit = read_edit(std::path::Path::new(r["saved"]["edit"].as_str().unwrap()));
    let saved =
        claimlab_weights::Model::open(std::path::Path::new(r["saved"]["model"].as_str().unwrap()))
            .expect("saved model opens");
    let reloaded = BertModel::load(&saved).expect("saved model loads");
    let cache = claimlab_weights::Cache::new(None).unwrap();
    let orig =
        claimlab_weights::Model::open(&cache.model(claimlab_weights::Pinned::MiniLm).unwrap())
            .unwrap();
    let orig = BertModel::load(&orig).unwrap();
    // [CLS] the city council said it would vote on the budget . [SEP]
    let tokens = [
        101u32, 1996, 2103, 2473, 2056, 2009, 2052, 3789, 2006, 1996, 5166, 1012, 102,
    ];
    let edited = orig
        .forward(&tokens, &Hooks::with_overrides(edit))
        .unwrap()
        .hidden;
    let again = reloaded.forward(&tokens, &Hooks::none()).unwrap().hidden;
    assert_eq!(edited, again);
    assert_ne!(orig.forward(&tokens, &Hooks::none()).unwrap().hidden, again);
}

/// The saved SmolLM2 (GGUF, edited tensors as F32) re-loaded from disk gives exactly the logits of
/// the original model with the edit applied in memory.
#[test]
fn erase_saves_a_smollm2_that_reloads_to_the_edit() {
    use claimlab_runtime::{Hooks, LlamaModel};
    let (_d, r) = erase_and_save("smollm2", "digit", "features-erase-smollm2");
    let edit = read_edit(std::path::Path::new(r["saved"]["edit"].as_str().unwrap()));
    let path = std::path::Path::new(r["saved"]["model"].as_str().unwrap());
    assert!(path.extension().is_some_and(|e| e == "gguf"));
    let reloaded = LlamaModel::load(&claimlab_weights::Model::open(path).unwrap()).unwrap();
    let cache = claimlab_weights::Cache::new(None).unwrap();
    let orig =
        claimlab_weights::Model::open(&cache.model(claimlab_weights::Pinned::SmolLm2).unwrap())
            .unwrap();
    let orig = LlamaModel::load(&orig).unwrap();
    let tokens = [504u32, 3575, 282, 4649, 314, 216, 33, 34, 35, 28];
    let edited = orig
        .forward(&tokens, &Hooks::with_overrides(edit))
        .unwrap()
        .logits;
    let again = reloaded.forward(&tokens, &Hooks::none()).unwrap().logits;
    assert_eq!(edited, again);
    assert_ne!(orig.forward(&tokens, &Hooks::none()).unwrap().logits, again);
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
        "sys-2.identify_patching",
        "sys-2.remove_probe",
        "sys-2.flow_transfer",
        "sys-2.topology_bottleneck",
        "sys-2.cost_scaling",
        "sys-2.exhaustive_parallel",
    ] {
        common::assert_figure(&d, stem);
    }
}
