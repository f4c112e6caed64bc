//! Whole-model compression operations shared by the `intro-*` and `aecl-*` claims that measure
//! quality after compression: the block linears of a model, uniform group quantisation, magnitude
//! pruning and truncated SVD applied to all of them with their real stored bits, a per-unit loss
//! scorer (per-token NLL of SmolLM2, per-sentence 1 − cosine of MiniLM) and a paired block
//! bootstrap for the standard error of a loss difference.

use anyhow::{anyhow, bail, Result};
use claimlab_ratedist as rd;
use claimlab_runtime::{Overrides, PerplexityConfig};
use claimlab_spectral::faer;
use claimlab_weights::{Model, Param, Role};
use rand::RngExt;
use rayon::prelude::*;

use super::common::{rng, Loaded, Net, Probe};
use crate::pipe::claim_thm1::magnitude_prune;
use crate::report::Verdict;
use crate::Ctx;

/// Values per quantisation group (one scale and one zero point each).
pub(crate) const GROUP: usize = 32;

/// Held-out probe sizes and compressed blocks shared by the compression claims:
/// `(SmolLM2 windows, window length, MiniLM sentences, every n-th block)`; quick: one window of
/// 64 tokens, 12 sentences, every third block; full: two windows of 256, 100 sentences, every block.
pub(crate) fn probe_sizes(quick: bool) -> (usize, usize, usize, usize) {
    if quick {
        (1, 64, 12, 3)
    } else {
        (2, 256, 100, 1)
    }
}

/// One weight matrix of a block (row-major `rows × cols`, as stored).
pub(crate) struct Linear {
    /// Tensor name (the override key).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Block index.
    pub layer: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The values, dequantised to f32.
    pub w: Vec<f32>,
}

/// Whether `role` is one of a block's linears (attention Q, K, V, output; MLP up, gate, down).
pub(crate) fn is_block_linear(role: Role) -> bool {
    matches!(
        role,
        Role::Query
            | Role::Key
            | Role::Value
            | Role::AttnOutput
            | Role::MlpUp
            | Role::MlpGate
            | Role::MlpDown
    )
}

/// The block linears of `model` in blocks `l` with `l % every == 0`, loaded as f32.
///
/// # Errors
/// When a tensor cannot be read.
pub(crate) fn block_linears(model: &Model, every: usize) -> Result<Vec<Linear>> {
    block_linears_where(model, every, is_block_linear)
}

/// As [`block_linears`], only the linears whose role passes `keep` (and is a block linear).
///
/// # Errors
/// When a tensor cannot be read.
pub(crate) fn block_linears_where(
    model: &Model,
    every: usize,
    keep: impl Fn(Role) -> bool + Sync,
) -> Result<Vec<Linear>> {
    let every = every.max(1);
    model
        .tensors()
        .par_iter()
        .filter(|t| {
            t.param == Param::Weight
                && t.shape.len() == 2
                && is_block_linear(t.role)
                && keep(t.role)
        })
        .filter_map(|t| t.layer.filter(|l| l % every == 0).map(|l| (l, t)))
        .map(|(layer, t)| {
            Ok(Linear {
                name: t.name.clone(),
                role: t.role,
                layer,
                rows: t.shape[0],
                cols: t.shape[1],
                w: model.tensor_f32(&t.name)?,
            })
        })
        .collect()
}

/// A compression of every selected linear, the same setting for all.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub(crate) enum Method {
    /// Uniform asymmetric mid-tread quantisation, groups of [`GROUP`] values.
    Quant {
        /// Bits per index.
        bits: u32,
    },
    /// Magnitude pruning per matrix, stored as a bitmap plus f32 values.
    Prune {
        /// Fraction of entries set to zero.
        zero_frac: f64,
    },
    /// Truncated SVD, factors `U·Σ` and `Vᵀ` stored in f32.
    Rank {
        /// Rank as a fraction of `min(rows, cols)`.
        frac: f64,
    },
}

impl Method {
    /// The method's family name.
    pub(crate) fn family(self) -> &'static str {
        match self {
            Method::Quant { .. } => "quantisation",
            Method::Prune { .. } => "pruning",
            Method::Rank { .. } => "low rank",
        }
    }

    /// A short label of the setting.
    pub(crate) fn label(self) -> String {
        match self {
            Method::Quant { bits } => format!("{bits}-bit g{GROUP}"),
            Method::Prune { zero_frac } => format!("{:.0}% zeros", 100.0 * zero_frac),
            Method::Rank { frac } => format!("rank {frac:.4}·min(m,n)"),
        }
    }
}

/// Rank used for a `rows × cols` matrix at `frac` of its smaller side (at least 1).
pub(crate) fn rank_of(rows: usize, cols: usize, frac: f64) -> usize {
    ((frac * rows.min(cols) as f64).round() as usize).clamp(1, rows.min(cols))
}

/// Uniform g32 quantisation of `w` at `bits`: reconstruction and real stored bits (indices,
/// f32 scales and zero points as `claimlab_ratedist` counts them).
///
/// # Errors
/// From the quantiser (empty or non-finite input).
pub(crate) fn quantize_group(w: &[f32], bits: u32) -> Result<(Vec<f32>, f64)> {
    let q = rd::uniform_quantize(
        w,
        &rd::UniformConfig {
            bits,
            mode: rd::UniformMode::MidTread,
            symmetric: false,
            granularity: rd::Granularity::PerGroup { group_size: GROUP },
        },
    )?;
    Ok((q.reconstruction, q.total_bits as f64))
}

/// Stored bits of a pruned matrix: one bitmap bit per entry plus 32 bits per kept value.
pub(crate) fn pruned_bits(w: &[f32]) -> f64 {
    let nnz = w.iter().filter(|&&x| x != 0.0).count();
    (w.len() + 32 * nnz) as f64
}

/// Leading singular factors of a matrix, enough for any rank up to `k`.
pub(crate) struct Factors {
    /// `U·Σ`, `rows × k`.
    us: faer::Mat<f32>,
    /// `V`, `cols × k`.
    v: faer::Mat<f32>,
}

impl Factors {
    /// Thin SVD of the `rows × cols` matrix `w` (f64), keeping the leading `k` factors.
    ///
    /// # Errors
    /// When the SVD does not converge.
    pub(crate) fn new(w: &[f32], rows: usize, cols: usize, k: usize) -> Result<Factors> {
        let a = faer::Mat::<f64>::from_fn(rows, cols, |i, j| f64::from(w[i * cols + j]));
        let svd = a
            .thin_svd()
            .map_err(|e| anyhow!("SVD of a {rows}x{cols} matrix: {e:?}"))?;
        let k = k.clamp(1, rows.min(cols));
        let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
        Ok(Factors {
            us: faer::Mat::from_fn(rows, k, |i, c| (u[(i, c)] * s[c]) as f32),
            v: faer::Mat::from_fn(cols, k, |j, c| v[(j, c)] as f32),
        })
    }

    /// The rank-`r` reconstruction, row-major (`r` is capped at the kept factors).
    pub(crate) fn reconstruct(&self, r: usize) -> Vec<f32> {
        let r = r.clamp(1, self.us.ncols());
        let p = self.us.get(.., ..r) * self.v.get(.., ..r).transpose();
        let (rows, cols) = (p.nrows(), p.ncols());
        let mut out = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            out.extend((0..cols).map(|j| p[(i, j)]));
        }
        out
    }
}

/// SVD factors of every linear up to rank `max_frac · min(m, n)`.
///
/// # Errors
/// When an SVD fails.
pub(crate) fn all_factors(lins: &[Linear], max_frac: f64) -> Result<Vec<Factors>> {
    lins.par_iter()
        .map(|l| {
            Factors::new(
                &l.w,
                l.rows,
                l.cols,
                rank_of(l.rows, l.cols, max_frac.min(1.0)),
            )
        })
        .collect()
}

/// Replacement weights of every linear and their real size.
pub(crate) struct Applied {
    /// The replacements.
    pub overrides: Overrides,
    /// Stored bits of the compressed linears (side information included).
    pub stored_bits: f64,
    /// Bits of the same linears in f32.
    pub dense_bits: f64,
}

impl Applied {
    /// Real compression ratio of the linears: f32 bits / stored bits.
    pub(crate) fn ratio(&self) -> f64 {
        self.dense_bits / self.stored_bits
    }
}

/// One matrix compressed by `method`: the reconstruction and its stored bits.
///
/// # Errors
/// From the quantiser; `Rank` without factors.
pub(crate) fn compress_one(
    l: &Linear,
    method: Method,
    factors: Option<&Factors>,
) -> Result<(Vec<f32>, f64)> {
    match method {
        Method::Quant { bits } => quantize_group(&l.w, bits),
        Method::Prune { zero_frac } => {
            let w = magnitude_prune(&l.w, zero_frac);
            let bits = pruned_bits(&w);
            Ok((w, bits))
        }
        Method::Rank { frac } => {
            let Some(f) = factors else {
                bail!("{}: low rank needs its SVD factors", l.name)
            };
            let r = rank_of(l.rows, l.cols, frac);
            Ok((f.reconstruct(r), (32 * r * (l.rows + l.cols)) as f64))
        }
    }
}

/// Every linear compressed by `method` (`factors` parallel to `lins`, needed for `Rank`).
///
/// # Errors
/// As [`compress_one`].
pub(crate) fn apply_all(lins: &[Linear], method: Method, factors: &[Factors]) -> Result<Applied> {
    let done: Vec<(String, Vec<f32>, f64)> = lins
        .par_iter()
        .enumerate()
        .map(|(i, l)| {
            let (w, bits) = compress_one(l, method, factors.get(i))?;
            Ok((l.name.clone(), w, bits))
        })
        .collect::<Result<_>>()?;
    let mut overrides = Overrides::new();
    let mut stored_bits = 0.0;
    for (name, w, bits) in done {
        stored_bits += bits;
        overrides.insert(name, w);
    }
    let dense_bits = lins.iter().map(|l| 32.0 * l.w.len() as f64).sum();
    Ok(Applied {
        overrides,
        stored_bits,
        dense_bits,
    })
}

/// A per-unit loss on held-out Brown news: per-token NLL in nats (SmolLM2) or per-sentence
/// `1 − cos(original, compressed)` of the MiniLM sentence embedding.
pub(crate) struct Scorer {
    /// The underlying probe.
    pub probe: Probe,
    /// Original sentence embeddings (encoder only).
    base: Vec<Vec<f32>>,
}

impl Scorer {
    /// The scorer of `m`: `windows × context` tokens or `sentences` sentences.
    ///
    /// # Errors
    /// As [`Probe::new`]; a failed forward pass.
    pub(crate) fn new(
        ctx: &mut Ctx,
        m: &Loaded,
        windows: usize,
        context: usize,
        sentences: usize,
    ) -> Result<Scorer> {
        let probe = Probe::new(ctx, m, windows, context, sentences)?;
        let base = match (&probe, &m.net) {
            (Probe::Sentences(s), Net::Bert(b)) => {
                claimlab_runtime::embeddings(b, s, &Overrides::new())?
            }
            _ => Vec::new(),
        };
        Ok(Scorer { probe, base })
    }

    /// Per-unit losses under `overrides`.
    ///
    /// # Errors
    /// A failed forward pass; a probe that does not match the model.
    pub(crate) fn units(&self, m: &Loaded, overrides: &Overrides) -> Result<Vec<f64>> {
        match (&self.probe, &m.net) {
            (Probe::Tokens(t, c), Net::Llama(l)) => {
                let cfg = PerplexityConfig {
                    context: *c,
                    stride: *c,
                };
                Ok(claimlab_runtime::perplexity(l, t, &cfg, overrides)?.per_token_nll)
            }
            (Probe::Sentences(s), Net::Bert(b)) => {
                let e = claimlab_runtime::embeddings(b, s, overrides)?;
                Ok(e.iter()
                    .zip(&self.base)
                    .map(|(x, y)| 1.0 - claimlab_runtime::cosine(x, y))
                    .collect())
            }
            _ => bail!("probe does not match the model"),
        }
    }

    /// Whether the scorer measures perplexity (tokens) rather than fidelity (sentences).
    pub(crate) fn is_perplexity(&self) -> bool {
        matches!(self.probe, Probe::Tokens(..))
    }

    /// The reported quality of a mean loss: perplexity `exp(mean NLL)` or mean cosine `1 − loss`.
    pub(crate) fn quality(&self, mean_loss: f64) -> f64 {
        if self.is_perplexity() {
            mean_loss.exp()
        } else {
            1.0 - mean_loss
        }
    }

    /// Bootstrap block length: 32 consecutive tokens (neighbours share context) or 1 sentence.
    pub(crate) fn block(&self) -> usize {
        if self.is_perplexity() {
            32
        } else {
            1
        }
    }

    /// Name of the quality measure.
    pub(crate) fn quality_name(&self) -> &'static str {
        if self.is_perplexity() {
            "perplexity"
        } else {
            "mean cosine"
        }
    }
}

/// Keep-mask of the `k` highest scores (ties to the lower index).
pub(crate) fn top_units(scores: &[f64], k: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![false; scores.len()];
    for &i in idx.iter().take(k) {
        keep[i] = true;
    }
    keep
}

/// Mean of a slice (NaN when empty).
pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Mean of `b − a` (paired units) and its moving-block bootstrap standard error: `resamples`
/// seeded resamples of `⌈n/block⌉` blocks of `block` consecutive units.
pub(crate) fn paired_diff(
    a: &[f64],
    b: &[f64],
    block: usize,
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    (mean(&d), bootstrap_se(&d, block, resamples, seed))
}

/// The verdict of "the new method has lower loss" from paired (loss difference, standard error)
/// pairs: refuted if any difference is worse by more than `margin` standard errors, supported if
/// every one is better by more than `margin`, inconclusive otherwise (and with no pairs).
pub(crate) fn margin_verdict(pairs: impl IntoIterator<Item = (f64, f64)>, margin: f64) -> Verdict {
    let (mut any_worse, mut all_better, mut n) = (false, true, 0usize);
    for (diff, se) in pairs {
        n += 1;
        any_worse |= diff > margin * se;
        all_better &= diff < -margin * se;
    }
    if any_worse {
        Verdict::Refuted
    } else if all_better && n > 0 {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// Moving-block bootstrap standard error of the mean of `d`.
pub(crate) fn bootstrap_se(d: &[f64], block: usize, resamples: usize, seed: u64) -> f64 {
    let n = d.len();
    if n < 2 || resamples < 2 {
        return f64::NAN;
    }
    let block = block.clamp(1, n);
    let starts = n - block + 1;
    let nb = n.div_ceil(block);
    let mut r = rng(seed);
    let means: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut s = 0.0;
            let mut c = 0usize;
            for _ in 0..nb {
                let st = r.random_range(0..starts);
                s += d[st..st + block].iter().sum::<f64>();
                c += block;
            }
            s / c as f64
        })
        .collect();
    let m = mean(&means);
    (means.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (resamples - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_verdict_rules() {
        // (difference, standard error): negative means the new method has lower loss.
        assert_eq!(
            margin_verdict([(-3.0, 1.0), (-2.5, 1.0)], 2.0),
            Verdict::Supported
        );
        assert_eq!(
            margin_verdict([(-3.0, 1.0), (2.5, 1.0)], 2.0),
            Verdict::Refuted
        );
        assert_eq!(
            margin_verdict([(-3.0, 1.0), (-1.0, 1.0)], 2.0),
            Verdict::Inconclusive
        );
        assert_eq!(margin_verdict([(2.0, 1.0)], 2.0), Verdict::Inconclusive);
        assert_eq!(margin_verdict([], 2.0), Verdict::Inconclusive);
    }

    #[test]
    fn factors_reconstruct_low_rank_exactly() {
        // A rank-2 4 × 3 matrix: the rank-2 reconstruction is exact, rank 1 is not.
        let u = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]];
        let v = [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]];
        let w: Vec<f32> = (0..12)
            .map(|t| {
                let (i, j) = (t / 3, t % 3);
                (u[i][0] * v[0][j] + u[i][1] * v[1][j]) as f32
            })
            .collect();
        let f = Factors::new(&w, 4, 3, 3).unwrap();
        let r2 = f.reconstruct(2);
        for (a, b) in r2.iter().zip(&w) {
            assert!((a - b).abs() < 1e-5, "{r2:?} {w:?}");
        }
        let sv =
            claimlab_spectral::singular_values_f32(faer::MatRef::from_row_major_slice(&w, 4, 3))
                .unwrap();
        assert!(sv[2] < 1e-6 * sv[0]);
        let r1 = f.reconstruct(1);
        let err: f64 = r1
            .iter()
            .zip(&w)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        // Eckart-Young: the rank-1 error is σ₂².
        assert!((err - sv[1] * sv[1]).abs() < 1e-4 * err.max(1.0));
    }

    #[test]
    fn stored_bits() {
        assert!((pruned_bits(&[0.0, 1.0, 0.0, 2.0]) - 68.0).abs() < 1e-12);
        // 64 values at 4 bits in two groups: 256 index bits + 2 × (32-bit scale + 4-bit zero).
        let w: Vec<f32> = (0..64).map(|i| i as f32 / 10.0).collect();
        let (rec, bits) = quantize_group(&w, 4).unwrap();
        assert!((bits - (256.0 + 2.0 * 36.0)).abs() < 1e-12);
        assert_eq!(rec.len(), 64);
        assert_eq!(rank_of(576, 1536, 0.25), 144);
        assert_eq!(rank_of(10, 10, 0.001), 1);
        assert_eq!(top_units(&[1.0, 3.0, 2.0], 2), vec![false, true, true]);
        assert_eq!(top_units(&[1.0, 1.0, 0.5], 1), vec![true, false, false]);
    }

    #[test]
    fn bootstrap_se_matches_iid_formula() {
        // i.i.d. ±1 differences: SE of the mean ≈ 1/√n.
        let mut r = rng(5);
        let d: Vec<f64> = (0..400)
            .map(|_| if r.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        let se = bootstrap_se(&d, 1, 2000, 9);
        assert!((se - 0.05).abs() < 0.006, "{se}");
        let (m, _) = paired_diff(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0], 1, 10, 1);
        assert!((m - 2.0).abs() < 1e-12);
        assert!(bootstrap_se(&[1.0], 1, 100, 1).is_nan());
    }
}
