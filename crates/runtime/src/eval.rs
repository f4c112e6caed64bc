//! Evaluation of the decoder: sliding-window perplexity and greedy generation.

use crate::error::{Error, Result};
use crate::hooks::{Capture, Overrides};
use crate::kernels;
use crate::llama::LlamaModel;

/// Sliding-window settings of [`perplexity`], as the Hugging Face perplexity guide: windows of
/// `context` tokens start every `stride` tokens; each token is scored once, in the first window
/// whose end passes it, conditioned on everything before it inside that window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerplexityConfig {
    /// Window length in tokens (at least 2).
    pub context: usize,
    /// Window step in tokens (1 ≤ stride ≤ context). `stride == context` gives disjoint windows.
    pub stride: usize,
}

impl Default for PerplexityConfig {
    /// Disjoint windows of 512 tokens.
    fn default() -> Self {
        PerplexityConfig {
            context: 512,
            stride: 512,
        }
    }
}

/// Result of [`perplexity`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Perplexity {
    /// Number of scored tokens: every token except the first of each window that starts where the
    /// previous one ended (always token 0; with `stride == context`, tokens 0, context, 2·context, …).
    pub n_tokens: usize,
    /// Mean negative log-likelihood in nats per scored token.
    pub mean_nll_nats: f64,
    /// `exp(mean_nll_nats)`.
    pub ppl: f64,
    /// NLL in nats of each scored token, in text order.
    pub per_token_nll: Vec<f64>,
    /// Index in the input of each scored token (same order as `per_token_nll`).
    pub positions: Vec<usize>,
    /// Number of windows evaluated.
    pub n_windows: usize,
}

/// `−log softmax(logits)[target]`: log-sum-exp with the maximum subtracted, terms by
/// [`kernels::exp_f32`] (relative error 3e−7), sum and logarithm in f64.
pub(crate) fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let sum: f64 = logits
        .iter()
        .map(|&v| f64::from(kernels::exp_f32(v - max)))
        .sum();
    f64::from(max) + sum.ln() - f64::from(logits[target as usize])
}

/// Per-token negative log-likelihood and perplexity of `tokens` under `model` with a sliding window.
///
/// ```text
/// windows [b, min(b + context, n)) for b = 0, stride, 2·stride, … until a window reaches n;
/// window [b, e) scores the tokens t in [max(prev_e, b + 1), e) as −ln p(x_t | x_b … x_{t−1});
/// mean_nll = mean over scored tokens,   ppl = exp(mean_nll)
/// ```
///
/// # Arguments
/// * `tokens` — the token ids (no BOS is added; SmolLM2 has `add_bos_token = false`).
/// * `cfg` — window length and step.
/// * `overrides` — substituted weights (a compressed copy), may be empty.
///
/// # Errors
/// [`Error::InvalidParam`] for a bad `cfg`, [`Error::Empty`] for fewer than 2 tokens, the input
/// errors of [`LlamaModel::forward`], [`Error::NonFinite`] if a likelihood is not finite.
///
/// # Complexity
/// `⌈(n − context)/stride⌉ + 1` forward passes of at most `context` tokens; the output projection is
/// applied only to the scored rows. Memory: one window's activations.
pub fn perplexity(
    model: &LlamaModel,
    tokens: &[u32],
    cfg: &PerplexityConfig,
    overrides: &Overrides,
) -> Result<Perplexity> {
    if cfg.context < 2 {
        return Err(Error::invalid("context", cfg.context, "must be at least 2"));
    }
    if cfg.stride == 0 || cfg.stride > cfg.context {
        return Err(Error::invalid(
            "stride",
            cfg.stride,
            "must satisfy 1 <= stride <= context",
        ));
    }
    if tokens.len() < 2 {
        return Err(Error::Empty {
            what: "tokens (need at least 2 to score one)",
        });
    }
    model.check_tokens(&tokens[..1])?;
    let w = model.weights(overrides)?;
    let n = tokens.len();
    let wins = windows(n, cfg);
    let mut per_token = Vec::with_capacity(n - 1);
    let mut positions = Vec::with_capacity(n - 1);
    let v = model.config().vocab_size;
    for &(begin, end, first_target) in &wins {
        let (hidden, _) = model.hidden(&tokens[begin..end], &Capture::default(), overrides)?;
        // Row r of the window predicts token begin + r + 1.
        let rows = (first_target - 1 - begin)..(end - 1 - begin);
        let logits = model.project(&hidden, rows.clone(), w);
        for (i, r) in rows.enumerate() {
            per_token.push(nll(&logits[i * v..(i + 1) * v], tokens[begin + r + 1]));
            positions.push(begin + r + 1);
        }
    }
    finish(per_token, positions, wins.len())
}

/// The [`Perplexity`] of the scored tokens' negative log-likelihoods (in order, with their
/// positions) over `n_windows` windows.
///
/// # Errors
/// [`Error::NonFinite`] if any negative log-likelihood is not finite.
pub(crate) fn finish(
    per_token: Vec<f64>,
    positions: Vec<usize>,
    n_windows: usize,
) -> Result<Perplexity> {
    if let Some(i) = per_token.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "token negative log-likelihood",
            count: per_token.iter().filter(|v| !v.is_finite()).count(),
            first_index: i,
        });
    }
    let mean = crate::stats::mean_compensated(&per_token);
    Ok(Perplexity {
        n_tokens: per_token.len(),
        mean_nll_nats: mean,
        ppl: mean.exp(),
        per_token_nll: per_token,
        positions,
        n_windows,
    })
}

/// The windows of [`perplexity`]: `(begin, end, first scored target)` each; the target of row
/// `r` of a window is token `begin + r + 1`, and targets `first..end` are scored (each window's
/// first token has no context in it and is never scored).
pub(crate) fn windows(n: usize, cfg: &PerplexityConfig) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let (mut begin, mut prev_end) = (0usize, 0usize);
    loop {
        let end = (begin + cfg.context).min(n);
        out.push((begin, end, prev_end.max(begin + 1)));
        prev_end = end;
        if end == n {
            return out;
        }
        begin += cfg.stride;
    }
}

/// Greedy decoding: appends the arg-max token (ties to the lower id) `max_new_tokens` times, or
/// until a token in `stop` is produced (that token is included).
///
/// # Returns
/// The new tokens only (not the prompt).
///
/// # Errors
/// [`Error::Empty`] for an empty prompt and the input errors of [`LlamaModel::forward`].
///
/// # Complexity
/// One forward pass over the prompt, then one token per step against a [`crate::KvCache`]:
/// `O(n·P + n²·d)` for `n` tokens in all.
pub fn generate(
    model: &LlamaModel,
    prompt: &[u32],
    max_new_tokens: usize,
    stop: &[u32],
    overrides: &Overrides,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(Error::Empty { what: "prompt" });
    }
    let vocab = model.config().vocab_size;
    let mut cache = model.new_cache();
    let mut out = Vec::new();
    if max_new_tokens == 0 {
        model.check_tokens(prompt)?;
        model.weights(overrides)?;
        return Ok(out);
    }
    let logits = model.forward_cached(&mut cache, prompt, overrides)?;
    let mut next = argmax(&logits[logits.len() - vocab..]);
    loop {
        out.push(next);
        if stop.contains(&next) || out.len() == max_new_tokens {
            break;
        }
        let logits = model.forward_cached(&mut cache, &[next], overrides)?;
        next = argmax(&logits);
    }
    Ok(out)
}

/// Index of the largest value, ties to the lowest index; NaN never wins.
pub(crate) fn argmax(v: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best as u32
}
