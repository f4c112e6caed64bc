//! `pipe-thm4`: Hoeffding for calibration, `P(|mean − E f| > ε) ≤ 2 exp(−2nε²/R²)`.
//!
//! Per-token statistics of real activations (the residual stream entering a block of SmolLM2 and
//! MiniLM on Brown calibration text): f = mean |x| over the token's features, and f = max |x|. The
//! pool of tokens is the population: E f is its mean and R its range, so seeded i.i.d. draws of n
//! tokens from it satisfy the theorem's assumptions exactly, and consecutive windows of n tokens
//! show what dependence does. The pool helper is shared with `pipe-scale`.

use anyhow::{bail, Context as _, Result};
use claimlab_budget as budget;
use claimlab_runtime::Capture;
use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::aecl::common::{claim_seed, load_both, passages};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Sample sizes n (8, 16, …, 4096).
pub(crate) const NS: [usize; 10] = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/// Sample sizes with `--quick`.
pub(crate) const NS_QUICK: [usize; 6] = [8, 16, 32, 64, 128, 256];
/// Deviation thresholds ε as multiples of the pool standard deviation of f.
const EPS_SD: [f64; 3] = [0.25, 0.5, 1.0];
/// Draws per (n, kind) (full, quick).
const DRAWS: (usize, usize) = (2000, 200);
/// A violation is an excess over the bound of more than this many binomial standard errors.
const SE_MULT: f64 = 3.0;

/// The per-token activations entering some blocks of one model: `values[k]` is `[tokens, d]` for
/// block `layers[k]`.
pub(crate) struct Pool {
    pub(crate) model: &'static str,
    pub(crate) layers: Vec<usize>,
    pub(crate) d: usize,
    pub(crate) tokens: usize,
    pub(crate) values: Vec<Vec<f32>>,
    /// Passages × tokens per passage.
    pub(crate) passages: (usize, usize),
}

/// Pools of layer inputs of SmolLM2 and MiniLM on seeded Brown calibration passages (every genre
/// but news). Full: SmolLM2 2 × 512 tokens, every third block; MiniLM 8 × 256 tokens, every block.
/// Quick: 1 × 128 and 2 × 128 tokens, two blocks each.
pub(crate) fn layer_input_pools(ctx: &mut Ctx, seed: u64) -> Result<Vec<Pool>> {
    let quick = ctx.opts.quick;
    let models = load_both(ctx)?;
    let mut out = Vec::new();
    for m in &models {
        let causal = m.causal();
        let (count, n) = match (causal, quick) {
            (true, false) => (2, 512),
            (false, false) => (8, 256),
            (true, true) => (1, 128),
            (false, true) => (2, 128),
        };
        let layers: Vec<usize> = if quick {
            vec![0, m.n_layers / 2]
        } else if causal {
            (0..m.n_layers).step_by(3).collect()
        } else {
            (0..m.n_layers).collect()
        };
        let ps = passages(ctx, m, n, count, seed)?;
        let bar = ctx.bar(ps.len() as u64, &format!("{}: layer inputs", m.name));
        let mut values: Vec<Vec<f32>> = vec![Vec::new(); layers.len()];
        let mut d = 0;
        for p in &ps {
            let caps = m.capture(
                p,
                Capture {
                    residual: true,
                    ..Capture::default()
                },
            )?;
            let emb = caps.embeddings.context("embeddings not captured")?;
            d = emb.len() / p.len();
            for (k, &l) in layers.iter().enumerate() {
                if l == 0 {
                    values[k].extend_from_slice(&emb);
                } else {
                    let r = caps
                        .layers
                        .get(l - 1)
                        .and_then(|c| c.residual.as_ref())
                        .context("residual not captured")?;
                    values[k].extend_from_slice(r);
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        if d == 0 {
            bail!("{}: no activations", m.name);
        }
        out.push(Pool {
            model: m.name,
            layers,
            d,
            tokens: count * n,
            values,
            passages: (count, n),
        });
    }
    Ok(out)
}

/// Per-token mean |x| and max |x| of a `[tokens, d]` block.
pub(crate) fn token_stats(values: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    values
        .chunks_exact(d)
        .map(|row| {
            let s: f64 = row.iter().map(|&v| f64::from(v).abs()).sum();
            let m = row.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
            (s / d as f64, m)
        })
        .unzip()
}

/// Hoeffding's two-sided bound `min(1, 2 exp(−2nε²/R²))`.
pub(crate) fn hoeffding_bound(n: usize, eps: f64, range: f64) -> f64 {
    (2.0 * (-2.0 * n as f64 * eps * eps / (range * range)).exp()).min(1.0)
}

/// Empirical probabilities that the mean of n draws deviates from `mu` by more than each `eps`:
/// `draws` i.i.d. draws (with replacement) and `draws` consecutive windows (uniform start, only
/// when n ≤ len). Returns (iid, consecutive) per eps.
pub(crate) fn deviation_probs(
    v: &[f64],
    mu: f64,
    n: usize,
    eps: &[f64],
    draws: usize,
    seed: u64,
) -> (Vec<f64>, Option<Vec<f64>>) {
    let len = v.len();
    let iid_hits: Vec<usize> = (0..draws)
        .into_par_iter()
        .map(|k| {
            let mut r = Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let s: f64 = (0..n).map(|_| v[r.random_range(0..len)]).sum();
            let dev = (s / n as f64 - mu).abs();
            eps.iter()
                .map(|&e| usize::from(dev > e))
                .collect::<Vec<_>>()
        })
        .reduce(
            || vec![0; eps.len()],
            |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
        );
    let iid = iid_hits.iter().map(|&h| h as f64 / draws as f64).collect();
    let consec = (n <= len).then(|| {
        let mut prefix = vec![0.0f64; len + 1];
        for (i, &x) in v.iter().enumerate() {
            prefix[i + 1] = prefix[i] + x;
        }
        let mut r = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5151);
        let mut hits = vec![0usize; eps.len()];
        for _ in 0..draws {
            let s = r.random_range(0..=len - n);
            let dev = ((prefix[s + n] - prefix[s]) / n as f64 - mu).abs();
            for (h, &e) in hits.iter_mut().zip(eps) {
                *h += usize::from(dev > e);
            }
        }
        hits.iter().map(|&h| h as f64 / draws as f64).collect()
    });
    (iid, consec)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, "pipe-thm4");
    let quick = ctx.opts.quick;
    let draws = if quick { DRAWS.1 } else { DRAWS.0 };
    let ns: &[usize] = if quick { &NS_QUICK } else { &NS };
    let figdir = ctx.figures_dir();
    let pools = layer_input_pools(ctx, seed)?;
    let mut rows = Vec::new();
    let (mut checked, mut violations, mut informative) = (0usize, 0usize, 0usize);
    let mut consec_excess = 0usize;
    let mut worst: (f64, String) = (f64::NEG_INFINITY, String::new());
    let mut fig_series: Vec<Series> = Vec::new();
    let bar = ctx.bar(
        pools.iter().map(|p| p.layers.len() as u64).sum::<u64>() * 2,
        "pipe-thm4: draws",
    );
    for (pi, p) in pools.iter().enumerate() {
        for (k, &l) in p.layers.iter().enumerate() {
            let (meanabs, maxabs) = token_stats(&p.values[k], p.d);
            for (fi, (fname, v)) in [("mean abs", &meanabs), ("max abs", &maxabs)]
                .into_iter()
                .enumerate()
            {
                let nn = v.len() as f64;
                let mu = v.iter().sum::<f64>() / nn;
                let sd = (v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / nn).sqrt();
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let range = hi - lo;
                if range.is_nan() || range <= 0.0 {
                    continue;
                }
                let eps: Vec<f64> = EPS_SD.iter().map(|c| c * sd).collect();
                let mut per_n = Vec::new();
                let want_fig = pi == 0 && k == p.layers.len() / 2 && fi == 0;
                let mut fig_pts: Vec<Vec<(f64, f64)>> = vec![Vec::new(); 3];
                for (ni, &n) in ns.iter().enumerate() {
                    let s = seed
                        ^ ((pi as u64) << 48)
                        ^ ((k as u64) << 40)
                        ^ ((fi as u64) << 36)
                        ^ ((ni as u64) << 28);
                    let (iid, consec) = deviation_probs(v, mu, n, &eps, draws, s);
                    let mut cells = Vec::new();
                    for (ei, &e) in eps.iter().enumerate() {
                        let bound = hoeffding_bound(n, e, range);
                        let ph = iid[ei];
                        let se = (ph * (1.0 - ph) / draws as f64).sqrt();
                        checked += 1;
                        if bound < 1.0 {
                            informative += 1;
                        }
                        let excess = ph - bound;
                        if excess > SE_MULT * se {
                            violations += 1;
                        }
                        if excess > worst.0 {
                            worst = (
                                excess,
                                format!(
                                    "{} block {l} {fname} n={n} ε={}σ: {ph:.3} vs bound {bound:.3}",
                                    p.model, EPS_SD[ei]
                                ),
                            );
                        }
                        let pc = consec.as_ref().map(|c| c[ei]);
                        if pc.is_some_and(|pc| {
                            pc - bound > SE_MULT * (pc * (1.0 - pc) / draws as f64).sqrt()
                        }) {
                            consec_excess += 1;
                        }
                        if want_fig && ei == 1 {
                            fig_pts[0].push((n as f64, ph.max(1e-4)));
                            fig_pts[1].push((n as f64, bound.max(1e-4)));
                            if let Some(pc) = pc {
                                fig_pts[2].push((n as f64, pc.max(1e-4)));
                            }
                        }
                        cells.push(json!({"eps": e, "eps_sd": EPS_SD[ei], "bound": bound,
                            "iid": ph, "iid_se": se, "consecutive": pc}));
                    }
                    per_n.push(json!({"n": n, "cells": cells}));
                }
                if want_fig {
                    let title = format!("{} block {l} {fname}, ε = 0.5σ", p.model);
                    let mut it = fig_pts.into_iter();
                    fig_series.push(Series::line(
                        format!("i.i.d. draws ({title})"),
                        it.next().unwrap_or_default(),
                    ));
                    fig_series.push(Series::reference(
                        "Hoeffding bound (capped at 1)",
                        it.next().unwrap_or_default(),
                    ));
                    fig_series.push(Series::points(
                        "consecutive tokens",
                        it.next().unwrap_or_default(),
                    ));
                }
                let n_for = budget::hoeffding_samples(range, 0.5 * sd, 0.05)?;
                rows.push(json!({"model": p.model, "block": l, "f": fname, "mean": mu, "sd": sd,
                    "range": range, "range_over_sd": range / sd, "hoeffding_n_for_half_sd_at_95pct": n_for,
                    "per_n": per_n}));
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let verdict = if violations > 0 {
        Verdict::Refuted
    } else {
        Verdict::Supported
    };
    let measured = format!(
        "{violations} of {checked} (model, block, f, n, ε) cells with i.i.d. draws exceed the bound by \
         > {SE_MULT} SE; bound informative (< 1) in {informative}; consecutive draws exceed it in {consec_excess}"
    );
    let why = format!(
        "{measured}; largest excess {:.3} ({}); {draws} draws per cell, n = {}..{}, seed {}",
        worst.0,
        worst.1,
        ns[0],
        ns[ns.len() - 1],
        ctx.opts.seed
    );
    let mut o = Outcome::new(
        "pipe-thm4",
        verdict,
        measured,
        "P(|mean − E f| > ε) ≤ 2 exp(−2nε²/R²); n = O(R²/ε²)",
        why,
    );
    let mut body = String::new();
    let pool_txt: Vec<String> = pools
        .iter()
        .map(|p| {
            format!(
                "{}: {} passages × {} tokens = {} tokens, blocks {:?}",
                p.model, p.passages.0, p.passages.1, p.tokens, p.layers
            )
        })
        .collect();
    let _ = writeln!(
        body,
        "Pools (Brown calibration genres, seeded passages): {}. The papers entry asks for a pool of \
         200,000 tokens; SmolLM2 forward passes on 2 shared cores allow about a thousand in the time \
         budget, so the pool is treated as the population: E f = its mean, R = its range, and draws \
         are i.i.d. with replacement from it (exactly the theorem's setting, so a violation would be \
         a bug). f = per-token mean abs(x) and max abs(x) of the block's input. ε = {EPS_SD:?} × the pool \
         standard deviation of f; {draws} draws per (n, ε); consecutive windows start uniformly \
         (n ≤ pool size only). The bound is capped at 1 when vacuous.\n",
        pool_txt.join("; ")
    );
    let _ = writeln!(
        body,
        "| model | block | f | R/σ | n for ±0.5σ at 95% (Hoeffding) | P̂ iid at n=8, ε=0.5σ | bound | P̂ consecutive |\n|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        let c = &r["per_n"][0]["cells"][1];
        let _ = writeln!(
            body,
            "| {} | {} | {} | {:.1} | {} | {:.3} | {:.3} | {} |",
            r["model"].as_str().unwrap_or(""),
            r["block"],
            r["f"].as_str().unwrap_or(""),
            r["range_over_sd"].as_f64().unwrap_or(f64::NAN),
            r["hoeffding_n_for_half_sd_at_95pct"],
            c["iid"].as_f64().unwrap_or(f64::NAN),
            c["bound"].as_f64().unwrap_or(f64::NAN),
            c["consecutive"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.3}"))
        );
    }
    let _ = writeln!(
        body,
        "\nThe bound holds but is loose: R is set by the rarest tokens (R/σ in the table), so \
         n = O(R²/ε²) asks for far more samples than the deviations need; the per-token max (first \
         tokens carry outsized activations) makes it worse. Consecutive tokens are correlated, so \
         their deviations are larger than i.i.d. ones at the same n (noted, not counted)."
    );
    let chart = Chart {
        title: "pipe-thm4: deviation probability against Hoeffding's bound".into(),
        x_label: "n (tokens)".into(),
        y_label: "P(|mean − E f| > ε)".into(),
        log_x: true,
        log_y: true,
        series: fig_series,
    };
    o.figures.push(chart.save(
        &figdir,
        "pipe-thm4_deviation",
        "Empirical probability of a deviation larger than ε = 0.5σ for i.i.d. and consecutive draws, \
         against the Hoeffding bound (values floored at 1e-4 for the log axis).",
    )?);
    o.body = body;
    o.numbers = json!({"seed": ctx.opts.seed, "claim_seed": seed, "draws": draws, "ns": ns,
        "eps_sd": EPS_SD, "cells_checked": checked, "violations": violations,
        "informative_cells": informative, "consecutive_excess": consec_excess,
        "largest_excess": worst.0, "largest_excess_at": worst.1, "rows": rows});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_formula_and_cap() {
        // 2 exp(−2·100·0.1²/1) = 2 e^−2
        assert!((hoeffding_bound(100, 0.1, 1.0) - 2.0 * (-2.0f64).exp()).abs() < 1e-15);
        assert!((hoeffding_bound(1, 0.01, 1.0) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn token_stats_by_hand() {
        let (m, x) = token_stats(&[1.0, -3.0, 0.5, 0.5], 2);
        assert!((m[0] - 2.0).abs() < 1e-12 && (x[0] - 3.0).abs() < 1e-12);
        assert!((m[1] - 0.5).abs() < 1e-12 && (x[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn deviation_probabilities_of_a_fair_coin_match_the_binomial() {
        // v ∈ {0, 1} half each: P(|mean − ½| > 0.2) at n = 10 is P(X ≤ 2 or X ≥ 8) = 112/1024.
        let v: Vec<f64> = (0..1000).map(|i| f64::from(i % 2)).collect();
        let (iid, consec) = deviation_probs(&v, 0.5, 10, &[0.2, 0.6], 20_000, 9);
        let want: f64 = 112.0 / 1024.0;
        let se = (want * (1.0 - want) / 20_000.0).sqrt();
        // 4.5 SE: false alarm rate below 1e-5.
        assert!((iid[0] - want).abs() < 4.5 * se, "{} vs {want}", iid[0]);
        assert!(iid[1].abs() < 1e-12);
        // Alternating values: every window of 10 has mean exactly ½.
        assert!(consec.unwrap()[0].abs() < 1e-12);
        assert!(deviation_probs(&v, 0.5, 2000, &[0.2], 10, 1).1.is_none());
    }
}
