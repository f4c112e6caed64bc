//! Per-layer trace of the Fisher information of the decoder, by Hutchinson's estimator with
//! central finite differences (forward passes only).

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{Error, Result};
use crate::eval::nll;
use crate::hooks::{Capture, Overrides};
use crate::llama::LlamaModel;

/// Settings of [`fisher_trace`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FisherConfig {
    /// Random directions per layer (at least 2, for the standard error).
    pub n_directions: usize,
    /// Finite-difference step relative to the RMS of the layer's weights: the perturbation
    /// `±ε·v` (Rademacher `v`) has norm `rel_step · ‖θ_l‖`.
    pub rel_step: f64,
    /// Seed of the Xoshiro256++ streams (label sampling and one stream per layer and direction).
    pub seed: u64,
}

impl Default for FisherConfig {
    /// 8 directions, relative step 1e-3, seed 0.
    fn default() -> Self {
        FisherConfig {
            n_directions: 8,
            rel_step: 1e-3,
            seed: 0,
        }
    }
}

/// Estimate for one block.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FisherLayer {
    /// Block index.
    pub layer: usize,
    /// Estimated `tr(F_l)` (nats², per token).
    pub trace: f64,
    /// Standard error of `trace` over the random directions.
    pub std_error: f64,
    /// Number of parameters of the block.
    pub n_params: usize,
    /// Absolute finite-difference step ε used.
    pub step: f64,
}

/// Result of [`fisher_trace`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FisherTrace {
    /// One entry per block, in order.
    pub layers: Vec<FisherLayer>,
    /// Labels `y_t` sampled from the model at each position (entry t is sampled from p(·|x_0..x_t)).
    pub sampled: Vec<u32>,
    /// Directions per layer.
    pub n_directions: usize,
}

/// Per-block Fisher trace of the next-token distribution, averaged over the positions of `tokens`:
///
/// ```text
/// tr(F_l) = (1/n) Σ_t E_{y ~ p(·|x_≤t)} ‖∇_{θ_l} log p(y | x_≤t)‖²
/// ```
///
/// One `y_t` is sampled per position from the unmodified model. For each block `l` and direction
/// `k`, a Rademacher vector `v` over all the block's weights gives, for every position at once,
///
/// ```text
/// s_t = [log p_{θ+εv}(y_t|x_≤t) − log p_{θ−εv}(y_t|x_≤t)] / (2ε)  = g_tᵀv + O(ε²),
/// a_k = (1/n) Σ_t s_t²,   E_v[a_k] = (1/n) Σ_t ‖g_t‖²   (Hutchinson: E[vvᵀ] = I),
/// ```
///
/// and the estimate is the mean of `a_k` over directions with its standard error
/// `sd(a_k)/√K`. The estimator is unbiased for the sampled labels up to the O(ε²) difference
/// error; averaging over labels needs more tokens, not more directions.
///
/// # Errors
/// [`Error::InvalidParam`] for fewer than 2 directions or a step that is not positive and finite;
/// the input errors of [`LlamaModel::forward`].
///
/// # Complexity
/// `1 + 2·K·n_layers` forward passes over `tokens`; extra memory two copies of one block.
///
/// # References
/// M. F. Hutchinson (1989), "A stochastic estimator of the trace of the influence matrix for
/// Laplacian smoothing splines", Comm. Statist. Simulation Comput. 18(3), doi:10.1080/03610918908812806.
pub fn fisher_trace(model: &LlamaModel, tokens: &[u32], cfg: &FisherConfig) -> Result<FisherTrace> {
    if cfg.n_directions < 2 {
        return Err(Error::invalid(
            "n_directions",
            cfg.n_directions,
            "need at least 2 for a standard error",
        ));
    }
    if !(cfg.rel_step.is_finite() && cfg.rel_step > 0.0) {
        return Err(Error::invalid(
            "rel_step",
            cfg.rel_step,
            "must be positive and finite",
        ));
    }
    let v = model.config().vocab_size;
    let none = Overrides::new();
    let logp = |ov: &Overrides, ys: &[u32]| -> Result<Vec<f64>> {
        let (hidden, _) = model.hidden(tokens, &Capture::default(), ov)?;
        let w = model.weights(ov)?;
        let logits = model.project(&hidden, 0..tokens.len(), w);
        Ok(ys
            .iter()
            .enumerate()
            .map(|(t, &y)| -nll(&logits[t * v..(t + 1) * v], y))
            .collect())
    };
    // Sample y_t from the model.
    let (hidden, _) = model.hidden(tokens, &Capture::default(), &none)?;
    let logits = model.project(&hidden, 0..tokens.len(), model.weights(&none)?);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let sampled: Vec<u32> = logits
        .chunks_exact(v)
        .map(|row| sample(row, &mut rng))
        .collect();

    let mut layers = Vec::with_capacity(model.config().n_layers);
    for l in 0..model.config().n_layers {
        let prefix = format!("blk.{l}.");
        let names: Vec<&str> = model
            .param_names()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        let n_params: usize = names
            .iter()
            .map(|n| model.param(n).map_or(0, |(_, d)| d.len()))
            .sum();
        let sum_sq: f64 = names
            .iter()
            .flat_map(|n| model.param(n).map(|(_, d)| d).unwrap_or(&[]))
            .map(|&x| f64::from(x) * f64::from(x))
            .sum();
        let step = cfg.rel_step * (sum_sq / n_params as f64).sqrt();
        let mut a = Vec::with_capacity(cfg.n_directions);
        for k in 0..cfg.n_directions {
            let mut dir_rng = Xoshiro256PlusPlus::seed_from_u64(stream_seed(cfg.seed, l, k));
            let mut plus = Overrides::new();
            let mut minus = Overrides::new();
            for n in &names {
                let Some((_, d)) = model.param(n) else {
                    continue;
                };
                let mut p = Vec::with_capacity(d.len());
                let mut m = Vec::with_capacity(d.len());
                let mut bits = 0u64;
                for (i, &x) in d.iter().enumerate() {
                    if i % 64 == 0 {
                        bits = dir_rng.next_u64();
                    }
                    let s = if bits & 1 == 1 { step } else { -step };
                    bits >>= 1;
                    p.push((f64::from(x) + s) as f32);
                    m.push((f64::from(x) - s) as f32);
                }
                plus.insert((*n).to_string(), p);
                minus.insert((*n).to_string(), m);
            }
            let lp = logp(&plus, &sampled)?;
            let lm = logp(&minus, &sampled)?;
            let mean_sq = lp
                .iter()
                .zip(&lm)
                .map(|(a, b)| ((a - b) / (2.0 * step)).powi(2))
                .sum::<f64>()
                / tokens.len() as f64;
            a.push(mean_sq);
        }
        let kf = a.len() as f64;
        let mean = a.iter().sum::<f64>() / kf;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (kf - 1.0);
        layers.push(FisherLayer {
            layer: l,
            trace: mean,
            std_error: (var / kf).sqrt(),
            n_params,
            step,
        });
    }
    Ok(FisherTrace {
        layers,
        sampled,
        n_directions: cfg.n_directions,
    })
}

/// Seed of the stream for (layer, direction): SplitMix64 finaliser of the combined value.
fn stream_seed(seed: u64, layer: usize, dir: usize) -> u64 {
    let mut z = seed
        ^ (layer as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (dir as u64)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Inverse-CDF sample from softmax(row), in f64.
fn sample(row: &[f32], rng: &mut Xoshiro256PlusPlus) -> u32 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let w: Vec<f64> = row
        .iter()
        .map(|&x| f64::from(crate::kernels::exp_f32((f64::from(x) - max) as f32)))
        .collect();
    let total: f64 = w.iter().sum();
    // 53 random bits → uniform in [0, 1).
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    let mut acc = 0.0;
    for (i, &p) in w.iter().enumerate() {
        acc += p;
        if u < acc {
            return i as u32;
        }
    }
    (w.len() - 1) as u32
}
