//! Layer-streaming reverse mode: the backward pass of one decoder block from caller-supplied
//! weights ([`block_backward`]), and the empirical Fisher diagonal of every tensor of the decoder
//! computed one block at a time ([`fisher_diag_streaming`]), so that the f64 weights and the
//! per-window gradient of only one block (and the output head) are in memory at once.
//!
//! The arithmetic is that of [`crate::GradModel`] (the same per-block functions, in the same
//! order), so the streamed Fisher diagonal equals the one built from
//! [`crate::GradModel::loss_gradient`] window by window, bit for bit on the same machine.

use crate::backward::{
    block_bwd, block_fwd, mm_nn_into, mm_nt, mm_tn_into, nll_grad, rms_bwd, rms_fwd, rope_table,
    widen, ParamGrad, Rope, BLOCK_TENSORS,
};
use crate::error::{Error, Result};
use crate::llama::LlamaConfig;
use crate::stream::{check_len, BlockWeights};

/// Gradients of a scalar loss through one decoder block ([`block_backward`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BlockGrads {
    /// `∂L/∂W` of the block's nine tensors in [`BLOCK_TENSORS`] order, each row-major like the
    /// tensor.
    pub weights: [Vec<f64>; 9],
    /// `∂L/∂x` of the block's input, `[n, d_model]`.
    pub input: Vec<f64>,
}

/// The Fisher diagonal of one tensor ([`fisher_diag_streaming`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FisherTensor {
    /// GGUF name (`blk.L.ffn_up.weight`, `output_norm.weight`, `token_embd.weight`, …).
    pub name: String,
    /// Shape, PyTorch order (`[out, in]` for matrices).
    pub shape: Vec<usize>,
    /// The diagonal, row-major like the tensor.
    pub diag: Vec<f32>,
}

/// Diagnostics of [`fisher_diag_streaming`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StreamFisher {
    /// Windows averaged (`K`).
    pub windows: usize,
    /// Scored positions over all windows (`Σ n_w`).
    pub positions: usize,
    /// Mean next-token NLL (nats) over the scored positions, from the f64 forward pass.
    pub mean_nll: f64,
}

/// The nine tensors of `w` widened to f64, in [`BLOCK_TENSORS`] order.
fn widen_block(w: &BlockWeights<'_>) -> [Vec<f64>; 9] {
    [
        widen(w.attn_norm),
        widen(w.wq),
        widen(w.wk),
        widen(w.wv),
        widen(w.wo),
        widen(w.ffn_norm),
        widen(w.gate),
        widen(w.up),
        widen(w.down),
    ]
}

/// Checks the nine lengths of `w` against `cfg`.
fn check_block(cfg: &LlamaConfig, w: &[&[f32]; 9]) -> Result<()> {
    let (d, ff) = (cfg.d_model, cfg.d_ff);
    let (qd, kd) = (cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim);
    let shapes: [&[usize]; 9] = [
        &[d],
        &[qd, d],
        &[kd, d],
        &[kd, d],
        &[d, qd],
        &[d],
        &[ff, d],
        &[ff, d],
        &[d, ff],
    ];
    for ((name, shape), v) in BLOCK_TENSORS.iter().zip(shapes).zip(w) {
        check_len(name, shape, v.len())?;
    }
    Ok(())
}

fn as_array<'a>(w: &BlockWeights<'a>) -> [&'a [f32]; 9] {
    [
        w.attn_norm,
        w.wq,
        w.wk,
        w.wv,
        w.wo,
        w.ffn_norm,
        w.gate,
        w.up,
        w.down,
    ]
}

fn zero_block_grads(cfg: &LlamaConfig) -> Vec<ParamGrad> {
    let (d, ff) = (cfg.d_model, cfg.d_ff);
    let (qd, kd) = (cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim);
    let shapes = [
        vec![d],
        vec![qd, d],
        vec![kd, d],
        vec![kd, d],
        vec![d, qd],
        vec![d],
        vec![ff, d],
        vec![ff, d],
        vec![d, ff],
    ];
    BLOCK_TENSORS
        .iter()
        .zip(shapes)
        .map(|(t, shape)| ParamGrad {
            name: (*t).to_string(),
            grad: vec![0.0; shape.iter().product()],
            shape,
        })
        .collect()
}

/// The backward pass of one decoder block: given the block's input `x` (`[n, d_model]`
/// row-major, a causal sequence at positions `0..n`) and `dy = ∂L/∂y` of its output `y` for
/// some scalar loss `L`, the gradients of `L` with respect to the block's nine tensors and its
/// input.
///
/// ```text
/// x1 = x + attn(rms(x; g_attn))        y = x1 + W_down·(silu(W_gate·h2) ⊙ W_up·h2),  h2 = rms(x1; g_ffn)
/// ```
///
/// The block is re-run in f64 (weights widened from their f32 storage) to store its activations,
/// then differentiated by hand exactly as [`crate::GradModel`] does.
///
/// # Arguments
/// * `cfg` — the decoder's configuration.
/// * `w` — the block's weights, as [`crate::block_forward`] takes them.
/// * `x` — the block's input; `dy` — the loss gradient at its output, same length.
///
/// # Errors
/// [`Error::Empty`] for no token, [`Error::ShapeMismatch`] for `x` not whole rows, `dy` of
/// another length, or a weight of the wrong length (named by its GGUF suffix),
/// [`Error::TooLong`] past the model's positions, [`Error::InvalidParam`] for an invalid
/// configuration.
///
/// # Complexity
/// About three times the f64 forward cost of the block (`2·n·P_block + 4·n²·n_heads·head_dim`
/// flops); memory: the block's weights and gradients in f64 and its activations
/// (`O(n·(d_ff + d_model) + n_heads·n²)`).
pub fn block_backward(
    cfg: &LlamaConfig,
    w: &BlockWeights<'_>,
    x: &[f64],
    dy: &[f64],
) -> Result<BlockGrads> {
    cfg.validate()?;
    let d = cfg.d_model;
    if x.is_empty() {
        return Err(Error::Empty { what: "tokens" });
    }
    let n = x.len() / d;
    check_len("activations", &[x.len().div_ceil(d), d], x.len())?;
    check_len("output gradient", &[n, d], dy.len())?;
    if let Some(max) = cfg.max_positions {
        if n > max {
            return Err(Error::TooLong { len: n, max });
        }
    }
    check_block(cfg, &as_array(w))?;
    let w64 = widen_block(w);
    let rope = rope_table(n, cfg.head_dim, cfg.rope_theta);
    let (tape, _) = block_fwd(cfg, &w64, x.to_vec(), n, &rope);
    let mut g = zero_block_grads(cfg);
    let input = block_bwd(cfg, &w64, &tape, dy.to_vec(), n, &rope, Some(&mut g));
    let mut weights: [Vec<f64>; 9] = Default::default();
    for (slot, pg) in weights.iter_mut().zip(g) {
        *slot = pg.grad;
    }
    Ok(BlockGrads { weights, input })
}

/// Adds `n_w·g²` (rounded to f32) into `acc`, the accumulation of `fisher_diag`.
fn add_scaled_squares(acc: &mut [f32], g: &[f64], nw: f64) {
    for (s, &v) in acc.iter_mut().zip(g) {
        #[allow(clippy::cast_possible_truncation)]
        let add = (nw * v * v) as f32;
        *s += add;
    }
}

/// Multiplies `acc` by `1/K` (in f32, as `fisher_diag` does).
fn scale_by_windows(acc: &mut [f32], k: usize) {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let inv = (1.0 / k as f64) as f32;
    for v in acc.iter_mut() {
        *v *= inv;
    }
}

fn load_checked(
    load: &mut dyn FnMut(&str) -> Result<Vec<f32>>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>> {
    let v = load(name)?;
    check_len(name, shape, v.len())?;
    Ok(v)
}

fn load_block(
    cfg: &LlamaConfig,
    load: &mut dyn FnMut(&str) -> Result<Vec<f32>>,
    l: usize,
) -> Result<[Vec<f64>; 9]> {
    let mut raw: [Vec<f32>; 9] = Default::default();
    for (slot, t) in raw.iter_mut().zip(BLOCK_TENSORS) {
        *slot = load(&format!("blk.{l}.{t}.weight"))?;
    }
    let refs: [&[f32]; 9] = std::array::from_fn(|i| raw[i].as_slice());
    check_block(cfg, &refs).map_err(|e| match e {
        Error::ShapeMismatch {
            tensor,
            shape,
            expected,
            actual,
        } => Error::ShapeMismatch {
            tensor: format!("blk.{l}.{tensor}.weight"),
            shape,
            expected,
            actual,
        },
        e => e,
    })?;
    Ok(std::array::from_fn(|i| widen(&raw[i])))
}

/// The empirical Fisher diagonal of every tensor of a llama decoder on `tokens`, streamed block
/// by block:
///
/// ```text
/// F = (1/K) Σ_w n_w · g_w ⊙ g_w,     g_w = ∇_θ (1/n_w) Σ_{t<n_w} −log p(x_{t+1} | x_{..=t})
/// ```
///
/// over the `K` windows `tokens.chunks(window)` of at least 2 tokens (a last window shorter
/// than 2 is skipped), `n_w` = the window's length − 1. This is `compress`'s Fisher damage
/// (SqueezeLLM's empirical Fisher) and what accumulating [`crate::GradModel::loss_gradient`]
/// window by window gives, with the same f32 accumulation.
///
/// The pass runs in four stages: (1) every window forward through the blocks in f64, keeping only
/// each block's input; (2) the output head on every window: the loss, its gradient at the last
/// block's output, the final norm's Fisher; (3) the blocks top-down, each re-run forward and back
/// on every window from its stored input; (4) the token embedding: per window the dense
/// output-head gradient plus the rows its tokens looked up (tied), or the looked-up rows only
/// (untied; then `output.weight` is finished in stage 2).
///
/// # Arguments
/// * `cfg` — the decoder's configuration (`tied_embeddings` decides where the head reads from).
/// * `tokens` — calibration token ids; `window` — tokens per window (at least 2).
/// * `load` — returns a tensor's f32 values by GGUF name (`blk.L.attn_q.weight`, …), e.g. from a
///   memory map; each block's tensors are requested twice (stages 1 and 3), the embedding once.
/// * `sink` — receives the finished diagonals: a block's nine tensors together (blocks from the
///   last to the first), `output_norm.weight` (and `output.weight` if untied) after stage 2,
///   `token_embd.weight` last. The caller can turn each into what it needs and drop it.
/// * `progress` — called with `(done, total)` after each of the `2·n_layers + 2` steps.
///
/// # Returns
/// The number of windows and positions and the mean loss ([`StreamFisher`]).
///
/// # Errors
/// [`Error::InvalidParam`] for `window < 2` or an invalid configuration, [`Error::Empty`] for no
/// token or no window of 2 tokens, [`Error::TokenOutOfRange`], [`Error::TooLong`] for a window
/// past the model's positions, [`Error::ShapeMismatch`] for a loaded tensor of the wrong length
/// (by its full GGUF name), whatever `load` returns, and [`Error::NonFinite`] for a non-finite
/// loss.
///
/// # Complexity
/// About 1.3 times the flops of [`crate::GradModel::loss_gradient`] over all windows (each block
/// runs forward twice) plus one more output-head product per window. Memory: the output head in
/// f64 (`8·vocab·d_model` bytes) and one dense gradient of it per window (as much again), its f32
/// Fisher accumulator (`4·vocab·d_model`), one block's f64 weights and gradients, and each
/// block's input for all tokens (`8·n_layers·T·d_model` bytes) — not the whole model.
///
/// # Panics
/// Only if `sink` or `load` panics.
pub fn fisher_diag_streaming(
    cfg: &LlamaConfig,
    tokens: &[u32],
    window: usize,
    mut load: impl FnMut(&str) -> Result<Vec<f32>>,
    mut sink: impl FnMut(Vec<FisherTensor>),
    mut progress: impl FnMut(usize, usize),
) -> Result<StreamFisher> {
    cfg.validate()?;
    if window < 2 {
        return Err(Error::invalid(
            "window",
            window,
            "Fisher windows need at least 2 tokens",
        ));
    }
    if tokens.is_empty() {
        return Err(Error::Empty { what: "tokens" });
    }
    let (d, vocab, nl) = (cfg.d_model, cfg.vocab_size, cfg.n_layers);
    if let Some((index, &token)) = tokens
        .iter()
        .enumerate()
        .find(|&(_, &t)| t as usize >= vocab)
    {
        return Err(Error::TokenOutOfRange {
            index,
            token,
            vocab_size: vocab,
        });
    }
    if let Some(max) = cfg.max_positions {
        let longest = window.min(tokens.len());
        if longest > max {
            return Err(Error::TooLong { len: longest, max });
        }
    }
    // Windows as (offset, length) in tokens.
    let wins: Vec<(usize, usize)> = tokens
        .chunks(window)
        .enumerate()
        .filter(|(_, w)| w.len() >= 2)
        .map(|(i, w)| (i * window, w.len()))
        .collect();
    if wins.is_empty() {
        return Err(Error::Empty {
            what: "Fisher windows (need at least 2 tokens)",
        });
    }
    let total_steps = 2 * nl + 2;
    let mut step = 0usize;
    let mut tick = |p: &mut dyn FnMut(usize, usize)| {
        step += 1;
        p(step, total_steps);
    };
    let load: &mut dyn FnMut(&str) -> Result<Vec<f32>> = &mut load;
    let ropes: Vec<Rope> = wins
        .iter()
        .map(|&(_, n)| rope_table(n, cfg.head_dim, cfg.rope_theta))
        .collect();

    // 1. Forward, keeping each block's input (all windows concatenated, `[T', d]`).
    let emb64 = widen(&load_checked(load, "token_embd.weight", &[vocab, d])?);
    let mut x: Vec<Vec<f64>> = wins
        .iter()
        .map(|&(o, n)| {
            let mut v = Vec::with_capacity(n * d);
            for &t in &tokens[o..o + n] {
                v.extend_from_slice(&emb64[t as usize * d..(t as usize + 1) * d]);
            }
            v
        })
        .collect();
    let mut inputs: Vec<Vec<Vec<f64>>> = Vec::with_capacity(nl);
    for l in 0..nl {
        let w = load_block(cfg, load, l)?;
        let mut next = Vec::with_capacity(x.len());
        for ((xw, &(_, n)), rope) in x.iter().zip(&wins).zip(&ropes) {
            let (_, y) = block_fwd(cfg, &w, xw.clone(), n, rope);
            next.push(y);
        }
        inputs.push(std::mem::replace(&mut x, next));
        tick(&mut progress);
    }

    // 2. Output head: loss, gradient at the last block's output, final norm's Fisher.
    let out_norm = widen(&load_checked(load, "output_norm.weight", &[d])?);
    let head_untied = if cfg.tied_embeddings {
        None
    } else {
        Some(widen(&load_checked(load, "output.weight", &[vocab, d])?))
    };
    let lm_head: &[f64] = head_untied.as_deref().unwrap_or(&emb64);
    let mut acc_norm = vec![0.0f32; d];
    let mut acc_out = if cfg.tied_embeddings {
        Vec::new()
    } else {
        vec![0.0f32; vocab * d]
    };
    let mut dxs: Vec<Vec<f64>> = Vec::with_capacity(wins.len());
    let (mut nll_sum, mut positions) = (0.0, 0usize);
    for (xl, &(o, n)) in x.iter().zip(&wins) {
        let win = &tokens[o..o + n];
        let s = n - 1;
        let (hf, rf) = rms_fwd(xl, &out_norm, cfg.norm_eps);
        let dlogits = head_loss_grad(&hf, win, lm_head, d, vocab, &mut nll_sum)?;
        #[allow(clippy::cast_precision_loss)]
        let nw = s as f64;
        let mut dhf_rows = vec![0.0; s * d];
        mm_nn_into(&mut dhf_rows, &dlogits, lm_head, s, vocab, d);
        if !cfg.tied_embeddings {
            let mut g = vec![0.0; vocab * d];
            mm_tn_into(&mut g, &dlogits, &hf[..s * d], s, vocab, d);
            add_scaled_squares(&mut acc_out, &g, nw);
        }
        drop(dlogits);
        let mut dhf = vec![0.0; n * d];
        dhf[..s * d].copy_from_slice(&dhf_rows);
        let mut dx = vec![0.0; n * d];
        let mut gnorm = vec![0.0; d];
        rms_bwd(&dhf, xl, &rf, &out_norm, &mut dx, Some(&mut gnorm));
        add_scaled_squares(&mut acc_norm, &gnorm, nw);
        dxs.push(dx);
        positions += s;
    }
    drop(head_untied);
    let k = wins.len();
    scale_by_windows(&mut acc_norm, k);
    let mut head_out = vec![FisherTensor {
        name: "output_norm.weight".into(),
        shape: vec![d],
        diag: acc_norm,
    }];
    if !cfg.tied_embeddings {
        scale_by_windows(&mut acc_out, k);
        head_out.push(FisherTensor {
            name: "output.weight".into(),
            shape: vec![vocab, d],
            diag: acc_out,
        });
    }
    sink(head_out);
    tick(&mut progress);

    // 3. Blocks top-down, each re-run on every window from its stored input.
    for l in (0..nl).rev() {
        let w = load_block(cfg, load, l)?;
        let xin = inputs.pop().unwrap_or_default();
        let mut acc: Vec<Vec<f32>> = zero_block_grads(cfg)
            .into_iter()
            .map(|g| vec![0.0f32; g.grad.len()])
            .collect();
        for (((xw, dx), &(_, n)), rope) in
            xin.into_iter().zip(dxs.iter_mut()).zip(&wins).zip(&ropes)
        {
            let (tape, _) = block_fwd(cfg, &w, xw, n, rope);
            let mut g = zero_block_grads(cfg);
            *dx = block_bwd(cfg, &w, &tape, std::mem::take(dx), n, rope, Some(&mut g));
            #[allow(clippy::cast_precision_loss)]
            let nw = (n - 1) as f64;
            for (a, pg) in acc.iter_mut().zip(&g) {
                add_scaled_squares(a, &pg.grad, nw);
            }
        }
        let shapes = zero_block_grads(cfg);
        let out: Vec<FisherTensor> = acc
            .into_iter()
            .zip(shapes)
            .map(|(mut a, pg)| {
                scale_by_windows(&mut a, k);
                FisherTensor {
                    name: format!("blk.{l}.{}.weight", pg.name),
                    shape: pg.shape,
                    diag: a,
                }
            })
            .collect();
        sink(out);
        tick(&mut progress);
    }

    // 4. Token embedding: the head's dense gradient (tied) plus the looked-up rows.
    let mut acc_emb = vec![0.0f32; vocab * d];
    let mut g = vec![0.0; vocab * d];
    for ((xl, dx), &(o, n)) in x.iter().zip(&dxs).zip(&wins) {
        let win = &tokens[o..o + n];
        let s = n - 1;
        #[allow(clippy::cast_precision_loss)]
        let nw = s as f64;
        if cfg.tied_embeddings {
            let (hf, _) = rms_fwd(xl, &out_norm, cfg.norm_eps);
            let mut unused = 0.0;
            let dlogits = head_loss_grad(&hf, win, &emb64, d, vocab, &mut unused)?;
            g.fill(0.0);
            mm_tn_into(&mut g, &dlogits, &hf[..s * d], s, vocab, d);
            for (t, &tok) in win.iter().enumerate() {
                let row = &mut g[tok as usize * d..(tok as usize + 1) * d];
                for (a, b) in row.iter_mut().zip(&dx[t * d..(t + 1) * d]) {
                    *a += b;
                }
            }
            add_scaled_squares(&mut acc_emb, &g, nw);
        } else {
            // Only the looked-up rows are non-zero; the others would add f32 zeros.
            let mut rows: Vec<u32> = win.to_vec();
            rows.sort_unstable();
            rows.dedup();
            for &r in &rows {
                let r = r as usize;
                let gr = &mut g[r * d..(r + 1) * d];
                gr.fill(0.0);
                for (t, &tok) in win.iter().enumerate() {
                    if tok as usize == r {
                        for (a, b) in gr.iter_mut().zip(&dx[t * d..(t + 1) * d]) {
                            *a += b;
                        }
                    }
                }
                add_scaled_squares(&mut acc_emb[r * d..(r + 1) * d], gr, nw);
            }
        }
    }
    drop((g, emb64, x, dxs));
    scale_by_windows(&mut acc_emb, k);
    sink(vec![FisherTensor {
        name: "token_embd.weight".into(),
        shape: vec![vocab, d],
        diag: acc_emb,
    }]);
    tick(&mut progress);
    #[allow(clippy::cast_precision_loss)]
    let mean_nll = nll_sum / positions as f64;
    Ok(StreamFisher {
        windows: k,
        positions,
        mean_nll,
    })
}

/// The scaled loss gradient at the logits of a window's scored rows `0..n−1` (`[n−1, vocab]`),
/// as [`crate::GradModel::loss_gradient`] forms it; adds the rows' NLL into `nll_sum`.
fn head_loss_grad(
    hf: &[f64],
    win: &[u32],
    lm_head: &[f64],
    d: usize,
    vocab: usize,
    nll_sum: &mut f64,
) -> Result<Vec<f64>> {
    let s = win.len() - 1;
    let logits = mm_nt(&hf[..s * d], lm_head, s, d, vocab);
    #[allow(clippy::cast_precision_loss)]
    let wgt = 1.0 / s as f64;
    let mut dlogits = vec![0.0; s * vocab];
    let mut total = 0.0;
    let (mut bad, mut count) = (None, 0usize);
    for (i, &y) in win[1..].iter().enumerate() {
        let (nll, dl) = nll_grad(&logits[i * vocab..(i + 1) * vocab], y as usize);
        if !nll.is_finite() {
            bad.get_or_insert(i);
            count += 1;
        }
        total += nll;
        for (o, gv) in dlogits[i * vocab..(i + 1) * vocab].iter_mut().zip(dl) {
            *o = gv * wgt;
        }
    }
    if let Some(first_index) = bad {
        return Err(Error::NonFinite {
            what: "loss",
            count,
            first_index,
        });
    }
    *nll_sum += total;
    Ok(dlogits)
}
