//! The llama decoder (SmolLM2): RMSNorm, grouped-query attention with RoPE in the GGUF layout,
//! SwiGLU MLP, optionally tied output embedding.

use claimlab_weights as weights;

use crate::error::{Error, Result};
use crate::hooks::{self, Capture, Captures, Hooks, LayerCapture, Overrides, ResidualPatch};
use crate::kernels::{self, RopeTable};
use crate::params::{ParamId, ParamStore, Weights};
use crate::stream::{self, BlockCapture, BlockTrace, BlockWeights, KvSource};

/// Hyper-parameters of a llama decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one head (even, for RoPE).
    pub head_dim: usize,
    /// Hidden width of the SwiGLU MLP.
    pub d_ff: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// Longest sequence accepted (`None`: unlimited).
    pub max_positions: Option<usize>,
    /// Output projection is the token embedding (`token_embd.weight`) rather than `output.weight`.
    pub tied_embeddings: bool,
}

impl LlamaConfig {
    /// Reads the decoder hyper-parameters from a weights-crate model description.
    ///
    /// # Errors
    /// [`Error::UnsupportedModel`] if the model is not a llama decoder or has no RoPE base.
    pub fn from_model_config(c: &weights::ModelConfig) -> Result<Self> {
        if !matches!(c.arch, weights::Architecture::LlamaDecoder) {
            return Err(Error::UnsupportedModel {
                reason: format!("expected a llama decoder, found {:?}", c.arch),
            });
        }
        let cfg = LlamaConfig {
            n_layers: c.n_layers,
            d_model: c.d_model,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            d_ff: c.d_ff,
            vocab_size: c.vocab_size,
            norm_eps: c.norm_eps,
            rope_theta: c.rope_theta.ok_or_else(|| Error::UnsupportedModel {
                reason: "llama model without a RoPE base (rope_theta)".into(),
            })?,
            max_positions: c.max_positions,
            tied_embeddings: c.tied_embeddings,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the sizes are consistent.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the first inconsistent field.
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &'static str, v: usize| {
            if v == 0 {
                Err(Error::invalid(name, v, "must be positive"))
            } else {
                Ok(())
            }
        };
        pos("n_layers", self.n_layers)?;
        pos("d_model", self.d_model)?;
        pos("n_heads", self.n_heads)?;
        pos("n_kv_heads", self.n_kv_heads)?;
        pos("head_dim", self.head_dim)?;
        pos("d_ff", self.d_ff)?;
        pos("vocab_size", self.vocab_size)?;
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::invalid(
                "n_kv_heads",
                self.n_kv_heads,
                "must divide n_heads",
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(Error::invalid(
                "head_dim",
                self.head_dim,
                "must be even for RoPE",
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(Error::invalid(
                "norm_eps",
                self.norm_eps,
                "must be positive",
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(Error::invalid(
                "rope_theta",
                self.rope_theta,
                "must be finite and > 1",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct Block {
    attn_norm: ParamId,
    wq: ParamId,
    wk: ParamId,
    wv: ParamId,
    wo: ParamId,
    ffn_norm: ParamId,
    gate: ParamId,
    up: ParamId,
    down: ParamId,
}

/// Rotated keys and values of the tokens a [`LlamaModel`] has seen, per layer, for incremental
/// decoding with [`LlamaModel::forward_cached`]. Memory: `2·n_layers·n_kv_heads·head_dim` floats
/// per token (46 KiB per token for SmolLM2-135M).
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// Number of cached positions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory the cache holds (the capacity of its key and value buffers, which may
    /// exceed `len()` positions after [`KvCache::truncate`] or amortised growth, plus the per-layer
    /// buffer headers).
    #[must_use]
    pub fn bytes(&self) -> usize {
        let buffers = self
            .keys
            .iter()
            .chain(&self.values)
            .map(|b| b.capacity() * std::mem::size_of::<f32>())
            .sum::<usize>();
        let headers =
            (self.keys.capacity() + self.values.capacity()) * std::mem::size_of::<Vec<f32>>();
        buffers + headers
    }

    /// Drops the positions from `len` on (e.g. to reuse a shared prompt).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        for (k, v) in self.keys.iter_mut().zip(&mut self.values) {
            let width = k.len() / self.len;
            k.truncate(len * width);
            v.truncate(len * width);
        }
        self.len = len;
    }
}

/// A llama decoder with all weights dequantised to f32 (about 4 bytes per parameter).
#[derive(Clone, Debug)]
pub struct LlamaModel {
    cfg: LlamaConfig,
    params: ParamStore,
    blocks: Vec<Block>,
    tok_embd: ParamId,
    out_norm: ParamId,
    lm_head: ParamId,
}

/// Result of [`LlamaModel::forward`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LlamaOutput {
    /// Number of input tokens.
    pub n_tokens: usize,
    /// Vocabulary size (row width of `logits`).
    pub vocab_size: usize,
    /// Next-token logits `[n_tokens, vocab_size]`, row-major: row t scores token t + 1.
    pub logits: Vec<f32>,
    /// Values recorded by the hooks.
    pub captures: Captures,
}

impl LlamaOutput {
    /// Logits of position `t` (the distribution of token `t + 1`).
    ///
    /// # Panics
    /// If `t >= n_tokens`.
    #[must_use]
    #[track_caller]
    pub fn row(&self, t: usize) -> &[f32] {
        assert!(t < self.n_tokens, "row {t} out of {}", self.n_tokens);
        &self.logits[t * self.vocab_size..(t + 1) * self.vocab_size]
    }
}

impl LlamaModel {
    /// Loads and dequantises every tensor of a llama GGUF model.
    ///
    /// # Errors
    /// [`Error::UnsupportedModel`] for other architectures; [`Error::Weights`] when a tensor is
    /// missing or cannot be decoded; [`Error::ShapeMismatch`] when a tensor disagrees with the
    /// configuration.
    pub fn load(model: &weights::Model) -> Result<Self> {
        if !matches!(model.format(), weights::Format::Gguf) {
            return Err(Error::UnsupportedModel {
                reason: "llama models are read from GGUF files (RoPE layout is GGUF's)".into(),
            });
        }
        let cfg = LlamaConfig::from_model_config(model.config())?;
        let has_output = model.tensor_info("output.weight").is_ok();
        let mut cfg = cfg;
        if !has_output {
            cfg.tied_embeddings = true;
        }
        Self::from_tensors(cfg, |name| Ok(model.tensor_f32(name)?))
    }

    /// Builds a model from tensors named as in llama GGUF files (`token_embd.weight`,
    /// `blk.L.attn_q.weight`, …), each row-major in PyTorch order (`[out, in]`). Q and K rows
    /// must be in the GGUF (interleaved RoPE) order. `source` is called once per tensor.
    ///
    /// # Errors
    /// As [`LlamaConfig::validate`], plus whatever `source` returns, plus
    /// [`Error::ShapeMismatch`] and [`Error::NonFinite`] on bad tensors.
    pub fn from_tensors(
        cfg: LlamaConfig,
        mut source: impl FnMut(&str) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        cfg.validate()?;
        let src: &mut dyn FnMut(&str) -> Result<Vec<f32>> = &mut source;
        let mut p = ParamStore::default();
        let (d, hd, ff) = (cfg.d_model, cfg.head_dim, cfg.d_ff);
        let (qd, kd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
        let tok_embd = p.load("token_embd.weight", &[cfg.vocab_size, d], src)?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            blocks.push(Block {
                attn_norm: p.load(&n("attn_norm"), &[d], src)?,
                wq: p.load(&n("attn_q"), &[qd, d], src)?,
                wk: p.load(&n("attn_k"), &[kd, d], src)?,
                wv: p.load(&n("attn_v"), &[kd, d], src)?,
                wo: p.load(&n("attn_output"), &[d, qd], src)?,
                ffn_norm: p.load(&n("ffn_norm"), &[d], src)?,
                gate: p.load(&n("ffn_gate"), &[ff, d], src)?,
                up: p.load(&n("ffn_up"), &[ff, d], src)?,
                down: p.load(&n("ffn_down"), &[d, ff], src)?,
            });
        }
        let out_norm = p.load("output_norm.weight", &[d], src)?;
        let lm_head = if cfg.tied_embeddings {
            tok_embd
        } else {
            p.load("output.weight", &[cfg.vocab_size, d], src)?
        };
        Ok(LlamaModel {
            cfg,
            params: p,
            blocks,
            tok_embd,
            out_norm,
            lm_head,
        })
    }

    /// The hyper-parameters.
    #[must_use]
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Names of the loaded tensors (the keys [`Overrides`] may use), in load order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.names()
    }

    /// Shape and values of a loaded tensor.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.params.by_name(name)
    }

    /// Total number of loaded parameters (the tied embedding counted once).
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.params.n_params()
    }

    pub(crate) fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::Empty { what: "tokens" });
        }
        if let Some(max) = self.cfg.max_positions {
            if tokens.len() > max {
                return Err(Error::TooLong {
                    len: tokens.len(),
                    max,
                });
            }
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

    /// Full causal forward pass over `tokens` (positions 0..n).
    ///
    /// # Returns
    /// Logits for every position and the captures `hooks.capture` asked for.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::TooLong`], [`Error::TokenOutOfRange`] on bad input;
    /// [`Error::BadOverride`] on an override that names no tensor or has the wrong length.
    ///
    /// # Complexity
    /// About `2·n·P` flops for `P` parameters plus `4·n²·d` for attention; memory `O(n·(d_ff + vocab))`,
    /// plus `n_layers·n_heads·n²` floats if attention is captured.
    pub fn forward(&self, tokens: &[u32], hooks: &Hooks) -> Result<LlamaOutput> {
        let (hidden, captures) = self.hidden(tokens, &hooks.capture, &hooks.overrides)?;
        let n = tokens.len();
        let w = self.params.view(&hooks.overrides);
        let logits = self.project(&hidden, 0..n, w);
        Ok(LlamaOutput {
            n_tokens: n,
            vocab_size: self.cfg.vocab_size,
            logits,
            captures,
        })
    }

    /// [`LlamaModel::forward`] with activation patching: the residual stream after block
    /// `p.layer` at token `p.position` is replaced by `p.values` for each patch `p` (see
    /// [`ResidualPatch`]); later blocks and the logits see the patched stream.
    ///
    /// # Errors
    /// As [`LlamaModel::forward`], plus [`Error::InvalidParam`] for a patch whose layer, position
    /// or width is out of range and [`Error::NonFinite`] for non-finite patch values.
    pub fn forward_patched(
        &self,
        tokens: &[u32],
        hooks: &Hooks,
        patches: &[ResidualPatch],
    ) -> Result<LlamaOutput> {
        hooks::check_patches(patches, self.cfg.n_layers, tokens.len(), self.cfg.d_model)?;
        let (hidden, captures) =
            self.run_patched(tokens, None, &hooks.capture, &hooks.overrides, patches)?;
        let n = tokens.len();
        let logits = self.project(&hidden, 0..n, self.params.view(&hooks.overrides));
        Ok(LlamaOutput {
            n_tokens: n,
            vocab_size: self.cfg.vocab_size,
            logits,
            captures,
        })
    }

    /// Logits `[rows.len(), vocab]` of the given rows of the final (normed) hidden states.
    pub(crate) fn project(
        &self,
        hidden: &[f32],
        rows: std::ops::Range<usize>,
        w: Weights<'_>,
    ) -> Vec<f32> {
        let d = self.cfg.d_model;
        let h = &hidden[rows.start * d..rows.end * d];
        kernels::matmul_nt(h, w.get(self.lm_head), rows.len(), d, self.cfg.vocab_size)
    }

    /// The weights of block `b` as [`stream::block_step`] takes them.
    fn block_weights<'a>(&self, b: &Block, w: Weights<'a>) -> BlockWeights<'a> {
        BlockWeights {
            attn_norm: w.get(b.attn_norm),
            wq: w.get(b.wq),
            wk: w.get(b.wk),
            wv: w.get(b.wv),
            wo: w.get(b.wo),
            ffn_norm: w.get(b.ffn_norm),
            gate: w.get(b.gate),
            up: w.get(b.up),
            down: w.get(b.down),
        }
    }

    pub(crate) fn weights<'a>(&'a self, ov: &'a Overrides) -> Result<Weights<'a>> {
        self.params.check_overrides(ov)?;
        Ok(self.params.view(ov))
    }

    /// An empty key/value cache for [`LlamaModel::forward_cached`].
    #[must_use]
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); self.cfg.n_layers],
            values: vec![Vec::new(); self.cfg.n_layers],
            len: 0,
        }
    }

    /// Incremental causal forward pass: `tokens` continue the sequence whose keys and values are in
    /// `cache` (positions `cache.len()..`), and are appended to it. Gives the same logits as
    /// [`LlamaModel::forward`] on the whole sequence, at the cost of the new tokens only.
    ///
    /// # Returns
    /// Next-token logits `[tokens.len(), vocab_size]` of the new positions.
    ///
    /// # Errors
    /// As [`LlamaModel::forward`], with [`Error::TooLong`] counting the cached tokens too, and
    /// [`Error::ShapeMismatch`] for a cache made by a model of another shape. On error the cache
    /// is unchanged.
    pub fn forward_cached(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        overrides: &Overrides,
    ) -> Result<Vec<f32>> {
        let kd = self.cfg.n_kv_heads * self.cfg.head_dim;
        let layers = self.cfg.n_layers;
        let fits = cache.keys.len() == layers
            && cache.values.len() == layers
            && cache
                .keys
                .iter()
                .chain(&cache.values)
                .all(|k| k.len() == cache.len * kd);
        if !fits {
            return Err(Error::ShapeMismatch {
                tensor: "kv cache".into(),
                shape: vec![layers, cache.len, kd],
                expected: layers * cache.len * kd,
                actual: cache.keys.first().map_or(0, Vec::len) * cache.keys.len(),
            });
        }
        let step = |cache: &mut KvCache| {
            let (hidden, _) = self.run(tokens, Some(cache), &Capture::default(), overrides)?;
            let w = self.params.view(overrides);
            Ok(self.project(&hidden, 0..tokens.len(), w))
        };
        if tokens.len() == 1 {
            // A decoded token runs on one rayon worker, so that its ~150 short parallel products
            // fork from inside the pool (the other workers steal half of each) instead of each
            // handing its work to the pool and putting the calling thread to sleep until it is
            // done. Measured against llama.cpp in BENCHMARKS.md (`## runtime`). A prompt (many
            // tokens, long faer products) gains nothing from it and stays on the calling thread.
            rayon::scope(|_| step(cache))
        } else {
            step(cache)
        }
    }

    /// Final normed hidden states `[n, d]` and captures.
    pub(crate) fn hidden(
        &self,
        tokens: &[u32],
        cap: &Capture,
        overrides: &Overrides,
    ) -> Result<(Vec<f32>, Captures)> {
        self.run(tokens, None, cap, overrides)
    }

    /// The blocks over `tokens`, continuing `cache` when given (and appending to it).
    fn run(
        &self,
        tokens: &[u32],
        cache: Option<&mut KvCache>,
        cap: &Capture,
        overrides: &Overrides,
    ) -> Result<(Vec<f32>, Captures)> {
        self.run_patched(tokens, cache, cap, overrides, &[])
    }

    /// [`LlamaModel::run`] with residual patches (checked by the caller).
    fn run_patched(
        &self,
        tokens: &[u32],
        mut cache: Option<&mut KvCache>,
        cap: &Capture,
        overrides: &Overrides,
        patches: &[ResidualPatch],
    ) -> Result<(Vec<f32>, Captures)> {
        let start = cache.as_ref().map_or(0, |c| c.len);
        self.check_tokens(tokens)?;
        if let Some(max) = self.cfg.max_positions {
            if start + tokens.len() > max {
                return Err(Error::TooLong {
                    len: start + tokens.len(),
                    max,
                });
            }
        }
        let w = self.weights(overrides)?;
        let c = &self.cfg;
        let n = tokens.len();
        let d = c.d_model;
        let emb = w.get(self.tok_embd);
        let mut x = Vec::with_capacity(n * d);
        for &t in tokens {
            x.extend_from_slice(&emb[t as usize * d..(t as usize + 1) * d]);
        }
        let mut captures = Captures {
            n_tokens: n,
            embeddings: cap.residual.then(|| x.clone()),
            layers: Vec::new(),
        };
        let rope = RopeTable::positions(start, n, c.head_dim, c.rope_theta);
        for (l, b) in self.blocks.iter().enumerate() {
            let want = cap.wants(l);
            let kv = match cache.as_deref_mut() {
                None => KvSource::Local,
                Some(kv) => KvSource::Append {
                    keys: &mut kv.keys[l],
                    values: &mut kv.values[l],
                    cached: start,
                },
            };
            let trace = stream::block_step(
                c,
                &self.block_weights(b, w),
                &mut x,
                &rope,
                kv,
                want_of(cap, want),
            );
            hooks::apply_patches(&mut x, patches, l, d);
            push_capture(&mut captures, cap, want, l, trace, &x);
        }
        if let Some(kv) = cache {
            kv.len += n;
        }
        let out = kernels::rms_norm(&x, w.get(self.out_norm), c.norm_eps);
        Ok((out, captures))
    }
    /// Resumes a forward pass after block `layer`: `residual` (`[n, d_model]`, row-major) is the
    /// residual stream after that block at positions `start..start + n`, where `start` is the
    /// length of `cache` (0 without one); blocks `layer + 1..` run on it, attending to the cached
    /// keys and values of positions `0..start` too (the cache is read, not changed), and the final
    /// norm and output projection give the logits of the `n` positions. With the stream a full
    /// run captured after `layer` (and the cache of the preceding tokens), this equals
    /// [`LlamaModel::forward`] on the whole sequence; with a patched stream it equals
    /// [`LlamaModel::forward_patched`] at the cost of the later blocks only, which is what
    /// activation patching of every layer needs. Captures hold blocks `layer + 1..` only
    /// (`embeddings` is `None`).
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `layer` is out of range or `residual` is empty or not a whole
    /// number of rows; [`Error::NonFinite`] for non-finite residual values; [`Error::TooLong`]
    /// past `max_positions`; [`Error::ShapeMismatch`] for a cache made by a model of another
    /// shape; [`Error::BadOverride`] as [`LlamaModel::forward`].
    ///
    /// # Complexity
    /// About `2·n·P_after` flops for the parameters `P_after` of the later blocks and the output
    /// projection, plus `4·n·(start + n)·d` per block for attention.
    pub fn forward_from_layer(
        &self,
        layer: usize,
        residual: &[f32],
        cache: Option<&KvCache>,
        hooks: &Hooks,
    ) -> Result<LlamaOutput> {
        let c = &self.cfg;
        let (d, hd) = (c.d_model, c.head_dim);
        let kd = c.n_kv_heads * hd;
        if layer >= c.n_layers {
            return Err(Error::invalid(
                "layer",
                layer,
                &format!("the model has {} blocks", c.n_layers),
            ));
        }
        if residual.is_empty() || !residual.len().is_multiple_of(d) {
            return Err(Error::invalid(
                "residual",
                residual.len(),
                &format!("must be a positive multiple of d_model = {d}"),
            ));
        }
        if let Some(i) = residual.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "residual",
                count: residual.iter().filter(|v| !v.is_finite()).count(),
                first_index: i,
            });
        }
        let n = residual.len() / d;
        let start = cache.map_or(0, |kv| kv.len);
        if let Some(kv) = cache {
            let fits = kv.keys.len() == c.n_layers
                && kv.values.len() == c.n_layers
                && kv
                    .keys
                    .iter()
                    .chain(&kv.values)
                    .all(|k| k.len() == kv.len * kd);
            if !fits {
                return Err(Error::ShapeMismatch {
                    tensor: "kv cache".into(),
                    shape: vec![c.n_layers, kv.len, kd],
                    expected: c.n_layers * kv.len * kd,
                    actual: kv.keys.first().map_or(0, Vec::len) * kv.keys.len(),
                });
            }
        }
        if let Some(max) = c.max_positions {
            if start + n > max {
                return Err(Error::TooLong {
                    len: start + n,
                    max,
                });
            }
        }
        let cap = &hooks.capture;
        let w = self.weights(&hooks.overrides)?;
        let mut x = residual.to_vec();
        let mut captures = Captures {
            n_tokens: n,
            embeddings: None,
            layers: Vec::new(),
        };
        let rope = RopeTable::positions(start, n, hd, c.rope_theta);
        for (l, b) in self.blocks.iter().enumerate().skip(layer + 1) {
            let want = cap.wants(l);
            let kv = match cache.filter(|kv| kv.len > 0) {
                None => KvSource::Local,
                Some(kv) => KvSource::Read {
                    keys: &kv.keys[l],
                    values: &kv.values[l],
                    cached: start,
                },
            };
            let trace = stream::block_step(
                c,
                &self.block_weights(b, w),
                &mut x,
                &rope,
                kv,
                want_of(cap, want),
            );
            push_capture(&mut captures, cap, want, l, trace, &x);
        }
        let hidden = kernels::rms_norm(&x, w.get(self.out_norm), c.norm_eps);
        let logits = self.project(&hidden, 0..n, w);
        Ok(LlamaOutput {
            n_tokens: n,
            vocab_size: c.vocab_size,
            logits,
            captures,
        })
    }
}

/// What a block records for `cap` when `want` (the layer is one `cap` asks for).
fn want_of(cap: &Capture, want: bool) -> BlockCapture {
    BlockCapture {
        probs: want && cap.attention,
        mlp_pre: want && cap.mlp_pre,
        mlp_post: want && cap.mlp_post,
        inputs: false,
    }
}

/// Appends layer `l`'s captures (from `trace` and the stream `x` after the block) when `want`.
fn push_capture(
    captures: &mut Captures,
    cap: &Capture,
    want: bool,
    l: usize,
    trace: BlockTrace,
    x: &[f32],
) {
    if want && (cap.attention || cap.mlp_pre || cap.mlp_post || cap.residual) {
        captures.layers.push(LayerCapture {
            layer: l,
            attention: trace.probs,
            mlp_pre: trace.mlp_pre,
            mlp_post: trace.mlp_post,
            residual: cap.residual.then(|| x.to_vec()),
        });
    }
}
