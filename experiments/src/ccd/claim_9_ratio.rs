//! `ccd-9.ratio`: "for n ≈ 10^10, C ≈ 10^9 / log(10^9) ≈ 10^8". Arithmetic in every log base.

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// The claimed value of the ratio.
const CLAIMED: f64 = 1e8;
/// A logarithm in some base.
type LogFn = fn(f64) -> f64;

/// The rule's tolerance: a factor 2 either way.
const FACTOR: f64 = 2.0;

pub(crate) fn run(_ctx: &mut Ctx) -> Result<Outcome> {
    let bases: [(&str, LogFn); 3] = [("ln", f64::ln), ("log2", f64::log2), ("log10", f64::log10)];
    let mut rows = Vec::new();
    let mut body = String::from("| n | base | n / log n | ratio to 10^8 |\n|---|---|---|---|\n");
    for n in [1e9_f64, 1e10] {
        for (name, log) in bases {
            let c = n / log(n);
            let _ = writeln!(body, "| {n:.0e} | {name} | {c:.3e} | {:.2} |", c / CLAIMED);
            rows.push(json!({"n": n, "base": name, "value": c, "ratio_to_claim": c / CLAIMED}));
        }
    }
    let bytes_per_param = 30e9 / 1e10;
    let _ = writeln!(
        body,
        "\n30 GB over the stated n = 10^10 parameters is {bytes_per_param:.1} bytes per parameter (neither fp16 nor fp32); \
         the example evaluates the expression at 10^9, not at the n it states."
    );
    let within = |v: &serde_json::Value| {
        let r = v["ratio_to_claim"].as_f64().unwrap_or(f64::NAN);
        (1.0 / FACTOR..=FACTOR).contains(&r)
    };
    let at_stated: Vec<&serde_json::Value> = rows.iter().filter(|r| r["n"] == 1e10).collect();
    let closest = at_stated
        .iter()
        .min_by(|a, b| {
            let d = |v: &&&serde_json::Value| {
                v["ratio_to_claim"].as_f64().unwrap_or(f64::NAN).ln().abs()
            };
            d(a).total_cmp(&d(b))
        })
        .map(|v| (*v).clone())
        .unwrap_or_default();
    let verdict = if at_stated.iter().any(|r| within(r)) {
        Verdict::Supported
    } else {
        Verdict::Refuted
    };
    let mut o = Outcome::new(
        "ccd-9.ratio",
        verdict,
        format!(
            "10^10/log(10^10) ∈ [{:.2e}, {:.2e}] over ln, log2, log10",
            at_stated.iter().filter_map(|r| r["value"].as_f64()).fold(f64::INFINITY, f64::min),
            at_stated.iter().filter_map(|r| r["value"].as_f64()).fold(0.0, f64::max)
        ),
        "≈ 10^8",
        format!(
            "at the stated n = 10^10 no base lands within a factor {FACTOR} of 10^8 (closest: {} gives {:.2e}, {:.1}x); \
             only n = 10^9 with log10 gives 1.1e8; arithmetic, no data",
            closest["base"].as_str().unwrap_or("?"),
            closest["value"].as_f64().unwrap_or(f64::NAN),
            closest["ratio_to_claim"].as_f64().unwrap_or(f64::NAN)
        ),
    );
    o.body = body;
    o.numbers = json!({"rows": rows, "bytes_per_param_30gb": bytes_per_param, "factor": FACTOR});
    Ok(o)
}
