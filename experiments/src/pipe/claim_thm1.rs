//! `pipe-thm1`: "‖W − C_n∘…∘C_1(W)‖ ≤ Σ_i ε_i Π_{j>i} L_j". Real compressors on MiniLM matrices:
//! magnitude pruning (50%), truncated SVD (rank min(rows, cols)/4) and uniform 4-bit quantisation
//! (asymmetric, per tensor), in all 6 orders. ε_i is stage i's error on its actual input; L_j is
//! estimated at stage j's actual input x as max ‖C_j(x+δ) − C_j(x)‖/‖δ‖ over seeded Gaussian
//! perturbations δ of relative size 1e-3, 1e-2, 1e-1, reported per scale: rounding and pruning are
//! discontinuous (their true Lipschitz constant is infinite), so an "L" for them only means the
//! local amplification seen at that scale. The shared run also serves `pipe-thm1.linear`.

use anyhow::{anyhow, Result};
use claimlab_budget as budget;
use claimlab_ratedist as rd;
use claimlab_weights::{DType, Param};
use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Relative perturbation sizes for the Lipschitz estimates.
pub(crate) const SCALES: [f64; 3] = [1e-3, 1e-2, 1e-1];
/// Relative tolerance of the rule.
const REL_TOL: f64 = 1e-6;
/// Perturbation pairs per scale (full, quick). The papers entry asks for 256; see the body.
const PAIRS: (usize, usize) = (4, 2);
/// Layers whose block matrices are used (full, quick).
const LAYERS_FULL: [usize; 2] = [0, 5];
/// Matrices per layer (full, quick).
const PER_LAYER: (usize, usize) = (2, 1);

/// One compressor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Prune,
    Svd,
    Quant,
}

impl Stage {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Stage::Prune => "prune50",
            Stage::Svd => "svd_d/4",
            Stage::Quant => "uniform4",
        }
    }

    pub(crate) fn apply(self, x: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
        Ok(match self {
            Stage::Prune => magnitude_prune(x, 0.5),
            Stage::Svd => truncated_svd(x, rows, cols, (rows.min(cols) / 4).max(1))?,
            Stage::Quant => {
                rd::uniform_quantize(
                    x,
                    &rd::UniformConfig {
                        bits: 4,
                        ..Default::default()
                    },
                )?
                .reconstruction
            }
        })
    }
}

/// Best rank-`rank` approximation of the row-major `rows × cols` matrix (faer thin SVD in f64).
pub(crate) fn truncated_svd(w: &[f32], rows: usize, cols: usize, rank: usize) -> Result<Vec<f32>> {
    let a = faer::Mat::<f64>::from_fn(rows, cols, |i, j| f64::from(w[i * cols + j]));
    let svd = a
        .thin_svd()
        .map_err(|e| anyhow!("SVD of a {rows}x{cols} matrix: {e:?}"))?;
    let r = rank.min(rows.min(cols));
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let us = faer::Mat::<f64>::from_fn(rows, r, |i, k| u[(i, k)] * s[k]);
    let vr = faer::Mat::<f64>::from_fn(cols, r, |j, k| v[(j, k)]);
    let approx = us.as_ref() * vr.as_ref().transpose();
    Ok((0..rows * cols)
        .map(|t| approx[(t / cols, t % cols)] as f32)
        .collect())
}

/// Zeroes the `frac` smallest-magnitude entries (ties broken by index).
pub(crate) fn magnitude_prune(x: &[f32], frac: f64) -> Vec<f32> {
    let k = ((x.len() as f64) * frac).round() as usize;
    let mut idx: Vec<usize> = (0..x.len()).collect();
    if k > 0 && k < x.len() {
        idx.select_nth_unstable_by(k, |&a, &b| {
            x[a].abs().total_cmp(&x[b].abs()).then(a.cmp(&b))
        });
    }
    let mut out = x.to_vec();
    for &i in idx.iter().take(k.min(x.len())) {
        out[i] = 0.0;
    }
    out
}

/// Frobenius norm of a − b in f64.
pub(crate) fn dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Standard normal by Box-Muller.
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Local Lipschitz estimate of `stage` at `x` for each relative scale: max over `pairs` seeded
/// perturbations of ‖C(x+δ) − C(x)‖ / ‖δ‖.
fn lipschitz_at(
    stage: Stage,
    x: &[f32],
    cx: &[f32],
    rows: usize,
    cols: usize,
    pairs: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let norm = dist(x, &vec![0.0; x.len()]);
    let mut out = Vec::new();
    for (si, &s) in SCALES.iter().enumerate() {
        let mut din = Vec::new();
        let mut dout = Vec::new();
        for p in 0..pairs {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                seed ^ ((si as u64) << 32) ^ (p as u64).wrapping_mul(0x9E37_79B9),
            );
            let raw: Vec<f64> = (0..x.len()).map(|_| normal(&mut rng)).collect();
            let rn = raw.iter().map(|v| v * v).sum::<f64>().sqrt();
            let y: Vec<f32> = x
                .iter()
                .zip(&raw)
                .map(|(&a, &r)| (f64::from(a) + s * norm * r / rn) as f32)
                .collect();
            let cy = stage.apply(&y, rows, cols)?;
            din.push(dist(x, &y));
            dout.push(dist(cx, &cy));
        }
        out.push(budget::lipschitz_from_pairs(&din, &dout)?.estimate);
    }
    Ok(out)
}

/// The run of one pipeline on one tensor.
#[derive(Clone, Debug)]
pub(crate) struct PipeRun {
    pub(crate) tensor: String,
    pub(crate) order: Vec<Stage>,
    /// ε_i on the stage's own input.
    pub(crate) eps: Vec<f64>,
    /// L_j per stage, per scale.
    pub(crate) lip: Vec<Vec<f64>>,
    /// ‖W − C(W)‖.
    pub(crate) actual: f64,
    /// ‖W‖.
    pub(crate) norm: f64,
}

const ORDERS: [[Stage; 3]; 6] = [
    [Stage::Prune, Stage::Svd, Stage::Quant],
    [Stage::Prune, Stage::Quant, Stage::Svd],
    [Stage::Svd, Stage::Prune, Stage::Quant],
    [Stage::Svd, Stage::Quant, Stage::Prune],
    [Stage::Quant, Stage::Prune, Stage::Svd],
    [Stage::Quant, Stage::Svd, Stage::Prune],
];

fn run_pipe(
    name: &str,
    w: &[f32],
    rows: usize,
    cols: usize,
    order: &[Stage],
    pairs: usize,
    seed: u64,
) -> Result<PipeRun> {
    let mut x = w.to_vec();
    let mut eps = Vec::new();
    let mut lip = Vec::new();
    for (k, &st) in order.iter().enumerate() {
        let y = st.apply(&x, rows, cols)?;
        eps.push(dist(&x, &y));
        if pairs > 0 {
            lip.push(lipschitz_at(
                st,
                &x,
                &y,
                rows,
                cols,
                pairs,
                seed.wrapping_add(k as u64),
            )?);
        }
        x = y;
    }
    Ok(PipeRun {
        tensor: name.to_string(),
        order: order.to_vec(),
        eps,
        lip,
        actual: dist(w, &x),
        norm: dist(w, &vec![0.0; w.len()]),
    })
}

/// All 6 orders on the chosen MiniLM matrices (shared with `pipe-thm1.linear`); the Lipschitz
/// estimates only when `with_lipschitz`. Also returns the matrices used (name, rows, cols, data).
#[allow(clippy::type_complexity)]
pub(crate) fn shared_runs(
    ctx: &mut Ctx,
    with_lipschitz: bool,
) -> Result<(
    Vec<PipeRun>,
    String,
    usize,
    Vec<(String, usize, usize, Vec<f32>)>,
)> {
    let quick = ctx.opts.quick;
    let seed = ctx.opts.seed;
    let pairs = match (with_lipschitz, quick) {
        (false, _) => 0,
        (true, true) => PAIRS.1,
        (true, false) => PAIRS.0,
    };
    let tensors: Vec<_> = {
        let enc = ctx.encoder()?;
        let mut v: Vec<_> = enc
            .tensors()
            .iter()
            .filter(|t| {
                t.shape.len() == 2
                    && t.param == Param::Weight
                    && t.dtype != DType::I64
                    && t.layer.is_some_and(|l| {
                        if quick {
                            l == 0
                        } else {
                            LAYERS_FULL.contains(&l)
                        }
                    })
            })
            .cloned()
            .collect();
        let per = if quick { PER_LAYER.1 } else { PER_LAYER.0 };
        let mut seen = std::collections::HashMap::new();
        v.retain(|t| {
            let c = seen.entry(t.layer).or_insert(0usize);
            *c += 1;
            *c <= per
        });
        v
    };
    let bar = ctx.bar(
        (tensors.len() * ORDERS.len()) as u64,
        "pipe-thm1: pipelines",
    );
    let enc = ctx.encoder()?;
    let path = enc.path().display().to_string();
    let mut runs = Vec::new();
    let mut mats = Vec::new();
    for (ti, t) in tensors.iter().enumerate() {
        let w = enc.tensor_f32(&t.name)?;
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let mut r: Vec<PipeRun> = ORDERS
            .par_iter()
            .map(|o| {
                let out = run_pipe(
                    &t.name,
                    &w,
                    rows,
                    cols,
                    o,
                    pairs,
                    seed.wrapping_add(ti as u64 * 16),
                );
                bar.inc(1);
                out
            })
            .collect::<Result<_>>()?;
        runs.append(&mut r);
        mats.push((t.name.clone(), rows, cols, w));
    }
    bar.finish_and_clear();
    Ok((runs, path, pairs, mats))
}

fn order_label(o: &[Stage]) -> String {
    o.iter().map(|s| s.label()).collect::<Vec<_>>().join(" → ")
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = ctx.opts.seed;
    let figdir = ctx.figures_dir();
    let (runs, path, pairs, _) = shared_runs(ctx, true)?;
    // Per scale: how many pipelines violate the bound, and the worst actual/bound.
    let mut viol_per_scale = vec![0usize; SCALES.len()];
    let mut worst_per_scale = vec![0.0f64; SCALES.len()];
    let mut viol_all_scales = 0usize;
    let mut rows_json = Vec::new();
    for r in &runs {
        let mut v_all = true;
        let mut bounds = Vec::new();
        for si in 0..SCALES.len() {
            let l: Vec<f64> = r.lip.iter().map(|v| v[si]).collect();
            let b = budget::composition_bound(&r.eps, &l, Some(r.actual))?;
            let ratio = r.actual / b.bound;
            worst_per_scale[si] = worst_per_scale[si].max(ratio);
            if r.actual > b.bound * (1.0 + REL_TOL) {
                viol_per_scale[si] += 1;
            } else {
                v_all = false;
            }
            bounds.push(b.bound);
        }
        if v_all {
            viol_all_scales += 1;
        }
        rows_json.push(json!({"tensor": r.tensor, "order": order_label(&r.order),
            "eps": r.eps, "lipschitz_per_scale": r.lip, "bound_per_scale": bounds,
            "actual": r.actual, "norm": r.norm, "sum_eps": r.eps.iter().sum::<f64>()}));
    }
    let any_viol = viol_per_scale.iter().any(|&v| v > 0);
    let verdict = if viol_all_scales > 0 {
        Verdict::Refuted
    } else if any_viol {
        Verdict::Inconclusive
    } else {
        Verdict::Supported
    };
    let n = runs.len();
    let scale_txt: Vec<String> = SCALES
        .iter()
        .zip(&viol_per_scale)
        .zip(&worst_per_scale)
        .map(|((s, v), w)| format!("{s:e}: {v}/{n} (max actual/bound {w:.2})"))
        .collect();
    let measured = format!(
        "bound violated in {viol_all_scales}/{n} pipelines at every perturbation scale; per scale {}",
        scale_txt.join("; ")
    );
    let why = format!(
        "{viol_all_scales}/{n} (tensor, order) pipelines exceed Σε_iΠL_j by > {REL_TOL:e} relative at \
         all three scales of the L estimate; per scale violations {}; {pairs} seeded perturbations \
         per scale and stage, seed {seed}",
        scale_txt.join(", ")
    );
    let mut o = Outcome::new(
        "pipe-thm1",
        verdict,
        measured,
        "‖W − C_n∘…∘C_1(W)‖ ≤ Σ_i ε_i Π_{j>i} L_j",
        why,
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Model: {path}. Stages: magnitude pruning 50%, truncated SVD at rank min(rows, cols)/4 (faer), \
         uniform 4-bit asymmetric per-tensor quantisation; all 6 orders on {} MiniLM block matrices \
         (the first {} matrices of layers {} in full mode, 1 matrix of layer 0 with --quick). ε_i = ‖x_i − C_i(x_i)‖_F on \
         the stage's actual input; L_j = max ‖C_j(x+δ) − C_j(x)‖/‖δ‖ over {pairs} seeded Gaussian δ \
         with ‖δ‖ = s‖x‖ per scale s (the papers entry asks for 256 pairs; the SVD stage makes that \
         too slow for the 2-core budget, and the estimate is a lower bound on the local constant \
         either way). For rounding and pruning, which are discontinuous, L at scale s is the \
         amplification of perturbations of that size, not a Lipschitz constant (that is infinite).\n",
        n / ORDERS.len(),
        PER_LAYER.0,
        if ctx.opts.quick {
            "0".to_string()
        } else {
            format!("{LAYERS_FULL:?}")
        }
    );
    let _ = writeln!(
        body,
        "| tensor | order | ε_i | L_j at 1e-3 | L_j at 1e-1 | bound (1e-3 / 1e-2 / 1e-1) | Σε | actual |\n|---|---|---|---|---|---|---|---|"
    );
    for j in &rows_json {
        let f = |v: &serde_json::Value| -> String {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| format!("{:.3}", x.as_f64().unwrap_or(f64::NAN)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let lip_at = |si: usize| -> String {
            j["lipschitz_per_scale"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| format!("{:.3}", x[si].as_f64().unwrap_or(f64::NAN)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let _ = writeln!(
            body,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |",
            j["tensor"].as_str().unwrap_or(""),
            j["order"].as_str().unwrap_or(""),
            f(&j["eps"]),
            lip_at(0),
            lip_at(2),
            f(&j["bound_per_scale"]),
            j["sum_eps"].as_f64().unwrap_or(f64::NAN),
            j["actual"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if any_viol {
        let _ = writeln!(
            body,
            "\nWhy it can fail: pruning and SVD are projections whose measured amplification is below 1 \
             (they discard most of a random perturbation), so Π_{{j>i}} L_j shrinks early stages' \
             errors, yet the later stages do not remove those errors (they are not in the later stages' \
             kernels). The plain triangle inequality Σ ε_i needs no Lipschitz factor (pipe-thm1.linear)."
        );
    } else {
        let _ = writeln!(
            body,
            "\nNo chain broke the bound at any perturbation scale in this sample. Note that the \
             amplification of pruning and SVD measured on random perturbations is below 1, so the bound \
             can fail on chains where a contracting stage follows a stage whose error it does not remove; \
             the plain triangle inequality Σ ε_i (pipe-thm1.linear) needs no Lipschitz factor."
        );
    }
    // Figure: actual against bound per scale.
    let mut series = Vec::new();
    for (si, &s) in SCALES.iter().enumerate() {
        series.push(Series::points(
            format!("bound with L at scale {s:e}"),
            rows_json
                .iter()
                .map(|j| {
                    (
                        j["bound_per_scale"][si].as_f64().unwrap_or(f64::NAN),
                        j["actual"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect(),
        ));
    }
    let mx = rows_json
        .iter()
        .map(|j| j["sum_eps"].as_f64().unwrap_or(0.0))
        .fold(0.0f64, f64::max);
    series.push(Series::reference(
        "actual = bound",
        vec![(0.0, 0.0), (mx, mx)],
    ));
    let chart = Chart {
        title: "pipe-thm1: measured end-to-end error vs Σε_iΠL_j".into(),
        x_label: "bound Σ ε_i Π_{j>i} L_j (Frobenius)".into(),
        y_label: "actual ‖W − C(W)‖_F".into(),
        log_x: false,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "pipe-thm1_actual_vs_bound",
        "Each point is one (tensor, order) pipeline; points above the diagonal violate the bound. \
         One colour per perturbation scale used to estimate the L_j.",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "pairs_per_scale": pairs, "scales": SCALES,
        "violations_per_scale": viol_per_scale, "violations_all_scales": viol_all_scales,
        "worst_ratio_per_scale": worst_per_scale, "pipelines": rows_json});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_zeroes_the_smallest_half() {
        let p = magnitude_prune(&[0.1, -3.0, 0.2, 4.0], 0.5);
        assert_eq!(p, vec![0.0, -3.0, 0.0, 4.0]);
    }

    #[test]
    fn source_counterexample_breaks_the_lipschitz_form() {
        // W = 1, C1(x) = x/2, C2 = 0: ε = (0.5, 0.5), L2 = 0, bound 0.5, actual 1.
        let b = budget::composition_bound(&[0.5, 0.5], &[0.5, 0.0], Some(1.0)).unwrap();
        assert!((b.bound - 0.5).abs() < 1e-15 && b.holds == Some(false));
    }

    #[test]
    fn lipschitz_of_pruning_on_a_small_matrix_is_at_most_one_for_tiny_steps() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 10.0).collect();
        let cx = Stage::Prune.apply(&x, 8, 8).unwrap();
        let l = lipschitz_at(Stage::Prune, &x, &cx, 8, 8, 4, 3).unwrap();
        // At 1e-3 no entry changes side of the threshold: the map is the mask, amplification < 1.
        assert!(l[0] < 1.0 && l[0] > 0.3, "{l:?}");
    }
}
