//! `intro-stack`: the stack M_c = Q(P(D(M))) — quantise after pruning. Every block linear of SmolLM2
//! and MiniLM pruned and quantised at three final sizes (about 6, 4 and 3 bits per weight, real
//! bits: bitmap, codes, scales and zero points), in the stated order (prune, then quantise the
//! survivors) and in the reverse order (quantise, then prune the quantised values); loss on held-out
//! Brown news with paired bootstrap standard errors.

use anyhow::Result;
use claimlab_runtime::Overrides;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::aecl::common::{figure, start};
use crate::aecl::compress::{
    block_linears, mean, paired_diff, probe_sizes, quantize_group, Linear, Scorer,
};
use crate::pipe::claim_thm1::magnitude_prune;
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "intro-stack";
/// (zero fraction, bits) of the three sizes.
const SIZES: [(f64, u32); 3] = [(0.25, 6), (0.5, 5), (0.5, 3)];
/// The rule's margin in standard errors.
const SE_MARGIN: f64 = 2.0;
/// Bootstrap resamples.
const RESAMPLES: usize = 500;

/// Prune `zero_frac` by magnitude, then quantise the survivors (g32 over the kept values in
/// order): reconstruction and stored bits (bitmap + codes + side information).
///
/// # Errors
/// From the quantiser.
pub(crate) fn prune_then_quantize(w: &[f32], zero_frac: f64, bits: u32) -> Result<(Vec<f32>, f64)> {
    let p = magnitude_prune(w, zero_frac);
    let kept: Vec<f32> = p.iter().copied().filter(|&x| x != 0.0).collect();
    if kept.is_empty() {
        return Ok((p, w.len() as f64));
    }
    let (q, qbits) = quantize_group(&kept, bits)?;
    let mut out = p;
    let mut it = q.into_iter();
    for x in &mut out {
        if *x != 0.0 {
            *x = it.next().unwrap_or(0.0);
        }
    }
    Ok((out, w.len() as f64 + qbits))
}

/// Quantise (g32 over the whole matrix), then prune `zero_frac` of the quantised values by
/// magnitude: reconstruction and stored bits (bitmap + codes of the survivors + every group's
/// side information).
///
/// # Errors
/// From the quantiser.
pub(crate) fn quantize_then_prune(w: &[f32], zero_frac: f64, bits: u32) -> Result<(Vec<f32>, f64)> {
    let (q, qbits) = quantize_group(w, bits)?;
    let side = qbits - f64::from(bits) * w.len() as f64;
    let out = magnitude_prune(&q, zero_frac);
    let nnz = out.iter().filter(|&&x| x != 0.0).count();
    Ok((out, w.len() as f64 + f64::from(bits) * nnz as f64 + side))
}

/// Overrides and stored bits per weight for one order and size.
fn stack(lins: &[Linear], zero_frac: f64, bits: u32, stated: bool) -> Result<(Overrides, f64)> {
    let done: Vec<(String, Vec<f32>, f64)> = lins
        .par_iter()
        .map(|l| {
            let (w, b) = if stated {
                prune_then_quantize(&l.w, zero_frac, bits)?
            } else {
                quantize_then_prune(&l.w, zero_frac, bits)?
            };
            Ok((l.name.clone(), w, b))
        })
        .collect::<Result<_>>()?;
    let n: usize = lins.iter().map(|l| l.w.len()).sum();
    let mut ov = Overrides::new();
    let mut total = 0.0;
    for (name, w, b) in done {
        total += b;
        ov.insert(name, w);
    }
    Ok((ov, total / n as f64))
}

#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    model: &'static str,
    zero_frac: f64,
    bits: u32,
    bpw_stated: f64,
    bpw_reverse: f64,
    quality_stated: f64,
    quality_reverse: f64,
    /// Mean loss of the stated order minus the reverse (positive: stated worse).
    diff: f64,
    se: f64,
}

fn verdict_of(rows: &[Row], models: &[&str]) -> Verdict {
    let worse = |r: &Row| r.diff > SE_MARGIN * r.se;
    if models
        .iter()
        .any(|m| rows.iter().filter(|r| r.model == *m && worse(r)).count() >= 2)
    {
        Verdict::Refuted
    } else if !rows.iter().any(worse) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let quick = ctx.opts.quick;
    let (windows, context, sentences, every) = probe_sizes(quick);
    let mut body = format!(
        "Every block linear of {} compressed at three sizes (zero fraction, bits): {SIZES:?}. Stated order \
         Q(P(·)): magnitude pruning, then g32 asymmetric quantisation of the surviving values (groups of 32 \
         survivors). Reverse P(Q(·)): g32 quantisation of the whole matrix, then magnitude pruning of the \
         quantised values. Real stored bits: 1-bit bitmap per weight + codes of the survivors + f32 scale and \
         b-bit zero point per group (the reverse order keeps every group's side information, so it is slightly \
         larger at equal settings). Loss: SmolLM2 per-token NLL on {} held-out Brown news tokens, MiniLM 1 − \
         cosine on {sentences} sentences; paired moving-block bootstrap SE ({RESAMPLES} resamples). Not run: \
         the variant with the intro-5.distill student first (time budget). Seed {seed}.\n\n\
         | model | zeros, bits | bits/weight Q(P) | bits/weight P(Q) | quality Q(P) | quality P(Q) | Q(P) − P(Q) loss | SE |\n\
         |---|---|---|---|---|---|---|---|\n",
        if quick { "every third block (quick)" } else { "every block" },
        windows * context
    );
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut base_q = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        let scorer = Scorer::new(ctx, m, windows, context, sentences)?;
        let lins = {
            let model = m.weights(ctx)?;
            block_linears(model, every)?
        };
        let base = scorer.units(m, &Overrides::new())?;
        base_q.push((m.name, scorer.quality(mean(&base))));
        let (mut ps, mut pr) = (Vec::new(), Vec::new());
        let bar = ctx.bar(SIZES.len() as u64, &format!("{ID}: {}", m.name));
        for (si, &(z, b)) in SIZES.iter().enumerate() {
            let (ov_s, bpw_s) = stack(&lins, z, b, true)?;
            let u_s = scorer.units(m, &ov_s)?;
            drop(ov_s);
            let (ov_r, bpw_r) = stack(&lins, z, b, false)?;
            let u_r = scorer.units(m, &ov_r)?;
            drop(ov_r);
            let (diff, se) = paired_diff(
                &u_r,
                &u_s,
                scorer.block(),
                RESAMPLES,
                seed ^ (mi * 10 + si) as u64,
            );
            let r = Row {
                model: m.name,
                zero_frac: z,
                bits: b,
                bpw_stated: bpw_s,
                bpw_reverse: bpw_r,
                quality_stated: scorer.quality(mean(&u_s)),
                quality_reverse: scorer.quality(mean(&u_r)),
                diff,
                se,
            };
            let _ = writeln!(
                body,
                "| {} | {:.0}%, {b} | {bpw_s:.3} | {bpw_r:.3} | {:.4} | {:.4} | {diff:+.4} | {se:.4} |",
                m.name,
                100.0 * z,
                r.quality_stated,
                r.quality_reverse
            );
            ps.push((bpw_s, mean(&u_s) - mean(&base)));
            pr.push((bpw_r, mean(&u_r) - mean(&base)));
            rows.push(r);
            bar.inc(1);
        }
        bar.finish_and_clear();
        series.push(Series::line(format!("{} Q(P(·)) stated", m.name), ps));
        series.push(Series::line(format!("{} P(Q(·)) reverse", m.name), pr));
    }
    let _ = writeln!(
        body,
        "\nUncompressed: {}.",
        base_q
            .iter()
            .map(|(n, q)| format!("{n} {q:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let names: Vec<&str> = models.iter().map(|m| m.name).collect();
    let verdict = verdict_of(&rows, &names);
    let worse = rows.iter().filter(|r| r.diff > SE_MARGIN * r.se).count();
    let better = rows.iter().filter(|r| r.diff < -SE_MARGIN * r.se).count();
    let mut o = Outcome::new(
        ID,
        verdict,
        rows.iter()
            .map(|r| {
                format!(
                    "{} {:.1} bpw: Q(P) {:.4} vs P(Q) {:.4}",
                    r.model, r.bpw_stated, r.quality_stated, r.quality_reverse
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        "the order distil, prune, quantise",
        format!(
            "stated order worse by > {SE_MARGIN} SE in {worse}/{} cases, better in {better}; rule: supported if never worse, refuted if \
             worse at two of three sizes in a model; {}; SmolLM2 {} tokens, MiniLM {sentences} sentences, seed {seed}",
            rows.len(),
            rows.iter()
                .map(|r| format!("{} {:.0}%/{}b Δ {:+.4} ± {:.4}", r.model, 100.0 * r.zero_frac, r.bits, r.diff, r.se))
                .collect::<Vec<_>>()
                .join(", "),
            windows * context
        ),
    );
    o.figures.push(figure(
        &figdir,
        (
            "intro-stack_order",
            "Loss increase of the two orders at three real sizes, both models",
        ),
        "Prune-then-quantise against quantise-then-prune",
        (
            "stored bits per weight of the block linears",
            "loss increase (NLL nats or 1 − cosine)",
        ),
        (false, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "rows": rows, "uncompressed": base_q});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_orders_on_a_small_matrix() {
        let w: Vec<f32> = (0..64).map(|i| ((i as f32) - 31.5) / 8.0).collect();
        let (a, bits_a) = prune_then_quantize(&w, 0.5, 4).unwrap();
        let (b, bits_b) = quantize_then_prune(&w, 0.5, 4).unwrap();
        assert_eq!(a.iter().filter(|&&x| x == 0.0).count(), 32);
        assert_eq!(b.iter().filter(|&&x| x == 0.0).count(), 32);
        // Q(P): bitmap 64 + 32 codes × 4 + one group (32-bit scale + 4-bit zero).
        assert!((bits_a - (64.0 + 128.0 + 36.0)).abs() < 1e-9, "{bits_a}");
        // P(Q): bitmap 64 + 32 codes × 4 + two groups of side information.
        assert!((bits_b - (64.0 + 128.0 + 72.0)).abs() < 1e-9, "{bits_b}");
        // Survivors are the large-magnitude half in both orders.
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            let big = w[i].abs() > 2.0;
            assert_eq!(x != 0.0, big, "{i}");
            assert_eq!(y != 0.0, big, "{i}");
        }
    }

    #[test]
    fn verdicts() {
        let row = |m: &'static str, diff: f64| Row {
            model: m,
            zero_frac: 0.5,
            bits: 4,
            bpw_stated: 3.0,
            bpw_reverse: 3.0,
            quality_stated: 0.0,
            quality_reverse: 0.0,
            diff,
            se: 0.1,
        };
        let ms = ["a", "b"];
        assert_eq!(
            verdict_of(&[row("a", 0.1), row("b", -0.5)], &ms),
            Verdict::Supported
        );
        assert_eq!(
            verdict_of(&[row("a", 0.3), row("a", 0.3), row("b", 0.0)], &ms),
            Verdict::Refuted
        );
        assert_eq!(
            verdict_of(&[row("a", 0.3), row("b", 0.3)], &ms),
            Verdict::Inconclusive
        );
    }
}
