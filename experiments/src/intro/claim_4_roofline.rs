//! `intro-4.roofline`: "achieved FLOP rate = min(peak, bandwidth × intensity)". The kernels and
//! machine measurements of `pipe-roofline` (shared study in `pipe::roofline_common`), read twice: as
//! a bound (no kernel above the roofline) and as the equality the text writes (median ratio).

use anyhow::Result;
use serde_json::json;

use crate::aecl::common::median;
use crate::pipe::claim_roofline::{
    bound_verdict, kernel_table, roof_ratio, REFUTE_EXCESS, SUPPORT_EXCESS,
};
use crate::pipe::roofline_common::{self as rc, Kernel};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// The equality reading is refuted when the median achieved/roofline ratio is below this.
const EQUALITY_FLOOR: f64 = 0.5;

/// Overall verdict: the bound must hold and, as an equality, the median ratio must reach the floor.
pub(crate) fn judge(worst: f64, median_ratio: f64) -> Verdict {
    match bound_verdict(worst) {
        Verdict::Refuted => Verdict::Refuted,
        _ if median_ratio < EQUALITY_FLOOR => Verdict::Refuted,
        v => v,
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let st = rc::study(ctx)?;
    let m = &st.machine;
    let streamed: Vec<&Kernel> = st.kernels().into_iter().filter(|k| k.streamed).collect();
    let ratios: Vec<f64> = streamed.iter().map(|k| roof_ratio(m, k)).collect();
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    let med = median(&ratios);
    let verdict = judge(worst, med);
    let body = format!(
        "{}.\n\nSample: {}. Kernels whose weights stream from memory (the cache-hot matvecs of pipe-roofline are left out).\n\n{}\n\n\
         As a bound: highest ratio {worst:.3} (supported ≤ {:.2}, refuted > {:.2}). As the equality written: median ratio {med:.3} \
         (refuted below {EQUALITY_FLOOR}); kernels reach {:.0}% to {:.0}% of their roofline.",
        m.describe(),
        st.describe(),
        kernel_table(m, &streamed),
        1.0 + SUPPORT_EXCESS,
        1.0 + REFUTE_EXCESS,
        100.0 * ratios.iter().copied().fold(f64::INFINITY, f64::min),
        100.0 * worst
    );
    let mut o = Outcome::new(
        "intro-4.roofline",
        verdict,
        format!("achieved / roofline: median {med:.2}, highest {worst:.2} over {} kernels", ratios.len()),
        "achieved = min(Peak, BW·I)",
        format!(
            "bound: highest ratio {worst:.2} (refute > {:.2}); equality: median {med:.2} (refute < {EQUALITY_FLOOR}); SmolLM2 and MiniLM kernels, \
             BW {:.1} GB/s, peak {:.1} GFLOP/s",
            1.0 + REFUTE_EXCESS,
            m.bandwidth / 1e9,
            m.peak / 1e9
        ),
    );
    o.figures.push(rc::roofline_chart(m, &streamed, "Achieved rate of SmolLM2 and MiniLM kernels on the roofline").save(
        &ctx.figures_dir(),
        "intro-4.roofline_roofline",
        "Kernels against min(peak, bandwidth × intensity): an upper bound, not the rate achieved",
    )?);
    o.body = body;
    o.numbers = json!({"machine": m, "ratios": streamed.iter().zip(&ratios).map(|(k, r)| json!({"kernel": k.name, "model": k.model, "ratio": r})).collect::<Vec<_>>(),
        "median_ratio": med, "worst_ratio": worst});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_and_equality_readings() {
        assert_eq!(judge(0.9, 0.7), Verdict::Supported);
        assert_eq!(judge(0.9, 0.3), Verdict::Refuted);
        assert_eq!(judge(1.3, 0.9), Verdict::Refuted);
        assert_eq!(judge(1.1, 0.9), Verdict::Inconclusive);
    }
}
