//! `intro-4.membound`: "LLM inference is memory-bound, so compression speeds it up". SmolLM2's
//! decode step and prefill against this machine's ridge point, and the decode step with weights in
//! f32, Q8_0 and Q4_1 (our fused block-dot kernels, `pipe::roofline_common`) against the byte ratios.

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use crate::pipe::roofline_common::{self as rc, WeightFormat};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Supported needs Q4_1 decode at least this much faster than f32.
const SUPPORT_SPEEDUP: f64 = 2.0;
/// Refuted when Q4_1 decode is faster than f32 by less than this factor.
const REFUTE_SPEEDUP: f64 = 1.1;

/// Verdict from the decode intensity, the ridge point and the Q4_1 speed-up.
pub(crate) fn judge(decode_intensity: f64, ridge: f64, q4_speedup: f64) -> Verdict {
    if decode_intensity > ridge || q4_speedup < REFUTE_SPEEDUP {
        Verdict::Refuted
    } else if q4_speedup >= SUPPORT_SPEEDUP {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let st = rc::study(ctx)?;
    let m = &st.machine;
    let ridge = m.ridge();
    let base = st.decode[0].seconds;
    let mut body = format!(
        "{}.\n\nSample: {}.\n\n| step | weights | intensity (FLOP/B) | side of the ridge ({ridge:.1}) | time (ms) | speed-up over f32 | byte ratio |\n|---|---|---|---|---|---|---|\n",
        m.describe(),
        st.describe()
    );
    let mut rows = Vec::new();
    let mut pts = Vec::new();
    let mut q4 = f64::NAN;
    for k in &st.decode {
        let i = k.cost.intensity();
        let s = base / k.seconds;
        if k.format == WeightFormat::Q4_1 {
            q4 = s;
        }
        let _ = writeln!(
            body,
            "| decode (context {}) | {} | {i:.3} | {} | {:.2} | {s:.2} | {:.2} |",
            st.context,
            k.format.label(),
            if i < ridge { "memory" } else { "compute" },
            k.seconds * 1e3,
            32.0 / k.format.bits()
        );
        pts.push((32.0 / k.format.bits(), s));
        rows.push(json!({"format": k.format, "intensity": i, "seconds": k.seconds, "speedup": s, "byte_ratio": 32.0 / k.format.bits()}));
    }
    let pi = st.prefill.cost.intensity();
    let _ = writeln!(
        body,
        "| prefill ({} tokens, runtime) | f32 | {pi:.1} | {} | {:.1} | | |\n\nPrefill {} the ridge: {}.",
        st.context,
        if pi < ridge { "memory" } else { "compute" },
        st.prefill.seconds * 1e3,
        if pi < ridge { "below" } else { "above" },
        if pi < ridge {
            "on this machine even prefill is memory-bound"
        } else {
            "the compute-bound counterexample regime, where fewer bytes per weight cannot help"
        }
    );
    let di = st.decode[0].cost.intensity();
    let verdict = judge(di, ridge, q4);
    let mut o = Outcome::new(
        "intro-4.membound",
        verdict,
        format!(
            "decode intensity {di:.2} vs ridge {ridge:.1}; Q4_1 decode {q4:.2}x, Q8_0 {:.2}x faster than f32",
            rows.get(1).and_then(|r| r["speedup"].as_f64()).unwrap_or(f64::NAN)
        ),
        "memory-bound, so compression speeds up inference",
        format!(
            "decode step (context {}) at {di:.2} FLOP/B is {} the ridge {ridge:.1}; Q4_1 speed-up {q4:.2} (support ≥ {SUPPORT_SPEEDUP}, refute < {REFUTE_SPEEDUP}; \
             byte ratio 6.4); prefill at {pi:.0} FLOP/B; medians of {} steps",
            st.context,
            if di < ridge { "below" } else { "above" },
            st.decode[0].runs
        ),
    );
    let chart = Chart {
        title: "SmolLM2 decode: measured speed-up against the byte ratio".into(),
        x_label: "byte ratio 32 / bits per weight".into(),
        y_label: "speed-up over f32".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points("measured decode step", pts),
            Series::reference("speed-up = byte ratio", vec![(1.0, 1.0), (6.4, 6.4)]),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "intro-4.membound_speedup",
        "Decode-step speed-up of Q8_0 and Q4_1 weights over f32 against the reduction in bytes",
    )?);
    o.body = body;
    o.numbers = json!({"machine": m, "ridge": ridge, "decode": rows, "prefill_intensity": pi, "prefill_seconds": st.prefill.seconds,
        "context": st.context});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_rule() {
        assert_eq!(judge(0.5, 10.0, 3.0), Verdict::Supported);
        assert_eq!(judge(0.5, 10.0, 1.5), Verdict::Inconclusive);
        assert_eq!(judge(0.5, 10.0, 1.05), Verdict::Refuted);
        assert_eq!(judge(20.0, 10.0, 3.0), Verdict::Refuted);
    }
}
