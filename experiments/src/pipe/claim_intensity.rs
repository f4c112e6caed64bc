//! `pipe-intensity`: "at large batch the arithmetic intensity of a transformer is about 2d".
//! FLOPs and bytes (weights, inputs, outputs) of every linear layer of both models, counted from
//! their real shapes, at token batches B = 1 … 65,536, in f32, f16 and Q4_1 weight storage.

use anyhow::Result;
use claimlab_weights::{Model, Param, Role};
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Storage formats: (name, weight bytes per element, activation bytes per element).
const FORMATS: [(&str, f64, f64); 3] = [
    ("f32", 4.0, 4.0),
    ("f16", 2.0, 2.0),
    ("Q4_1 weights, f16 act.", 0.625, 2.0),
];
/// Supported within this relative error of 2d (f16, B ≥ 8d).
const SUPPORT_TOL: f64 = 0.25;
/// Refuted when off by more than this factor.
const REFUTE_FACTOR: f64 = 2.0;

/// Shapes (out, in) of the linear layers (weight matrices acting on activations).
fn linear_shapes(m: &Model) -> Vec<(usize, usize)> {
    m.tensors()
        .iter()
        .filter(|t| {
            t.param == Param::Weight
                && t.shape.len() == 2
                && matches!(
                    t.role,
                    Role::Query
                        | Role::Key
                        | Role::Value
                        | Role::AttnOutput
                        | Role::MlpUp
                        | Role::MlpGate
                        | Role::MlpDown
                )
        })
        .map(|t| (t.shape[0], t.shape[1]))
        .collect()
}

/// Intensity (FLOPs per byte) of all `shapes` at `b` tokens: 2·B·m·n FLOPs over
/// m·n·wb + B·(m + n)·ab bytes, summed.
fn intensity(shapes: &[(usize, usize)], b: f64, wb: f64, ab: f64) -> f64 {
    let (mut flops, mut bytes) = (0.0, 0.0);
    for &(m, n) in shapes {
        let (m, n) = (m as f64, n as f64);
        flops += 2.0 * b * m * n;
        bytes += m * n * wb + b * (m + n) * ab;
    }
    flops / bytes
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    let mut models = Vec::new();
    for enc in [false, true] {
        let m = if enc { ctx.encoder()? } else { ctx.decoder()? };
        models.push((
            if enc { "MiniLM" } else { "SmolLM2" },
            m.config().d_model,
            linear_shapes(m),
        ));
    }
    let batches: Vec<f64> = (0..=16).map(|k| 2f64.powi(k)).collect();
    let mut body = String::from("| model | d | 2d | format | I at B=1 | I at B=8d | I at B=65536 | limit |\n|---|---|---|---|---|---|---|---|\n");
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut worst_ratio: f64 = 1.0;
    for (name, d, shapes) in &models {
        let two_d = 2.0 * *d as f64;
        for (fmt, wb, ab) in FORMATS {
            let at8d = intensity(shapes, 8.0 * *d as f64, wb, ab);
            // B → ∞: Σ 2mn / Σ (m + n)·ab.
            let limit = shapes
                .iter()
                .map(|&(m, n)| 2.0 * (m * n) as f64)
                .sum::<f64>()
                / shapes
                    .iter()
                    .map(|&(m, n)| (m + n) as f64 * ab)
                    .sum::<f64>();
            let _ = writeln!(
                body,
                "| {name} | {d} | {two_d:.0} | {fmt} | {:.2} | {at8d:.1} | {:.1} | {limit:.1} |",
                intensity(shapes, 1.0, wb, ab),
                intensity(shapes, 65_536.0, wb, ab)
            );
            if fmt == "f16" {
                let r = at8d / two_d;
                if (r.ln()).abs() > worst_ratio.ln().abs() {
                    worst_ratio = r;
                }
            }
            series.push(Series::line(
                format!("{name} {fmt}"),
                batches
                    .iter()
                    .map(|&b| (b, intensity(shapes, b, wb, ab)))
                    .collect(),
            ));
            rows.push(json!({"model": name, "d": d, "format": fmt, "at_8d": at8d, "limit": limit, "two_d": two_d,
                "curve": batches.iter().map(|&b| [b, intensity(shapes, b, wb, ab)]).collect::<Vec<_>>()}));
        }
        series.push(Series::reference(
            format!("{name} claimed 2d = {two_d:.0}"),
            batches.iter().map(|&b| (b, two_d)).collect(),
        ));
    }
    let off = worst_ratio.max(1.0 / worst_ratio);
    let verdict = if off > REFUTE_FACTOR {
        Verdict::Refuted
    } else if (worst_ratio - 1.0).abs() <= SUPPORT_TOL {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let _ = writeln!(
        body,
        "\nFor a square d × d layer in f16, 2Bd² FLOPs over 2d² + 4Bd bytes tends to d/2, not 2d."
    );
    let mut o = Outcome::new(
        "pipe-intensity",
        verdict,
        format!("f16 at B = 8d: {:.2} × 2d (worst model)", worst_ratio),
        "I ≈ 2d at large batch",
        format!("counted intensity of all linears is off from 2d by a factor {off:.2} (refute > {REFUTE_FACTOR}); the f16 limit is about d/2 to d"),
    );
    let chart = Chart {
        title: "Arithmetic intensity of all linear layers vs token batch".into(),
        x_label: "tokens B".into(),
        y_label: "FLOPs per byte".into(),
        log_x: true,
        log_y: true,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "pipe-intensity_curve",
        "Counted FLOPs per byte against token batch, with the claimed 2d",
    )?);
    o.body = body;
    o.numbers = json!({"rows": rows, "worst_ratio_f16_8d": worst_ratio});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_layer_tends_to_half_d_in_f16() {
        let d = 512usize;
        let i = intensity(&[(d, d)], 1e9, 2.0, 2.0);
        assert!((i - d as f64 / 2.0).abs() / (d as f64 / 2.0) < 1e-3, "{i}");
        // Batch 1: 2d² FLOPs over 2d² + 4d bytes ≈ 1.
        assert!((intensity(&[(d, d)], 1.0, 2.0, 2.0) - 1.0).abs() < 0.01);
    }
}
