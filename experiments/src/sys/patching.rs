//! Activation patching for `sys-2.identify` and `claimlab features find`: the causal effect of
//! each layer's concept activations, measured by patching them between examples with and without
//! the concept through the runtime's residual-stream hook ([`ResidualPatch`]).
//!
//! For a held-out positive example p paired with a seeded held-out negative example q, at layer l
//! the residual stream of p's run is patched so that its coordinate along the layer's unit
//! difference-of-means direction `u_l` takes q's value, and everything orthogonal to `u_l` is kept:
//! `x' = x_p + u_l u_lᵀ (x_q − x_p)` (an interchange intervention on the concept's 1-D subspace;
//! for the sentence-level `news` concept every text token is shifted by `u_l u_lᵀ (x̄_q − x̄_p)` so
//! that the mean-pooled coordinate becomes q's). Two outcomes are compared with p's unpatched run:
//! - the concept score at the last block, `u_Lᵀ x_L` at the example (mean-pooled for `news`), as a
//!   fraction of the training-set class gap `u_Lᵀ(μ₊ − μ₋)` (−1: p now scores like an average
//!   negative);
//! - SmolLM2 only: the log-probability of the actual next token at the example position (for
//!   `digit` that is the digit; for `news` the mean over the sentence's tokens), in nats.
//!
//! Patching the whole residual vector instead would replace the token itself and move every
//! outcome at every layer; restricting the swap to the concept direction measures what the
//! concept's coordinate causes downstream.
//!
//! Cost: each pair's clean run is made once, capturing the residual stream after every block;
//! each patched SmolLM2 run then resumes after the patched block from the patched stream
//! ([`claimlab_runtime::LlamaModel::forward_from_layer`]) rather than recomputing the blocks
//! below it, and for the token-level concepts (the example is the last token of the causal
//! prefix) only that token is recomputed, on a key/value cache of the tokens before it. Both
//! shortcuts are exact (the runtime tests them against the full forward pass).

use anyhow::{bail, Context as _, Result};
use claimlab_concepts::mean_difference;
use claimlab_runtime::{Capture, Hooks, LlamaOutput, Overrides, ResidualPatch};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::Serialize;

use super::features::{nll, rows, Change, ConceptData, ModelData};
use crate::aecl::common::{rng, Loaded, Net};

/// Causal effect of patching one layer.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PatchEffect {
    /// Block whose output is patched.
    pub layer: usize,
    /// Mean change of the last-block concept score as a fraction of the class gap, with its
    /// bootstrap 95% interval over pairs.
    pub score: Change,
    /// SmolLM2: mean change of the target log-probability (nats) with its bootstrap interval.
    pub logp: Option<Change>,
    /// Standard error of the mean log-probability change.
    pub logp_se: Option<f64>,
}

/// Layers patched: every `stride`-th block plus `extra` (sorted, distinct).
pub(crate) fn layer_grid(n_layers: usize, stride: usize, extra: &[usize]) -> Vec<usize> {
    let mut g: Vec<usize> = (0..n_layers).step_by(stride.max(1)).collect();
    g.extend(extra.iter().copied().filter(|&l| l < n_layers));
    g.sort_unstable();
    g.dedup();
    g
}

/// `x + u uᵀ (target − x)` for a unit vector `u`: `x` with its coordinate along `u` replaced by
/// `target`'s.
pub(crate) fn swap_along(x: &[f64], target: &[f64], u: &[f64]) -> Vec<f64> {
    let c: f64 = u
        .iter()
        .zip(target.iter().zip(x))
        .map(|(ui, (t, xi))| ui * (t - xi))
        .sum();
    x.iter().zip(u).map(|(xi, ui)| xi + c * ui).collect()
}

fn unit(v: &[f64]) -> Result<Vec<f64>> {
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if !(n > 0.0 && n.is_finite()) {
        bail!("zero or non-finite concept direction");
    }
    Ok(v.iter().map(|a| a / n).collect())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Standard error of the mean.
pub(crate) fn std_error(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
}

/// Mean over `rows` of the `d`-wide rows of `a`, projected on `u` (`d = u.len()`).
fn pooled_score(a: &[f32], rows: &[usize], u: &[f64]) -> f64 {
    let d = u.len();
    let mut pooled = vec![0.0f64; d];
    for &r in rows {
        for (p, &v) in pooled.iter_mut().zip(&a[r * d..(r + 1) * d]) {
            *p += f64::from(v);
        }
    }
    for p in &mut pooled {
        *p /= rows.len() as f64;
    }
    dot(&pooled, u)
}

/// Mean log-probability of `targets` (absolute position, next token) under `o`, whose row 0 is
/// position `first`; `None` without targets.
fn mean_logp(o: &LlamaOutput, targets: &[(usize, u32)], first: usize) -> Option<f64> {
    if targets.is_empty() {
        return None;
    }
    let s: f64 = targets
        .iter()
        .map(|&(t, y)| -nll(o.row(t - first), y))
        .sum();
    Some(s / targets.len() as f64)
}

fn residuals_of(caps: claimlab_runtime::Captures) -> Result<Vec<Vec<f32>>> {
    caps.layers
        .into_iter()
        .map(|l| l.residual.context("residual not captured"))
        .collect()
}

fn capture_residual(layers: Option<Vec<usize>>) -> Hooks {
    Hooks {
        capture: Capture {
            residual: true,
            layers,
            ..Capture::default()
        },
        overrides: Overrides::new(),
    }
}

/// The stream after block `l` with `shift` added to each row of `rows_of`.
fn shifted(res: &[f32], rows_of: &[usize], shift: &[f64]) -> Vec<f32> {
    let d = shift.len();
    let mut x = res.to_vec();
    for &i in rows_of {
        for (v, &s) in x[i * d..(i + 1) * d].iter_mut().zip(shift) {
            *v = (f64::from(*v) + s) as f32;
        }
    }
    x
}

/// Per patched layer: (score change / gap, log-probability change).
type PairOut = Vec<(f64, Option<f64>)>;

/// One pair's effects at every layer of `layers`. The clean run is made once (with every
/// block's residual stream captured); each patched run then resumes from the patched layer
/// ([`LlamaModel::forward_from_layer`]) instead of recomputing the blocks below it, and for a
/// one-token example (`single`, the token is the last of the causal prefix) it recomputes that
/// token only, on a key/value cache of the tokens before it, since patching the last position
/// cannot change the earlier ones. MiniLM (bidirectional, 6 blocks) runs the patched forward
/// pass in full.
#[allow(clippy::too_many_arguments)]
fn pair_effects(
    m: &Loaded,
    tokens: &[u32],
    rows_of: &[usize],
    targets: &[(usize, u32)],
    single: bool,
    layers: &[usize],
    dirs: &[Vec<f64>],
    other_of: &dyn Fn(usize) -> Vec<f64>,
    gap: f64,
) -> Result<PairOut> {
    let last = dirs.len() - 1;
    let u_last = &dirs[last];
    let d = u_last.len();
    let shift_at = |res: &[f32], l: usize| -> Vec<f64> {
        // The example's own coordinate vector (pooled for news) and the negative's.
        let mut own = vec![0.0f64; d];
        for &i in rows_of {
            for (o, &v) in own.iter_mut().zip(&res[i * d..(i + 1) * d]) {
                *o += f64::from(v);
            }
        }
        for o in &mut own {
            *o /= rows_of.len() as f64;
        }
        swap_along(&own, &other_of(l), &dirs[l])
            .iter()
            .zip(&own)
            .map(|(a, b)| a - b)
            .collect()
    };
    let mut out = Vec::with_capacity(layers.len());
    match &m.net {
        Net::Llama(lm) => {
            let clean = lm.forward(tokens, &capture_residual(None))?;
            let clean_logp = mean_logp(&clean, targets, 0);
            let clean_res = residuals_of(clean.captures)?;
            let clean_score = pooled_score(&clean_res[last], rows_of, u_last);
            // First position recomputed, and the cache of the tokens before it.
            let first = if single { rows_of[0] } else { 0 };
            let cache = if first > 0 {
                let mut c = lm.new_cache();
                lm.forward_cached(&mut c, &tokens[..first], &Overrides::new())?;
                Some(c)
            } else {
                None
            };
            let local: Vec<usize> = rows_of.iter().map(|&i| i - first).collect();
            let hooks = capture_residual(Some(vec![last]));
            for &l in layers {
                let shift = shift_at(&clean_res[l], l);
                let x = shifted(&clean_res[l][first * d..], &local, &shift);
                let o = lm.forward_from_layer(l, &x, cache.as_ref(), &hooks)?;
                let lp = mean_logp(&o, targets, first);
                let score = if l == last {
                    pooled_score(&x, &local, u_last)
                } else {
                    let top = residuals_of(o.captures)?;
                    pooled_score(top.last().context("no block captured")?, &local, u_last)
                };
                out.push((
                    (score - clean_score) / gap,
                    lp.zip(clean_logp).map(|(a, b)| a - b),
                ));
            }
        }
        Net::Bert(b) => {
            let clean = residuals_of(b.forward(tokens, &capture_residual(None))?.captures)?;
            let clean_score = pooled_score(&clean[last], rows_of, u_last);
            let hooks = capture_residual(Some(vec![last]));
            for &l in layers {
                let shift = shift_at(&clean[l], l);
                let x = shifted(&clean[l], rows_of, &shift);
                let patches: Vec<ResidualPatch> = rows_of
                    .iter()
                    .map(|&i| ResidualPatch {
                        layer: l,
                        position: i,
                        values: x[i * d..(i + 1) * d].to_vec(),
                    })
                    .collect();
                let top = residuals_of(b.forward_patched(tokens, &hooks, &patches)?.captures)?;
                let score = pooled_score(top.last().context("no block captured")?, rows_of, u_last);
                out.push(((score - clean_score) / gap, None));
            }
        }
    }
    Ok(out)
}

/// Patching effects of every layer in `layers` for one concept: up to `max_pairs` held-out
/// positives, each paired with a seeded held-out negative.
///
/// # Errors
/// When the concept has no held-out positive or negative, a direction is zero, or a forward pass
/// fails.
pub(crate) fn patching_effects(
    m: &Loaded,
    md: &ModelData,
    cd: &ConceptData,
    layers: &[usize],
    max_pairs: usize,
    seed: u64,
) -> Result<Vec<PatchEffect>> {
    let tr = cd.train_labels();
    let n_layers = cd.residual.len();
    let mut dirs = Vec::with_capacity(n_layers);
    for x in &cd.residual {
        dirs.push(unit(&mean_difference(
            rows(x, &cd.split.train).as_ref(),
            &tr,
        )?)?);
    }
    let last = n_layers - 1;
    let diff_last = mean_difference(rows(&cd.residual[last], &cd.split.train).as_ref(), &tr)?;
    let gap = dot(&diff_last, &dirs[last]);
    // Held-out examples; SmolLM2 positives need a next token to score.
    let has_next = |i: usize| {
        let e = cd.examples[i];
        let s = &md.sents[e.sent];
        !m.causal() || e.pos.is_none_or(|t| t + 1 < s.len())
    };
    let mut pos: Vec<usize> = cd
        .split
        .test
        .iter()
        .copied()
        .filter(|&i| cd.labels[i] && has_next(i))
        .collect();
    let neg: Vec<usize> = cd
        .split
        .test
        .iter()
        .copied()
        .filter(|&i| !cd.labels[i])
        .collect();
    if pos.is_empty() || neg.is_empty() {
        bail!("{}: no held-out pair for patching", cd.concept.name());
    }
    let mut r = rng(seed);
    pos.shuffle(&mut r);
    pos.truncate(max_pairs);
    let pairs: Vec<(usize, usize)> = pos
        .iter()
        .map(|&p| (p, neg[rand::RngExt::random_range(&mut r, 0..neg.len())]))
        .collect();
    let per_pair: Vec<PairOut> = pairs
        .par_iter()
        .map(|&(p, q)| -> Result<PairOut> {
            let e = cd.examples[p];
            let s = &md.sents[e.sent];
            // Rows of the example (token position, or every text token), tokens to run
            // (causal: up to the example), and log-probability targets.
            let (rows_of, tokens, targets): (Vec<usize>, &[u32], Vec<(usize, u32)>) = match e.pos {
                Some(t) => {
                    let i = s.offset + t;
                    if m.causal() {
                        (vec![i], &s.tokens[..=i], vec![(i, s.tokens[i + 1])])
                    } else {
                        (vec![i], &s.tokens[..], Vec::new())
                    }
                }
                None => {
                    let rows_of: Vec<usize> = (s.offset..s.offset + s.len()).collect();
                    let targets = if m.causal() {
                        (s.offset..s.offset + s.len() - 1)
                            .map(|i| (i, s.tokens[i + 1]))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    (rows_of, &s.tokens[..], targets)
                }
            };
            let d = dirs[0].len();
            let other_of =
                |l: usize| -> Vec<f64> { (0..d).map(|j| cd.residual[l][(q, j)]).collect() };
            pair_effects(
                m,
                tokens,
                &rows_of,
                &targets,
                e.pos.is_some(),
                layers,
                &dirs,
                &other_of,
                gap,
            )
        })
        .collect::<Result<_>>()?;
    let mut effects = Vec::with_capacity(layers.len());
    for (k, &l) in layers.iter().enumerate() {
        let sc: Vec<f64> = per_pair.iter().map(|v| v[k].0).collect();
        let lp: Vec<f64> = per_pair.iter().filter_map(|v| v[k].1).collect();
        let s = seed ^ ((l as u64 + 1) << 20);
        effects.push(PatchEffect {
            layer: l,
            score: super::features::bootstrap_mean(&sc, s),
            logp: (!lp.is_empty()).then(|| super::features::bootstrap_mean(&lp, s ^ 1)),
            logp_se: (!lp.is_empty()).then(|| std_error(&lp)),
        });
    }
    Ok(effects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_concepts::faer::Mat;

    #[test]
    fn swap_along_matches_projector() {
        let mut r = rng(5);
        for d in [1usize, 3, 7] {
            let v: Vec<f64> = (0..d)
                .map(|_| rand::RngExt::random::<f64>(&mut r) - 0.5)
                .collect();
            let u = unit(&v).unwrap();
            let x: Vec<f64> = (0..d).map(|i| i as f64 - 1.5).collect();
            let t: Vec<f64> = (0..d).map(|i| (i as f64).sin()).collect();
            // Brute force: (I − u uᵀ) x + u uᵀ t with an explicit projector.
            let p = Mat::from_fn(d, d, |i, j| u[i] * u[j]);
            let want: Vec<f64> = (0..d)
                .map(|i| {
                    (0..d)
                        .map(|j| {
                            let id = if i == j { 1.0 } else { 0.0 };
                            (id - p[(i, j)]) * x[j] + p[(i, j)] * t[j]
                        })
                        .sum()
                })
                .collect();
            let got = swap_along(&x, &t, &u);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{a} vs {b}");
            }
            assert!((dot(&got, &u) - dot(&t, &u)).abs() < 1e-12);
        }
    }

    #[test]
    fn grid_and_se() {
        assert_eq!(layer_grid(10, 4, &[5, 9, 20]), vec![0, 4, 5, 8, 9]);
        assert_eq!(layer_grid(3, 1, &[]), vec![0, 1, 2]);
        let se = std_error(&[1.0, 2.0, 3.0, 4.0]);
        // sd = sqrt(5/3), se = sd / 2.
        assert!((se - (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
        assert!(std_error(&[1.0]).is_nan());
        assert!(unit(&[0.0, 0.0]).is_err());
    }
}
