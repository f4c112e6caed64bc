//! The BERT encoder (all-MiniLM-L6-v2) and its sentence embedding.

use claimlab_weights as weights;

use crate::error::{Error, Result};
use crate::hooks::{self, Capture, Captures, Hooks, LayerCapture, Overrides, ResidualPatch};
use crate::kernels::{self, AttnShape};
use crate::params::{ParamId, ParamStore, Weights};

/// Hyper-parameters of a BERT encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Number of encoder blocks.
    pub n_layers: usize,
    /// Hidden width.
    pub d_model: usize,
    /// Attention heads (divides `d_model`).
    pub n_heads: usize,
    /// Intermediate (MLP) width.
    pub d_ff: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Rows of the position-embedding table (longest input).
    pub max_positions: usize,
    /// Rows of the token-type table (2 for BERT).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon (1e-12 for BERT).
    pub norm_eps: f64,
}

impl BertConfig {
    /// Checks that the sizes are consistent.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the first inconsistent field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
            ("vocab_size", self.vocab_size),
            ("max_positions", self.max_positions),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be positive"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(Error::invalid(
                "n_heads",
                self.n_heads,
                "must divide d_model",
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(Error::invalid(
                "norm_eps",
                self.norm_eps,
                "must be positive",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct Linear {
    w: ParamId,
    b: ParamId,
}

#[derive(Clone, Debug)]
struct Norm {
    w: ParamId,
    b: ParamId,
}

#[derive(Clone, Debug)]
struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    mlp_norm: Norm,
}

/// A BERT encoder with f32 weights.
#[derive(Clone, Debug)]
pub struct BertModel {
    cfg: BertConfig,
    params: ParamStore,
    word: ParamId,
    pos: ParamId,
    typ: ParamId,
    emb_norm: Norm,
    blocks: Vec<Block>,
}

/// Result of [`BertModel::forward`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BertOutput {
    /// Number of input tokens.
    pub n_tokens: usize,
    /// Last hidden states `[n_tokens, d_model]`, row-major.
    pub hidden: Vec<f32>,
    /// Values recorded by the hooks.
    pub captures: Captures,
}

impl BertModel {
    /// Loads a BERT encoder stored with Hugging Face names (`embeddings.word_embeddings.weight`,
    /// `encoder.layer.L.attention.self.query.weight`, …; an optional `bert.` prefix is accepted)
    /// or with llama.cpp's GGUF names (`token_embd.weight`, `blk.L.attn_q.weight`, …; see
    /// [`gguf_bert_name`]). Parameter names are the Hugging Face ones either way.
    ///
    /// # Errors
    /// [`Error::UnsupportedModel`] for other architectures; [`Error::Weights`] for a missing or
    /// undecodable tensor; [`Error::ShapeMismatch`] when a tensor disagrees with the configuration.
    pub fn load(model: &weights::Model) -> Result<Self> {
        let c = model.config();
        if !matches!(c.arch, weights::Architecture::BertEncoder) {
            return Err(Error::UnsupportedModel {
                reason: format!("expected a BERT encoder, found {:?}", c.arch),
            });
        }
        let gguf = model.tensor_info("token_embd.weight").is_ok();
        let prefix = if model
            .tensor_info("bert.embeddings.word_embeddings.weight")
            .is_ok()
        {
            "bert."
        } else {
            ""
        };
        let stored = |name: &str| {
            if gguf {
                gguf_bert_name(name)
            } else {
                format!("{prefix}{name}")
            }
        };
        let typ = model.tensor_info(&stored("embeddings.token_type_embeddings.weight"))?;
        let cfg = BertConfig {
            n_layers: c.n_layers,
            d_model: c.d_model,
            n_heads: c.n_heads,
            d_ff: c.d_ff,
            vocab_size: c.vocab_size,
            max_positions: c.max_positions.ok_or_else(|| Error::UnsupportedModel {
                reason: "BERT model without max_position_embeddings".into(),
            })?,
            type_vocab_size: typ.shape.first().copied().unwrap_or(0),
            norm_eps: c.norm_eps,
        };
        Self::from_tensors(cfg, |name| Ok(model.tensor_f32(&stored(name))?))
    }

    /// Builds an encoder from tensors with Hugging Face BERT names (no prefix), each row-major in
    /// PyTorch order. `source` is called once per tensor.
    ///
    /// # Errors
    /// As [`BertConfig::validate`], whatever `source` returns, [`Error::ShapeMismatch`] and
    /// [`Error::NonFinite`] on bad tensors.
    pub fn from_tensors(
        cfg: BertConfig,
        mut source: impl FnMut(&str) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        cfg.validate()?;
        let src: &mut dyn FnMut(&str) -> Result<Vec<f32>> = &mut source;
        let mut p = ParamStore::default();
        let (d, ff) = (cfg.d_model, cfg.d_ff);
        fn lin(
            p: &mut ParamStore,
            src: &mut dyn FnMut(&str) -> Result<Vec<f32>>,
            name: &str,
            out: usize,
            inp: usize,
        ) -> Result<Linear> {
            Ok(Linear {
                w: p.load(&format!("{name}.weight"), &[out, inp], src)?,
                b: p.load(&format!("{name}.bias"), &[out], src)?,
            })
        }
        fn norm(
            p: &mut ParamStore,
            src: &mut dyn FnMut(&str) -> Result<Vec<f32>>,
            name: &str,
            d: usize,
        ) -> Result<Norm> {
            Ok(Norm {
                w: p.load(&format!("{name}.weight"), &[d], src)?,
                b: p.load(&format!("{name}.bias"), &[d], src)?,
            })
        }
        let word = p.load(
            "embeddings.word_embeddings.weight",
            &[cfg.vocab_size, d],
            src,
        )?;
        let pos = p.load(
            "embeddings.position_embeddings.weight",
            &[cfg.max_positions, d],
            src,
        )?;
        let typ = p.load(
            "embeddings.token_type_embeddings.weight",
            &[cfg.type_vocab_size, d],
            src,
        )?;
        let emb_norm = norm(&mut p, src, "embeddings.LayerNorm", d)?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let n = |s: &str| format!("encoder.layer.{l}.{s}");
            blocks.push(Block {
                q: lin(&mut p, src, &n("attention.self.query"), d, d)?,
                k: lin(&mut p, src, &n("attention.self.key"), d, d)?,
                v: lin(&mut p, src, &n("attention.self.value"), d, d)?,
                o: lin(&mut p, src, &n("attention.output.dense"), d, d)?,
                attn_norm: norm(&mut p, src, &n("attention.output.LayerNorm"), d)?,
                up: lin(&mut p, src, &n("intermediate.dense"), ff, d)?,
                down: lin(&mut p, src, &n("output.dense"), d, ff)?,
                mlp_norm: norm(&mut p, src, &n("output.LayerNorm"), d)?,
            });
        }
        Ok(BertModel {
            cfg,
            params: p,
            word,
            pos,
            typ,
            emb_norm,
            blocks,
        })
    }

    /// The hyper-parameters.
    #[must_use]
    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// Names of the loaded tensors (the keys [`Overrides`] may use), in load order. Names carry no
    /// `bert.` prefix.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.names()
    }

    /// Shape and values of a loaded tensor.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.params.by_name(name)
    }

    /// Total number of loaded parameters.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.params.n_params()
    }

    /// Encoder forward pass over one sequence (token type 0, no padding, positions 0..n).
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::TooLong`], [`Error::TokenOutOfRange`] on bad input;
    /// [`Error::BadOverride`] on a bad override.
    ///
    /// # Complexity
    /// About `2·n·P` flops for the `P` block parameters plus `4·n²·d` for attention.
    pub fn forward(&self, tokens: &[u32], hooks: &Hooks) -> Result<BertOutput> {
        let (hidden, captures) = self.hidden(tokens, &hooks.capture, &hooks.overrides)?;
        Ok(BertOutput {
            n_tokens: tokens.len(),
            hidden,
            captures,
        })
    }

    /// [`BertModel::forward`] with activation patching: the residual stream after block
    /// `p.layer` at token `p.position` is replaced by `p.values` for each patch `p` (see
    /// [`ResidualPatch`]); later blocks see the patched stream (all positions attend to it).
    ///
    /// # Errors
    /// As [`BertModel::forward`], plus [`Error::InvalidParam`] for a patch whose layer, position
    /// or width is out of range and [`Error::NonFinite`] for non-finite patch values.
    pub fn forward_patched(
        &self,
        tokens: &[u32],
        hooks: &Hooks,
        patches: &[ResidualPatch],
    ) -> Result<BertOutput> {
        hooks::check_patches(patches, self.cfg.n_layers, tokens.len(), self.cfg.d_model)?;
        let (hidden, captures) =
            self.hidden_patched(tokens, &hooks.capture, &hooks.overrides, patches)?;
        Ok(BertOutput {
            n_tokens: tokens.len(),
            hidden,
            captures,
        })
    }

    /// Sentence embedding as sentence-transformers computes it for all-MiniLM-L6-v2: the mean of
    /// the last hidden states over all tokens (including `[CLS]` and `[SEP]`), then L2 normalised.
    ///
    /// # Errors
    /// As [`BertModel::forward`]; [`Error::NonFinite`] if the pooled vector has zero norm.
    pub fn embed(&self, tokens: &[u32], overrides: &Overrides) -> Result<Vec<f32>> {
        let (hidden, _) = self.hidden(tokens, &Capture::default(), overrides)?;
        let d = self.cfg.d_model;
        let n = tokens.len();
        let mut mean = vec![0.0f64; d];
        for row in hidden.chunks_exact(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v);
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(Error::NonFinite {
                what: "pooled embedding norm",
                count: 1,
                first_index: 0,
            });
        }
        Ok(mean.iter().map(|v| (v / norm) as f32).collect())
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::Empty { what: "tokens" });
        }
        if tokens.len() > self.cfg.max_positions {
            return Err(Error::TooLong {
                len: tokens.len(),
                max: self.cfg.max_positions,
            });
        }
        if let Some((index, &token)) = tokens
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= self.cfg.vocab_size)
        {
            return Err(Error::TokenOutOfRange {
                index,
                token,
                vocab_size: self.cfg.vocab_size,
            });
        }
        Ok(())
    }

    fn linear(
        &self,
        w: Weights<'_>,
        x: &[f32],
        l: &Linear,
        n: usize,
        inp: usize,
        out: usize,
    ) -> Vec<f32> {
        let mut y = kernels::matmul_nt(x, w.get(l.w), n, inp, out);
        kernels::add_bias(&mut y, w.get(l.b));
        y
    }

    pub(crate) fn hidden(
        &self,
        tokens: &[u32],
        cap: &Capture,
        overrides: &Overrides,
    ) -> Result<(Vec<f32>, Captures)> {
        self.hidden_patched(tokens, cap, overrides, &[])
    }

    /// [`BertModel::hidden`] with residual patches (checked by the caller).
    fn hidden_patched(
        &self,
        tokens: &[u32],
        cap: &Capture,
        overrides: &Overrides,
        patches: &[ResidualPatch],
    ) -> Result<(Vec<f32>, Captures)> {
        self.check_tokens(tokens)?;
        self.params.check_overrides(overrides)?;
        let w = self.params.view(overrides);
        let c = &self.cfg;
        let (n, d, ff) = (tokens.len(), c.d_model, c.d_ff);
        let (word, pos, typ) = (w.get(self.word), w.get(self.pos), w.get(self.typ));
        let mut x = Vec::with_capacity(n * d);
        for (t, &tok) in tokens.iter().enumerate() {
            let tok = tok as usize;
            x.extend((0..d).map(|j| word[tok * d + j] + pos[t * d + j] + typ[j]));
        }
        let mut x = kernels::layer_norm(
            &x,
            w.get(self.emb_norm.w),
            w.get(self.emb_norm.b),
            c.norm_eps,
        );
        let mut captures = Captures {
            n_tokens: n,
            embeddings: cap.residual.then(|| x.clone()),
            layers: Vec::new(),
        };
        let shape = AttnShape {
            n,
            n_heads: c.n_heads,
            n_kv_heads: c.n_heads,
            head_dim: d / c.n_heads,
            causal: false,
        };
        for (l, b) in self.blocks.iter().enumerate() {
            let want = cap.wants(l);
            let q = self.linear(w, &x, &b.q, n, d, d);
            let k = self.linear(w, &x, &b.k, n, d, d);
            let v = self.linear(w, &x, &b.v, n, d, d);
            let (a, probs) = kernels::attention(&q, &k, &v, shape, want && cap.attention);
            let mut o = self.linear(w, &a, &b.o, n, d, d);
            kernels::add_into(&mut o, &x);
            x = kernels::layer_norm(&o, w.get(b.attn_norm.w), w.get(b.attn_norm.b), c.norm_eps);
            let mut h = self.linear(w, &x, &b.up, n, d, ff);
            let mlp_pre = (want && cap.mlp_pre).then(|| h.clone());
            for v in &mut h {
                *v = kernels::gelu(*v);
            }
            let mlp_post = (want && cap.mlp_post).then(|| h.clone());
            let mut y = self.linear(w, &h, &b.down, n, ff, d);
            kernels::add_into(&mut y, &x);
            x = kernels::layer_norm(&y, w.get(b.mlp_norm.w), w.get(b.mlp_norm.b), c.norm_eps);
            hooks::apply_patches(&mut x, patches, l, d);
            if want && (cap.attention || cap.mlp_pre || cap.mlp_post || cap.residual) {
                captures.layers.push(LayerCapture {
                    layer: l,
                    attention: probs,
                    mlp_pre,
                    mlp_post,
                    residual: cap.residual.then(|| x.clone()),
                });
            }
        }
        Ok((x, captures))
    }
}

/// llama.cpp's GGUF name of a BERT tensor given its Hugging Face name (without a `bert.`
/// prefix); names without a GGUF counterpart (the pooler) come back unchanged.
#[must_use]
pub fn gguf_bert_name(hf: &str) -> String {
    let (stem, suffix) = match hf.rsplit_once('.') {
        Some((s, x @ ("weight" | "bias"))) => (s, x),
        _ => return hf.to_string(),
    };
    let top = match stem {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    if let Some(t) = top {
        return format!("{t}.{suffix}");
    }
    if let Some((l, rest)) = stem
        .strip_prefix("encoder.layer.")
        .and_then(|a| a.split_once('.'))
    {
        let g = match rest {
            "attention.self.query" => "attn_q",
            "attention.self.key" => "attn_k",
            "attention.self.value" => "attn_v",
            "attention.output.dense" => "attn_output",
            "attention.output.LayerNorm" => "attn_output_norm",
            "intermediate.dense" => "ffn_up",
            "output.dense" => "ffn_down",
            "output.LayerNorm" => "layer_output_norm",
            _ => return hf.to_string(),
        };
        return format!("blk.{l}.{g}.{suffix}");
    }
    hf.to_string()
}

/// Cosine similarity of two vectors, accumulated in f64; 0 if either has zero norm.
///
/// # Panics
/// If the lengths differ.
#[must_use]
#[track_caller]
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "cosine: lengths differ");
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 {
        ab / (aa.sqrt() * bb.sqrt())
    } else {
        0.0
    }
}
