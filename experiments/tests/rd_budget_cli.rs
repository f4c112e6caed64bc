//! `claimlab rd` and `claimlab budget` end to end: the binary against the rate-distortion reference
//! values in `/work/shared/reference/rd/rd_reference.json`, a budget CSV checked by brute force, and
//! bad input.

mod common;

use std::path::PathBuf;

use claimlab_testkit::{read_json, reference_dir};
use serde_json::Value;

fn ok_json(args: &[&str]) -> Value {
    common::ok_json(&common::run(args))
}

fn err_text(args: &[&str]) -> String {
    let out = common::run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn tmp(name: &str, text: &str) -> PathBuf {
    common::tmpfile(name, text)
}

fn rd_ref() -> Value {
    read_json(reference_dir().join("rd").join("rd_reference.json"))
}

#[test]
fn blahut_four_symbol_matches_reference() {
    let r = rd_ref();
    let fs = &r["four_symbol"];
    let join = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| f(x).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (probs, values) = (join(&fs["p"]), join(&fs["alphabet"]));
    let points = fs["points"].as_array().unwrap();
    assert!(points.len() >= 3);
    for p in points {
        let s = f(&p["s"]).to_string();
        let out = ok_json(&[
            "--json", "rd", "blahut", "--probs", &probs, "--values", &values, "--slope", &s,
        ]);
        let pt = &out["point"];
        let (d, r_up, r_lo) = (
            f(&pt["distortion"]),
            f(&pt["rate_bits"]),
            f(&pt["rate_lower_bits"]),
        );
        assert!((d - f(&p["D"])).abs() < 1e-7, "s={s}: D {d} vs {}", p["D"]);
        assert!(
            (r_up - f(&p["R"])).abs() < 1e-7,
            "s={s}: R {r_up} vs {}",
            p["R"]
        );
        // Certified bracket: the reference rate lies between our bounds (up to its own gap).
        assert!(r_lo <= r_up && r_lo <= f(&p["R"]) + 1e-9, "s={s}");
        assert!(f(&pt["gap_nats"]) < 1e-8, "s={s}");
    }
    // Text output carries the same numbers.
    let out = common::run(&[
        "rd", "blahut", "--probs", &probs, "--values", &values, "--slope", "1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("R lower bound") && text.contains("gap"),
        "{text}"
    );
}

#[test]
fn blahut_binary_hamming_matches_closed_form() {
    let r = rd_ref();
    let bin = &r["binary"];
    for p in bin["points"].as_array().unwrap() {
        let s = f(&p["ba_s"]).to_string();
        let out = ok_json(&[
            "--json",
            "rd",
            "blahut",
            "--probs",
            "0.89,0.11",
            "--hamming",
            "--slope",
            &s,
        ]);
        let pt = &out["point"];
        assert!((f(&pt["distortion"]) - f(&p["D"])).abs() < 1e-7, "s={s}");
        assert!(
            (f(&pt["rate_bits"]) - f(&p["R_exact"])).abs() < 1e-7,
            "s={s}: {} vs {}",
            pt["rate_bits"],
            p["R_exact"]
        );
    }
}

#[test]
fn curve_lists_every_quantizer_with_bounds() {
    // A deterministic, tie-free sample: a stretched sine sweep.
    let text: String = (0..2000)
        .map(|i| {
            format!(
                "{}\n",
                (f64::from(i) * 0.7).sin() * (1.0 + f64::from(i) / 2000.0)
            )
        })
        .collect();
    let p = tmp("samples.txt", &format!("# samples\n{text}"));
    let out = ok_json(&[
        "--json",
        "rd",
        "curve",
        p.to_str().unwrap(),
        "--max-bits",
        "4",
    ]);
    assert_eq!(out["n"].as_u64(), Some(2000));
    let pts = out["points"].as_array().unwrap();
    for q in ["uniform", "uniform_g64", "lloyd", "ecsq"] {
        let bits: Vec<u64> = pts
            .iter()
            .filter(|x| x["quantizer"] == q)
            .map(|x| x["bits"].as_u64().unwrap())
            .collect();
        assert_eq!(bits, vec![1, 2, 3, 4], "{q}");
    }
    for x in pts {
        // Ideal entropy-coded rate never exceeds the fixed rate; both bounds are finite.
        assert!(f(&x["rate_entropy_bits"]) <= f(&x["rate_fixed_bits"]) + 1e-9);
        assert!(f(&x["gaussian_rate_bits"]).is_finite() && f(&x["slb_bits"]).is_finite());
    }
    let text = common::run(&["rd", "curve", p.to_str().unwrap(), "--max-bits", "2"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("lloyd"));
}

#[test]
fn budget_allocate_matches_brute_force() {
    let rows: &[(&str, &str, f64, f64)] = &[
        ("attn", "2b", 2.0, 4.0),
        ("attn", "4b", 4.0, 1.0),
        ("attn", "8b", 8.0, 0.2),
        ("mlp", "2b", 2.0, 3.0),
        ("mlp", "4b", 4.0, 2.5),
        ("mlp", "8b", 8.0, 0.1),
        ("head", "4b", 4.0, 0.7),
        ("head", "8b", 8.0, 0.05),
    ];
    let mut csv = String::from("layer,option,cost,distortion\n");
    for (l, o, c, d) in rows {
        csv += &format!("{l},{o},{c},{d}\n");
    }
    let p = tmp("menus.csv", &csv);
    for budget in [8.0, 10.0, 14.0, 18.0, 24.0] {
        // Brute force over all 3 * 3 * 2 choices.
        let mut best = f64::INFINITY;
        for a in &rows[0..3] {
            for b in &rows[3..6] {
                for h in &rows[6..8] {
                    if a.2 + b.2 + h.2 <= budget {
                        best = best.min(a.3 + b.3 + h.3);
                    }
                }
            }
        }
        let out = ok_json(&[
            "--json",
            "budget",
            "allocate",
            p.to_str().unwrap(),
            "--budget",
            &budget.to_string(),
        ]);
        let rep = &out["report"];
        let exact = f(&rep["exact"]["distortion"]);
        assert!(
            (exact - best).abs() < 1e-12,
            "B={budget}: {exact} vs {best}"
        );
        let lag = f(&rep["lagrangian"]["distortion"]);
        assert!(lag >= exact - 1e-12 && f(&rep["lagrangian"]["cost"]) <= budget + 1e-12);
        assert!((f(&rep["gap"]) - (lag - exact)).abs() < 1e-12);
        // The per-layer labels name rows whose sums are the reported totals.
        let mut cost = 0.0;
        let mut dist = 0.0;
        for l in out["layers"].as_array().unwrap() {
            let row = rows
                .iter()
                .find(|r| l["layer"] == r.0 && l["exact"] == r.1)
                .expect("label from the CSV");
            cost += row.2;
            dist += row.3;
        }
        assert!(cost <= budget && (dist - exact).abs() < 1e-12, "B={budget}");
    }
    // The text output names the layers, the multiplier and the gap.
    let text = common::run(&["budget", "allocate", p.to_str().unwrap(), "--budget", "14"]);
    assert!(text.status.success());
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("lambda") && t.contains("gap") && t.contains("attn"),
        "{t}"
    );
}

#[test]
fn bad_input_is_reported_clearly() {
    let e = err_text(&["rd", "blahut", "--probs", "0.5,0.5", "--slope", "1"]);
    assert!(e.contains("--values"), "{e}");
    let e = err_text(&[
        "rd", "blahut", "--probs", "0.5,0.5", "--values", "0,1,2", "--slope", "1",
    ]);
    assert!(e.contains("2 entries") && e.contains('3'), "{e}");
    let e = err_text(&[
        "rd", "blahut", "--probs", "0.5,0.6", "--values", "0,1", "--slope", "1",
    ]);
    assert!(e.to_lowercase().contains("blahut"), "{e}");
    let bad = tmp("bad_samples.txt", "1.0\n2.0\nabc\n");
    let e = err_text(&["rd", "curve", bad.to_str().unwrap()]);
    assert!(e.contains("bad_samples.txt:3") && e.contains("abc"), "{e}");
    let e = err_text(&["rd", "curve", "/nonexistent/samples.txt"]);
    assert!(e.contains("cannot read"), "{e}");
    let bad = tmp(
        "bad.csv",
        "layer,option,cost,distortion\na,2b,2,1\na,4b,four,0.5\n",
    );
    let e = err_text(&["budget", "allocate", bad.to_str().unwrap(), "--budget", "4"]);
    assert!(e.contains("bad.csv:3") && e.contains("four"), "{e}");
    let ok = tmp("small.csv", "a,2b,2,1\na,4b,4,0.5\n");
    let e = err_text(&["budget", "allocate", ok.to_str().unwrap(), "--budget", "1"]);
    assert!(e.contains("small.csv"), "{e}");
}
