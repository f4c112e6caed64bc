//! `sys-1.topology`: "persistent homology keeps the model's important features with guaranteed
//! error bounds". The ccd-2.1 run (same process, run once) for the bound d_B ≤ 2δ, plus what
//! "important features" could mean operationally: MiniLM's loss (1 − mean cosine of sentence
//! embeddings to the uncompressed model, the ccd-6.1 MiniLM protocol) with the same matrices
//! compressed at each level, beside the level's bottleneck distance, and the Spearman correlation of
//! the two across levels.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context as _, Result};
use claimlab_runtime::{cosine, embeddings, BertModel, Overrides, TextTokenizer};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use super::claim_3_bounds::outcome_of;
use crate::aecl::common::spearman_test;
use crate::ccd::claim_2_1::{sources, Compression, Source};
use crate::ccd::claim_3_1::brown_sentences;
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// The rule: below this Spearman correlation between d_B and loss change across levels, small
/// d_B does not indicate small damage and the "guarantee" of preserved function is refuted.
const MIN_RHO: f64 = 0.5;
/// Permutations of the Spearman test (seeded).
const PERMS: usize = 9_999;
/// Brown sentences for the loss (full mode). The ccd-6.1 protocol names 500; see the body.
const SENTENCES: usize = 64;
/// Sentences with `--quick`.
const SENTENCES_QUICK: usize = 12;

/// One compression level: its ccd-2.1 bottleneck distances and the measured loss.
#[derive(Clone, Debug, Serialize)]
struct Level {
    compression: Compression,
    method: &'static str,
    label: String,
    bits_per_param: f64,
    /// Median over clouds of max(d_B H0, d_B H1) / the cloud's scale (ccd-2.1).
    rel_db: f64,
    /// Median over clouds of max(d_B H0, d_B H1), absolute (the larger of the two medians).
    abs_db: f64,
    /// 1 − mean cosine of the compressed model's sentence embeddings to the original ones.
    loss: f64,
    /// Smallest cosine over the sentences.
    min_cosine: f64,
}

/// The ccd-2.1 per-compression table, keyed back to the compressions.
fn db_table(numbers: &Value) -> Result<Vec<(Compression, f64, f64, f64)>> {
    let rows = numbers["table"]
        .as_array()
        .ok_or_else(|| anyhow!("ccd-2.1 numbers have no `table`"))?;
    let comps = Compression::all();
    let f = |r: &Value, k: &str| {
        r[k].as_f64()
            .ok_or_else(|| anyhow!("ccd-2.1 table row without `{k}`"))
    };
    let mut out = Vec::new();
    for c in comps {
        let label = c.label();
        let r = rows
            .iter()
            .find(|r| r["compression"].as_str() == Some(label.as_str()))
            .ok_or_else(|| anyhow!("ccd-2.1 table has no row for {label}"))?;
        let abs = f(r, "median_db_h0")?.max(f(r, "median_db_h1")?);
        out.push((c, f(r, "median_rel_db")?, abs, f(r, "bits_per_param")?));
    }
    Ok(out)
}

/// 1 − mean cosine and the smallest cosine of `comp` against `base`, row by row.
fn embedding_loss(base: &[Vec<f32>], comp: &[Vec<f32>]) -> Result<(f64, f64)> {
    if base.is_empty() || base.len() != comp.len() {
        bail!(
            "{} original and {} compressed embeddings",
            base.len(),
            comp.len()
        );
    }
    let cos: Vec<f64> = base.iter().zip(comp).map(|(a, b)| cosine(a, b)).collect();
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    Ok((
        1.0 - mean,
        cos.iter().copied().fold(f64::INFINITY, f64::min),
    ))
}

/// Spearman's ρ of the two columns over levels and its permutation p-value.
fn rho_of(levels: &[Level], x: fn(&Level) -> f64, seed: u64) -> (f64, f64) {
    let xs: Vec<f64> = levels.iter().map(x).collect();
    let ys: Vec<f64> = levels.iter().map(|l| l.loss).collect();
    spearman_test(&xs, &ys, PERMS, seed)
}

/// The rule: ccd-2.1's verdict on the bound, refuted as a guarantee when ρ < MIN_RHO, inconclusive
/// when ccd-2.1 is (or when ρ is undefined).
fn verdict(base: Verdict, rho: f64) -> Verdict {
    match base {
        Verdict::Inconclusive | Verdict::NotImplemented | Verdict::Failed => base,
        _ if rho.is_nan() => Verdict::Inconclusive,
        _ if rho < MIN_RHO => Verdict::Refuted,
        v => v,
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let quick = ctx.opts.quick;
    let seed = ctx.opts.seed;
    let figdir = ctx.figures_dir();
    let base = outcome_of(ctx, "ccd-2.1")?;
    let table = db_table(&base.numbers)?;

    // The same matrices ccd-2.1 turned into clouds (quick: first and last layer only).
    let (srcs, weights, tok, bert) = {
        let enc = ctx.encoder()?;
        let last = enc.config().n_layers.saturating_sub(1);
        let srcs: Vec<Source> = sources(enc)
            .into_iter()
            .filter(|s| !quick || s.layer == 0 || s.layer == last)
            .collect();
        let weights: Vec<Vec<f32>> = srcs
            .iter()
            .map(|s| enc.tensor_f32(&s.name).with_context(|| s.name.clone()))
            .collect::<Result<_>>()?;
        (
            srcs,
            weights,
            TextTokenizer::for_model(enc)?,
            BertModel::load(enc)?,
        )
    };
    let n_sent = if quick { SENTENCES_QUICK } else { SENTENCES };
    let sentences: Vec<Vec<u32>> = brown_sentences(ctx, n_sent)?
        .iter()
        .map(|s| tok.encode(s))
        .collect::<std::result::Result<_, _>>()?;
    let original = embeddings(&bert, &sentences, &Overrides::new())?;

    let bar = ctx.bar(table.len() as u64, "sys-1.topology: loss per level");
    let mut levels = Vec::new();
    for &(c, rel_db, abs_db, bpp) in &table {
        let compressed: Vec<Vec<f32>> = srcs
            .par_iter()
            .zip(&weights)
            .map(|(s, w)| c.apply(w, s.rows, s.cols))
            .collect::<Result<_>>()?;
        let ov: Overrides = srcs
            .iter()
            .map(|s| s.name.clone())
            .zip(compressed)
            .collect();
        let emb = embeddings(&bert, &sentences, &ov)?;
        let (loss, min_cosine) = embedding_loss(&original, &emb)?;
        levels.push(Level {
            compression: c,
            method: c.method(),
            label: c.label(),
            bits_per_param: bpp,
            rel_db,
            abs_db,
            loss,
            min_cosine,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();

    let (rho, p) = rho_of(&levels, |l| l.rel_db, seed);
    let (rho_abs, p_abs) = rho_of(&levels, |l| l.abs_db, seed.wrapping_add(1));
    let v = verdict(base.verdict, rho);

    let measured = format!(
        "ccd-2.1 {}; Spearman ρ(d_B, loss) = {rho:.2} over {} levels (p = {p:.3})",
        base.verdict.label(),
        levels.len()
    );
    let why = format!(
        "bound: ccd-2.1 {} ({}); function: Spearman ρ between the level's median relative d_B and \
         MiniLM's embedding loss is {rho:.2} (p = {p:.3}, {PERMS} permutations; absolute d_B: \
         {rho_abs:.2}) over {} levels on {n_sent} Brown sentences, rule threshold {MIN_RHO}; \
         seed {seed}",
        base.verdict.label(),
        base.measured,
        levels.len()
    );
    let mut o = Outcome::new(
        "sys-1.topology",
        v,
        measured,
        "important features kept with a guaranteed error bound (d_B ≤ ε)",
        why,
    );

    let mut body = format!(
        "**Rule.** The ccd-2.1 verdict on the bound; refuted as a guarantee of preserved function if \
         the Spearman correlation between d_B and the loss change across compression levels is below \
         {MIN_RHO}; inconclusive if ccd-2.1 is.\n\n\
         **Method.** The ccd-2.1 run of this process gives, per compression level (uniform \
         quantisation 2..8 bits, magnitude pruning 10..90%, truncated SVD), the median over MiniLM \
         point clouds of max(d_B H0, d_B H1), absolute and relative to the cloud's scale (its \
         largest finite death). The same {} weight matrices ({}) are compressed at the same level \
         and put into the model together; the loss is 1 − mean cosine between its sentence \
         embeddings and the uncompressed model's (the ccd-6.1 MiniLM loss) on the first {n_sent} \
         Brown sentences of 6..30 words in document order (the news genre comes first; the same \
         sentences as sys-1.algebra). The papers protocol of ccd-6.1 names 500 sentences; \
         {n_sent} keep the {} levels × forward passes within the 2-core budget (the loss of a level \
         is a mean over sentences, so it ranks the levels well before 500). The correlation is \
         taken on the relative d_B (decided before the run; the absolute one is shown beside it), \
         p-value from {PERMS} seeded permutations (seed {seed}).\n\n",
        srcs.len(),
        if quick {
            "first and last layer, as ccd-2.1 with --quick"
        } else {
            "Q, K, V, attention output, MLP up and down of every layer"
        },
        levels.len()
    );
    let _ = writeln!(
        body,
        "| level | bits/param | median d_B / scale | median d_B | loss 1 − cos | min cos |\n|---|---|---|---|---|---|"
    );
    for l in &levels {
        let _ = writeln!(
            body,
            "| {} | {:.2} | {:.4} | {:.4} | {:.2e} | {:.4} |",
            l.label, l.bits_per_param, l.rel_db, l.abs_db, l.loss, l.min_cosine
        );
    }
    let mut per_method = Vec::new();
    for m in ["quantisation", "pruning", "truncated SVD"] {
        let sub: Vec<Level> = levels.iter().filter(|l| l.method == m).cloned().collect();
        let (r, _) = rho_of(&sub, |l| l.rel_db, seed.wrapping_add(2));
        per_method.push(json!({"method": m, "levels": sub.len(), "rho": r}));
    }
    let _ = writeln!(
        body,
        "\nSpearman ρ(relative d_B, loss) over all {} levels: {rho:.3} (p = {p:.4}); absolute d_B: \
         {rho_abs:.3} (p = {p_abs:.4}). Within one method: {}. Within a method both quantities \
         shrink as the level gets milder, so a high within-method ρ says little; the rule looks \
         across methods, where a guarantee stated in d_B would have to rank damage. The bound part \
         is ccd-2.1's: {}",
        levels.len(),
        per_method
            .iter()
            .map(|r| format!(
                "{} ρ = {:.2}",
                r["method"].as_str().unwrap_or(""),
                r["rho"].as_f64().unwrap_or(f64::NAN)
            ))
            .collect::<Vec<_>>()
            .join(", "),
        base.why
    );
    o.body = body;

    let series: Vec<Series> = ["quantisation", "pruning", "truncated SVD"]
        .iter()
        .map(|m| {
            Series::points(
                *m,
                levels
                    .iter()
                    .filter(|l| l.method == *m && l.rel_db > 0.0 && l.loss > 0.0)
                    .map(|l| (l.rel_db, l.loss))
                    .collect(),
            )
        })
        .collect();
    let chart = Chart {
        title: format!("sys-1.topology: embedding loss against d_B (ρ = {rho:.2})"),
        x_label: "median d_B / cloud scale (log10)".into(),
        y_label: "MiniLM loss 1 − mean cosine (log10)".into(),
        log_x: true,
        log_y: true,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "sys-1.topology_loss_vs_db",
        "Each point: one compression level of ccd-2.1; x its median relative bottleneck distance \
         over MiniLM clouds, y the loss of MiniLM with the same matrices compressed",
    )?);
    o.figures.extend(base.figures.iter().cloned());
    o.numbers = json!({
        "ccd_2_1_verdict": base.verdict, "min_rho": MIN_RHO, "rho_rel_db": rho, "p_rel_db": p,
        "rho_abs_db": rho_abs, "p_abs_db": p_abs, "permutations": PERMS, "sentences": n_sent,
        "matrices": srcs.len(), "seed": seed, "per_method": per_method, "levels": levels,
    });
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        assert_eq!(verdict(Verdict::Supported, 0.8), Verdict::Supported);
        assert_eq!(verdict(Verdict::Supported, 0.3), Verdict::Refuted);
        assert_eq!(verdict(Verdict::Refuted, 0.9), Verdict::Refuted);
        assert_eq!(verdict(Verdict::Inconclusive, 0.1), Verdict::Inconclusive);
        assert_eq!(verdict(Verdict::Supported, f64::NAN), Verdict::Inconclusive);
    }

    #[test]
    fn loss_of_identical_and_opposite_embeddings() {
        let a = vec![vec![1.0f32, 0.0], vec![0.0, 2.0]];
        let (l, m) = embedding_loss(&a, &a).unwrap();
        assert!(l.abs() < 1e-12 && (m - 1.0).abs() < 1e-12);
        let b = vec![vec![1.0f32, 0.0], vec![0.0, -2.0]];
        let (l, m) = embedding_loss(&a, &b).unwrap();
        assert!((l - 1.0).abs() < 1e-12 && (m + 1.0).abs() < 1e-12);
        assert!(embedding_loss(&a, &b[..1]).is_err());
    }

    #[test]
    fn reads_every_level_of_the_ccd_2_1_table() {
        let rows: Vec<Value> = Compression::all()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"compression": c.label(), "median_rel_db": i as f64,
                       "median_db_h0": 1.0, "median_db_h1": 2.0, "bits_per_param": 4.0})
            })
            .collect();
        let t = db_table(&json!({ "table": rows })).unwrap();
        assert_eq!(t.len(), Compression::all().len());
        assert!((t[3].1 - 3.0).abs() < 1e-15 && (t[3].2 - 2.0).abs() < 1e-15);
        let short = json!({"table": [rows[0].clone()]});
        assert!(db_table(&short).is_err());
    }

    #[test]
    fn rho_over_levels() {
        let mk = |x: f64, loss: f64| Level {
            compression: Compression::Quant(4),
            method: "quantisation",
            label: String::new(),
            bits_per_param: 4.0,
            rel_db: x,
            abs_db: x,
            loss,
            min_cosine: 1.0,
        };
        let up: Vec<Level> = (0..10)
            .map(|i| mk(f64::from(i), f64::from(i * i)))
            .collect();
        assert!((rho_of(&up, |l| l.rel_db, 1).0 - 1.0).abs() < 1e-12);
        let down: Vec<Level> = (0..10).map(|i| mk(f64::from(i), -f64::from(i))).collect();
        assert!((rho_of(&down, |l| l.rel_db, 1).0 + 1.0).abs() < 1e-12);
    }
}
