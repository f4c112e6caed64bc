//! `aecl-abstract`: "provably guaranteed compression without loss of performance". The strategy the
//! preprint implies: rank-32 attention plus the 20% most energetic MLP neurons per layer. The MLP half
//! is applied as a weight edit on both models; the attention half needs a hook that replaces the
//! attention matrix inside the forward pass, which the runtime does not have (as in aecl-1.lowrank),
//! so it is costed but not applied, and the verdict can only refute.

use anyhow::Result;
use claimlab_runtime::Overrides;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_3_energy::model_energy;
use super::common::{figure, prune_mlp_overrides, start};
use super::compress::{mean, paired_diff, probe_sizes, top_units, Scorer};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-abstract";
/// Fraction of MLP neurons kept per layer.
const KEEP_FRACTION: f64 = 0.2;
/// Attention rank of the strategy.
const ATTENTION_RANK: usize = 32;
/// Supported below this perplexity increase ...
const SUPPORT_PPL: f64 = 0.02;
/// ... with the MiniLM mean cosine above this.
const SUPPORT_COS: f64 = 0.98;
/// Refuted above this perplexity increase ...
const REFUTE_PPL: f64 = 0.10;
/// ... or below this mean cosine.
const REFUTE_COS: f64 = 0.9;
/// Bootstrap resamples.
const RESAMPLES: usize = 500;
/// Sequence length for the compute estimate.
const COST_LEN: usize = 512;

/// Share of one block's multiply-adds per token at length `n` saved by keeping `keep` of the MLP
/// neurons (attention projections `attn_params`, MLP `mlp_params`, scores and weighted sum `2·n·d`).
pub(crate) fn mlp_saving(attn_params: f64, mlp_params: f64, d: f64, n: f64, keep: f64) -> f64 {
    let total = attn_params + mlp_params + 2.0 * n * d;
    (1.0 - keep) * mlp_params / total
}

/// Verdict from (perplexity increase of SmolLM2, mean cosine of MiniLM) after the MLP half alone.
fn verdict_of(ppl_increase: f64, cosine: f64) -> Verdict {
    if ppl_increase > REFUTE_PPL || cosine < REFUTE_COS {
        Verdict::Refuted
    } else {
        // Support needs the attention half as well, which cannot be applied.
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let quick = ctx.opts.quick;
    let (n, count) = if quick { (128, 2) } else { (256, 8) };
    let (windows, context, sentences, _) = probe_sizes(quick);
    let mut body = format!(
        "MLP half: per layer the {:.0}% of neurons with the largest energy Σ_t a² on {count} Brown calibration \
         passages of {n} tokens (aecl-3.energy's measure) are kept, the rest removed as a weight edit (up/gate \
         rows and down columns zeroed). Attention half (rank-{ATTENTION_RANK} attention matrices): not applied, \
         because the runtime cannot substitute the attention matrix inside the forward pass (aecl-1.lowrank \
         reports the same gap); it can only add damage on top of the MLP half's in the usual case, so the verdict \
         refutes when the MLP half alone breaks a threshold and is otherwise inconclusive. Quality on held-out \
         Brown news: SmolLM2 perplexity on {} tokens (the rule's 8 × 512 did not fit the 2-core budget), MiniLM \
         mean cosine to the original embedding on {sentences} sentences; bootstrap SE of the loss change \
         ({RESAMPLES} resamples). Seed {seed}.\n\n\
         | model | quality before | after (MLP half) | change | loss change ± SE | MLP multiply-adds saved (share of block, n = {COST_LEN}) |\n\
         |---|---|---|---|---|---|\n",
        100.0 * KEEP_FRACTION,
        windows * context
    );
    let mut ppl_inc = f64::NAN;
    let mut cosine = f64::NAN;
    let mut numbers = Vec::new();
    let mut series = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        let energy = model_energy(ctx, m, n, count, seed)?;
        let keep: Vec<Vec<bool>> = energy
            .iter()
            .map(|le| {
                let k = (KEEP_FRACTION * le.energy.len() as f64).ceil() as usize;
                top_units(&le.energy, k)
            })
            .collect();
        let kept_energy: Vec<(f64, f64)> = energy
            .iter()
            .zip(&keep)
            .map(|(le, k)| {
                let tot: f64 = le.energy.iter().sum();
                let kept: f64 = le.energy.iter().zip(k).filter(|p| *p.1).map(|p| p.0).sum();
                (le.layer as f64, kept / tot)
            })
            .collect();
        let (ov, attn_params, mlp_params, d) = {
            let model = m.weights(ctx)?;
            let ov = prune_mlp_overrides(model, &keep)?;
            let (mut a, mut p, mut d) = (0usize, 0usize, 0usize);
            for t in model
                .tensors()
                .iter()
                .filter(|t| t.layer == Some(0) && t.shape.len() == 2)
            {
                use claimlab_weights::Role;
                let size = t.shape[0] * t.shape[1];
                match t.role {
                    Role::Query | Role::Key | Role::Value | Role::AttnOutput => {
                        a += size;
                        if t.role == Role::Query {
                            d = t.shape[1];
                        }
                    }
                    Role::MlpUp | Role::MlpGate | Role::MlpDown => p += size,
                    _ => {}
                }
            }
            (ov, a as f64, p as f64, d as f64)
        };
        let scorer = Scorer::new(ctx, m, windows, context, sentences)?;
        let sp = ctx.spinner(&format!("{ID}: {} before and after", m.name));
        let before = scorer.units(m, &Overrides::new())?;
        let after = scorer.units(m, &ov)?;
        sp.finish_and_clear();
        let (diff, se) = paired_diff(&before, &after, scorer.block(), RESAMPLES, seed ^ mi as u64);
        let (qb, qa) = (scorer.quality(mean(&before)), scorer.quality(mean(&after)));
        let saving = mlp_saving(attn_params, mlp_params, d, COST_LEN as f64, KEEP_FRACTION);
        let change = if scorer.is_perplexity() {
            ppl_inc = qa / qb - 1.0;
            format!("{:+.1}% perplexity", 100.0 * ppl_inc)
        } else {
            cosine = qa;
            format!("cosine {qa:.4}")
        };
        let _ = writeln!(
            body,
            "| {} | {qb:.4} | {qa:.4} | {change} | {diff:+.4} ± {se:.4} | {:.1}% |",
            m.name,
            100.0 * saving
        );
        series.push(Series::line(
            format!("{} energy kept by the top 20%", m.name),
            kept_energy.clone(),
        ));
        numbers.push(json!({"model": m.name, "before": qb, "after": qa, "loss_change": diff, "se": se,
            "mlp_saving_share": saving, "energy_kept_per_layer": kept_energy.iter().map(|p| p.1).collect::<Vec<_>>(),
            "probe": scorer.probe.describe()}));
    }
    let verdict = verdict_of(ppl_inc, cosine);
    let _ = writeln!(
        body,
        "\nThe document states the guarantees but contains no proof and no bound; the thresholds (perplexity +{:.0}% \
         and cosine {SUPPORT_COS} for support, +{:.0}% or cosine {REFUTE_COS} for refutation) are ours. Rank-{ATTENTION_RANK} \
         attention would replace n² attention weights per head by 2·{ATTENTION_RANK}·n factors, a saving only above n = \
         {} tokens.",
        100.0 * SUPPORT_PPL,
        100.0 * REFUTE_PPL,
        2 * ATTENTION_RANK
    );
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "MLP half alone (top 20% neurons): SmolLM2 perplexity {:+.1}%, MiniLM mean cosine {cosine:.3}",
            100.0 * ppl_inc
        ),
        "compression without loss of performance",
        format!(
            "keeping the 20% most energetic MLP neurons per layer raises SmolLM2 perplexity by {:.1}% (refuted above {:.0}%) and \
             leaves MiniLM mean cosine {cosine:.3} (refuted below {REFUTE_COS}); rank-{ATTENTION_RANK} attention not applied \
             (no runtime hook), so support is out of reach; {} calibration tokens, SmolLM2 {} tokens, MiniLM {sentences} \
             sentences, seed {seed}",
            100.0 * ppl_inc,
            100.0 * REFUTE_PPL,
            n * count,
            windows * context
        ),
    );
    o.figures.push(figure(
        &figdir,
        (
            "aecl-abstract_energy",
            "Share of the calibration activation energy held by the kept 20% of neurons, per layer",
        ),
        "Energy kept by the top 20% of MLP neurons per layer",
        ("layer", "share of activation energy kept"),
        (false, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "keep_fraction": KEEP_FRACTION, "attention_rank_not_applied": ATTENTION_RANK,
        "models": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_and_verdicts() {
        // MLP twice the attention projections, no attention term: 80% of 2/3 saved.
        let s = mlp_saving(1.0, 2.0, 0.0, 0.0, 0.2);
        assert!((s - 0.8 * 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(verdict_of(0.5, 0.99), Verdict::Refuted);
        assert_eq!(verdict_of(0.01, 0.85), Verdict::Refuted);
        assert_eq!(verdict_of(0.01, 0.99), Verdict::Inconclusive);
    }
}
