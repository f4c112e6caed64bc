//! `pipe-roofline`: "achieved FLOP/s ≤ min(peak, bandwidth × intensity)". SmolLM2's decode step,
//! prefill and single MLP matvecs (f32, Q8_0, Q4_1 through our fused block-dot kernels) and MiniLM's
//! forward placed on this machine's measured roofline (`roofline_common::study`); the quantised
//! speed-ups against the byte ratios 32/8.5 and 32/5.

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use super::roofline_common::{self as rc, Kernel, Machine, WeightFormat};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Supported: no streamed kernel above the roofline by more than this.
pub(crate) const SUPPORT_EXCESS: f64 = 0.05;
/// Refuted: one streamed kernel above it by more than this.
pub(crate) const REFUTE_EXCESS: f64 = 0.15;

/// achieved / roofline of a kernel.
pub(crate) fn roof_ratio(m: &Machine, k: &Kernel) -> f64 {
    k.achieved() / m.roof(k.cost.intensity())
}

/// Verdict of the bound from the largest achieved/roofline ratio.
pub(crate) fn bound_verdict(worst: f64) -> Verdict {
    if worst > 1.0 + REFUTE_EXCESS {
        Verdict::Refuted
    } else if worst <= 1.0 + SUPPORT_EXCESS {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// Markdown table of kernels with their roofline ratios.
pub(crate) fn kernel_table(m: &Machine, ks: &[&Kernel]) -> String {
    let mut t = String::from(
        "| kernel | weights | GFLOP | MB | intensity (FLOP/B) | time (ms, median) | runs | achieved GFLOP/s | roofline GFLOP/s | achieved / roofline |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for k in ks {
        let _ = writeln!(
            t,
            "| {} {} | {} | {:.4} | {:.2} | {:.3} | {:.3} | {} | {:.2} | {:.2} | {:.3} |",
            k.model,
            k.name,
            k.format.label(),
            k.cost.flops / 1e9,
            k.cost.bytes / 1e6,
            k.cost.intensity(),
            k.seconds * 1e3,
            k.runs,
            k.achieved() / 1e9,
            m.roof(k.cost.intensity()) / 1e9,
            roof_ratio(m, k)
        );
    }
    t
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let st = rc::study(ctx)?;
    let m = &st.machine;
    let all = st.kernels();
    let streamed: Vec<&Kernel> = all.iter().copied().filter(|k| k.streamed).collect();
    let hot: Vec<&Kernel> = all.iter().copied().filter(|k| !k.streamed).collect();
    let (worst, worst_name) = streamed
        .iter()
        .map(|k| (roof_ratio(m, k), k.name.clone()))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    let hot_worst = hot.iter().map(|k| roof_ratio(m, k)).fold(0.0, f64::max);
    let verdict = bound_verdict(worst);

    // Quantised speed-ups over f32: decode step and streamed matvecs.
    let mut speed = String::from("| kernel | Q8_0 speed-up (predicted 3.76) | Q4_1 speed-up (predicted 6.40) |\n|---|---|---|\n");
    let mut speed_rows = Vec::new();
    let mut groups: Vec<Vec<&Kernel>> = vec![st.decode.iter().collect()];
    for shape in ["576→1536", "1536→576"] {
        groups.push(
            st.matvecs
                .iter()
                .filter(|k| k.streamed && k.name.starts_with(shape))
                .collect(),
        );
    }
    let mut sp_series = [Vec::new(), Vec::new()];
    for (gi, g) in groups.iter().enumerate() {
        let t = |f: WeightFormat| {
            g.iter()
                .find(|k| k.format == f)
                .map_or(f64::NAN, |k| k.seconds)
        };
        let base = t(WeightFormat::F32);
        let (s8, s4) = (base / t(WeightFormat::Q8_0), base / t(WeightFormat::Q4_1));
        let name = g.first().map_or(String::new(), |k| {
            k.name.replace(" (f32)", "").replace(" f32", "")
        });
        let _ = writeln!(speed, "| {name} | {s8:.2} | {s4:.2} |");
        sp_series[0].push((gi as f64 + 1.0, s8));
        sp_series[1].push((gi as f64 + 1.0, s4));
        speed_rows.push(json!({"kernel": name, "q8_0": s8, "q4_1": s4}));
    }
    let body = format!(
        "{}.\n\nSample: {}.\n\n{}\n\nThe verdict reads the kernels whose weights stream from memory (decode steps, prefill, \
         matvecs cycling through 640 MiB of copies of the 30 layers' matrices, MiniLM). The cache-hot matvecs (one 3.5 MB matrix again and again) \
         are shown against the same DRAM roofline for contrast: their worst ratio is {hot_worst:.2}, since their bytes come from \
         cache, whose bandwidth the triad does not measure.\n\nQuantised speed-ups (f32 time / quantised time) against the byte \
         ratios 32/8.5 = 3.76 and 32/5 = 6.4 (reported apart from the verdict):\n\n{speed}",
        m.describe(),
        st.describe(),
        kernel_table(m, &all)
    );
    let mut o = Outcome::new(
        "pipe-roofline",
        verdict,
        format!("highest achieved / roofline {worst:.2} ({worst_name}); cache-hot matvecs up to {hot_worst:.2}"),
        "FLOPS ≤ min(Peak, BW·I)",
        format!(
            "{} streamed kernels: the highest is {worst:.2} of its roofline (support ≤ {:.2}, refute > {:.2}); BW {:.1} GB/s, peak {:.1} GFLOP/s; \
             Q4_1 decode speed-up {:.2} vs predicted 6.4",
            streamed.len(),
            1.0 + SUPPORT_EXCESS,
            1.0 + REFUTE_EXCESS,
            m.bandwidth / 1e9,
            m.peak / 1e9,
            speed_rows[0]["q4_1"].as_f64().unwrap_or(f64::NAN)
        ),
    );
    o.figures.push(
        rc::roofline_chart(
            m,
            &all,
            "Roofline of this machine with SmolLM2 and MiniLM kernels",
        )
        .save(
            &ctx.figures_dir(),
            "pipe-roofline_roofline",
            "Measured kernels on the roofline min(peak, bandwidth × intensity) of this machine",
        )?,
    );
    let chart = Chart {
        title: "Quantised speed-up over f32 (1 = decode step, 2 = 576→1536, 3 = 1536→576 matvec)"
            .into(),
        x_label: "kernel".into(),
        y_label: "speed-up over f32".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points("Q8_0 measured", sp_series[0].clone()),
            Series::points("Q4_1 measured", sp_series[1].clone()),
            Series::reference(
                "Q8_0 predicted 3.76",
                vec![(1.0, 32.0 / 8.5), (3.0, 32.0 / 8.5)],
            ),
            Series::reference("Q4_1 predicted 6.4", vec![(1.0, 6.4), (3.0, 6.4)]),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "pipe-roofline_speedup",
        "Measured speed-ups of quantised weights against the byte-ratio prediction",
    )?);
    o.body = body;
    o.numbers = json!({"machine": m, "kernels": all.iter().map(|k| json!({"kernel": k, "ratio": roof_ratio(m, k)})).collect::<Vec<_>>(),
        "worst_streamed_ratio": worst, "worst_hot_ratio": hot_worst, "speedups": speed_rows});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::roofline_common::Cost;

    #[test]
    fn ratio_and_verdict() {
        let m = Machine {
            bandwidth: 10e9,
            peak: 100e9,
            triad_elems: 1,
            triad_reps: 1,
            matmul_n: 1,
            matmul_reps: 1,
            threads: 1,
        };
        // Intensity 0.5: roof 5 GFLOP/s; 1 GFLOP in 0.25 s = 4 GFLOP/s → 0.8 of the roof.
        let k = Kernel {
            name: "k".into(),
            model: "t",
            format: WeightFormat::F32,
            cost: Cost {
                flops: 1e9,
                bytes: 2e9,
            },
            seconds: 0.25,
            runs: 1,
            streamed: true,
        };
        assert!((roof_ratio(&m, &k) - 0.8).abs() < 1e-12);
        assert_eq!(bound_verdict(0.8), Verdict::Supported);
        assert_eq!(bound_verdict(1.1), Verdict::Inconclusive);
        assert_eq!(bound_verdict(1.2), Verdict::Refuted);
    }
}
