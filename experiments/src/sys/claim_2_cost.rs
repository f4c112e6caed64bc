//! `sys-2.cost`: measured wall time of the identify + remove pipeline on MiniLM and SmolLM2,
//! a log-log slope against parameter count, and the extrapolation to 45 GB and 415 GB of f32
//! weights on 8 and 64 machines.

use anyhow::Result;
use serde_json::json;

use super::claim_2_identify::{identify_cached, identify_seed};
use super::claim_2_remove::remove_cached;
use super::features::{load_models, sizes};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "sys-2.cost";
const HOUR: f64 = 3600.0;
const DAY: f64 = 24.0 * HOUR;
const WEEK: f64 = 7.0 * DAY;
/// Model sizes of the claim in bytes of f32 weights, and the claimed ranges in seconds.
const TARGETS: [(&str, f64, f64, f64); 2] = [
    ("45 GB", 45e9, HOUR, 7.0 * DAY),
    ("415 GB", 415e9, DAY, 8.0 * WEEK),
];
/// Machine counts of the "distributed computing" reading.
const MACHINES: [f64; 2] = [8.0, 64.0];
/// Refuted when a range misses the claimed one by more than this factor.
const MISS_FACTOR: f64 = 10.0;

/// Extrapolated time `t0 · (p / p0)^slope`.
pub(crate) fn extrapolate(t0: f64, p0: f64, p: f64, slope: f64) -> f64 {
    t0 * (p / p0).powf(slope)
}

/// 0: overlaps, 1: misses by at most the factor, 2: misses by more.
fn miss(lo: f64, hi: f64, c_lo: f64, c_hi: f64) -> u8 {
    if hi >= c_lo && lo <= c_hi {
        0
    } else if hi * MISS_FACTOR < c_lo || lo > c_hi * MISS_FACTOR {
        2
    } else {
        1
    }
}

fn verdict_of(m: &[u8]) -> Verdict {
    if m.iter().all(|&x| x == 0) {
        Verdict::Supported
    } else if m.iter().all(|&x| x == 2) {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    }
}

fn human(s: f64) -> String {
    if s < HOUR {
        format!("{:.1} min", s / 60.0)
    } else if s < DAY {
        format!("{:.1} h", s / HOUR)
    } else if s < 2.0 * WEEK {
        format!("{:.1} days", s / DAY)
    } else {
        format!("{:.1} weeks", s / WEEK)
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = identify_seed(ctx);
    let sz = sizes(ctx.opts.quick);
    let models = load_models(ctx, None)?;
    let ided = identify_cached(ctx, &models)?;
    let removed = remove_cached(ctx, &models)?;
    let pts: Vec<(String, f64, f64, usize)> = ided
        .iter()
        .zip(&removed.1)
        .map(|(m, &r)| {
            (
                m.name.to_string(),
                m.n_params as f64,
                m.wall_s + r,
                m.n_layers,
            )
        })
        .collect();
    // Largest model is the anchor; slope from the two models.
    let (big, small) = if pts[0].1 >= pts[pts.len() - 1].1 {
        (&pts[0], &pts[pts.len() - 1])
    } else {
        (&pts[pts.len() - 1], &pts[0])
    };
    let slope = if pts.len() >= 2 && (big.1 / small.1).ln() > 0.0 {
        (big.2 / small.2).ln() / (big.1 / small.1).ln()
    } else {
        1.0
    };
    let mut body = format!(
        "Wall time of the sys-2.identify + sys-2.remove pipeline per model on this machine ({} rayon threads, \
         shared with other jobs; sizes as in those claims: {} sentences, ≤ {} examples per class). Extrapolated \
         from the larger model with the log-log slope between the two models, to 45 GB and 415 GB of f32 weights \
         (11.25 and 103.75 billion parameters), then divided by {} and {} machines (perfect scaling). The \
         truncated-SmolLM2 points of the contract are not measured (the runtime has no layer truncation). \
         Seed {seed}.\n\n| model | parameters | layers | wall s | s per layer | s per 10⁶ parameters |\n|---|---|---|---|---|---|\n",
        rayon::current_num_threads(),
        sz.sentences,
        sz.per_class,
        MACHINES[0],
        MACHINES[1]
    );
    for p in &pts {
        body.push_str(&format!(
            "| {} | {:.1} M | {} | {:.1} | {:.2} | {:.3} |\n",
            p.0,
            p.1 / 1e6,
            p.3,
            p.2,
            p.2 / p.3 as f64,
            p.2 / (p.1 / 1e6)
        ));
    }
    body.push_str(&format!(
        "\nlog-log slope of time against parameters: {slope:.2}\n\n| size | 1 machine | {} machines | {} machines | claimed | linear (slope 1) 8–64 machines |\n|---|---|---|---|---|---|\n",
        MACHINES[0], MACHINES[1]
    ));
    let mut misses = Vec::new();
    let mut numbers = Vec::new();
    for (name, bytes, c_lo, c_hi) in TARGETS {
        let params = bytes / 4.0;
        let t1 = extrapolate(big.2, big.1, params, slope);
        let (lo, hi) = (t1 / MACHINES[1], t1 / MACHINES[0]);
        let lin = extrapolate(big.2, big.1, params, 1.0);
        let m = miss(lo, hi, c_lo, c_hi);
        misses.push(m);
        body.push_str(&format!(
            "| {name} | {} | {} | {} | {} – {} | {} – {} |\n",
            human(t1),
            human(hi),
            human(lo),
            human(c_lo),
            human(c_hi),
            human(lin / MACHINES[1]),
            human(lin / MACHINES[0])
        ));
        numbers.push(json!({"size": name, "params": params, "one_machine_s": t1,
            "range_s": [lo, hi], "claimed_s": [c_lo, c_hi], "linear_range_s": [lin / MACHINES[1], lin / MACHINES[0]], "miss": m}));
    }
    let verdict = verdict_of(&misses);
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "45 GB: {} – {}; 415 GB: {} – {} (8–64 machines)",
            human(numbers[0]["range_s"][0].as_f64().unwrap_or(f64::NAN)),
            human(numbers[0]["range_s"][1].as_f64().unwrap_or(f64::NAN)),
            human(numbers[1]["range_s"][0].as_f64().unwrap_or(f64::NAN)),
            human(numbers[1]["range_s"][1].as_f64().unwrap_or(f64::NAN))
        ),
        "45 GB: hours to days; 415 GB: days to weeks",
        format!(
            "slope {slope:.2} from {} ({:.1} s) and {} ({:.1} s); overlap with the claimed ranges: {:?} (0 overlap, 1 near, 2 off by > {MISS_FACTOR}×); seed {seed}",
            small.0, small.2, big.0, big.2, misses
        ),
    );
    let chart = Chart {
        title: "Pipeline wall time against parameters".into(),
        x_label: "parameters".into(),
        y_label: "seconds".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::points("measured", pts.iter().map(|p| (p.1, p.2)).collect()),
            Series::line(
                format!("slope {slope:.2}"),
                [small.1, 103.75e9]
                    .iter()
                    .map(|&p| (p, extrapolate(big.2, big.1, p, slope)))
                    .collect(),
            ),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "sys-2.cost_scaling",
        "Measured identify + remove wall time for the two models and the log-log extrapolation to 415 GB of f32 weights (one machine)",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "slope": slope, "models": pts.iter().map(|p| json!({"model": p.0, "params": p.1, "wall_s": p.2, "layers": p.3})).collect::<Vec<_>>(), "targets": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extrapolation_and_ranges() {
        assert!((extrapolate(10.0, 1e6, 1e8, 1.0) - 1000.0).abs() < 1e-9);
        assert!((extrapolate(10.0, 1e6, 1e8, 0.5) - 100.0).abs() < 1e-9);
        assert_eq!(miss(2.0 * HOUR, 3.0 * HOUR, HOUR, DAY), 0);
        assert_eq!(miss(1.0, 10.0, HOUR, DAY), 2);
        assert_eq!(miss(0.5 * HOUR, 0.9 * HOUR, HOUR, DAY), 1);
        assert_eq!(verdict_of(&[0, 0]), Verdict::Supported);
        assert_eq!(verdict_of(&[2, 2]), Verdict::Refuted);
        assert_eq!(verdict_of(&[0, 2]), Verdict::Inconclusive);
    }
}
