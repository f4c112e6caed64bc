//! `claimlab orbits order | count | model` end to end: known group orders, necklace counts
//! against the closed formula, the weight-space table of both pinned models, and clean errors.

mod common;

use claimlab_weights::{Cache, Pinned};
use common::{claimlab, failed, ok_json, tmpdir};

/// The six face turns of Rubik's cube, GAP's numbering of the 48 moving facets.
const RUBIK: &str = "# Rubik's cube
(1,3,8,6)(2,5,7,4)(9,33,25,17)(10,34,26,18)(11,35,27,19)
(9,11,16,14)(10,13,15,12)(1,17,41,40)(4,20,44,37)(6,22,46,35)
(17,19,24,22)(18,21,23,20)(6,25,43,16)(7,28,42,13)(8,30,41,11)
(25,27,32,30)(26,29,31,28)(3,38,43,19)(5,36,45,21)(8,33,48,24)
(33,35,40,38)(34,37,39,36)(3,9,46,32)(2,12,47,29)(1,14,48,27)
(41,43,48,46)(42,45,47,44)(14,22,30,38)(15,23,31,39)(16,24,32,40)
";

#[test]
fn order_of_rubiks_cube_group_text_and_json() {
    let d = tmpdir("rubik");
    let f = d.join("rubik.txt");
    std::fs::write(&f, RUBIK).unwrap();
    let out = claimlab()
        .args(["orbits", "order", "--generators"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("43252003274489856000"), "{s}");
    let v = ok_json(
        &claimlab()
            .args(["orbits", "order", "--json", "--generators"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    assert_eq!(v["order"], "43252003274489856000");
    assert_eq!(v["degree"], 48);
    assert_eq!(v["generators"], 6);
    // The factor orders multiply to the order.
    let prod: u128 = v["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["order"].as_str().unwrap().parse::<u128>().unwrap())
        .product();
    assert_eq!(prod, 43_252_003_274_489_856_000);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn order_of_a_product_of_large_symmetric_groups_is_recognised() {
    // S_1536 x S_1536 on disjoint points from a transposition and a long cycle each.
    let d = tmpdir("big");
    let f = d.join("gens.txt");
    let n = 1536usize;
    let cycle = |off: usize| {
        let pts: Vec<String> = (1..=n).map(|i| (i + off).to_string()).collect();
        format!("({})", pts.join(","))
    };
    let text = format!("(1,2)\n{}\n({},{})\n{}\n", cycle(0), n + 1, n + 2, cycle(n));
    std::fs::write(&f, text).unwrap();
    let v = ok_json(
        &claimlab()
            .args(["orbits", "order", "--json", "--generators"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    let log2_fact: f64 = (1..=n).map(|i| (i as f64).log2()).sum();
    assert!((v["log2_order"].as_f64().unwrap() - 2.0 * log2_fact).abs() < 1e-6);
    assert_eq!(v["factors"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

fn euler_phi(mut n: u64) -> u64 {
    let mut r = n;
    let mut p = 2;
    while p * p <= n {
        if n.is_multiple_of(p) {
            while n.is_multiple_of(p) {
                n /= p;
            }
            r -= r / p;
        }
        p += 1;
    }
    if n > 1 {
        r -= r / n;
    }
    r
}

/// Necklaces of length n in k colours: (1/n) Σ_{d | n} φ(d) k^(n/d).
fn necklaces(n: u64, k: u64) -> u64 {
    (1..=n)
        .filter(|d| n.is_multiple_of(*d))
        .map(|d| euler_phi(d) * k.pow((n / d) as u32))
        .sum::<u64>()
        / n
}

/// Bracelets (necklaces up to reflection too).
fn bracelets(n: u64, k: u64) -> u64 {
    let refl = if n % 2 == 1 {
        k.pow(n.div_ceil(2) as u32)
    } else {
        (k.pow((n / 2) as u32) + k.pow((n / 2 + 1) as u32)) / 2
    };
    (necklaces(n, k) + refl) / 2
}

fn count(group: &str, k: u64) -> String {
    let v = ok_json(
        &claimlab()
            .args(["orbits", "count", "--json", "--group", group, "--colors"])
            .arg(k.to_string())
            .output()
            .unwrap(),
    );
    v["orbits"].as_str().unwrap().to_string()
}

#[test]
fn necklace_and_bracelet_counts_match_the_closed_formulas() {
    for (n, k) in [(4u64, 2u64), (6, 2), (6, 3), (7, 4), (12, 2)] {
        assert_eq!(count(&format!("C{n}"), k), necklaces(n, k).to_string());
        assert_eq!(count(&format!("D{n}"), k), bracelets(n, k).to_string());
    }
    // Orbits of a direct product on the disjoint union multiply.
    let s4 = count("S4", 3).parse::<u64>().unwrap();
    assert_eq!(s4, 15); // multisets of size 4 from 3 colours: C(6, 2)
    assert_eq!(count("S4 x C3", 3), (s4 * necklaces(3, 3)).to_string());
    // Text output carries the same number.
    let out = claimlab()
        .args(["orbits", "count", "--group", "C6", "--colors", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("orbits      {}", necklaces(6, 2)))
    );
}

fn log2_factorial(n: u64) -> f64 {
    (1..=n).map(|i| (i as f64).log2()).sum()
}

fn config_of(path: Option<&std::path::Path>) -> serde_json::Value {
    let mut c = claimlab();
    c.args(["inspect", "--json"]);
    match path {
        Some(p) => c.arg(p),
        None => c.arg("minilm"),
    };
    ok_json(&c.output().unwrap())["config"].clone()
}

fn mlp_components(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().contains("MLP"))
        .cloned()
        .collect()
}

#[test]
fn model_table_for_pinned_minilm() {
    let cfg = config_of(None);
    let v = ok_json(
        &claimlab()
            .args(["orbits", "model", "--json"])
            .output()
            .unwrap(),
    );
    let n_layers = cfg["n_layers"].as_u64().unwrap();
    let d_ff = cfg["d_ff"].as_u64().unwrap();
    let mlp = mlp_components(&v);
    assert_eq!(mlp.len() as u64, n_layers);
    for c in &mlp {
        // GELU: plain permutations of the hidden units, no signs, no scalings.
        assert_eq!(c["group"], format!("S_{d_ff}"));
        assert!((c["log2_order"].as_f64().unwrap() - log2_factorial(d_ff)).abs() < 1e-6);
        assert_eq!(c["lie_dim"], 0);
    }
    // The residual stream is the output of an embedding model: no symmetry there.
    let total: f64 = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["log2_order"].as_f64().unwrap())
        .sum();
    assert!((total - v["log2_order"].as_f64().unwrap()).abs() < 1e-6 * total);
    let out = claimlab().args(["orbits", "model"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("MLP"));
}

#[test]
fn model_table_for_smollm2_has_gated_signs_and_grouped_heads() {
    let path = Cache::new(None).unwrap().model(Pinned::SmolLm2).unwrap();
    let cfg = config_of(Some(&path));
    let v = ok_json(
        &claimlab()
            .args(["orbits", "model", "--json", "--model"])
            .arg(&path)
            .output()
            .unwrap(),
    );
    assert_eq!(v["arch"], "LlamaDecoder");
    let n_layers = cfg["n_layers"].as_u64().unwrap();
    let d_ff = cfg["d_ff"].as_u64().unwrap();
    let mlp = mlp_components(&v);
    assert_eq!(mlp.len() as u64, n_layers);
    for c in &mlp {
        // SwiGLU: the up row is linear, so each unit can also flip sign: 2^d_ff d_ff!.
        let want = log2_factorial(d_ff) + d_ff as f64;
        assert!(
            (c["log2_order"].as_f64().unwrap() - want).abs() < 1e-6,
            "{c}"
        );
    }
    // Grouped-query heads: q query heads per key/value group, g groups, S_q wr S_g.
    let (h, g) = (
        cfg["n_heads"].as_u64().unwrap(),
        cfg["n_kv_heads"].as_u64().unwrap(),
    );
    let q = h / g;
    let heads: Vec<_> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().ends_with("attention heads"))
        .collect();
    assert_eq!(heads.len() as u64, n_layers);
    let want = g as f64 * log2_factorial(q) + log2_factorial(g);
    assert!((heads[0]["log2_order"].as_f64().unwrap() - want).abs() < 1e-6);
    // RMSNorm residual with logits as output: the residual stream has a nontrivial group.
    let resid = v["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "residual stream")
        .unwrap();
    assert!(resid["log2_order"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_inputs_are_clean_errors() {
    let d = tmpdir("bad");
    // Missing file: named in the error.
    let err = failed(
        &claimlab()
            .args(["orbits", "order", "--generators", "/nonexistent/gens.txt"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("/nonexistent/gens.txt"), "{err}");
    // Unclosed cycle: a parse error with a byte offset, file named.
    let f = d.join("bad.txt");
    std::fs::write(&f, "(1,2,3)\n(4,5\n").unwrap();
    let err = failed(
        &claimlab()
            .args(["orbits", "order", "--generators"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    assert!(err.contains("bad.txt") && err.contains("byte"), "{err}");
    // Only comments: no generators.
    std::fs::write(&f, "# nothing\n\n").unwrap();
    let err = failed(
        &claimlab()
            .args(["orbits", "order", "--generators"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    assert!(err.contains("no generators"), "{err}");
    // Unknown group letter, as text and as JSON.
    let err = failed(
        &claimlab()
            .args(["orbits", "count", "--group", "S4 x Q3", "--colors", "2"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("S4 x Q3"), "{err}");
    let out = claimlab()
        .args([
            "orbits", "count", "--json", "--group", "S0", "--colors", "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("S0"));
    // A model file that does not exist.
    let err = failed(
        &claimlab()
            .args(["orbits", "model", "--model", "/nonexistent/m.gguf"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("/nonexistent/m.gguf"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn symmetry_claims_run_quick_with_verdicts_and_figures() {
    let (d, js) = common::run_claims_quick("orbits-claims", &["ccd-3.1", "sys-1.algebra"]);
    for id in ["ccd-3.1", "sys-1.algebra"] {
        common::assert_verdict(&js, id);
        let o = common::outcome(&js, id);
        // The Burnside step is a theorem: any counterexample is a bug.
        assert_eq!(o["numbers"]["burnside_step"]["counterexamples"], 0);
        assert_eq!(o["numbers"]["burnside_step"]["burnside_mismatches"], 0);
        common::assert_figure(&d, &format!("{id}_bits_saved"));
    }
    let _ = std::fs::remove_dir_all(&d);
}
