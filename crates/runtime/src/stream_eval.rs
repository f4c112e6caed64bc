//! Layer-streaming perplexity of the llama decoder: the windows of [`crate::perplexity`], their
//! hidden states pushed through the model one block at a time ([`crate::block_forward`]), each
//! block's weights fetched from the caller only while that block runs.
//!
//! Memory is one block's weights, the residual stream of all windows (`n_windows · context ·
//! d_model` floats), one window's intermediate activations and logits of at most
//! [`HEAD_ROWS`] rows, plus the token embedding (fetched twice: once for the lookup, once for
//! a tied output head), instead of the whole model as f32.

use crate::error::{Error, Result};
use crate::eval::{nll, windows, Perplexity, PerplexityConfig};
use crate::hooks::Overrides;
use crate::kernels;
use crate::llama::LlamaConfig;
use crate::stream::{block_forward, final_norm, BlockWeights};

/// Rows of the output head projected at once (bounds the logits buffer to
/// `HEAD_ROWS · vocab_size` floats).
pub const HEAD_ROWS: usize = 128;

/// The nine tensors of block `l` by GGUF name, in [`BlockWeights`] order, with their shapes.
fn block_tensors(cfg: &LlamaConfig, l: usize) -> [(String, [usize; 2]); 9] {
    let (d, hd, ff) = (cfg.d_model, cfg.head_dim, cfg.d_ff);
    let (qd, kd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let n = |s: &str| format!("blk.{l}.{s}.weight");
    [
        (n("attn_norm"), [1, d]),
        (n("attn_q"), [qd, d]),
        (n("attn_k"), [kd, d]),
        (n("attn_v"), [kd, d]),
        (n("attn_output"), [d, qd]),
        (n("ffn_norm"), [1, d]),
        (n("ffn_gate"), [ff, d]),
        (n("ffn_up"), [ff, d]),
        (n("ffn_down"), [d, ff]),
    ]
}

/// Fetches `name` through `source` and checks its length and values.
fn fetch(
    source: &mut dyn FnMut(&str) -> Result<Vec<f32>>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>> {
    let v = source(name)?;
    let expected: usize = shape.iter().product();
    if v.len() != expected {
        return Err(Error::ShapeMismatch {
            tensor: name.to_string(),
            shape: shape.iter().copied().filter(|&s| s != 1).collect(),
            expected,
            actual: v.len(),
        });
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "weight tensor",
            count: v.iter().filter(|x| !x.is_finite()).count(),
            first_index: i,
        });
    }
    Ok(v)
}

/// [`crate::perplexity`] computed block by block, the weights read through `source`.
///
/// The windows, the scoring and the result are those of [`crate::perplexity`] (equal to it up to
/// the order of floating-point operations in the output head, which is applied to at most
/// [`HEAD_ROWS`] rows at a time): all windows' residual streams go through block 0, then block
/// 1, …, then the final norm and the output head.
///
/// # Arguments
/// * `cfg` — the decoder's hyper-parameters (`tied_embeddings` says whether the head is
///   `token_embd.weight` or `output.weight`).
/// * `tokens`, `pcfg` — as [`crate::perplexity`].
/// * `source` — called with a GGUF tensor name (`token_embd.weight`, `blk.L.attn_q.weight`, …,
///   `output_norm.weight`, `output.weight` when untied) and returns its values, row-major in
///   PyTorch order (`[out, in]`), Q and K rows in the GGUF (interleaved RoPE) order, as
///   [`crate::LlamaModel::from_tensors`] takes them. It is called for the token embedding
///   first, then for each block's nine tensors in order (each block's tensors are dropped before
///   the next block's are fetched), then for the final norm and the head; a tied head fetches
///   the token embedding a second time.
///
/// # Errors
/// As [`crate::perplexity`]: [`Error::InvalidParam`] for a bad `pcfg` or configuration,
/// [`Error::Empty`] for fewer than 2 tokens, [`Error::TokenOutOfRange`], [`Error::TooLong`] for a
/// window past `max_positions`, [`Error::NonFinite`] for a non-finite weight or likelihood; plus
/// [`Error::ShapeMismatch`] for a tensor of the wrong length and whatever `source` returns.
///
/// # Complexity
/// The flops of [`crate::perplexity`]. Memory: the residual streams of all windows
/// (`n_windows · context · d_model` f32), one block's weights, one window's activations, the token
/// embedding, and `HEAD_ROWS · vocab_size` logits.
pub fn perplexity_streamed(
    cfg: &LlamaConfig,
    tokens: &[u32],
    pcfg: &PerplexityConfig,
    mut source: impl FnMut(&str) -> Result<Vec<f32>>,
) -> Result<Perplexity> {
    cfg.validate()?;
    if pcfg.context < 2 {
        return Err(Error::invalid(
            "context",
            pcfg.context,
            "must be at least 2",
        ));
    }
    if pcfg.stride == 0 || pcfg.stride > pcfg.context {
        return Err(Error::invalid(
            "stride",
            pcfg.stride,
            "must satisfy 1 <= stride <= context",
        ));
    }
    if tokens.len() < 2 {
        return Err(Error::Empty {
            what: "tokens (need at least 2 to score one)",
        });
    }
    let n = tokens.len();
    let wins = windows(n, pcfg);
    if let Some(max) = cfg.max_positions {
        let longest = wins.iter().map(|w| w.1 - w.0).max().unwrap_or(0);
        if longest > max {
            return Err(Error::TooLong { len: longest, max });
        }
    }
    if let Some((index, &token)) = tokens
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= cfg.vocab_size)
    {
        return Err(Error::TokenOutOfRange {
            index,
            token,
            vocab_size: cfg.vocab_size,
        });
    }
    let src: &mut dyn FnMut(&str) -> Result<Vec<f32>> = &mut source;
    let (d, v) = (cfg.d_model, cfg.vocab_size);
    // Residual streams of every window, from the embedding table (dropped before block 0).
    let mut xs: Vec<Vec<f32>> = {
        let emb = fetch(src, "token_embd.weight", &[v, d])?;
        wins.iter()
            .map(|&(b, e, _)| {
                let mut x = Vec::with_capacity((e - b) * d);
                for &t in &tokens[b..e] {
                    x.extend_from_slice(&emb[t as usize * d..(t as usize + 1) * d]);
                }
                x
            })
            .collect()
    };
    for l in 0..cfg.n_layers {
        let w: Vec<Vec<f32>> = block_tensors(cfg, l)
            .iter()
            .map(|(name, shape)| fetch(src, name, shape))
            .collect::<Result<_>>()?;
        let bw = BlockWeights {
            attn_norm: &w[0],
            wq: &w[1],
            wk: &w[2],
            wv: &w[3],
            wo: &w[4],
            ffn_norm: &w[5],
            gate: &w[6],
            up: &w[7],
            down: &w[8],
        };
        for x in &mut xs {
            block_forward(cfg, &bw, x, 0, false)?;
        }
    }
    let norm = fetch(src, "output_norm.weight", &[1, d])?;
    for x in &mut xs {
        *x = final_norm(cfg, &norm, x)?;
    }
    drop(norm);
    let head_name = if cfg.tied_embeddings {
        "token_embd.weight"
    } else {
        "output.weight"
    };
    let head = fetch(src, head_name, &[v, d])?;
    let mut per_token = Vec::with_capacity(n - 1);
    let mut positions = Vec::with_capacity(n - 1);
    for (&(begin, end, first_target), h) in wins.iter().zip(&xs) {
        // Rows r of the window predict token begin + r + 1; score targets first_target..end.
        let rows = (first_target - 1 - begin)..(end - 1 - begin);
        for chunk in row_chunks(rows) {
            let logits =
                kernels::matmul_nt(&h[chunk.start * d..chunk.end * d], &head, chunk.len(), d, v);
            for (i, r) in chunk.enumerate() {
                per_token.push(nll(&logits[i * v..(i + 1) * v], tokens[begin + r + 1]));
                positions.push(begin + r + 1);
            }
        }
    }
    crate::eval::finish(per_token, positions, wins.len())
}

/// `rows` cut into consecutive ranges of at most [`HEAD_ROWS`] rows; a last range of a single
/// row joins the one before it (a single row takes the matrix–vector path, whose summation order
/// differs from the matrix product's).
fn row_chunks(rows: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut s = rows.start;
    while s < rows.end {
        let mut e = (s + HEAD_ROWS).min(rows.end);
        if rows.end - e == 1 {
            e = rows.end;
        }
        out.push(s..e);
        s = e;
    }
    out
}

/// [`perplexity_streamed`] of a llama GGUF file read from its memory map one block at a time,
/// with the tensors named in `overrides` replaced (e.g. one compressed tensor). The configuration
/// is read as [`crate::LlamaModel::load`] reads it (a file without `output.weight` has a tied
/// head).
///
/// # Errors
/// [`Error::UnsupportedModel`] for a file that is not GGUF, [`Error::BadOverride`] for an
/// override naming no tensor of the file or of the wrong length (checked before any work), and
/// the errors of [`perplexity_streamed`] (file read errors as [`Error::Weights`]).
pub fn perplexity_streamed_file(
    model: &claimlab_weights::Model,
    tokens: &[u32],
    pcfg: &PerplexityConfig,
    overrides: &Overrides,
) -> Result<Perplexity> {
    let cfg = file_config(model)?;
    for (name, values) in overrides {
        let info = model.tensor_info(name).map_err(|_| Error::BadOverride {
            tensor: name.clone(),
            reason: "no tensor of this name in the model".into(),
        })?;
        let n = usize::try_from(info.n_elems()).unwrap_or(usize::MAX);
        if values.len() != n {
            return Err(Error::BadOverride {
                tensor: name.clone(),
                reason: format!("{} values given, the tensor has {n}", values.len()),
            });
        }
    }
    perplexity_streamed(&cfg, tokens, pcfg, |name| match overrides.get(name) {
        Some(v) => Ok(v.clone()),
        None => Ok(model.tensor_f32(name)?),
    })
}

/// The decoder configuration of a llama GGUF file, as [`crate::LlamaModel::load`] reads it.
///
/// # Errors
/// [`Error::UnsupportedModel`] for a file that is not GGUF or not a llama decoder.
pub fn file_config(model: &claimlab_weights::Model) -> Result<LlamaConfig> {
    if !matches!(model.format(), claimlab_weights::Format::Gguf) {
        return Err(Error::UnsupportedModel {
            reason: "llama models are read from GGUF files (RoPE layout is GGUF's)".into(),
        });
    }
    let mut cfg = LlamaConfig::from_model_config(model.config())?;
    if model.tensor_info("output.weight").is_err() {
        cfg.tied_embeddings = true;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_match_the_sliding_rule() {
        let c = PerplexityConfig {
            context: 4,
            stride: 2,
        };
        // [0,4) scores 1..4; [2,6) scores 4..6; [4,8) 6..8; [6,10) 8..10 reaches n.
        assert_eq!(
            windows(10, &c),
            vec![(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
        );
        let d = PerplexityConfig {
            context: 4,
            stride: 4,
        };
        // Disjoint windows: each window's first token has no context in it and is not scored
        // ([4,8) scores 5..8), as `crate::perplexity` does; [8,9) scores nothing.
        assert_eq!(windows(9, &d), vec![(0, 4, 1), (4, 8, 5), (8, 9, 9)]);
    }

    #[test]
    fn row_chunks_cover_without_single_rows() {
        for (a, b) in [
            (0, 0),
            (0, 1),
            (0, 128),
            (0, 129),
            (3, 260),
            (5, 511),
            (0, 257),
        ] {
            let ch = row_chunks(a..b);
            let flat: Vec<usize> = ch.iter().flat_map(Clone::clone).collect();
            assert_eq!(flat, (a..b).collect::<Vec<_>>());
            for c in &ch {
                assert!(c.len() <= HEAD_ROWS + 1);
                assert!(c.len() >= 2 || ch.len() == 1, "{a}..{b}: {ch:?}");
            }
        }
    }
}
