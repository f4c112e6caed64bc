//! `aecl-3.energy`: "90% of activation energy is kept with under 20% of neurons". Per layer the
//! smallest fraction of MLP neurons holding 90% of the energy, per token and as a fixed set over
//! the data; the real loss change when the rest are pruned as a weight edit.

use anyhow::Result;
use claimlab_runtime::Overrides;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use super::common::{
    figure, fraction_for_share, median, mlp_activations, neuron_energy, per_token_mean,
    prune_mlp_overrides, start, Loaded, Probe,
};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-3.energy";
/// Energy share to keep.
pub(crate) const ENERGY: f64 = 0.9;
/// Claimed neuron fraction bound.
pub(crate) const CLAIMED_FRACTION: f64 = 0.2;
/// Per-token fractions are averaged over at most this many tokens per layer.
const MAX_TOKENS_PER_LAYER: usize = 1024;

/// One layer's energy statistics.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct LayerEnergy {
    /// Block index.
    pub layer: usize,
    /// Fraction of neurons (fixed set, by total energy over the data) holding 90%.
    pub fixed_fraction: f64,
    /// Mean over tokens of the fraction of that token's activations holding 90% of its energy.
    pub per_token_fraction: f64,
    /// Per-neuron energies (for curves and pruning masks).
    #[serde(skip)]
    pub energy: Vec<f64>,
}

/// Energy statistics of one layer's `[tokens, d]` activations.
pub(crate) fn layer_energy(layer: usize, acts: &[f32], d: usize) -> LayerEnergy {
    let energy = neuron_energy(acts, d);
    LayerEnergy {
        layer,
        fixed_fraction: fraction_for_share(&energy, ENERGY),
        per_token_fraction: per_token_mean(acts, d, MAX_TOKENS_PER_LAYER, |e| {
            fraction_for_share(e, ENERGY)
        }),
        energy,
    }
}

/// The keep-mask of the smallest neuron set holding `share` of a layer's energy.
pub(crate) fn keep_mask(energy: &[f64], share: f64) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..energy.len()).collect();
    idx.sort_by(|&a, &b| energy[b].total_cmp(&energy[a]));
    let total: f64 = energy.iter().sum();
    let mut keep = vec![false; energy.len()];
    let mut acc = 0.0;
    for &i in &idx {
        if acc >= share * total {
            break;
        }
        keep[i] = true;
        acc += energy[i];
    }
    keep
}

/// Per-layer energy statistics of a model on calibration passages.
pub(crate) fn model_energy(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<LayerEnergy>> {
    let (acts, d) = mlp_activations(ctx, m, n, count, seed)?;
    Ok(acts
        .par_iter()
        .enumerate()
        .map(|(l, a)| layer_energy(l, a, d))
        .collect())
}

fn verdict_of(per_model: &[Vec<f64>]) -> Verdict {
    let refuted = per_model
        .iter()
        .any(|f| 2 * f.iter().filter(|&&x| x > CLAIMED_FRACTION).count() > f.len());
    if refuted {
        Verdict::Refuted
    } else if per_model.iter().all(|f| median(f) < CLAIMED_FRACTION) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let quick = ctx.opts.quick;
    let (n, count) = if quick { (128, 2) } else { (512, 8) };
    let (windows, context, sentences) = if quick { (1, 256, 24) } else { (4, 512, 200) };
    let mut body = format!(
        "Calibration: {count} Brown passages of {n} tokens per model (news held out). Per layer: the fixed set \
         = fewest neurons whose summed energy Σ_t a² over the calibration tokens reaches {:.0}%; per token = \
         fewest of that token's activations reaching {:.0}% of its energy (mean over tokens). Pruning: every \
         neuron outside its layer's fixed set removed (up/gate rows and down columns zeroed). Seed {seed}.\n\n\
         | model | median fixed-set fraction | layers above 0.20 | median per-token fraction | neurons kept | quality before | after |\n\
         |---|---|---|---|---|---|---|\n",
        100.0 * ENERGY,
        100.0 * ENERGY
    );
    let mut fixed = Vec::new();
    let mut numbers = Vec::new();
    let mut series = Vec::new();
    let mut why_parts = Vec::new();
    for m in &models {
        let le = model_energy(ctx, m, n, count, seed)?;
        let f: Vec<f64> = le.iter().map(|x| x.fixed_fraction).collect();
        let pt: Vec<f64> = le.iter().map(|x| x.per_token_fraction).collect();
        let keep: Vec<Vec<bool>> = le.iter().map(|x| keep_mask(&x.energy, ENERGY)).collect();
        let kept: usize = keep.iter().map(|k| k.iter().filter(|&&b| b).count()).sum();
        let total: usize = keep.iter().map(Vec::len).sum();
        let probe = Probe::new(ctx, m, windows, context, sentences)?;
        let ov = {
            let model = m.weights(ctx)?;
            prune_mlp_overrides(model, &keep)?
        };
        let spinner = ctx.spinner(&format!("{ID}: {} loss probe", m.name));
        let before = probe.eval(m, &Overrides::new())?;
        let after = probe.eval(m, &ov)?;
        spinner.finish_and_clear();
        let above = f.iter().filter(|&&x| x > CLAIMED_FRACTION).count();
        let _ = writeln!(
            body,
            "| {} | {:.3} | {above}/{} | {:.3} | {:.1}% | {before:.4} | {after:.4} |",
            m.name,
            median(&f),
            f.len(),
            median(&pt),
            100.0 * kept as f64 / total as f64
        );
        why_parts.push(format!(
            "{}: median fixed-set fraction {:.2} ({above}/{} layers above 0.20), per-token {:.2}; pruning the rest: {} {before:.3} → {after:.3}",
            m.name,
            median(&f),
            f.len(),
            median(&pt),
            if m.causal() { "perplexity" } else { "mean cosine" }
        ));
        let depth = |i: usize| i as f64 / (le.len().max(2) - 1) as f64;
        series.push(Series::line(
            format!("{} fixed set", m.name),
            f.iter().enumerate().map(|(i, &v)| (depth(i), v)).collect(),
        ));
        series.push(Series::line(
            format!("{} per token", m.name),
            pt.iter().enumerate().map(|(i, &v)| (depth(i), v)).collect(),
        ));
        numbers.push(
            json!({"model": m.name, "layers": le, "kept_neurons": kept, "total_neurons": total,
            "probe": probe.describe(), "before": before, "after": after}),
        );
        fixed.push(f);
    }
    let _ = writeln!(
        body,
        "\nQuality probes: {}; {}. Energy kept is not loss kept.",
        if quick { "quick sizes" } else { "full sizes" },
        numbers
            .iter()
            .filter_map(|x| x["probe"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let verdict = verdict_of(&fixed);
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "median fixed-set fraction for 90% energy: {}",
            models
                .iter()
                .zip(&fixed)
                .map(|(m, f)| format!("{:.2} ({})", median(f), m.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "90% of energy with < 20% of neurons",
        format!(
            "{}; rule: supported if the median < 0.20 in both, refuted if > 0.20 in a majority of layers of either; {} tokens per model, seed {seed}",
            why_parts.join("; "),
            n * count
        ),
    );
    series.push(Series::reference(
        "claimed 0.20",
        vec![(0.0, CLAIMED_FRACTION), (1.0, CLAIMED_FRACTION)],
    ));
    o.figures.push(figure(
        &figdir,
        ("aecl-3.energy_fraction", "Per-layer fraction of neurons for 90% of the activation energy (fixed set and per token), claimed 0.20"),
        "Fraction of MLP neurons holding 90% of the energy",
        ("relative depth", "fraction of neurons"),
        (false, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "tokens": n * count, "models": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_and_layer_stats() {
        let e = [1.0, 8.0, 1.0, 0.0];
        assert_eq!(keep_mask(&e, 0.8), vec![false, true, false, false]);
        assert_eq!(keep_mask(&e, 0.85), vec![true, true, false, false]);
        // Two tokens, 4 neurons: neuron 1 dominates.
        let acts = [0.0f32, 3.0, 1.0, 0.0, 1.0, 3.0, 0.0, 0.0];
        let le = layer_energy(0, &acts, 4);
        assert_eq!(le.energy, vec![1.0, 18.0, 1.0, 0.0]);
        // 18 of 20 is exactly 90%: one neuron of four.
        assert!((le.fixed_fraction - 0.25).abs() < 1e-12);
        assert!((le.per_token_fraction - 0.25).abs() < 1e-12);
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict_of(&[vec![0.1, 0.15, 0.3], vec![0.1]]),
            Verdict::Supported
        );
        assert_eq!(
            verdict_of(&[vec![0.3, 0.25, 0.1], vec![0.1]]),
            Verdict::Refuted
        );
        assert_eq!(
            verdict_of(&[vec![0.3, 0.1], vec![0.1]]),
            Verdict::Inconclusive
        );
    }
}
