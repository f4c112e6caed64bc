//! The tiny random llama shared by the integration tests (`backward`, `patching`, `tiny_llama`):
//! its configuration, seeded random tensors named as in GGUF files, and the model built from them.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::collections::HashMap;

use claimlab_runtime::{LlamaConfig, LlamaModel};
use claimlab_testkit::rand::RngExt;

/// Tensors by GGUF name: shape and row-major values.
pub(crate) type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// A llama with `n_layers` blocks of width 12 (4 query heads, 2 key/value heads of width 4, MLP
/// width 20), a vocabulary of 30 and at most 64 positions; `tied`: the output projection is the
/// token embedding.
pub(crate) fn tiny_llama_config(n_layers: usize, tied: bool) -> LlamaConfig {
    LlamaConfig {
        n_layers,
        d_model: 12,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 4,
        d_ff: 20,
        vocab_size: 30,
        norm_eps: 1e-5,
        rope_theta: 1e4,
        max_positions: Some(64),
        tied_embeddings: tied,
    }
}

/// Seeded random tensors for `c`, drawn in load order: the embedding (and untied output) uniform
/// in ±1, norm gains in 1 ± 0.3, the other matrices in ±0.5. Q/K rows carry no particular RoPE
/// layout (a test that compares against Hugging Face's conventions permutes them itself).
pub(crate) fn tiny_llama_tensors(c: &LlamaConfig, seed: u64) -> Tensors {
    let mut rng = claimlab_testkit::rng(seed);
    let mut t = HashMap::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0))
            .collect();
        t.insert(name, (shape, v));
    };
    let (d, hd, ff) = (c.d_model, c.head_dim, c.d_ff);
    let (qd, kd) = (c.n_heads * hd, c.n_kv_heads * hd);
    add("token_embd.weight".into(), vec![c.vocab_size, d], 1.0, 0.0);
    for l in 0..c.n_layers {
        add(format!("blk.{l}.attn_norm.weight"), vec![d], 0.3, 1.0);
        add(format!("blk.{l}.attn_q.weight"), vec![qd, d], 0.5, 0.0);
        add(format!("blk.{l}.attn_k.weight"), vec![kd, d], 0.5, 0.0);
        add(format!("blk.{l}.attn_v.weight"), vec![kd, d], 0.5, 0.0);
        add(format!("blk.{l}.attn_output.weight"), vec![d, qd], 0.5, 0.0);
        add(format!("blk.{l}.ffn_norm.weight"), vec![d], 0.3, 1.0);
        add(format!("blk.{l}.ffn_gate.weight"), vec![ff, d], 0.5, 0.0);
        add(format!("blk.{l}.ffn_up.weight"), vec![ff, d], 0.5, 0.0);
        add(format!("blk.{l}.ffn_down.weight"), vec![d, ff], 0.5, 0.0);
    }
    add("output_norm.weight".into(), vec![d], 0.3, 1.0);
    if !c.tied_embeddings {
        add("output.weight".into(), vec![c.vocab_size, d], 1.0, 0.0);
    }
    t
}

/// The model of `c` with the tensors `t` (as given, no row permutation).
///
/// # Panics
/// If a tensor is missing or has the wrong size.
pub(crate) fn tiny_llama(c: &LlamaConfig, t: &Tensors) -> LlamaModel {
    LlamaModel::from_tensors(c.clone(), |name| Ok(t[name].1.clone())).expect("tiny llama")
}
