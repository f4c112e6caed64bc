//! `aecl-2.adaptive`: "the funnel justifies layer-adaptive compression". Truncated SVD of every block
//! linear at equal total stored size, three allocations of rank over layers: uniform, proportional
//! to each layer's measured attention effective rank (aecl-2's measurement: deep, sparser layers get
//! less), and the reverse permutation of that allocation as a control; loss on held-out Brown news.

use anyhow::Result;
use claimlab_runtime::Overrides;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::claim_2::measure;
use super::common::{figure, start};
use super::compress::{
    all_factors, block_linears, margin_verdict, mean, paired_diff, probe_sizes, Scorer,
};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-2.adaptive";
/// Uniform rank as a fraction of each matrix's smaller side.
const UNIFORM_FRAC: f64 = 0.375;
/// The rule's margin in standard errors.
const SE_MARGIN: f64 = 2.0;
/// Bootstrap resamples.
const RESAMPLES: usize = 500;

/// Integer ranks `r_l ∈ [1, cap]` proportional to `weights`, summing to `total` (clamped to
/// `[len, len·cap]`): proportional shares with the clamped layers fixed and the rest re-spread,
/// then largest-remainder rounding.
pub(crate) fn allocate(weights: &[f64], total: usize, cap: usize) -> Vec<usize> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let cap = cap.max(1);
    let total = total.clamp(n, n * cap) as f64;
    let mut share = vec![0.0f64; n];
    let mut fixed = vec![false; n];
    loop {
        let left = total
            - share
                .iter()
                .zip(&fixed)
                .filter(|p| *p.1)
                .map(|p| p.0)
                .sum::<f64>();
        let wsum: f64 = weights
            .iter()
            .zip(&fixed)
            .filter(|p| !*p.1)
            .map(|p| p.0.max(0.0))
            .sum();
        let free = fixed.iter().filter(|f| !**f).count();
        let s: Vec<f64> = (0..n)
            .map(|i| {
                if wsum > 0.0 {
                    left * weights[i].max(0.0) / wsum
                } else {
                    left / free.max(1) as f64
                }
            })
            .collect();
        // Fix the over-cap layers first, then (only when none is over) the under-1 layers.
        let over: Vec<usize> = (0..n).filter(|&i| !fixed[i] && s[i] > cap as f64).collect();
        let under: Vec<usize> = (0..n).filter(|&i| !fixed[i] && s[i] < 1.0).collect();
        let (set, value) = if !over.is_empty() {
            (over, cap as f64)
        } else if !under.is_empty() {
            (under, 1.0)
        } else {
            for i in (0..n).filter(|&i| !fixed[i]) {
                share[i] = s[i];
            }
            break;
        };
        for i in set {
            share[i] = value;
            fixed[i] = true;
        }
        if fixed.iter().all(|&f| f) {
            break;
        }
    }
    let mut r: Vec<usize> = share.iter().map(|s| s.floor() as usize).collect();
    let mut rest = total as usize - r.iter().sum::<usize>().min(total as usize);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        (share[b] - share[b].floor())
            .total_cmp(&(share[a] - share[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(4 * n) {
        if rest == 0 {
            break;
        }
        if r[i] < cap {
            r[i] += 1;
            rest -= 1;
        }
    }
    r
}

/// The allocation reversed by rank order of `weights`: the layer with the k-th largest weight gets
/// the rank that `alloc` gives the layer with the k-th smallest.
pub(crate) fn reverse_allocation(weights: &[f64], alloc: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[a].total_cmp(&weights[b]).then(a.cmp(&b)));
    let mut out = vec![0; alloc.len()];
    let n = order.len();
    for k in 0..n {
        out[order[n - 1 - k]] = alloc[order[k]];
    }
    out
}

#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    model: &'static str,
    allocation: &'static str,
    stored_bits: f64,
    quality: f64,
    /// Mean loss minus the uniform allocation's (negative: better).
    diff_vs_uniform: f64,
    se: f64,
}

fn verdict_of(funnel: &[&Row]) -> Verdict {
    margin_verdict(funnel.iter().map(|r| (r.diff_vs_uniform, r.se)), SE_MARGIN)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let quick = ctx.opts.quick;
    let (n, count) = if quick { (128, 1) } else { (128, 4) };
    let (windows, context, sentences, every) = probe_sizes(quick);
    let mut body = format!(
        "Per layer, the mean attention effective rank over heads (aecl-2's measure, {count} Brown passages of \
         {n} tokens). Every block linear of {} replaced by its truncated SVD (f32 factors). Uniform: rank \
         {UNIFORM_FRAC} × min(m, n) in every layer. Funnel: per matrix role, ranks proportional to the layer's \
         effective rank with the same total (so the same stored bits), capped at full rank. Reverse: the \
         funnel's ranks permuted so the layer with the highest effective rank gets the lowest. Loss: SmolLM2 \
         per-token NLL on {} held-out Brown news tokens (the rule's 8 × 512 did not fit the 2-core budget), \
         MiniLM 1 − cosine on {sentences} sentences; paired moving-block bootstrap SE ({RESAMPLES} resamples) \
         of the difference to uniform. Seed {seed}.\n\n\
         | model | allocation | stored MB | quality | loss − uniform | SE |\n|---|---|---|---|---|---|\n",
        if quick { "every third block (quick)" } else { "every block" },
        windows * context
    );
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut erank_note = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        let er = measure(ctx, m, n, count, seed)?;
        let per_layer: Vec<f64> = er
            .head_erank
            .chunks(m.n_heads)
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        series.push(Series::line(
            format!("{} attention effective rank (per layer)", m.name),
            per_layer
                .iter()
                .enumerate()
                .map(|(l, &e)| (l as f64, e))
                .collect(),
        ));
        erank_note.push(format!(
            "{}: first layer {:.1}, last {:.1}",
            m.name,
            per_layer.first().copied().unwrap_or(f64::NAN),
            per_layer.last().copied().unwrap_or(f64::NAN)
        ));
        let scorer = Scorer::new(ctx, m, windows, context, sentences)?;
        let lins = {
            let model = m.weights(ctx)?;
            block_linears(model, every)?
        };
        // Ranks per allocation, per linear (same order as `lins`).
        let mut by_role: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, l) in lins.iter().enumerate() {
            by_role.entry(format!("{:?}", l.role)).or_default().push(i);
        }
        let mut ranks = [
            vec![0usize; lins.len()],
            vec![0; lins.len()],
            vec![0; lins.len()],
        ];
        for idx in by_role.values() {
            let cap = lins[idx[0]].rows.min(lins[idx[0]].cols);
            let r0 = ((UNIFORM_FRAC * cap as f64).round() as usize).max(1);
            let w: Vec<f64> = idx.iter().map(|&i| per_layer[lins[i].layer]).collect();
            let funnel = allocate(&w, r0 * idx.len(), cap);
            let reverse = reverse_allocation(&w, &funnel);
            for (k, &i) in idx.iter().enumerate() {
                ranks[0][i] = r0;
                ranks[1][i] = funnel[k];
                ranks[2][i] = reverse[k];
            }
        }
        let sp = ctx.spinner(&format!("{ID}: SVD of {} {} linears", lins.len(), m.name));
        let factors = all_factors(&lins, 1.0)?;
        sp.finish_and_clear();
        let base = scorer.units(m, &Overrides::new())?;
        let mut units = Vec::new();
        let mut bits = Vec::new();
        let bar = ctx.bar(3, &format!("{ID}: {} allocations", m.name));
        for rk in &ranks {
            let mut ov = Overrides::new();
            let mut b = 0.0;
            for ((l, f), &r) in lins.iter().zip(&factors).zip(rk) {
                ov.insert(l.name.clone(), f.reconstruct(r));
                b += 32.0 * (r * (l.rows + l.cols)) as f64;
            }
            units.push(scorer.units(m, &ov)?);
            bits.push(b);
            bar.inc(1);
        }
        bar.finish_and_clear();
        for (k, name) in ["uniform", "funnel", "reverse"].iter().enumerate() {
            let (diff, se) = if k == 0 {
                (0.0, 0.0)
            } else {
                paired_diff(
                    &units[0],
                    &units[k],
                    scorer.block(),
                    RESAMPLES,
                    seed ^ (mi * 10 + k) as u64,
                )
            };
            let r = Row {
                model: m.name,
                allocation: name,
                stored_bits: bits[k],
                quality: scorer.quality(mean(&units[k])),
                diff_vs_uniform: diff,
                se,
            };
            let _ = writeln!(
                body,
                "| {} | {name} | {:.2} | {:.4} | {diff:+.4} | {se:.4} |",
                m.name,
                bits[k] / 8e6,
                r.quality
            );
            rows.push(r);
        }
        let _ = writeln!(
            body,
            "| {} | uncompressed | | {:.4} | | |",
            m.name,
            scorer.quality(mean(&base))
        );
    }
    let _ = writeln!(
        body,
        "\nAttention effective rank: {}.",
        erank_note.join("; ")
    );
    let funnel: Vec<&Row> = rows.iter().filter(|r| r.allocation == "funnel").collect();
    let verdict = verdict_of(&funnel);
    let mut o = Outcome::new(
        ID,
        verdict,
        funnel
            .iter()
            .map(|r| format!("{} funnel − uniform loss {:+.4} ± {:.4}", r.model, r.diff_vs_uniform, r.se))
            .collect::<Vec<_>>()
            .join("; "),
        "funnel-guided (layer-adaptive) compression is better",
        format!(
            "{}; rule: supported if the funnel allocation beats uniform by > {SE_MARGIN} SE in both models, refuted if worse by \
             > {SE_MARGIN} SE in either; equal stored bits; SmolLM2 {} tokens, MiniLM {sentences} sentences, seed {seed}",
            rows.iter()
                .filter(|r| r.allocation != "uniform")
                .map(|r| format!("{} {} Δ {:+.4} ± {:.4}", r.model, r.allocation, r.diff_vs_uniform, r.se))
                .collect::<Vec<_>>()
                .join(", "),
            windows * context
        ),
    );
    o.figures.push(figure(
        &figdir,
        (
            "aecl-2.adaptive_erank",
            "Per-layer attention effective rank that sets the funnel allocation of SVD ranks",
        ),
        "Attention effective rank per layer (the allocation's weights)",
        ("layer", "mean effective rank over heads"),
        (false, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "uniform_frac": UNIFORM_FRAC, "rows": rows});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_sums_and_caps() {
        let r = allocate(&[1.0, 2.0, 3.0, 2.0], 40, 100);
        assert_eq!(r.iter().sum::<usize>(), 40);
        assert_eq!(r, vec![5, 10, 15, 10]);
        // The cap binds: the excess goes to the others.
        let r = allocate(&[1.0, 1.0, 10.0], 30, 12);
        assert_eq!(r.iter().sum::<usize>(), 30);
        assert_eq!(r[2], 12);
        assert_eq!(r[0] + r[1], 18);
        // Every layer keeps rank ≥ 1.
        let r = allocate(&[0.0, 1.0], 10, 9);
        assert_eq!(r, vec![1, 9]);
        assert!(allocate(&[], 3, 3).is_empty());
    }

    #[test]
    fn reverse_permutes() {
        let w = [3.0, 1.0, 2.0];
        let a = [30, 10, 20];
        assert_eq!(reverse_allocation(&w, &a), vec![10, 30, 20]);
    }

    #[test]
    fn verdicts() {
        let row = |d: f64| Row {
            model: "m",
            allocation: "funnel",
            stored_bits: 1.0,
            quality: 1.0,
            diff_vs_uniform: d,
            se: 0.1,
        };
        let (a, b, c) = (row(-0.3), row(-0.25), row(0.3));
        assert_eq!(verdict_of(&[&a, &b]), Verdict::Supported);
        assert_eq!(verdict_of(&[&a, &c]), Verdict::Refuted);
        let d = row(-0.1);
        assert_eq!(verdict_of(&[&a, &d]), Verdict::Inconclusive);
    }
}
