//! `pipe-thm1.linear`: "for linear compressors the chain's error is at most Σ_i ε_i". With ε_i
//! measured on each stage's own input this is the triangle inequality and needs no linearity:
//! checked on the pipelines of `pipe-thm1` (pruning, SVD, 4-bit quantisation in all orders) and on
//! chains of truly linear maps, x ↦ x·Q_k·Q_kᵀ with Q_k a seeded random orthonormal basis of a
//! rank-r subspace of the input dimension.

use anyhow::Result;
use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::json;
use std::fmt::Write as _;

use crate::pipe::claim_thm1::{dist, shared_runs};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Relative tolerance of the rule (floating point only).
const REL_TOL: f64 = 1e-9;
/// Ranks of the three random projections, as fractions of the input dimension.
const RANK_FRACS: [f64; 3] = [0.75, 0.5, 0.25];

/// Seeded random `cols × r` matrix with orthonormal columns (modified Gram-Schmidt, twice).
fn random_basis(cols: usize, r: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(r);
    while q.len() < r {
        let mut v: Vec<f64> = (0..cols).map(|_| rng.random::<f64>() - 0.5).collect();
        for _ in 0..2 {
            for b in &q {
                let d: f64 = v.iter().zip(b).map(|(a, c)| a * c).sum();
                v.iter_mut().zip(b).for_each(|(a, c)| *a -= d * c);
            }
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 1e-8 {
            v.iter_mut().for_each(|a| *a /= n);
            q.push(v);
        }
    }
    q
}

/// x ↦ x·Q·Qᵀ for row-major `x` (`rows × cols`), Q given as its columns.
fn project_rows(x: &[f32], cols: usize, q: &[Vec<f64>]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for (row, o) in x.chunks(cols).zip(out.chunks_mut(cols)) {
        let mut acc = vec![0.0f64; cols];
        for b in q {
            let c: f64 = row.iter().zip(b).map(|(&a, bb)| f64::from(a) * bb).sum();
            acc.iter_mut().zip(b).for_each(|(a, bb)| *a += c * bb);
        }
        o.iter_mut().zip(&acc).for_each(|(a, &v)| *a = v as f32);
    }
    out
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = ctx.opts.seed;
    let figdir = ctx.figures_dir();
    let (runs, path, _, mats) = shared_runs(ctx, false)?;
    // (label, actual, Σε)
    let mut pts: Vec<(String, bool, f64, f64)> = runs
        .iter()
        .map(|r| {
            (
                format!(
                    "{} [{}]",
                    r.tensor,
                    r.order
                        .iter()
                        .map(|s| s.label())
                        .collect::<Vec<_>>()
                        .join(" → ")
                ),
                false,
                r.actual,
                r.eps.iter().sum::<f64>(),
            )
        })
        .collect();
    for (ti, (name, _rows, cols, w)) in mats.iter().enumerate() {
        let mut x = w.clone();
        let mut sum = 0.0;
        for (k, &f) in RANK_FRACS.iter().enumerate() {
            let r = ((*cols as f64) * f).round() as usize;
            let q = random_basis(*cols, r.max(1), seed ^ ((ti as u64) << 8) ^ k as u64);
            let y = project_rows(&x, *cols, &q);
            sum += dist(&x, &y);
            x = y;
        }
        pts.push((
            format!("{name} [random projections]"),
            true,
            dist(w, &x),
            sum,
        ));
    }
    let viol: Vec<&(String, bool, f64, f64)> =
        pts.iter().filter(|p| p.2 > p.3 * (1.0 + REL_TOL)).collect();
    let mut ratios: Vec<f64> = pts.iter().map(|p| p.2 / p.3).collect();
    ratios.sort_by(f64::total_cmp);
    let med = ratios[ratios.len() / 2];
    let (rmin, rmax) = (ratios[0], ratios[ratios.len() - 1]);
    let n_lin = pts.iter().filter(|p| p.1).count();
    let verdict = if viol.is_empty() {
        Verdict::Supported
    } else {
        Verdict::Refuted
    };
    let measured = format!(
        "actual ≤ Σε_i in {}/{} chains; actual/Σε median {med:.3}, range [{rmin:.3}, {rmax:.3}]",
        pts.len() - viol.len(),
        pts.len()
    );
    let why = format!(
        "{} of {} chains ({} nonlinear compressor pipelines, {n_lin} chains of 3 random orthogonal \
         projections) exceed Σε_i by > {REL_TOL:e} relative; median actual/Σε {med:.3}; the bound is \
         the triangle inequality and holds without linearity; seed {seed}",
        viol.len(),
        pts.len(),
        pts.len() - n_lin
    );
    let mut o = Outcome::new(
        "pipe-thm1.linear",
        verdict,
        measured,
        "for linear C_i: ‖W − C_n∘…∘C_1(W)‖ ≤ Σ_i ε_i",
        why,
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Model: {path}. The pipelines of pipe-thm1 (pruning 50%, SVD rank d/4, uniform 4-bit, all \
         6 orders; not linear) and, per matrix, a chain of three linear maps x ↦ x·Q_k·Q_kᵀ \
         (rows projected onto seeded random subspaces of rank {RANK_FRACS:?} × input dimension). \
         ε_i = ‖x_i − C_i(x_i)‖_F on each stage's own input. Since W − C(W) = Σ_i (x_i − C_i(x_i)), \
         the triangle inequality gives the bound for any maps; linearity is not used.\n"
    );
    let _ = writeln!(
        body,
        "| chain | linear | actual | Σε | actual/Σε |\n|---|---|---|---|---|"
    );
    for p in &pts {
        let _ = writeln!(
            body,
            "| {} | {} | {:.4} | {:.4} | {:.3} |",
            p.0,
            p.1,
            p.2,
            p.3,
            p.2 / p.3
        );
    }
    let mx = pts.iter().map(|p| p.3).fold(0.0f64, f64::max);
    let chart = Chart {
        title: "pipe-thm1.linear: end-to-end error against Σ ε_i".into(),
        x_label: "Σ ε_i (Frobenius)".into(),
        y_label: "actual ‖W − C(W)‖_F".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points(
                "compressor pipelines (nonlinear)",
                pts.iter().filter(|p| !p.1).map(|p| (p.3, p.2)).collect(),
            ),
            Series::points(
                "random projection chains (linear)",
                pts.iter().filter(|p| p.1).map(|p| (p.3, p.2)).collect(),
            ),
            Series::reference("actual = Σε", vec![(0.0, 0.0), (mx, mx)]),
        ],
    };
    o.figures.push(chart.save(
        &figdir,
        "pipe-thm1.linear_actual_vs_sum",
        "Every chain lies on or below the diagonal: the sum of stage errors bounds the total for \
         linear and nonlinear stages alike.",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "median_ratio": med, "min_ratio": rmin, "max_ratio": rmax,
        "violations": viol.len(), "chains": pts.iter().map(|p| json!({"chain": p.0, "linear": p.1,
        "actual": p.2, "sum_eps": p.3})).collect::<Vec<_>>()});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_basis_is_orthonormal_and_projection_is_idempotent() {
        let q = random_basis(12, 5, 9);
        for (i, a) in q.iter().enumerate() {
            for (j, b) in q.iter().enumerate() {
                let d: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                assert!((d - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        let x: Vec<f32> = (0..36).map(|i| (i as f32).sin()).collect();
        let p1 = project_rows(&x, 12, &q);
        let p2 = project_rows(&p1, 12, &q);
        assert!(dist(&p1, &p2) < 1e-5);
        assert!(dist(&x, &p1) > 0.1);
    }
}
