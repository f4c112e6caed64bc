//! Shared helpers of the `aecl-*` claims: loading both runtimes, seeded Brown passages, attention
//! spectra per head, the query-key bilinear form per head, Spearman correlation with a permutation
//! p-value, and small order statistics.

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{BertModel, Capture, Hooks, LlamaModel, TextTokenizer};
use claimlab_spectral::faer::MatRef;
use claimlab_spectral::singular_values_f32;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::plot::{Chart, Series};
use crate::report::Figure;
use crate::Ctx;
use std::path::{Path, PathBuf};

/// Seed of one claim: `--seed` mixed with the claim id (FNV-1a of the id, then splitmix64).
pub(crate) fn claim_seed(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded generator.
pub(crate) fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// One of the two runtimes.
pub(crate) enum Net {
    /// SmolLM2 (causal).
    Llama(LlamaModel),
    /// MiniLM (bidirectional).
    Bert(BertModel),
}

/// A loaded model with its tokenizer and shape.
pub(crate) struct Loaded {
    /// `SmolLM2` or `MiniLM` (or the user model's architecture).
    pub name: &'static str,
    /// The runtime.
    pub net: Net,
    /// Its tokenizer.
    pub tok: TextTokenizer,
    /// Number of blocks.
    pub n_layers: usize,
    /// Attention heads per block.
    pub n_heads: usize,
}

impl Loaded {
    /// A loaded model with `shape = (n_layers, n_heads)`.
    pub(crate) fn new(
        name: &'static str,
        net: Net,
        tok: TextTokenizer,
        shape: (usize, usize),
    ) -> Loaded {
        Loaded {
            name,
            net,
            tok,
            n_layers: shape.0,
            n_heads: shape.1,
        }
    }

    /// The weights the runtime was loaded from (the context's decoder or encoder).
    pub(crate) fn weights<'c>(&self, ctx: &'c mut Ctx) -> Result<&'c claimlab_weights::Model> {
        if self.causal() {
            ctx.decoder()
        } else {
            ctx.encoder()
        }
    }

    /// Whether attention is causal.
    pub(crate) fn causal(&self) -> bool {
        matches!(self.net, Net::Llama(_))
    }

    /// Forward pass with captures; returns the per-layer captures.
    pub(crate) fn capture(
        &self,
        tokens: &[u32],
        capture: Capture,
    ) -> Result<claimlab_runtime::Captures> {
        let hooks = Hooks {
            capture,
            overrides: Default::default(),
        };
        Ok(match &self.net {
            Net::Llama(m) => m.forward(tokens, &hooks)?.captures,
            Net::Bert(m) => m.forward(tokens, &hooks)?.captures,
        })
    }

    /// Attention probabilities of every layer, `[n_heads, n, n]` each.
    pub(crate) fn attention(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let caps = self.capture(
            tokens,
            Capture {
                attention: true,
                ..Capture::default()
            },
        )?;
        caps.layers
            .into_iter()
            .map(|l| l.attention.context("attention was not captured"))
            .collect()
    }
}

/// MLP activations after the nonlinearity (`mlp_post`, `[tokens, d_ff]` per layer, passages
/// stacked) on `count` seeded Brown passages of `n` tokens; returns them with `d_ff`.
pub(crate) fn mlp_activations(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
) -> Result<(Vec<Vec<f32>>, usize)> {
    mlp_activations_from(ctx, m, n, count, seed, false)
}

/// As [`mlp_activations`], on held-out (news) passages when `heldout`.
pub(crate) fn mlp_activations_from(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
    heldout: bool,
) -> Result<(Vec<Vec<f32>>, usize)> {
    let ps = passages_from(ctx, m, n, count, seed, heldout)?;
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); m.n_layers];
    let bar = ctx.bar(ps.len() as u64, &format!("{}: MLP activations", m.name));
    for p in &ps {
        let caps = m.capture(
            p,
            Capture {
                mlp_post: true,
                ..Capture::default()
            },
        )?;
        for (l, lc) in caps.layers.into_iter().enumerate() {
            out[l].extend(lc.mlp_post.context("mlp_post not captured")?);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let d_ff = out[0].len() / (ps.len() * n);
    Ok((out, d_ff))
}

/// Loads SmolLM2 (decoder) and MiniLM (encoder), in that order.
pub(crate) fn load_both(ctx: &mut Ctx) -> Result<Vec<Loaded>> {
    let dec = ctx.decoder()?;
    let llama = LlamaModel::load(dec)?;
    let c = llama.config();
    let shape = (c.n_layers, c.n_heads);
    let a = Loaded::new(
        "SmolLM2",
        Net::Llama(llama),
        TextTokenizer::for_model(dec)?,
        shape,
    );
    let enc = ctx.encoder()?;
    let bert = BertModel::load(enc)?;
    let c = bert.config();
    let shape = (c.n_layers, c.n_heads);
    let b = Loaded::new(
        "MiniLM",
        Net::Bert(bert),
        TextTokenizer::for_model(enc)?,
        shape,
    );
    Ok(vec![a, b])
}

/// The start of a claim run: its seed (`--seed` mixed with `id`), both models and the figure folder.
pub(crate) fn start(ctx: &mut Ctx, id: &str) -> Result<(u64, Vec<Loaded>, PathBuf)> {
    let seed = claim_seed(ctx.opts.seed, id);
    let models = load_both(ctx)?;
    Ok((seed, models, ctx.figures_dir()))
}

/// Draws `series` under `title` with axes `(x, y)` (log scales `log`) and saves it in `dir` as
/// `stem` with `caption` (`name = (stem, caption)`).
pub(crate) fn figure(
    dir: &Path,
    name: (&str, &str),
    title: &str,
    axes: (&str, &str),
    log: (bool, bool),
    series: Vec<Series>,
) -> Result<Figure> {
    let chart = Chart {
        title: title.into(),
        x_label: axes.0.into(),
        y_label: axes.1.into(),
        log_x: log.0,
        log_y: log.1,
        series,
    };
    chart.save(dir, name.0, name.1)
}

/// Mean over tokens (at most `max_tokens`, evenly spaced) of `stat` of each token's activation
/// energies `a²` in a `[tokens, d]` matrix; non-finite values of `stat` are left out.
pub(crate) fn per_token_mean(
    acts: &[f32],
    d: usize,
    max_tokens: usize,
    stat: impl Fn(&[f64]) -> f64,
) -> f64 {
    let rows: Vec<&[f32]> = acts.chunks_exact(d).collect();
    let step = rows.len().div_ceil(max_tokens).max(1);
    let v: Vec<f64> = rows
        .iter()
        .step_by(step)
        .map(|r| {
            let e: Vec<f64> = r.iter().map(|&a| f64::from(a) * f64::from(a)).collect();
            stat(&e)
        })
        .filter(|x| x.is_finite())
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The Brown genre held out from calibration passages and used for loss probes.
pub(crate) const HELDOUT_GENRE: &str = "news";

/// `count` passages of exactly `n` tokens from distinct Brown documents, seeded. For BERT the
/// passage is `[CLS]` + `n − 2` text tokens + `[SEP]` (the ends of the document's own encoding).
pub(crate) fn passages(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<Vec<u32>>> {
    passages_from(ctx, m, n, count, seed, false)
}

/// As [`passages`], from the held-out genre only (`heldout`) or from every other genre.
pub(crate) fn passages_from(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
    heldout: bool,
) -> Result<Vec<Vec<u32>>> {
    let docs = ctx.brown_documents()?;
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut r = rng(seed ^ (n as u64).wrapping_mul(0x9e37_79b9));
    order.shuffle(&mut r);
    let mut out = Vec::with_capacity(count);
    for &i in &order {
        if out.len() == count {
            break;
        }
        // News is held out for the loss probes.
        if (docs[i].genre == HELDOUT_GENRE) != heldout {
            continue;
        }
        let ids = m.tok.encode(&docs[i].text)?;
        let p = if m.causal() {
            if ids.len() < n {
                continue;
            }
            let s = r.random_range(0..=ids.len() - n);
            ids[s..s + n].to_vec()
        } else {
            if ids.len() < n + 2 || n < 3 {
                continue;
            }
            let (cls, sep) = (ids[0], ids[ids.len() - 1]);
            let body = &ids[1..ids.len() - 1];
            let s = r.random_range(0..=body.len() - (n - 2));
            let mut v = Vec::with_capacity(n);
            v.push(cls);
            v.extend_from_slice(&body[s..s + n - 2]);
            v.push(sep);
            v
        };
        out.push(p);
    }
    if out.len() < count {
        bail!(
            "only {} Brown documents have {n} tokens ({} wanted)",
            out.len(),
            count
        );
    }
    Ok(out)
}

/// A held-out quality probe on Brown news: SmolLM2 perplexity on `windows × context` tokens, or
/// MiniLM sentence-embedding fidelity on `sentences` sentences.
pub(crate) enum Probe {
    /// Tokens and the perplexity window.
    Tokens(Vec<u32>, usize),
    /// Tokenised sentences.
    Sentences(Vec<Vec<u32>>),
}

impl Probe {
    /// The probe of `m`: `windows` windows of `context` tokens, or `sentences` sentences.
    pub(crate) fn new(
        ctx: &mut Ctx,
        m: &Loaded,
        windows: usize,
        context: usize,
        sentences: usize,
    ) -> Result<Probe> {
        let docs = ctx.brown_documents()?;
        let text: String = docs
            .iter()
            .filter(|d| d.genre == HELDOUT_GENRE)
            .map(|d| d.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        if m.causal() {
            let mut ids = m.tok.encode(&text)?;
            let want = windows * context;
            if ids.len() < want {
                bail!("Brown news has {} tokens, {want} wanted", ids.len());
            }
            ids.truncate(want);
            Ok(Probe::Tokens(ids, context))
        } else {
            let ss = claimlab_runtime::split_sentences(&text, sentences, 6, 40);
            let toks = ss
                .iter()
                .map(|s| m.tok.encode(s))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(Probe::Sentences(toks))
        }
    }

    /// Short description for reports.
    pub(crate) fn describe(&self) -> String {
        match self {
            Probe::Tokens(t, c) => format!(
                "SmolLM2 perplexity on {} held-out Brown news tokens (windows of {c})",
                t.len()
            ),
            Probe::Sentences(s) => format!(
                "MiniLM mean embedding cosine to the original on {} Brown news sentences",
                s.len()
            ),
        }
    }

    /// Perplexity (decoder) or mean cosine to the original embedding (encoder) under `overrides`.
    pub(crate) fn eval(&self, m: &Loaded, overrides: &claimlab_runtime::Overrides) -> Result<f64> {
        match (self, &m.net) {
            (Probe::Tokens(t, c), Net::Llama(l)) => {
                let cfg = claimlab_runtime::PerplexityConfig {
                    context: *c,
                    stride: *c,
                };
                Ok(claimlab_runtime::perplexity(l, t, &cfg, overrides)?.ppl)
            }
            (Probe::Sentences(s), Net::Bert(b)) => {
                Ok(claimlab_runtime::embedding_fidelity(b, s, overrides)?.mean_cosine)
            }
            _ => bail!("probe does not match the model"),
        }
    }
}

/// Overrides that remove MLP neurons: for every layer, neurons with `keep[layer][j] == false` get
/// their row of the up (and gate) projection and their column of the down projection zeroed.
pub(crate) fn prune_mlp_overrides(
    model: &claimlab_weights::Model,
    keep: &[Vec<bool>],
) -> Result<claimlab_runtime::Overrides> {
    use claimlab_weights::{Param, Role};
    let mut ov = claimlab_runtime::Overrides::new();
    for t in model.tensors() {
        let Some(l) = t.layer else { continue };
        if t.param != Param::Weight || t.shape.len() != 2 || l >= keep.len() {
            continue;
        }
        let k = &keep[l];
        let mut w = match t.role {
            Role::MlpUp | Role::MlpGate | Role::MlpDown => model.tensor_f32(&t.name)?,
            _ => continue,
        };
        let (rows, cols) = (t.shape[0], t.shape[1]);
        if t.role == Role::MlpDown {
            if cols != k.len() {
                bail!("{}: {cols} columns, {} neurons", t.name, k.len());
            }
            for r in 0..rows {
                for (c, &kc) in k.iter().enumerate() {
                    if !kc {
                        w[r * cols + c] = 0.0;
                    }
                }
            }
        } else {
            if rows != k.len() {
                bail!("{}: {rows} rows, {} neurons", t.name, k.len());
            }
            for (r, &kr) in k.iter().enumerate() {
                if !kr {
                    w[r * cols..(r + 1) * cols].fill(0.0);
                }
            }
        }
        ov.insert(t.name.clone(), w);
    }
    Ok(ov)
}

/// Per-neuron energy `Σ_t a_{t,j}²` of a `[tokens, d]` activation matrix.
pub(crate) fn neuron_energy(acts: &[f32], d: usize) -> Vec<f64> {
    let mut e = vec![0.0; d];
    for row in acts.chunks_exact(d) {
        for (ej, &a) in e.iter_mut().zip(row) {
            *ej += f64::from(a) * f64::from(a);
        }
    }
    e
}

/// Smallest fraction of entries (largest first) whose sum reaches `share` of the total.
pub(crate) fn fraction_for_share(values: &[f64], share: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = v.iter().sum();
    if v.is_empty() || total <= 0.0 {
        return f64::NAN;
    }
    let mut acc = 0.0;
    for (i, x) in v.iter().enumerate() {
        acc += x;
        if acc >= share * total {
            return (i + 1) as f64 / v.len() as f64;
        }
    }
    1.0
}

/// Share of the total held by the largest `ceil(frac · len)` entries.
pub(crate) fn top_share(values: &[f64], frac: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = v.iter().sum();
    let k = ((frac * v.len() as f64).ceil() as usize).min(v.len());
    if total <= 0.0 {
        return f64::NAN;
    }
    v[..k].iter().sum::<f64>() / total
}

/// Singular values (non-increasing) of every head of one layer's attention `[h, n, n]`.
pub(crate) fn head_spectra(att: &[f32], n_heads: usize, n: usize) -> Result<Vec<Vec<f64>>> {
    (0..n_heads)
        .into_par_iter()
        .map(|h| {
            let a = &att[h * n * n..(h + 1) * n * n];
            let m = MatRef::from_row_major_slice(a, n, n);
            Ok(singular_values_f32(m)?)
        })
        .collect()
}

/// Lower Cholesky factor of a symmetric positive definite `k × k` matrix (row-major); a tiny
/// relative jitter is added to the diagonal when a pivot is not positive.
fn cholesky(g: &[f64], k: usize) -> Vec<f64> {
    let scale = (0..k)
        .map(|i| g[i * k + i])
        .fold(0.0f64, f64::max)
        .max(1e-300);
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = g[i * k + j];
            for p in 0..j {
                s -= l[i * k + p] * l[j * k + p];
            }
            if i == j {
                l[i * k + i] = s.max(1e-14 * scale).sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    l
}

/// Singular values of `Aᵀ B` for `A`, `B` of shape `k × d` (row-major, `k ≤ d`), through
/// `A Aᵀ = L Lᵀ`: `Aᵀ B = U Lᵀ B` with orthonormal `U`, so the values are those of `Lᵀ B` (`k × d`).
pub(crate) fn bilinear_singular_values(
    a: &[f32],
    b: &[f32],
    k: usize,
    d: usize,
) -> Result<Vec<f64>> {
    let mut g = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = (0..d)
                .map(|t| f64::from(a[i * d + t]) * f64::from(a[j * d + t]))
                .sum();
            g[i * k + j] = s;
            g[j * k + i] = s;
        }
    }
    let l = cholesky(&g, k);
    // C = Lᵀ B: C[i][t] = Σ_p L[p][i] B[p][t].
    let mut c = vec![0.0f64; k * d];
    for i in 0..k {
        for p in i..k {
            let lpi = l[p * k + i];
            if lpi != 0.0 {
                for t in 0..d {
                    c[i * d + t] += lpi * f64::from(b[p * d + t]);
                }
            }
        }
    }
    Ok(claimlab_spectral::singular_values(
        MatRef::from_row_major_slice(&c, k, d),
    )?)
}

/// Median of a slice (NaN-free); NaN when empty.
pub(crate) fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// Linear-interpolated quantile (type 7); NaN when empty.
pub(crate) fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// Ranks 1..n with ties given their average rank.
pub(crate) fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]].total_cmp(&x[idx[i]]).is_eq() {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman's ρ of `x` and `y` and its two-sided permutation p-value (`perms` seeded
/// permutations of `y`'s ranks, p = (1 + #{|ρ*| ≥ |ρ|}) / (1 + perms)). NaN ρ for constant input.
pub(crate) fn spearman_test(x: &[f64], y: &[f64], perms: usize, seed: u64) -> (f64, f64) {
    let rx = average_ranks(x);
    let mut ry = average_ranks(y);
    let rho = pearson(&rx, &ry);
    if !rho.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    let mut r = rng(seed);
    let mut hits = 0usize;
    for _ in 0..perms {
        ry.shuffle(&mut r);
        if pearson(&rx, &ry).abs() >= rho.abs() - 1e-12 {
            hits += 1;
        }
    }
    (rho, (1 + hits) as f64 / (1 + perms) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0]),
            vec![2.0, 3.5, 3.5, 1.0]
        );
    }

    #[test]
    fn spearman_monotone_and_p_value() {
        let x: Vec<f64> = (0..30).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| -(v * v)).collect();
        let (rho, p) = spearman_test(&x, &y, 999, 1);
        assert!((rho + 1.0).abs() < 1e-12);
        assert!(p <= 0.002);
        // Independent noise: p far from 0 most of the time (fixed seed).
        let mut r = rng(7);
        let z: Vec<f64> = (0..30).map(|_| r.random::<f64>()).collect();
        let (_, p2) = spearman_test(&x, &z, 999, 2);
        assert!(p2 > 0.01);
    }

    #[test]
    fn bilinear_matches_brute_force() {
        let (k, d) = (3, 5);
        let mut r = rng(3);
        let a: Vec<f32> = (0..k * d).map(|_| r.random::<f32>() - 0.5).collect();
        let b: Vec<f32> = (0..k * d).map(|_| r.random::<f32>() - 0.5).collect();
        // Brute force: M = Aᵀ B (d × d).
        let mut m = vec![0.0f64; d * d];
        for i in 0..d {
            for j in 0..d {
                m[i * d + j] = (0..k)
                    .map(|p| f64::from(a[p * d + i]) * f64::from(b[p * d + j]))
                    .sum();
            }
        }
        let full =
            claimlab_spectral::singular_values(MatRef::from_row_major_slice(&m, d, d)).unwrap();
        let fast = bilinear_singular_values(&a, &b, k, d).unwrap();
        for i in 0..k {
            assert!(
                (full[i] - fast[i]).abs() < 1e-9 * full[0],
                "{full:?} {fast:?}"
            );
        }
        assert!(full[k] < 1e-9 * full[0]);
    }

    #[test]
    fn energy_fractions() {
        let v = [5.0, 3.0, 1.0, 1.0];
        assert!((fraction_for_share(&v, 0.5) - 0.25).abs() < 1e-12);
        assert!((fraction_for_share(&v, 0.8) - 0.5).abs() < 1e-12);
        assert!((fraction_for_share(&v, 1.0) - 1.0).abs() < 1e-12);
        assert!((top_share(&v, 0.25) - 0.5).abs() < 1e-12);
        assert!((top_share(&v, 0.3) - 0.8).abs() < 1e-12);
        assert_eq!(neuron_energy(&[1.0, 2.0, 3.0, 4.0], 2), vec![10.0, 20.0]);
    }

    #[test]
    fn per_token_statistic() {
        // Two tokens of two neurons; energies (1, 4) and (9, 0).
        let acts = [1.0f32, 2.0, 3.0, 0.0];
        let m = per_token_mean(&acts, 2, 10, |e| e.iter().sum());
        assert!((m - 7.0).abs() < 1e-12);
        // At most one token: the first.
        assert!((per_token_mean(&acts, 2, 1, |e| e[1]) - 4.0).abs() < 1e-12);
        // Non-finite statistics are left out.
        assert!((per_token_mean(&acts, 2, 10, |e| 1.0 / e[1]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn quantiles() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((quantile(&[1.0, 2.0, 3.0, 4.0], 0.25) - 1.75).abs() < 1e-12);
        assert_ne!(claim_seed(1, "aecl-1"), claim_seed(1, "aecl-2"));
    }
}
