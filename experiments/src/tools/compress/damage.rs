//! Damage estimates of a quantisation option, for the allocator (`--damage`).
//!
//! ```text
//! diag     Σ_rj ΔW_rj² · (XᵀX/n)_jj          output error per token if input columns were uncorrelated
//! full     tr(ΔW (XᵀX/n) ΔWᵀ)                 the mean squared output error per token, exactly
//! fisher   ½ Σ_rj F_rj · ΔW_rj²              second-order loss increase with the empirical Fisher
//!                                             diagonal F (SqueezeLLM), in nats per token
//! ```
//!
//! The first two are in the units of each matrix's output (logits for the output head, the
//! residual stream for `attn_output` and `ffn_down`, attention scores' inputs for Q and K, …), so
//! summing them over tensors compares unlike quantities; the Fisher form is in loss units for
//! every tensor, and for the tied token embedding it counts both its roles (input lookup and
//! output head), since the gradient of a tied tensor sums both.
//!
//! `F` comes from exact gradients ([`claimlab_runtime::GradModel`]) of the mean next-token loss of
//! short windows of the calibration tokens: `F = (1/K) Σ_w n_w · g_w ⊙ g_w` for `K` windows of
//! `n_w` scored positions (`n_w · g_w²` estimates the per-token Fisher when the positions'
//! gradients are uncorrelated). `compress` computes it with [`fisher_diag_streaming`] (one block
//! at a time from the memory map, no whole-model gradient); [`fisher_diag`] is the whole-model
//! reference it equals.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{FisherTensor, GradModel, GradSpec, LlamaConfig, LlamaModel, StreamFisher};
use claimlab_weights::{dequantize, quantize, DType, Model};
use faer::MatRef;

use super::gptq::hessian_error;
use super::{MenuOption, TensorMenu, MENU};

/// Which damage estimate the allocator minimises (module doc).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Damage {
    /// `Σ ΔW² (XᵀX/n)_jj` (the diagonal of the calibration Gram).
    Diag,
    /// `tr(ΔW (XᵀX/n) ΔWᵀ)` (the full calibration Gram).
    Full,
    /// `½ Σ F ΔW²` with the empirical Fisher diagonal from exact gradients.
    Fisher,
}

impl Damage {
    /// Name as in the manifest.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Damage::Diag => "activation-weighted squared error: sum_rj dW_rj^2 (X^T X / n)_jj",
            Damage::Full => "full-Gram output error: tr(dW (X^T X / n) dW^T)",
            Damage::Fisher => "empirical Fisher diagonal: 1/2 sum_rj F_rj dW_rj^2 (nats)",
        }
    }
}

/// The weights one tensor's damage is computed with.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a> {
    /// One weight per input column (`diag(XᵀX/n)`).
    Diag(&'a [f64]),
    /// The full `XᵀX/n` (`row × row`).
    Full(MatRef<'a, f64>),
    /// One weight per element (the Fisher diagonal, row-major like the tensor).
    Fisher(&'a [f32]),
}

/// The damage of replacing `w` by `back` (`[rows, row]` row-major) under `weights`.
///
/// # Errors
/// When the weights' size does not match the tensor.
pub fn option_damage(w: &[f32], back: &[f32], row: usize, weights: Weights<'_>) -> Result<f64> {
    match weights {
        Weights::Diag(h) => {
            if h.len() != row {
                bail!("{} column weights for rows of {row}", h.len());
            }
            let mut s = 0.0;
            for (wr, br) in w.chunks_exact(row).zip(back.chunks_exact(row)) {
                for ((&a, &b), &hj) in wr.iter().zip(br).zip(h) {
                    let d = f64::from(a) - f64::from(b);
                    s += d * d * hj;
                }
            }
            Ok(s)
        }
        Weights::Full(h) => {
            if h.nrows() != row || h.ncols() != row {
                bail!("a {}x{} Gram for rows of {row}", h.nrows(), h.ncols());
            }
            let dw: Vec<f64> = w
                .iter()
                .zip(back)
                .map(|(&a, &b)| f64::from(a) - f64::from(b))
                .collect();
            Ok(hessian_error(&dw, w.len() / row, row, h))
        }
        Weights::Fisher(f) => {
            if f.len() != w.len() {
                bail!("{} Fisher weights for {} elements", f.len(), w.len());
            }
            Ok(0.5
                * w.iter()
                    .zip(back)
                    .zip(f)
                    .map(|((&a, &b), &fi)| {
                        let d = f64::from(a) - f64::from(b);
                        d * d * f64::from(fi)
                    })
                    .sum::<f64>())
        }
    }
}

/// The menu of one tensor: every block type of [`MENU`] whose block divides its rows, with
/// its real stored bytes, its plain squared error and, as `weighted_error`, its damage under
/// `weights` ([`super::tensor_menu`] is this with column weights, or ones).
///
/// # Errors
/// Quantisation failures, mismatched weights, no fitting block type.
pub fn tensor_menu_damage(
    name: &str,
    input_dtype: DType,
    row: usize,
    w: &[f32],
    weights: Weights<'_>,
) -> Result<TensorMenu> {
    let mut options = Vec::new();
    for &dt in &MENU {
        if row == 0 || !row.is_multiple_of(dt.block_elems()) {
            continue;
        }
        let q = quantize(dt, w).with_context(|| format!("quantising {name} to {dt}"))?;
        let back = dequantize(dt, &q, w.len())?;
        let sq_error = w
            .iter()
            .zip(&back)
            .map(|(&a, &b)| {
                let d = f64::from(a) - f64::from(b);
                d * d
            })
            .sum();
        let weighted_error =
            option_damage(w, &back, row, weights).with_context(|| format!("{name}: damage"))?;
        options.push(MenuOption {
            dtype: dt,
            bytes: q.len(),
            sq_error,
            weighted_error,
        });
    }
    if options.is_empty() {
        bail!("{name}: row length {row} is not a multiple of 32; no block type of the menu fits");
    }
    Ok(TensorMenu {
        name: name.to_string(),
        n_elems: w.len(),
        row,
        input_dtype,
        options,
    })
}

/// The empirical Fisher diagonal of the tensors `names` (module doc) over `tokens` in windows
/// of `window` tokens (a last window shorter than 2 tokens is skipped).
///
/// # Errors
/// Runtime errors (a name the runtime lacks, bad tokens), no window to score.
///
/// # Complexity
/// About three f64 forward passes over the tokens; memory 8 bytes per model parameter for the
/// gradient model's weights, as much for one window's gradient, 4 bytes per element of `names`.
pub fn fisher_diag(
    rt: &LlamaModel,
    names: &[String],
    tokens: &[u32],
    window: usize,
    mut progress: impl FnMut(),
) -> Result<HashMap<String, Vec<f32>>> {
    if window < 2 {
        bail!("Fisher windows need at least 2 tokens, got {window}");
    }
    let gm = GradModel::new(rt, &GradSpec::all(rt.config().n_layers))?;
    // f32 sums: 4 bytes per element (a sum of a few dozen squares keeps what a ranking needs).
    let mut acc: HashMap<String, Vec<f32>> = HashMap::new();
    let mut k = 0usize;
    for win in tokens.chunks(window).filter(|w| w.len() >= 2) {
        let g = gm.loss_gradient(win, None)?;
        #[allow(clippy::cast_precision_loss)]
        let nw = g.positions.len() as f64;
        for pg in &g.grads {
            if !names.contains(&pg.name) {
                continue;
            }
            let a = acc
                .entry(pg.name.clone())
                .or_insert_with(|| vec![0.0; pg.grad.len()]);
            for (s, &v) in a.iter_mut().zip(&pg.grad) {
                #[allow(clippy::cast_possible_truncation)]
                let add = (nw * v * v) as f32;
                *s += add;
            }
        }
        k += 1;
        progress();
    }
    if k == 0 {
        bail!("no calibration window of at least 2 tokens for the Fisher diagonal");
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let inv = (1.0 / k as f64) as f32;
    for n in names {
        let a = acc
            .get_mut(n)
            .with_context(|| format!("no gradient for {n}"))?;
        for v in a.iter_mut() {
            *v *= inv;
        }
    }
    Ok(acc)
}

/// The empirical Fisher diagonal of every tensor of the llama decoder in `model` over `tokens`
/// in windows of `window` tokens, streamed block by block from the file
/// ([`claimlab_runtime::fisher_diag_streaming`]): the same numbers as [`fisher_diag`] (the same
/// f64 arithmetic and f32 accumulation), handed to `sink` as they are finished (a block's tensors
/// together, blocks from the last; `output_norm.weight`; `token_embd.weight` last).
/// `progress(done, total)` is called after each of the `2·n_layers + 2` steps.
///
/// # Errors
/// A model that is not a llama GGUF decoder, file errors, bad tokens, `window < 2`, no window to
/// score.
///
/// # Complexity
/// About 1.3 times [`fisher_diag`]'s flops; memory: the output head in f64 twice (weights and
/// one window's gradient), its f32 accumulator, one block in f64, and every block's input for
/// all tokens in f64 (`8·n_layers·T·d_model` bytes), instead of the whole model in f64 twice.
pub fn fisher_diag_streaming(
    model: &Model,
    tokens: &[u32],
    window: usize,
    sink: impl FnMut(Vec<FisherTensor>),
    progress: impl FnMut(usize, usize),
) -> Result<StreamFisher> {
    if window < 2 {
        bail!("Fisher windows need at least 2 tokens, got {window}");
    }
    let mut cfg = LlamaConfig::from_model_config(model.config())?;
    // As `LlamaModel::load`: without `output.weight` the head is the token embedding.
    if model.tensor_info("output.weight").is_err() {
        cfg.tied_embeddings = true;
    }
    Ok(claimlab_runtime::fisher_diag_streaming(
        &cfg,
        tokens,
        window,
        |name| Ok(model.tensor_f32(name)?),
        sink,
        progress,
    )?)
}

#[cfg(test)]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::needless_range_loop
)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn damages_by_hand() {
        // Two rows of two: dW = [[1, 2], [0, -1]].
        let w = [1.0f32, 2.0, 0.0, -1.0];
        let back = [0.0f32; 4];
        let h = [2.0, 3.0];
        // diag: 1·2 + 4·3 + 0 + 1·3 = 17
        let d = option_damage(&w, &back, 2, Weights::Diag(&h)).unwrap();
        assert!((d - 17.0).abs() < 1e-12);
        // full with off-diagonal 0.5: row (1,2): 2 + 12 + 2·0.5·2 = 16; row (0,-1): 3; sum 19
        let hm = Mat::from_fn(2, 2, |i, j| if i == j { h[i] } else { 0.5 });
        let f = option_damage(&w, &back, 2, Weights::Full(hm.as_ref())).unwrap();
        assert!((f - 19.0).abs() < 1e-12, "{f}");
        // Fisher: 1/2 (1·1 + 4·2 + 0 + 1·4) = 6.5
        let fi = [1.0f32, 2.0, 3.0, 4.0];
        let g = option_damage(&w, &back, 2, Weights::Fisher(&fi)).unwrap();
        assert!((g - 6.5).abs() < 1e-12);
        assert!(option_damage(&w, &back, 2, Weights::Fisher(&fi[..3])).is_err());
        assert!(option_damage(&w, &back, 2, Weights::Diag(&h[..1])).is_err());
    }

    /// A tied two-block llama (d_model 8, vocabulary 20) with seeded uniform weights in
    /// [-0.5, 0.5), its configuration and its tensors by name.
    fn tiny_llama(
        seed: u64,
    ) -> (
        claimlab_runtime::LlamaConfig,
        LlamaModel,
        HashMap<String, Vec<f32>>,
    ) {
        use rand::{RngExt as _, SeedableRng as _};
        let c = claimlab_runtime::LlamaConfig {
            n_layers: 2,
            d_model: 8,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 4,
            d_ff: 12,
            vocab_size: 20,
            norm_eps: 1e-5,
            rope_theta: 1e4,
            max_positions: None,
            tied_embeddings: true,
        };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut tensors: HashMap<String, Vec<f32>> = HashMap::new();
        let rt = LlamaModel::from_tensors(c.clone(), |name| {
            let n = match name {
                "token_embd.weight" => 20 * 8,
                s if s.ends_with("norm.weight") => 8,
                s if s.ends_with("attn_q.weight") || s.ends_with("attn_output.weight") => 64,
                s if s.ends_with("attn_k.weight") || s.ends_with("attn_v.weight") => 32,
                _ => 96,
            };
            let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
            tensors.insert(name.to_string(), v.clone());
            Ok(v)
        })
        .unwrap();
        (c, rt, tensors)
    }

    /// Two windows: the estimate is the mean over windows of `n_w · g_w²`, with `g_w` the
    /// runtime's exact gradient of each window's mean loss, recomputed here directly.
    #[test]
    fn fisher_diag_is_the_window_mean_of_scaled_squared_gradients() {
        let (_, rt, _) = tiny_llama(4);
        let tokens: Vec<u32> = (0..11).map(|i| (i * 7 + 1) % 20).collect();
        let names = vec![
            "blk.1.ffn_down.weight".to_string(),
            "token_embd.weight".to_string(),
        ];
        let f = fisher_diag(&rt, &names, &tokens, 6, || {}).unwrap();
        let gm = GradModel::new(&rt, &GradSpec::all(2)).unwrap();
        for name in &names {
            let mut want = vec![0.0f64; f[name].len()];
            for win in tokens.chunks(6) {
                let g = gm.loss_gradient(win, None).unwrap();
                let n = g.positions.len() as f64;
                for (w, v) in want.iter_mut().zip(&g.get(name).unwrap().grad) {
                    *w += 0.5 * n * v * v;
                }
            }
            for (a, b) in f[name].iter().zip(&want) {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-5 * b.abs() + 1e-12,
                    "{name}: {a} {b}"
                );
            }
        }
        assert!(fisher_diag(&rt, &names, &tokens, 1, || {}).is_err());
    }

    /// The streamed diagonal is `fisher_diag`'s, element for element (same arithmetic, same f32
    /// accumulation), for every tensor it covers.
    #[test]
    fn streamed_fisher_equals_fisher_diag() {
        let (c, rt, tensors) = tiny_llama(6);
        let tokens: Vec<u32> = (0..23).map(|i| (i * 7 + 3) % 20).collect();
        let names: Vec<String> = tensors.keys().cloned().collect();
        let want = fisher_diag(&rt, &names, &tokens, 6, || {}).unwrap();
        let mut got: HashMap<String, Vec<f32>> = HashMap::new();
        let s = claimlab_runtime::fisher_diag_streaming(
            &c,
            &tokens,
            6,
            |name| Ok(tensors[name].clone()),
            |batch| {
                for f in batch {
                    got.insert(f.name, f.diag);
                }
            },
            |_, _| {},
        )
        .unwrap();
        assert_eq!(s.windows, 4);
        assert_eq!(got.len(), want.len());
        for (name, w) in &want {
            let g = &got[name];
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(w) {
                assert_eq!(a.to_bits(), b.to_bits(), "{name}: {a} {b}");
            }
        }
    }

    /// `tensor_menu` (which calls `tensor_menu_damage` with diag weights, ones without any)
    /// against the damage recomputed by hand from each option's round trip.
    #[test]
    fn menu_damage_matches_brute_force_and_plain_menu_weighs_one() {
        let w: Vec<f32> = (0..64 * 32)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect();
        let h: Vec<f64> = (0..64).map(|j| 1.0 + f64::from(j) * 0.1).collect();
        let a = super::super::tensor_menu("t", DType::F32, 64, &w, Some(&h)).unwrap();
        let plain = super::super::tensor_menu("t", DType::F32, 64, &w, None).unwrap();
        assert_eq!(a.options.len(), 5);
        for (x, p) in a.options.iter().zip(&plain.options) {
            let q = quantize(x.dtype, &w).unwrap();
            let back = dequantize(x.dtype, &q, w.len()).unwrap();
            let (mut sq, mut wsq) = (0.0, 0.0);
            for (k, (&u, &v)) in w.iter().zip(&back).enumerate() {
                let d = f64::from(u) - f64::from(v);
                sq += d * d;
                wsq += d * d * h[k % 64];
            }
            assert_eq!(x.bytes, q.len());
            assert!((x.sq_error - sq).abs() <= 1e-12 * sq, "{}", x.dtype);
            assert!((x.weighted_error - wsq).abs() <= 1e-12 * wsq, "{}", x.dtype);
            // Without weights the damage is the plain squared error, bit for bit.
            assert_eq!(p.weighted_error.to_bits(), p.sq_error.to_bits());
            assert_eq!(p.sq_error.to_bits(), x.sq_error.to_bits());
        }
        // Wrong-length weights are refused.
        assert!(super::super::tensor_menu("t", DType::F32, 64, &w, Some(&h[..63])).is_err());
    }
}
