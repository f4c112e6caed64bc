//! `sys-2.topology`: spectrum of the class-conditional covariances and persistence diagrams of the
//! two classes' activation clouds at each concept's best layer; bottleneck distance between the
//! classes against the distance between random halves of one class.

use std::fmt::Write as _;

use anyhow::Result;
use claimlab_concepts::faer::{Mat, Side};
use claimlab_topology::{bottleneck_distance, vr_barcodes, Barcodes, VrConfig};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde_json::json;

use super::claim_2_identify::{identify_cached, identify_seed};
use super::features::load_models;
use crate::aecl::common::{quantile, rng};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "sys-2.topology";
/// The between-class distance must exceed this quantile of the within-class splits.
const NULL_QUANTILE: f64 = 0.95;

/// Splits and the largest half size per mode.
fn plan(quick: bool) -> (usize, usize) {
    if quick {
        (10, 40)
    } else {
        (50, 100)
    }
}

fn diagrams(points: &[Vec<f64>]) -> Result<Barcodes> {
    Ok(vr_barcodes(points, &VrConfig::with_max_dim(1))?)
}

/// Largest of the H0 and H1 bottleneck distances.
fn distance(a: &Barcodes, b: &Barcodes) -> Result<f64> {
    let mut d = 0.0f64;
    for k in 0..=1 {
        if let (Some(x), Some(y)) = (a.diagram(k), b.diagram(k)) {
            d = d.max(bottleneck_distance(x, y)?);
        }
    }
    Ok(d)
}

/// Eigenvalues (descending) of the covariance of `pts`.
fn spectrum(pts: &[Vec<f64>]) -> Result<Vec<f64>> {
    let n = pts.len();
    let d = pts[0].len();
    let mean: Vec<f64> = (0..d)
        .map(|j| pts.iter().map(|p| p[j]).sum::<f64>() / n as f64)
        .collect();
    let x = Mat::from_fn(n, d, |i, j| pts[i][j] - mean[j]);
    let c = x.transpose() * &x;
    let mut ev = c
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| anyhow::anyhow!("eigenvalues did not converge"))?;
    ev.iter_mut().for_each(|v| *v /= n as f64);
    ev.sort_by(|a, b| b.total_cmp(a));
    Ok(ev)
}

fn participation_ratio(ev: &[f64]) -> f64 {
    let s: f64 = ev.iter().map(|v| v.max(0.0)).sum();
    let s2: f64 = ev.iter().map(|v| v.max(0.0).powi(2)).sum();
    s * s / s2
}

/// Supported when at least two of three concepts separate in every model; refuted when none
/// separates in any model.
fn verdict_of(per_model: &[usize]) -> Verdict {
    if !per_model.is_empty() && per_model.iter().all(|&s| s >= 2) {
        Verdict::Supported
    } else if per_model.iter().all(|&s| s == 0) {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = identify_seed(ctx);
    let (splits, half_max) = plan(ctx.opts.quick);
    let models = load_models(ctx, None)?;
    let res = identify_cached(ctx, &models)?;
    let mut body = format!(
        "At each concept's best layer (sys-2.identify, seed {seed}), residual-stream activations of the \
         positive (A) and negative (B) examples. Spectrum: eigenvalues of each class's covariance \
         (participation ratio, top eigenvalue). Persistence: Vietoris-Rips H0 and H1 (claimlab-topology, \
         enclosing-radius threshold), distance = max of the H0 and H1 bottleneck distances. For each of \
         {splits} seeded splits, A is cut into two halves A1, A2 and a same-sized random subset B1 of B is \
         drawn; within = d(A1, A2), between = d(A1, B1) (same cloud sizes on both sides, at most {half_max} \
         points, where the contract's 500 per class exceed the examples and the budget). A concept separates \
         in a model when the mean between-class distance exceeds the {:.0}th percentile of the within-class \
         distances. Raw residual coordinates are used: SmolLM2's few massive-activation dimensions dominate \
         both the spectrum (participation ratio near 1) and the distances.\n\n\
         | model | concept | layer | points per half | PR(A) / PR(B) | λ₁(A) / λ₁(B) | mean between | within {:.0}th pct | separates |\n|---|---|---|---|---|---|---|---|---|\n",
        100.0 * NULL_QUANTILE,
        100.0 * NULL_QUANTILE
    );
    let mut per_model: Vec<usize> = Vec::new();
    let mut numbers = Vec::new();
    let mut pts_plot = Vec::new();
    for (mi_idx, mi) in res.iter().enumerate() {
        let mut separated_here = 0;
        for (ci, (cd, id)) in mi.data.concepts.iter().zip(&mi.ids).enumerate() {
            let x = &cd.residual[id.best_layer];
            let row = |i: usize| (0..x.ncols()).map(|j| x[(i, j)]).collect::<Vec<f64>>();
            let a: Vec<Vec<f64>> = (0..x.nrows()).filter(|&i| cd.labels[i]).map(row).collect();
            let b: Vec<Vec<f64>> = (0..x.nrows()).filter(|&i| !cd.labels[i]).map(row).collect();
            let half = (a.len() / 2).min(b.len()).min(half_max);
            if half < 4 {
                continue;
            }
            let (sa, sb) = (spectrum(&a)?, spectrum(&b)?);
            let dists: Vec<(f64, f64)> = (0..splits)
                .into_par_iter()
                .map(|s| -> Result<(f64, f64)> {
                    let mut r =
                        rng(seed ^ ((mi_idx as u64) << 48) ^ ((ci as u64) << 40) ^ s as u64);
                    let mut ia: Vec<usize> = (0..a.len()).collect();
                    ia.shuffle(&mut r);
                    let mut ib: Vec<usize> = (0..b.len()).collect();
                    ib.shuffle(&mut r);
                    let a1: Vec<Vec<f64>> = ia[..half].iter().map(|&i| a[i].clone()).collect();
                    let a2: Vec<Vec<f64>> =
                        ia[half..2 * half].iter().map(|&i| a[i].clone()).collect();
                    let b1: Vec<Vec<f64>> = ib[..half].iter().map(|&i| b[i].clone()).collect();
                    let (d1, d2, d3) = (diagrams(&a1)?, diagrams(&a2)?, diagrams(&b1)?);
                    Ok((distance(&d1, &d3)?, distance(&d1, &d2)?))
                })
                .collect::<Result<_>>()?;
            let between: Vec<f64> = dists.iter().map(|d| d.0).collect();
            let within: Vec<f64> = dists.iter().map(|d| d.1).collect();
            let mean_between = between.iter().sum::<f64>() / between.len() as f64;
            let q = quantile(&within, NULL_QUANTILE);
            let sep = mean_between > q;
            separated_here += usize::from(sep);
            let _ = writeln!(
                body,
                "| {} | {} | {} | {half} | {:.1} / {:.1} | {:.3} / {:.3} | {mean_between:.3} | {q:.3} | {} |",
                mi.name,
                cd.concept.name(),
                id.best_layer,
                participation_ratio(&sa),
                participation_ratio(&sb),
                sa[0],
                sb[0],
                if sep { "yes" } else { "no" }
            );
            pts_plot.push((q, mean_between));
            numbers.push(json!({
                "model": mi.name, "concept": cd.concept, "layer": id.best_layer, "half": half,
                "between": between, "within": within, "within_quantile": q, "separates": sep,
                "spectrum_a_top": &sa[..sa.len().min(10)], "spectrum_b_top": &sb[..sb.len().min(10)],
                "participation_ratio": [participation_ratio(&sa), participation_ratio(&sb)]
            }));
        }
        per_model.push(separated_here);
    }
    let verdict = verdict_of(&per_model);
    let counts: Vec<String> = res
        .iter()
        .zip(&per_model)
        .map(|(m, s)| format!("{} {s}/3", m.name))
        .collect();
    let mut o = Outcome::new(
        ID,
        verdict,
        format!("concepts whose classes separate topologically: {}", counts.join(", ")),
        "no number (topology reveals the representation)",
        format!(
            "mean between-class bottleneck above the {:.0}th percentile of {splits} within-class splits: {} (support needs 2 of 3 in every model); seed {seed}",
            100.0 * NULL_QUANTILE,
            counts.join(", ")
        ),
    );
    let lim = pts_plot.iter().map(|p| p.0.max(p.1)).fold(0.0f64, f64::max);
    let chart = Chart {
        title: "Between-class bottleneck vs within-class null".into(),
        x_label: "within-class 95th percentile".into(),
        y_label: "mean between-class distance".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points("model × concept", pts_plot),
            Series::reference("y = x", vec![(0.0, 0.0), (lim, lim)]),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "sys-2.topology_bottleneck",
        "Per model and concept: mean between-class bottleneck distance against the 95th percentile of within-class splits",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "splits": splits, "results": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_of_axis_data_and_verdicts() {
        let pts: Vec<Vec<f64>> = (0..4)
            .map(|i| vec![if i % 2 == 0 { 1.0 } else { -1.0 }, 0.0])
            .collect();
        let ev = spectrum(&pts).unwrap();
        assert!((ev[0] - 1.0).abs() < 1e-12 && ev[1].abs() < 1e-12);
        assert!((participation_ratio(&ev) - 1.0).abs() < 1e-12);
        assert_eq!(verdict_of(&[2, 3]), Verdict::Supported);
        assert_eq!(verdict_of(&[0, 0]), Verdict::Refuted);
        assert_eq!(verdict_of(&[2, 0]), Verdict::Inconclusive);
    }
}
