//! Hooks: what a forward pass records, and which weights it replaces.

use std::collections::HashMap;

/// Replacement weights, tensor name → values (row-major in the tensor's shape, same element count
/// as the original). A forward pass reads an override instead of the loaded tensor and never copies
/// the tensors that are not overridden.
pub type Overrides = HashMap<String, Vec<f32>>;

/// Which intermediate values a forward pass records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    /// Attention probabilities per layer, `[n_heads, n, n]` (row = query, column = key).
    pub attention: bool,
    /// MLP values before the activation, `[n, d_ff]`: BERT's intermediate dense output; the
    /// llama gate projection (the argument of SiLU).
    pub mlp_pre: bool,
    /// MLP values after the activation, `[n, d_ff]`: BERT's GELU output; llama's
    /// `silu(gate) ⊙ up` (the input of the down projection).
    pub mlp_post: bool,
    /// Residual stream `[n, d_model]`: the embedding output and the output of every block.
    pub residual: bool,
    /// Restrict layer captures to these block indices (`None`: all blocks).
    pub layers: Option<Vec<usize>>,
}

impl Capture {
    /// Capture everything in every layer.
    #[must_use]
    pub fn all() -> Self {
        Capture {
            attention: true,
            mlp_pre: true,
            mlp_post: true,
            residual: true,
            layers: None,
        }
    }

    pub(crate) fn wants(&self, layer: usize) -> bool {
        self.layers.as_ref().is_none_or(|ls| ls.contains(&layer))
    }
}

/// Options of one forward pass: captures and weight substitution.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// What to record.
    pub capture: Capture,
    /// Weights to substitute, by tensor name (see [`Overrides`]).
    pub overrides: Overrides,
}

impl Hooks {
    /// No captures, no overrides: a plain forward pass.
    #[must_use]
    pub fn none() -> Self {
        Hooks::default()
    }

    /// Substitute weights, capture nothing.
    #[must_use]
    pub fn with_overrides(overrides: Overrides) -> Self {
        Hooks {
            capture: Capture::default(),
            overrides,
        }
    }
}

/// Values recorded in one block (fields are `None` unless requested in [`Capture`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LayerCapture {
    /// Block index.
    pub layer: usize,
    /// Attention probabilities `[n_heads, n, n]`, row-major.
    pub attention: Option<Vec<f32>>,
    /// MLP pre-activation `[n, d_ff]`.
    pub mlp_pre: Option<Vec<f32>>,
    /// MLP post-activation `[n, d_ff]`.
    pub mlp_post: Option<Vec<f32>>,
    /// Residual stream after this block `[n, d_model]`.
    pub residual: Option<Vec<f32>>,
}

/// Everything a forward pass recorded.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Captures {
    /// Number of tokens of the run (the `n` of every shape above).
    pub n_tokens: usize,
    /// Residual stream entering block 0 (embeddings, after BERT's embedding LayerNorm) `[n, d_model]`.
    pub embeddings: Option<Vec<f32>>,
    /// One entry per captured block, in block order.
    pub layers: Vec<LayerCapture>,
}

/// A residual-stream patch: after block `layer`, the residual stream at token `position` is
/// replaced by `values` (width `d_model`) before the next block (or the final norm) reads it.
/// Used by [`LlamaModel::forward_patched`](crate::LlamaModel::forward_patched) and
/// [`BertModel::forward_patched`](crate::BertModel::forward_patched) for activation patching.
/// A captured residual of a patched layer is the patched value (what flows downstream).
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualPatch {
    /// Block index whose output is replaced.
    pub layer: usize,
    /// Token position (row of the `[n, d_model]` residual stream).
    pub position: usize,
    /// The new residual vector, `d_model` values.
    pub values: Vec<f32>,
}

/// Checks patches against a run of `n` tokens through `n_layers` blocks of width `d`.
pub(crate) fn check_patches(
    patches: &[ResidualPatch],
    n_layers: usize,
    n: usize,
    d: usize,
) -> crate::Result<()> {
    use crate::Error;
    for p in patches {
        if p.layer >= n_layers {
            return Err(Error::invalid(
                "patch.layer",
                p.layer,
                &format!("the model has {n_layers} blocks"),
            ));
        }
        if p.position >= n {
            return Err(Error::invalid(
                "patch.position",
                p.position,
                &format!("the run has {n} tokens"),
            ));
        }
        if p.values.len() != d {
            return Err(Error::invalid(
                "patch.values",
                p.values.len(),
                &format!("must hold d_model = {d} values"),
            ));
        }
        if let Some(i) = p.values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "patch values",
                count: p.values.iter().filter(|v| !v.is_finite()).count(),
                first_index: i,
            });
        }
    }
    Ok(())
}

/// Applies the patches of block `layer` to the residual stream `x` (`[n, d]`, row-major).
pub(crate) fn apply_patches(x: &mut [f32], patches: &[ResidualPatch], layer: usize, d: usize) {
    for p in patches.iter().filter(|p| p.layer == layer) {
        x[p.position * d..(p.position + 1) * d].copy_from_slice(&p.values);
    }
}
