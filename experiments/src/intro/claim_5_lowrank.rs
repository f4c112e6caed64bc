//! `intro-5.lowrank`: a rank-r factorisation W ≈ U Vᵀ of an m × n matrix compresses by
//! mn / (r(m + n)). Every 2-D MiniLM weight and SmolLM2's block linears: stored factor bytes at
//! ranks 8..256 (f32 and f16 factors against the same-precision dense matrix), the rank where the
//! factor falls to 1, and what each rank costs in relative Frobenius error (from the singular values).

use anyhow::Result;
use claimlab_spectral::faer::MatRef;
use claimlab_spectral::singular_values_f32;
use claimlab_weights::{DType, Model, Param, Role};
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const RANKS: [usize; 6] = [8, 16, 32, 64, 128, 256];
/// Supported when every real factor is within this of the formula.
const SUPPORT_TOL: f64 = 0.01;
/// Refuted when any differs by more than this.
const REFUTE_TOL: f64 = 0.05;

/// Bytes of the two stored factors (U·Σ as m × r and Vᵀ as r × n) at `bytes_per` per value.
fn factor_bytes(m: usize, n: usize, r: usize, bytes_per: usize) -> u64 {
    (bytes_per * r * (m + n)) as u64
}

/// Relative Frobenius error of the best rank-r approximation, from descending singular values.
fn rel_error_at_rank(sv: &[f64], r: usize) -> f64 {
    let total: f64 = sv.iter().map(|s| s * s).sum();
    let tail: f64 = sv.iter().skip(r).map(|s| s * s).sum();
    if total > 0.0 {
        (tail / total).sqrt()
    } else {
        0.0
    }
}

struct Mat2 {
    model: &'static str,
    name: String,
    m: usize,
    n: usize,
    sv: Vec<f64>,
}

fn matrices(m: &Model, linears_only: bool, every: usize) -> Vec<claimlab_weights::TensorInfo> {
    m.tensors()
        .iter()
        .filter(|t| t.shape.len() == 2 && t.param == Param::Weight && t.dtype != DType::I64)
        .filter(|t| {
            !linears_only
                || matches!(
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
        .filter(|t| t.layer.is_none_or(|l| l % every == 0))
        .cloned()
        .collect()
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    let quick = ctx.opts.quick;
    // --quick: every third layer of each model.
    let every = if quick { 3 } else { 1 };
    let mut mats: Vec<Mat2> = Vec::new();
    for enc in [true, false] {
        let (label, tensors) = {
            let m = if enc { ctx.encoder()? } else { ctx.decoder()? };
            let label = if enc { "MiniLM" } else { "SmolLM2" };
            (label, matrices(m, !enc, every))
        };
        let bar = ctx.bar(
            tensors.len() as u64,
            &format!("intro-5.lowrank: SVDs of {label}"),
        );
        let m = if enc { ctx.encoder()? } else { ctx.decoder()? };
        let done: Vec<Mat2> = tensors
            .par_iter()
            .map(|t| -> Result<Mat2> {
                let w = m.tensor_f32(&t.name)?;
                let (rows, cols) = (t.shape[0], t.shape[1]);
                let sv = singular_values_f32(MatRef::from_row_major_slice(&w, rows, cols))?;
                bar.inc(1);
                Ok(Mat2 {
                    model: label,
                    name: t.name.clone(),
                    m: rows,
                    n: cols,
                    sv,
                })
            })
            .collect::<Result<_>>()?;
        bar.finish_and_clear();
        mats.extend(done);
    }

    let mut worst_dev: f64 = 0.0;
    let mut rows_json = Vec::new();
    let mut body = String::from(
        "Factors stored as U·Σ (m × r) and Vᵀ (r × n) at the dense matrix's precision; \
         the real factor is dense bytes / factor bytes.\n\n\
         | model | matrix | m × n | break-even r | r=32: factor (formula) | r=32 rel. error | r=128 rel. error |\n|---|---|---|---|---|---|---|\n",
    );
    for mat in &mats {
        let (m, n) = (mat.m, mat.n);
        let mut per_rank = Vec::new();
        for &r in RANKS.iter().filter(|&&r| r <= m.min(n)) {
            let formula = (m * n) as f64 / (r * (m + n)) as f64;
            for (prec, bytes) in [("f32", 4usize), ("f16", 2)] {
                let real = (bytes * m * n) as f64 / factor_bytes(m, n, r, bytes) as f64;
                worst_dev = worst_dev.max((real - formula).abs() / formula);
                per_rank.push(
                    json!({"rank": r, "precision": prec, "real_factor": real, "formula": formula,
                    "rel_frobenius_error": rel_error_at_rank(&mat.sv, r)}),
                );
            }
        }
        let break_even = (m * n) as f64 / (m + n) as f64;
        let f32_at = |r: usize| (m * n) as f64 / (r * (m + n)) as f64;
        let _ = writeln!(
            body,
            "| {} | {} | {m} × {n} | {break_even:.0} | {:.2} ({:.2}) | {:.3} | {:.3} |",
            mat.model,
            mat.name,
            (4 * m * n) as f64 / factor_bytes(m, n, 32, 4) as f64,
            f32_at(32),
            rel_error_at_rank(&mat.sv, 32),
            rel_error_at_rank(&mat.sv, 128)
        );
        rows_json.push(
            json!({"model": mat.model, "matrix": mat.name, "m": m, "n": n,
            "break_even_rank": break_even, "ranks": per_rank}),
        );
    }
    // Figure: mean relative error against the compression factor, per model.
    let mut series = Vec::new();
    for label in ["MiniLM", "SmolLM2"] {
        let sel: Vec<&Mat2> = mats.iter().filter(|m| m.model == label).collect();
        if sel.is_empty() {
            continue;
        }
        let pts = RANKS
            .iter()
            .map(|&r| {
                let f = sel
                    .iter()
                    .map(|m| (m.m * m.n) as f64 / (r * (m.m + m.n)) as f64)
                    .sum::<f64>()
                    / sel.len() as f64;
                let e =
                    sel.iter().map(|m| rel_error_at_rank(&m.sv, r)).sum::<f64>() / sel.len() as f64;
                (f, e)
            })
            .collect();
        series.push(Series::line(format!("{label} (mean over matrices)"), pts));
    }
    let verdict = if worst_dev > REFUTE_TOL {
        Verdict::Refuted
    } else if worst_dev <= SUPPORT_TOL {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let e32: Vec<f64> = mats
        .iter()
        .filter(|m| m.m.min(m.n) >= 32)
        .map(|m| rel_error_at_rank(&m.sv, 32))
        .collect();
    let mean_e32 = e32.iter().sum::<f64>() / e32.len().max(1) as f64;
    let mut o = Outcome::new(
        "intro-5.lowrank",
        verdict,
        format!("stored factors match mn/(r(m+n)) within {:.3}% over {} matrices", 100.0 * worst_dev, mats.len()),
        "mn/(r(m+n))",
        format!(
            "worst deviation {:.3}% (support ≤ {:.0}%); the factor is exact byte arithmetic, but it costs accuracy: \
             mean relative Frobenius error {mean_e32:.2} at r = 32 — these weights are far from low rank",
            100.0 * worst_dev,
            100.0 * SUPPORT_TOL
        ),
    );
    let chart = Chart {
        title: "Low rank: compression factor against relative error".into(),
        x_label: "compression factor mn/(r(m+n))".into(),
        y_label: "relative Frobenius error".into(),
        log_x: true,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "intro-5.lowrank_error",
        "Mean relative Frobenius error of truncated SVD against the factor, ranks 8..256",
    )?);
    o.body = body;
    o.numbers =
        json!({"matrices": rows_json, "worst_deviation": worst_dev, "every_nth_layer": every});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_bytes_and_error() {
        assert_eq!(factor_bytes(384, 1536, 32, 4), 4 * 32 * (384 + 1536));
        let sv = [3.0, 4.0, 0.0];
        assert!((rel_error_at_rank(&sv, 1) - 0.8).abs() < 1e-12);
        assert!(rel_error_at_rank(&sv, 3).abs() < 1e-12);
    }
}
