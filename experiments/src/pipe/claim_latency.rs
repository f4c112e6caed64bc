//! `pipe-latency`: "T_total = T_load + T_compute + T_memory + T_network" with T_compute = FLOPs/peak
//! and T_memory = bytes/bandwidth. This machine's triad bandwidth and matmul peak, the counted FLOPs
//! and bytes of a SmolLM2 decode step and prefill (`roofline_common`), and their measured times
//! against the sum of the two terms and against their maximum. Load and network are 0 here by
//! construction (weights already in memory, no network).

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use super::roofline_common::{self as rc, Kernel, Machine};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Supported: the sum predicts the measured time within this, for both steps.
const SUPPORT_TOL: f64 = 0.25;
/// Refuted: measured below this times the sum for both steps ...
const REFUTE_LOW: f64 = 0.75;
/// ... or above this times the sum (either step).
const REFUTE_HIGH: f64 = 1.5;

/// (T_compute, T_memory) of a kernel on a machine, seconds.
pub(crate) fn predicted(m: &Machine, k: &Kernel) -> (f64, f64) {
    (k.cost.flops / m.peak, k.cost.bytes / m.bandwidth)
}

/// Verdict from measured / (T_compute + T_memory) of each step.
pub(crate) fn judge(ratios: &[f64]) -> Verdict {
    if ratios.iter().all(|&r| (r - 1.0).abs() <= SUPPORT_TOL) {
        Verdict::Supported
    } else if ratios.iter().all(|&r| r < REFUTE_LOW) || ratios.iter().any(|&r| r > REFUTE_HIGH) {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let st = rc::study(ctx)?;
    let m = &st.machine;
    // The runtime's own decode step and prefill carry the verdict; our decoder's f32 step is shown beside.
    let steps = [&st.runtime_decode, &st.prefill, &st.decode[0]];
    let mut body = format!(
        "{}.\n\nSample: {}. Counted FLOPs and bytes as in the roofline module's conventions.\n\n\
         | step | GFLOP | MB moved | T_compute (ms) | T_memory (ms) | sum (ms) | max (ms) | measured (ms) | measured / sum | measured / max |\n|---|---|---|---|---|---|---|---|---|---|\n",
        m.describe(),
        st.describe()
    );
    let mut ratios = Vec::new();
    let mut rows = Vec::new();
    let mut meas = Vec::new();
    let mut sums = Vec::new();
    let mut maxs = Vec::new();
    for (i, k) in steps.iter().enumerate() {
        let (tc, tm) = predicted(m, k);
        let r = k.seconds / (tc + tm);
        if i < 2 {
            ratios.push(r);
        }
        let x = i as f64 + 1.0;
        meas.push((x, k.seconds * 1e3));
        sums.push((x, (tc + tm) * 1e3));
        maxs.push((x, tc.max(tm) * 1e3));
        let _ = writeln!(
            body,
            "| {} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {r:.2} | {:.2} |",
            k.name,
            k.cost.flops / 1e9,
            k.cost.bytes / 1e6,
            tc * 1e3,
            tm * 1e3,
            (tc + tm) * 1e3,
            tc.max(tm) * 1e3,
            k.seconds * 1e3,
            k.seconds / tc.max(tm)
        );
        rows.push(json!({"step": k.name, "flops": k.cost.flops, "bytes": k.cost.bytes, "t_compute": tc, "t_memory": tm,
            "measured": k.seconds, "runs": k.runs, "measured_over_sum": r, "measured_over_max": k.seconds / tc.max(tm)}));
    }
    let _ = writeln!(
        body,
        "\nT_load and T_network are 0 by construction (weights resident, no network). Timings are measurements on this \
         shared machine and vary from run to run."
    );
    let verdict = judge(&ratios);
    let mut o = Outcome::new(
        "pipe-latency",
        verdict,
        format!("measured / (T_compute + T_memory): decode {:.2}, prefill {:.2}", ratios[0], ratios[1]),
        "T = T_load + T_compute + T_memory + T_network",
        format!(
            "decode (context {}) {:.1} ms vs sum {:.1} ms, prefill {:.0} ms vs sum {:.0} ms; support within ±{:.0}%, refute if both < {REFUTE_LOW} or one > {REFUTE_HIGH}; \
             BW {:.1} GB/s, peak {:.1} GFLOP/s",
            st.context,
            st.runtime_decode.seconds * 1e3,
            sums[0].1,
            st.prefill.seconds * 1e3,
            sums[1].1,
            100.0 * SUPPORT_TOL,
            m.bandwidth / 1e9,
            m.peak / 1e9
        ),
    );
    let chart = Chart {
        title: "SmolLM2 step latency: measured vs T_compute + T_memory (1 = decode, 2 = prefill)"
            .into(),
        x_label: "step".into(),
        y_label: "milliseconds".into(),
        log_x: false,
        log_y: true,
        series: vec![
            Series::points("measured", meas),
            Series::points("T_compute + T_memory", sums),
            Series::points("max(T_compute, T_memory)", maxs),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "pipe-latency_steps",
        "Measured decode and prefill times against the additive model and the overlap (max) model",
    )?);
    o.body = body;
    o.numbers = json!({"machine": m, "steps": rows, "context": st.context});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_bands() {
        assert_eq!(judge(&[1.1, 0.8]), Verdict::Supported);
        assert_eq!(judge(&[0.5, 0.7]), Verdict::Refuted);
        assert_eq!(judge(&[1.0, 1.6]), Verdict::Refuted);
        assert_eq!(judge(&[0.5, 1.0]), Verdict::Inconclusive);
    }
}
