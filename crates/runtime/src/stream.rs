//! Layer-streaming forward pass of the llama decoder: one block at a time on an activation
//! matrix, with the block's weights supplied by the caller (e.g. read from a memory map one block
//! at a time, or already quantised), and optionally the inputs of its seven linear maps.
//!
//! Chaining [`block_forward`] over the blocks of a [`crate::LlamaModel`] from the token embeddings
//! gives the residual stream of [`crate::LlamaModel::forward`] (same kernels, same order of
//! operations); [`final_norm`] gives the normed hidden state the output head reads.

use crate::error::{Error, Result};
use crate::kernels::{self, AttnShape, RopeLayout, RopeTable};
use crate::llama::LlamaConfig;

/// The weights of one decoder block, row-major in PyTorch order (`[out, in]`), Q and K rows in the
/// GGUF (interleaved RoPE) order, as [`crate::LlamaModel::from_tensors`] takes them.
#[derive(Clone, Copy, Debug)]
pub struct BlockWeights<'a> {
    /// `attn_norm` `[d_model]`.
    pub attn_norm: &'a [f32],
    /// `attn_q` `[n_heads·head_dim, d_model]`.
    pub wq: &'a [f32],
    /// `attn_k` `[n_kv_heads·head_dim, d_model]`.
    pub wk: &'a [f32],
    /// `attn_v` `[n_kv_heads·head_dim, d_model]`.
    pub wv: &'a [f32],
    /// `attn_output` `[d_model, n_heads·head_dim]`.
    pub wo: &'a [f32],
    /// `ffn_norm` `[d_model]`.
    pub ffn_norm: &'a [f32],
    /// `ffn_gate` `[d_ff, d_model]`.
    pub gate: &'a [f32],
    /// `ffn_up` `[d_ff, d_model]`.
    pub up: &'a [f32],
    /// `ffn_down` `[d_model, d_ff]`.
    pub down: &'a [f32],
}

/// The inputs of a block's linear maps over the tokens of one call, row-major `[n, width]`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BlockInputs {
    /// Normed residual entering attention (input of Q, K and V), `[n, d_model]`.
    pub attn_in: Vec<f32>,
    /// Concatenated attention heads (input of the attention output), `[n, n_heads·head_dim]`.
    pub o_in: Vec<f32>,
    /// Normed residual entering the MLP (input of gate and up), `[n, d_model]`.
    pub ffn_in: Vec<f32>,
    /// `silu(gate) ⊙ up` (input of down), `[n, d_ff]`.
    pub down_in: Vec<f32>,
}

pub(crate) fn check_len(what: &str, shape: &[usize], actual: usize) -> Result<()> {
    let expected: usize = shape.iter().product();
    if expected == actual {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            tensor: what.to_string(),
            shape: shape.to_vec(),
            expected,
            actual,
        })
    }
}

/// One decoder block applied in place to the residual stream `x` (`[n, d_model]` row-major, the
/// tokens of one causal sequence at positions `start..start + n`; attention sees only these `n`
/// tokens, so `start` shifts the RoPE angles only): `x ← x + attn(x)`, then `x ← x + mlp(x)`.
///
/// # Returns
/// The inputs of the block's linear maps ([`BlockInputs`]) when `capture` is true.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `x` is not a whole number of rows of `d_model` or a weight has
/// the wrong length (named by its GGUF suffix), [`Error::Empty`] for no token, and
/// [`Error::InvalidParam`] for an invalid configuration.
///
/// # Complexity
/// `2·n·P_block + 4·n²·n_heads·head_dim` flops; memory `O(n·(d_ff + d_model) + n_heads·n²)`.
pub fn block_forward(
    cfg: &LlamaConfig,
    w: &BlockWeights<'_>,
    x: &mut [f32],
    start: usize,
    capture: bool,
) -> Result<Option<BlockInputs>> {
    cfg.validate()?;
    let (d, hd, ff) = (cfg.d_model, cfg.head_dim, cfg.d_ff);
    let (qd, kd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    if x.is_empty() {
        return Err(Error::Empty { what: "tokens" });
    }
    if !x.len().is_multiple_of(d) {
        return Err(Error::ShapeMismatch {
            tensor: "activations".into(),
            shape: vec![x.len().div_ceil(d), d],
            expected: x.len().div_ceil(d) * d,
            actual: x.len(),
        });
    }
    let n = x.len() / d;
    check_len("attn_norm", &[d], w.attn_norm.len())?;
    check_len("attn_q", &[qd, d], w.wq.len())?;
    check_len("attn_k", &[kd, d], w.wk.len())?;
    check_len("attn_v", &[kd, d], w.wv.len())?;
    check_len("attn_output", &[d, qd], w.wo.len())?;
    check_len("ffn_norm", &[d], w.ffn_norm.len())?;
    check_len("ffn_gate", &[ff, d], w.gate.len())?;
    check_len("ffn_up", &[ff, d], w.up.len())?;
    check_len("ffn_down", &[d, ff], w.down.len())?;
    let rope = RopeTable::positions(start, n, hd, cfg.rope_theta);
    let want = BlockCapture {
        inputs: capture,
        ..BlockCapture::default()
    };
    Ok(block_step(cfg, w, x, &rope, KvSource::Local, want).inputs)
}

/// Where the attention of [`block_step`] finds its keys and values.
pub(crate) enum KvSource<'c> {
    /// The new tokens only (they attend to each other, causally).
    Local,
    /// A cache layer holding `cached` positions before the new tokens: the new keys and values
    /// are appended to it and the new tokens attend to all of it.
    Append {
        keys: &'c mut Vec<f32>,
        values: &'c mut Vec<f32>,
        cached: usize,
    },
    /// A cache layer of `cached` positions, read only: the new tokens attend to it followed by
    /// themselves, and it is left unchanged.
    Read {
        keys: &'c [f32],
        values: &'c [f32],
        cached: usize,
    },
}

/// What [`block_step`] records besides updating the stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlockCapture {
    /// Attention probabilities.
    pub(crate) probs: bool,
    /// The MLP pre-activation (`gate`).
    pub(crate) mlp_pre: bool,
    /// The MLP post-activation (`silu(gate) ⊙ up`).
    pub(crate) mlp_post: bool,
    /// The inputs of the linear maps ([`BlockInputs`]).
    pub(crate) inputs: bool,
}

/// What [`block_step`] recorded (each `None` unless asked for).
#[derive(Debug, Default)]
pub(crate) struct BlockTrace {
    pub(crate) probs: Option<Vec<f32>>,
    pub(crate) mlp_pre: Option<Vec<f32>>,
    pub(crate) mlp_post: Option<Vec<f32>>,
    pub(crate) inputs: Option<BlockInputs>,
}

/// One decoder block on the residual stream `x` (`[n, d_model]`, shapes checked by the caller):
/// the one block of [`block_forward`], [`crate::LlamaModel::forward`],
/// [`crate::LlamaModel::forward_cached`] and [`crate::LlamaModel::forward_from_layer`]. `rope`
/// holds the angles of the new tokens' positions.
pub(crate) fn block_step(
    cfg: &LlamaConfig,
    w: &BlockWeights<'_>,
    x: &mut [f32],
    rope: &RopeTable,
    kv: KvSource<'_>,
    want: BlockCapture,
) -> BlockTrace {
    let (d, hd, ff) = (cfg.d_model, cfg.head_dim, cfg.d_ff);
    let qd = cfg.n_heads * hd;
    let n = x.len() / d;
    let shape = AttnShape {
        n,
        n_heads: cfg.n_heads,
        n_kv_heads: cfg.n_kv_heads,
        head_dim: hd,
        causal: true,
    };
    let h = kernels::rms_norm(x, w.attn_norm, cfg.norm_eps);
    let [mut q, mut k, v] = kernels::matmul_nt_many(&h, [w.wq, w.wk, w.wv], n, d);
    kernels::rope(&mut q, cfg.n_heads, rope, RopeLayout::Interleaved);
    kernels::rope(&mut k, cfg.n_kv_heads, rope, RopeLayout::Interleaved);
    let (a, probs) = match kv {
        KvSource::Local => kernels::attention(&q, &k, &v, shape, want.probs),
        KvSource::Append {
            keys,
            values,
            cached,
        } => {
            keys.extend_from_slice(&k);
            values.extend_from_slice(&v);
            kernels::attention_at(&q, keys, values, shape, cached + n, cached, want.probs)
        }
        KvSource::Read {
            keys,
            values,
            cached,
        } => {
            let keys = [keys, &k].concat();
            let values = [values, &v].concat();
            kernels::attention_at(&q, &keys, &values, shape, cached + n, cached, want.probs)
        }
    };
    drop((q, k, v));
    let o = kernels::matmul_nt(&a, w.wo, n, qd, d);
    kernels::add_into(x, &o);
    let h2 = kernels::rms_norm(x, w.ffn_norm, cfg.norm_eps);
    let [mut g, u] = kernels::matmul_nt_many(&h2, [w.gate, w.up], n, d);
    let mlp_pre = want.mlp_pre.then(|| g.clone());
    for (gv, uv) in g.iter_mut().zip(&u) {
        *gv = kernels::silu(*gv) * uv;
    }
    drop(u);
    let mlp_post = want.mlp_post.then(|| g.clone());
    let y = kernels::matmul_nt(&g, w.down, n, ff, d);
    kernels::add_into(x, &y);
    BlockTrace {
        probs,
        mlp_pre,
        mlp_post,
        inputs: want.inputs.then_some(BlockInputs {
            attn_in: h,
            o_in: a,
            ffn_in: h2,
            down_in: g,
        }),
    }
}

/// The final RMSNorm of the residual stream `x` (`[n, d_model]`) with weight `norm`
/// (`output_norm`): the input of the output head.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `norm` is not `d_model` long or `x` not whole rows of it.
pub fn final_norm(cfg: &LlamaConfig, norm: &[f32], x: &[f32]) -> Result<Vec<f32>> {
    check_len("output_norm", &[cfg.d_model], norm.len())?;
    check_len(
        "activations",
        &[x.len() / cfg.d_model.max(1), cfg.d_model],
        x.len(),
    )?;
    Ok(kernels::rms_norm(x, norm, cfg.norm_eps))
}

#[cfg(test)]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::needless_range_loop
)]
mod tests {
    use super::*;
    use crate::hooks::{Capture, Hooks};
    use crate::llama::LlamaModel;
    use rand::{RngExt as _, SeedableRng as _};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn cfg() -> LlamaConfig {
        LlamaConfig {
            n_layers: 3,
            d_model: 16,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 4,
            d_ff: 24,
            vocab_size: 40,
            norm_eps: 1e-5,
            rope_theta: 1e4,
            max_positions: Some(64),
            tied_embeddings: true,
        }
    }

    fn tiny(c: &LlamaConfig, seed: u64) -> LlamaModel {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        LlamaModel::from_tensors(c.clone(), |name| {
            let n = match name {
                "token_embd.weight" => c.vocab_size * c.d_model,
                s if s.ends_with("norm.weight") => c.d_model,
                s if s.ends_with("attn_q.weight") || s.ends_with("attn_output.weight") => {
                    c.n_heads * c.head_dim * c.d_model
                }
                s if s.ends_with("attn_k.weight") || s.ends_with("attn_v.weight") => {
                    c.n_kv_heads * c.head_dim * c.d_model
                }
                _ => c.d_ff * c.d_model,
            };
            let offset = if name.ends_with("norm.weight") {
                1.0
            } else {
                0.0
            };
            Ok((0..n)
                .map(|_| offset + 0.5 * (rng.random::<f32>() * 2.0 - 1.0))
                .collect())
        })
        .unwrap()
    }

    fn block<'a>(m: &'a LlamaModel, l: usize) -> BlockWeights<'a> {
        let p = |s: &str| m.param(&format!("blk.{l}.{s}.weight")).unwrap().1;
        BlockWeights {
            attn_norm: p("attn_norm"),
            wq: p("attn_q"),
            wk: p("attn_k"),
            wv: p("attn_v"),
            wo: p("attn_output"),
            ffn_norm: p("ffn_norm"),
            gate: p("ffn_gate"),
            up: p("ffn_up"),
            down: p("ffn_down"),
        }
    }

    #[test]
    fn chained_blocks_equal_the_full_forward() {
        let c = cfg();
        let m = tiny(&c, 3);
        let tokens: Vec<u32> = (0..11).map(|i| (i * 7 + 3) % 40).collect();
        let hooks = Hooks {
            capture: Capture {
                attention: false,
                mlp_pre: false,
                mlp_post: true,
                residual: true,
                layers: None,
            },
            overrides: Default::default(),
        };
        let out = m.forward(&tokens, &hooks).unwrap();
        let emb = m.param("token_embd.weight").unwrap().1;
        let d = c.d_model;
        let mut x: Vec<f32> = tokens
            .iter()
            .flat_map(|&t| emb[t as usize * d..(t as usize + 1) * d].to_vec())
            .collect();
        for l in 0..c.n_layers {
            let inp = block_forward(&c, &block(&m, l), &mut x, 0, true)
                .unwrap()
                .unwrap();
            let lc = &out.captures.layers[l];
            for (a, b) in x.iter().zip(lc.residual.as_ref().unwrap()) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "layer {l}: {a} {b}"
                );
            }
            for (a, b) in inp.down_in.iter().zip(lc.mlp_post.as_ref().unwrap()) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "layer {l}: {a} {b}"
                );
            }
            assert_eq!(inp.attn_in.len(), tokens.len() * d);
            assert_eq!(inp.o_in.len(), tokens.len() * c.n_heads * c.head_dim);
        }
        // The head on the final norm gives the model's logits.
        let h = final_norm(&c, m.param("output_norm.weight").unwrap().1, &x).unwrap();
        for t in 0..tokens.len() {
            for v in 0..c.vocab_size {
                let z: f32 = (0..d).map(|j| h[t * d + j] * emb[v * d + j]).sum();
                let r = out.row(t)[v];
                assert!((z - r).abs() <= 1e-4 * (1.0 + r.abs()), "{t} {v}: {z} {r}");
            }
        }
    }

    /// The captured inputs are the inputs: the attention-output input times `W_oᵀ` added to the
    /// stream, and `attn_in` is the normed stream, recomputed by hand.
    #[test]
    fn captured_inputs_rebuild_the_block() {
        let c = cfg();
        let m = tiny(&c, 5);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let (n, d, qd) = (7, c.d_model, c.n_heads * c.head_dim);
        let x0: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let mut x = x0.clone();
        let w = block(&m, 1);
        let inp = block_forward(&c, &w, &mut x, 0, true).unwrap().unwrap();
        for t in 0..n {
            let row = &x0[t * d..(t + 1) * d];
            let ms: f64 = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / d as f64;
            let inv = 1.0 / (ms + c.norm_eps).sqrt();
            for j in 0..d {
                let want = f64::from(row[j]) * inv * f64::from(w.attn_norm[j]);
                assert!((f64::from(inp.attn_in[t * d + j]) - want).abs() < 1e-5);
            }
            // x = x0 + o_in W_oᵀ + down_in W_downᵀ
            for i in 0..d {
                let o: f64 = (0..qd)
                    .map(|k| f64::from(inp.o_in[t * qd + k]) * f64::from(w.wo[i * qd + k]))
                    .sum();
                let y: f64 = (0..c.d_ff)
                    .map(|k| {
                        f64::from(inp.down_in[t * c.d_ff + k]) * f64::from(w.down[i * c.d_ff + k])
                    })
                    .sum();
                let want = f64::from(x0[t * d + i]) + o + y;
                assert!((f64::from(x[t * d + i]) - want).abs() < 1e-5, "{t} {i}");
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let c = cfg();
        let m = tiny(&c, 1);
        let mut w = block(&m, 0);
        let mut x = vec![0.1f32; 2 * c.d_model];
        let short = vec![0.0f32; 3];
        w.wq = &short;
        assert!(matches!(
            block_forward(&c, &w, &mut x, 0, false),
            Err(Error::ShapeMismatch { ref tensor, .. }) if tensor == "attn_q"
        ));
        let w = block(&m, 0);
        let mut bad = vec![0.1f32; c.d_model + 1];
        assert!(matches!(
            block_forward(&c, &w, &mut bad, 0, false),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            block_forward(&c, &w, &mut [], 0, false),
            Err(Error::Empty { .. })
        ));
        assert!(final_norm(&c, &short, &x).is_err());
    }
}
