//! `aecl-3.concentration`: "most of the energy sits in a small fraction of neurons". Per layer the
//! Gini coefficient of per-neuron energy and the top 1/5/10% shares, against a control with each
//! token's values shuffled across neurons.

use anyhow::Result;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use super::common::{figure, median, mlp_activations, neuron_energy, rng, start, top_share};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-3.concentration";
/// Top shares reported.
const TOPS: [f64; 3] = [0.01, 0.05, 0.10];
/// Support: the top 10% hold more than this share ...
const SUPPORT_SHARE: f64 = 0.5;
/// ... and beat the control by at least this much.
const SUPPORT_MARGIN: f64 = 0.2;
/// Refuted if the top 10% hold less than this in a majority of layers.
const REFUTE_SHARE: f64 = 0.25;

/// Gini coefficient of non-negative values (0: equal, → 1: one holds all).
pub(crate) fn gini(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let total: f64 = v.iter().sum();
    if v.is_empty() || total <= 0.0 {
        return f64::NAN;
    }
    let weighted: f64 = v.iter().enumerate().map(|(i, x)| (i + 1) as f64 * x).sum();
    2.0 * weighted / (n * total) - (n + 1.0) / n
}

#[derive(Clone, Debug, serde::Serialize)]
struct Layer {
    layer: usize,
    gini: f64,
    top: Vec<f64>,
    control_gini: f64,
    control_top: Vec<f64>,
}

fn layer_stats(layer: usize, acts: &[f32], d: usize, seed: u64) -> Layer {
    let e = neuron_energy(acts, d);
    let mut r = rng(seed);
    let mut shuffled = acts.to_vec();
    for row in shuffled.chunks_exact_mut(d) {
        row.shuffle(&mut r);
    }
    let c = neuron_energy(&shuffled, d);
    Layer {
        layer,
        gini: gini(&e),
        top: TOPS.iter().map(|&f| top_share(&e, f)).collect(),
        control_gini: gini(&c),
        control_top: TOPS.iter().map(|&f| top_share(&c, f)).collect(),
    }
}

fn verdict_of(layers: &[Layer]) -> Verdict {
    let n = layers.len();
    let sup = layers
        .iter()
        .filter(|l| l.top[2] > SUPPORT_SHARE && l.top[2] - l.control_top[2] >= SUPPORT_MARGIN)
        .count();
    let low = layers.iter().filter(|l| l.top[2] < REFUTE_SHARE).count();
    if 2 * low > n {
        Verdict::Refuted
    } else if 2 * sup > n {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let (n, count) = if ctx.opts.quick { (128, 2) } else { (512, 8) };
    let mut body = format!(
        "Per-neuron energy Σ_t a² of the MLP activations over {} Brown tokens ({count} passages of {n}); control: \
         every token's activations shuffled across neurons (seeded), which keeps the value distribution and \
         removes neuron identity. Seed {seed}.\n\n| model | layer | Gini | top 1% | top 5% | top 10% | control Gini | control top 10% |\n|---|---|---|---|---|---|---|---|\n",
        n * count
    );
    let mut all = Vec::new();
    let mut numbers = Vec::new();
    let mut series = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        let (acts, d) = mlp_activations(ctx, m, n, count, seed)?;
        let layers: Vec<Layer> = acts
            .par_iter()
            .enumerate()
            .map(|(l, a)| layer_stats(l, a, d, seed ^ ((mi as u64) << 32) ^ l as u64))
            .collect();
        for l in &layers {
            let _ = writeln!(
                body,
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                m.name,
                l.layer,
                l.gini,
                l.top[0],
                l.top[1],
                l.top[2],
                l.control_gini,
                l.control_top[2]
            );
        }
        let depth = |i: usize| i as f64 / (layers.len().max(2) - 1) as f64;
        series.push(Series::line(
            format!("{} top 10%", m.name),
            layers
                .iter()
                .enumerate()
                .map(|(i, l)| (depth(i), l.top[2]))
                .collect(),
        ));
        series.push(Series::line(
            format!("{} control top 10%", m.name),
            layers
                .iter()
                .enumerate()
                .map(|(i, l)| (depth(i), l.control_top[2]))
                .collect(),
        ));
        numbers.push(json!({"model": m.name, "layers": layers}));
        all.extend(layers);
    }
    let verdict = verdict_of(&all);
    let top10: Vec<f64> = all.iter().map(|l| l.top[2]).collect();
    let ctl10: Vec<f64> = all.iter().map(|l| l.control_top[2]).collect();
    let ok = all
        .iter()
        .filter(|l| l.top[2] > SUPPORT_SHARE && l.top[2] - l.control_top[2] >= SUPPORT_MARGIN)
        .count();
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "top 10% of neurons hold a median {:.0}% of the energy (control {:.0}%)",
            100.0 * median(&top10),
            100.0 * median(&ctl10)
        ),
        "most energy in few neurons",
        format!(
            "{ok}/{} layers have top-10% share > {SUPPORT_SHARE} and ≥ {SUPPORT_MARGIN} above the shuffled control; \
             {} below {REFUTE_SHARE}; median Gini {:.2}; {} tokens per model, seed {seed}",
            all.len(),
            all.iter().filter(|l| l.top[2] < REFUTE_SHARE).count(),
            median(&all.iter().map(|l| l.gini).collect::<Vec<_>>()),
            n * count
        ),
    );
    series.push(Series::reference(
        "50%",
        vec![(0.0, SUPPORT_SHARE), (1.0, SUPPORT_SHARE)],
    ));
    o.figures.push(figure(
        &figdir,
        ("aecl-3.concentration_top10", "Energy share of the 10% most energetic MLP neurons per layer, against the shuffled control"),
        "Energy share of the top 10% of MLP neurons",
        ("relative depth", "energy share"),
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
    fn gini_known_values() {
        assert!(gini(&[1.0, 1.0, 1.0, 1.0]).abs() < 1e-12);
        assert!((gini(&[0.0, 0.0, 0.0, 1.0]) - 0.75).abs() < 1e-12);
        // Brute force mean absolute difference formula.
        let v: [f64; 4] = [1.0, 2.0, 5.0, 3.0];
        let n = v.len() as f64;
        let mad: f64 = v
            .iter()
            .flat_map(|a| v.iter().map(move |b| (a - b).abs()))
            .sum();
        let expect = mad / (2.0 * n * v.iter().sum::<f64>());
        assert!((gini(&v) - expect).abs() < 1e-12);
    }

    #[test]
    fn shuffle_control_flattens_one_hot_neuron() {
        // Neuron 0 always large: concentrated; the shuffled control spreads it.
        let d = 10;
        let acts: Vec<f32> = (0..200 * d)
            .map(|i| if i % d == 0 { 10.0 } else { 0.1 })
            .collect();
        let l = layer_stats(0, &acts, d, 3);
        assert!(l.top[2] > 0.9);
        assert!(l.control_top[2] < 0.4);
    }
}
