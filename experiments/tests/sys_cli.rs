//! `claimlab run` on the Project-1 summary claims of the two-system overview (`sys-1.*` but
//! `sys-1.algebra`, `sys-3.bounds`, `sys-conclusion`), quick mode on the real pinned models: every
//! verdict is computed (not `failed`), a claim is `not implemented` only while a claim it restates
//! or aggregates has no experiment, every figure it lists is written, and the claims that read the
//! same ccd experiment agree on its verdict.

mod common;

use std::collections::BTreeMap;

/// Which claims are implemented, from `claimlab list --json`.
fn implemented() -> BTreeMap<String, bool> {
    let js = common::ok_json(&common::run(&["list", "--json"]));
    js.as_array()
        .expect("list is an array")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["implemented"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn project_1_summary_claims_run_quick_on_real_weights() {
    // Each claim with the claims it restates or aggregates.
    let claims: [(&str, &[&str]); 10] = [
        ("sys-1.topology", &["ccd-2.1"]),
        ("sys-1.rd", &["ccd-4.1"]),
        ("sys-1.memory", &["ccd-7.1"]),
        ("sys-1.runtime", &["ccd-7.2"]),
        ("sys-1.ratio", &["ccd-8.1"]),
        ("sys-1.size", &["ccd-9.size"]),
        ("sys-1.hours", &["ccd-9.runtime"]),
        ("sys-1.performance", &["ccd-6.1", "ccd-9.size"]),
        (
            "sys-3.bounds",
            &[
                "ccd-2.1", "ccd-3.1", "ccd-4.1", "ccd-5.1", "ccd-6.1", "ccd-7.1", "ccd-7.2",
                "ccd-8.1",
            ],
        ),
        ("sys-conclusion", &["sys-1.performance", "sys-2.remove"]),
    ];
    let ids: Vec<&str> = claims.iter().map(|c| c.0).collect();
    let have = implemented();
    let (d, js) = common::run_claims_quick("sys-claims", &ids);
    for (id, parts) in claims {
        let o = common::outcome(&js, id);
        let v = o["verdict"].as_str().unwrap_or_default();
        assert_ne!(v, "failed", "{id}: {}", o["why"]);
        if v == "not_implemented" {
            assert!(
                parts
                    .iter()
                    .any(|p| !have.get(*p).copied().unwrap_or(false)),
                "{id} says not implemented although {parts:?} all have experiments"
            );
        } else {
            common::assert_verdict(&js, id);
        }
        for f in o["figures"].as_array().expect("figures array") {
            for key in ["png", "svg"] {
                let p = d.join(f[key].as_str().expect("figure path"));
                assert!(p.is_file(), "{id}: {} missing", p.display());
            }
        }
    }
    // The two claims with their own measurement always reach a verdict and draw their figure.
    common::assert_figure(&d, "sys-1.topology_loss_vs_db");
    common::assert_figure(&d, "sys-1.rd_gap");
    let topo = &common::outcome(&js, "sys-1.topology")["numbers"];
    assert_eq!(topo["levels"].as_array().map(Vec::len), Some(21));
    let rho = topo["rho_rel_db"].as_f64().expect("rho");
    assert!((-1.0..=1.0).contains(&rho), "rho {rho}");
    let rd = &common::outcome(&js, "sys-1.rd")["numbers"];
    assert!(rd["judged"].as_u64().unwrap_or(0) > 0, "no judged rd point");

    // sys-3.bounds saw the same ccd-2.1 and ccd-4.1 runs as the claims above, and follows its rule.
    let bounds = common::outcome(&js, "sys-3.bounds");
    let parts = bounds["numbers"]["parts"].as_array().expect("parts");
    let part = |id: &str| {
        parts
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["verdict"].clone())
            .unwrap_or_default()
    };
    assert_eq!(part("ccd-2.1"), topo["ccd_2_1_verdict"]);
    assert_eq!(part("ccd-4.1"), rd["ccd_4_1_verdict"]);
    let decisive_refuted = parts
        .iter()
        .any(|p| p["decisive"] == true && p["verdict"] == "refuted");
    if decisive_refuted {
        assert_eq!(bounds["verdict"], "refuted");
    } else {
        assert_ne!(bounds["verdict"], "refuted");
    }
    let _ = std::fs::remove_dir_all(&d);
}
