//! `aecl-3.variance`: the only bound the preprint's Pareto model implies: the top fraction p of
//! i.i.d. Pareto(β) magnitudes holds `p^(1−2/β)` of the energy. Each layer's β is fitted (CSN) on
//! calibration tokens; the prediction is compared with the measured per-token share on held-out
//! (Brown news) tokens.

use anyhow::Result;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_3::{fit_beta, magnitudes};
use super::common::{
    figure, mlp_activations, mlp_activations_from, per_token_mean, start, top_share,
};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-3.variance";
/// Fractions of activations kept per token.
const PS: [f64; 3] = [0.05, 0.1, 0.2];
/// Support: prediction within this of the measurement at all p ...
const SUPPORT_TOL: f64 = 0.05;
/// ... in at least this share of layers.
const SUPPORT_SHARE: f64 = 0.75;
/// Refuted: a miss above this in more than half of the layers.
const REFUTE_TOL: f64 = 0.15;
/// Magnitudes sampled per layer for the fit.
const FIT_SAMPLE: usize = 5_000;
/// Tokens per layer for the measured share.
const MAX_TOKENS: usize = 1024;

/// Energy share of the top fraction `p` of i.i.d. Pareto magnitudes with tail index `beta`
/// (`p^(1−2/β)` for β > 2; the whole energy in the limit for β ≤ 2).
pub(crate) fn predicted_share(p: f64, beta: f64) -> f64 {
    if beta > 2.0 {
        p.powf(1.0 - 2.0 / beta)
    } else {
        1.0
    }
}

/// Mean over tokens (at most `MAX_TOKENS`, evenly spaced) of the energy share of each token's top
/// fraction `p` of activations.
fn measured_share(acts: &[f32], d: usize, p: f64) -> f64 {
    per_token_mean(acts, d, MAX_TOKENS, |e| top_share(e, p))
}

fn verdict_of(max_miss: &[f64]) -> Verdict {
    let n = max_miss.len() as f64;
    let good = max_miss.iter().filter(|&&m| m <= SUPPORT_TOL).count() as f64;
    let bad = max_miss.iter().filter(|&&m| m > REFUTE_TOL).count() as f64;
    if bad > n / 2.0 {
        Verdict::Refuted
    } else if good >= SUPPORT_SHARE * n {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let (n, count, hcount) = if ctx.opts.quick {
        (128, 2, 2)
    } else {
        (512, 8, 8)
    };
    let mut body = format!(
        "The preprint gives no bound; this tests the only one its Pareto model implies. β per layer: CSN fit on \
         {FIT_SAMPLE} |activation| values sampled from {} calibration tokens; measured: mean per-token energy share of \
         the top p of the MLP activations on {} held-out Brown news tokens. Seed {seed}.\n\n\
         | model | layer | β | p = 0.05 pred / meas | p = 0.1 pred / meas | p = 0.2 pred / meas | max miss |\n|---|---|---|---|---|---|---|\n",
        n * count,
        n * hcount
    );
    let mut misses = Vec::new();
    let mut numbers = Vec::new();
    let mut pred_pts = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        let (cal, d) = mlp_activations(ctx, m, n, count, seed)?;
        let (held, _) = mlp_activations_from(ctx, m, n, hcount, seed ^ 1, true)?;
        let rows = cal
            .par_iter()
            .zip(held.par_iter())
            .enumerate()
            .map(|(l, (c, h))| -> Result<_> {
                let beta = fit_beta(&magnitudes(
                    c,
                    FIT_SAMPLE,
                    seed ^ ((mi as u64) << 32) ^ l as u64,
                ))?;
                let pred: Vec<f64> = PS.iter().map(|&p| predicted_share(p, beta)).collect();
                let meas: Vec<f64> = PS.iter().map(|&p| measured_share(h, d, p)).collect();
                Ok((l, beta, pred, meas))
            })
            .collect::<Result<Vec<_>>>()?;
        for (l, beta, pred, meas) in &rows {
            let miss = pred
                .iter()
                .zip(meas)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f64, f64::max);
            let _ = writeln!(
                body,
                "| {} | {l} | {beta:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {:.3} / {:.3} | {miss:.3} |",
                m.name, pred[0], meas[0], pred[1], meas[1], pred[2], meas[2]
            );
            misses.push(miss);
            pred_pts.push((meas[1], pred[1]));
            numbers.push(
                json!({"model": m.name, "layer": l, "beta": beta, "predicted": pred,
                "measured": meas, "max_miss": miss}),
            );
        }
    }
    let verdict = verdict_of(&misses);
    let good = misses.iter().filter(|&&m| m <= SUPPORT_TOL).count();
    let bad = misses.iter().filter(|&&m| m > REFUTE_TOL).count();
    let mut sorted = misses.clone();
    sorted.sort_by(f64::total_cmp);
    let med = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    let mut o = Outcome::new(
        ID,
        verdict,
        format!("median max miss {med:.3} over {} layers", misses.len()),
        "no bound stated; its model implies share p^(1−2/β)",
        format!(
            "prediction within {SUPPORT_TOL} at all p in {good}/{} layers (support needs ≥ {:.0}%), misses > {REFUTE_TOL} in {bad}; \
             {} calibration and {} held-out tokens per model, seed {seed}",
            misses.len(),
            100.0 * SUPPORT_SHARE,
            n * count,
            n * hcount
        ),
    );
    o.figures.push(figure(
        &figdir,
        ("aecl-3.variance_pred", "Per-layer predicted top-10% energy share from the fitted β against the measured share (both models)"),
        "Top-10% energy share: Pareto prediction vs measured",
        ("measured share (held-out tokens)", "share"),
        (false, false),
        vec![
            Series::points("predicted p^(1−2/β), per layer", pred_pts),
            Series::reference("y = x", vec![(0.0, 0.0), (1.0, 1.0)]),
        ],
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "layers": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn prediction_matches_pareto_simulation() {
        // i.i.d. Pareto(β = 4) magnitudes: top 10% hold about 0.1^(1/2) = 0.316 of the energy.
        let mut r = super::super::common::rng(5);
        let beta = 4.0;
        let e: Vec<f64> = (0..200_000)
            .map(|_| (1.0 - r.random::<f64>()).powf(-1.0 / beta).powi(2))
            .collect();
        let got = top_share(&e, 0.1);
        assert!((got - predicted_share(0.1, beta)).abs() < 0.01, "{got}");
        assert!((predicted_share(0.1, 1.5) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict_of(&[0.01, 0.02, 0.03, 0.2]), Verdict::Supported);
        assert_eq!(verdict_of(&[0.3, 0.2, 0.01]), Verdict::Refuted);
        assert_eq!(verdict_of(&[0.1, 0.1, 0.01]), Verdict::Inconclusive);
    }
}
