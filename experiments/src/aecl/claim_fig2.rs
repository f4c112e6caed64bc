//! `aecl-fig2`: the cumulative energy curve (energy kept against the fraction of neurons kept,
//! most energetic first). Synthetic i.i.d. Pareto curves beside the real per-layer curves.

use anyhow::Result;
use rand::RngExt;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_3_energy::{model_energy, CLAIMED_FRACTION, ENERGY};
use super::common::{claim_seed, figure, fraction_for_share, load_both, median, rng};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-fig2";
/// Synthetic tail indices (the preprint's own are not in the text).
const BETAS: [f64; 3] = [1.5, 2.1, 3.0];
/// Neurons per synthetic layer.
const SYNTH_NEURONS: usize = 1536;
/// Points per plotted curve.
const CURVE_POINTS: usize = 100;

/// Cumulative energy curve (fraction kept, energy share), largest first, at `points` fractions.
pub(crate) fn energy_curve(values: &[f64], points: usize) -> Vec<(f64, f64)> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = v.iter().sum();
    let mut cum = Vec::with_capacity(v.len());
    let mut acc = 0.0;
    for x in &v {
        acc += x;
        cum.push(acc / total);
    }
    let mut out = vec![(0.0, 0.0)];
    for i in 1..=points {
        let k = (i * v.len()).div_ceil(points).max(1);
        out.push((k as f64 / v.len() as f64, cum[k - 1]));
    }
    out
}

fn verdict_of(crossings: &[Vec<f64>]) -> Verdict {
    let late_majority = crossings
        .iter()
        .any(|c| 2 * c.iter().filter(|&&x| x > CLAIMED_FRACTION).count() > c.len());
    let all: Vec<f64> = crossings.iter().flatten().copied().collect();
    let early = all.iter().filter(|&&x| x < CLAIMED_FRACTION).count();
    if late_majority {
        Verdict::Refuted
    } else if 2 * early > all.len() {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, ID);
    let (n, count) = if ctx.opts.quick { (128, 2) } else { (512, 8) };
    let figdir = ctx.figures_dir();
    let mut series = Vec::new();
    let mut body = format!(
        "Synthetic: {SYNTH_NEURONS} i.i.d. Pareto magnitudes x (P(x > t) = t^-β), energy x², seeded. Real: per-neuron \
         energy of the MLP activations over {} Brown tokens per model (as aecl-3.energy). Seed {seed}.\n\n\
         | curve | fraction of neurons for 90% |\n|---|---|\n",
        n * count
    );
    let mut synth = Vec::new();
    for (i, &b) in BETAS.iter().enumerate() {
        let mut r = rng(seed ^ i as u64);
        let e: Vec<f64> = (0..SYNTH_NEURONS)
            .map(|_| (1.0 - r.random::<f64>()).powf(-1.0 / b).powi(2))
            .collect();
        let f = fraction_for_share(&e, ENERGY);
        let _ = writeln!(body, "| synthetic Pareto β = {b} | {f:.3} |");
        synth.push(json!({"beta": b, "fraction_90": f}));
        series.push(Series::line(
            format!("synthetic β = {b}"),
            energy_curve(&e, CURVE_POINTS),
        ));
    }
    let models = load_both(ctx)?;
    let mut crossings = Vec::new();
    let mut real = Vec::new();
    for m in &models {
        let le = model_energy(ctx, m, n, count, seed)?;
        let c: Vec<f64> = le.iter().map(|x| x.fixed_fraction).collect();
        let before = c.iter().filter(|&&x| x < CLAIMED_FRACTION).count();
        let _ = writeln!(
            body,
            "| {} layers (median; min–max) | {:.3}; {:.3}–{:.3} ({before}/{} before 0.20) |",
            m.name,
            median(&c),
            c.iter().copied().fold(f64::INFINITY, f64::min),
            c.iter().copied().fold(0.0f64, f64::max),
            c.len()
        );
        for &l in &[0, le.len() / 2, le.len() - 1] {
            series.push(Series::line(
                format!("{} layer {l}", m.name),
                energy_curve(&le[l].energy, CURVE_POINTS),
            ));
        }
        real.push(json!({"model": m.name, "crossing_90": c}));
        crossings.push(c);
    }
    series.push(Series::reference(
        "20% of neurons",
        vec![(CLAIMED_FRACTION, 0.0), (CLAIMED_FRACTION, 1.0)],
    ));
    series.push(Series::reference(
        "90% energy",
        vec![(0.0, ENERGY), (1.0, ENERGY)],
    ));
    let verdict = verdict_of(&crossings);
    let all: Vec<f64> = crossings.iter().flatten().copied().collect();
    let early = all.iter().filter(|&&x| x < CLAIMED_FRACTION).count();
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "real curves cross 90% before 20% of neurons in {early}/{} layers (median crossing {:.2})",
            all.len(),
            median(&all)
        ),
        "90% energy before 20% of neurons",
        format!(
            "{}; synthetic Pareto: {}; rule: supported if a majority of layers cross before 0.20, refuted if a majority of \
             either model's layers cross after; {} tokens per model, seed {seed}",
            models
                .iter()
                .zip(&crossings)
                .map(|(m, c)| format!(
                    "{} median crossing {:.2} ({}/{} layers before 0.20)",
                    m.name,
                    median(c),
                    c.iter().filter(|&&x| x < CLAIMED_FRACTION).count(),
                    c.len()
                ))
                .collect::<Vec<_>>()
                .join(", "),
            synth
                .iter()
                .map(|s| format!("β {} → {:.2}", s["beta"], s["fraction_90"].as_f64().unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(", "),
            n * count
        ),
    );
    o.figures.push(figure(
        &figdir,
        ("aecl-fig2_energy", "Figure 2 redone: synthetic Pareto curves (β = 1.5, 2.1, 3) beside real MLP layers (first, middle, last) of both models"),
        "Cumulative energy against the fraction of neurons kept",
        ("fraction of neurons (most energetic first)", "energy kept"),
        (false, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "synthetic": synth, "real": real});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_ends_at_one() {
        let c = energy_curve(&[4.0, 1.0, 3.0, 2.0], 4);
        assert_eq!(
            c,
            vec![(0.0, 0.0), (0.25, 0.4), (0.5, 0.7), (0.75, 0.9), (1.0, 1.0)]
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict_of(&[vec![0.1, 0.1, 0.3], vec![0.1]]),
            Verdict::Supported
        );
        assert_eq!(
            verdict_of(&[vec![0.1, 0.3, 0.3], vec![0.1]]),
            Verdict::Refuted
        );
    }
}
