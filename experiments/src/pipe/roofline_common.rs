//! Shared measurements of the roofline, latency and memory claims (`pipe-latency`, `pipe-roofline`,
//! `pipe-kv`, `pipe-smax`, `pipe-thm6`, `intro-4.flops`, `intro-4.roofline`, `intro-4.membound`).
//!
//! * [`machine`]: this machine's memory bandwidth (STREAM-like triad `a = b + s·c` on f32 arrays far
//!   larger than the caches, rayon over 2 chunks per thread, best of several) and peak f32 rate (a
//!   square faer matrix product on the global rayon pool, best of several). Measured once per process
//!   and mode, so every claim of one run places its kernels on the same roofline.
//! * [`Decoder`]: an incremental (KV-cached) forward pass of the runtime's loaded SmolLM2 weights.
//!   The runtime itself has no KV cache (its `forward` recomputes the whole sequence), so decode steps
//!   and the cache are written here, on the runtime's weights and with its kernels' arithmetic (faer
//!   products, RMSNorm, GGUF-interleaved RoPE, grouped-query attention, SwiGLU); a test checks its logits
//!   against `LlamaModel::forward`. Linear weights are held in f32 (borrowed from the runtime) or
//!   re-quantised to Q8_0 or Q4_1 and multiplied by fused block-dot kernels (no dequantised copy).
//! * [`step_cost`]: FLOPs and compulsory bytes of a forward step, the same sums the decoder's
//!   instrumented counter adds up kernel by kernel ([`Cost`] conventions below).
//! * [`peak_rss_delta`]: the growth of this process's peak resident set during a closure (Linux:
//!   `clear_refs` resets the high-water mark, `VmHWM` reads it).
//!
//! # Counting conventions
//! A multiply-add is 2 FLOPs. Linear `[n,k]·[k,m]`: `2nkm`. Attention per head (as the runtime
//! computes it, full score rows then a causal mask): `2·m·ctx·hd` for scores and the same for the
//! weighted sum, plus `EXP_FLOPS + 3` per score for the softmax. RMSNorm 4 per element, LayerNorm 7,
//! residual add 1, RoPE 3 per rotated element, SiLU-gate `EXP_FLOPS + 3`, GELU `EXP_FLOPS + 15` (the
//! erf polynomial). Bytes are compulsory traffic: every weight once in its storage format, each
//! kernel's activations in and out once (f32), the K/V cache read once per step; attention score
//! rows are assumed to stay in cache.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{BertModel, LlamaConfig, LlamaModel, TextTokenizer};
use claimlab_weights::DType;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::aecl::common::{Loaded, Net};
use crate::Ctx;

/// Bytes of distinct matrix copies the streamed matvecs cycle through (above the test machine's
/// 260 MiB last-level cache).
const STREAM_BYTES: usize = 640 << 20;

/// FLOPs counted for one exponential (range reduction and a degree-7 polynomial).
pub(crate) const EXP_FLOPS: f64 = 10.0;

/// Bandwidth and peak rate of this machine, with how they were measured.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Machine {
    /// Triad bandwidth in bytes per second (3 arrays × 4 bytes per element per pass, best pass).
    pub bandwidth: f64,
    /// Peak f32 rate in FLOP per second (best square product).
    pub peak: f64,
    /// Elements per triad array.
    pub triad_elems: usize,
    /// Triad passes (best taken).
    pub triad_reps: usize,
    /// Side of the square product.
    pub matmul_n: usize,
    /// Products timed (best taken).
    pub matmul_reps: usize,
    /// Rayon threads.
    pub threads: usize,
}

impl Machine {
    /// Ridge point, FLOP per byte: `peak / bandwidth`.
    pub(crate) fn ridge(&self) -> f64 {
        self.peak / self.bandwidth
    }

    /// Roofline `min(peak, bandwidth · I)` at intensity `i` (FLOP per byte).
    pub(crate) fn roof(&self, i: f64) -> f64 {
        self.peak.min(self.bandwidth * i)
    }

    /// One Markdown line describing the measurement.
    pub(crate) fn describe(&self) -> String {
        format!(
            "this machine ({} rayon threads, shared with other jobs): triad bandwidth {:.2} GB/s (best of {} passes over 3 × {} f32), \
             peak {:.1} GFLOP/s (best of {} f32 products {n} × {n}), ridge {:.1} FLOP/byte",
            self.threads,
            self.bandwidth / 1e9,
            self.triad_reps,
            self.triad_elems,
            self.peak / 1e9,
            self.matmul_reps,
            self.ridge(),
            n = self.matmul_n
        )
    }
}

static MACHINE: Mutex<[Option<Machine>; 2]> = Mutex::new([None, None]);

/// The machine's bandwidth and peak, measured on first use in this process (per mode).
pub(crate) fn machine(quick: bool) -> Machine {
    let mut g = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let slot = &mut g[usize::from(quick)];
    if let Some(m) = slot {
        return m.clone();
    }
    // Arrays of 256 MiB each: the three together (768 MiB) exceed the last-level cache (260 MiB
    // on the test machine), so the triad measures memory, not cache.
    let (te, tr, mn, mr) = if quick {
        (1 << 26, 5, 512, 3)
    } else {
        (1 << 26, 12, 1024, 5)
    };
    let m = Machine {
        bandwidth: triad_bandwidth(te, tr),
        peak: matmul_peak(mn, mr),
        triad_elems: te,
        triad_reps: tr,
        matmul_n: mn,
        matmul_reps: mr,
        threads: rayon::current_num_threads(),
    };
    *slot = Some(m.clone());
    m
}

/// Best triad bandwidth (bytes/s) over `reps` passes of `a = b + s·c` on `n` f32 elements.
pub(crate) fn triad_bandwidth(n: usize, reps: usize) -> f64 {
    let b: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let c: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
    let mut a = vec![0.0f32; n];
    let chunk = n.div_ceil(2 * rayon::current_num_threads()).max(1);
    let mut best = f64::INFINITY;
    for r in 0..reps {
        let s = 1.0 + r as f32 * 1e-3;
        let t0 = Instant::now();
        a.par_chunks_mut(chunk)
            .zip(b.par_chunks(chunk))
            .zip(c.par_chunks(chunk))
            .for_each(|((a, b), c)| {
                for ((x, &y), &z) in a.iter_mut().zip(b).zip(c) {
                    *x = y + s * z;
                }
            });
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(&a);
    }
    (3 * 4 * n) as f64 / best
}

/// Best f32 rate (FLOP/s) of `reps` products of two `n × n` matrices through faer.
pub(crate) fn matmul_peak(n: usize, reps: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 13) as f32) * 0.1).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i % 11) as f32) * 0.1).collect();
    let mut c = vec![0.0f32; n * n];
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t0 = Instant::now();
        matmul(
            MatMut::from_row_major_slice_mut(&mut c, n, n),
            Accum::Replace,
            MatRef::from_row_major_slice(&a, n, n),
            MatRef::from_row_major_slice(&b, n, n),
            1.0f32,
            Par::rayon(0),
        );
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(&c);
    }
    2.0 * (n as f64).powi(3) / best
}

/// Wall times in seconds of `reps` calls of `f`.
pub(crate) fn times(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        f()?;
        out.push(t0.elapsed().as_secs_f64());
    }
    Ok(out)
}

/// Resident set (`VmRSS`) or its high-water mark (`VmHWM`) in bytes, from `/proc/self/status`.
fn status_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `f` and returns its result with the growth of the peak resident set over the resident
/// set before the call (`None` where `/proc/self/clear_refs` or `status` is unavailable).
pub(crate) fn peak_rss_delta<T>(f: impl FnOnce() -> T) -> (T, Option<u64>) {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_bytes("VmRSS:");
    let out = f();
    let after = status_bytes("VmHWM:");
    let delta = match (reset, before, after) {
        (true, Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    (out, delta)
}

/// Storage format of the decoder's linear weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) enum WeightFormat {
    /// The runtime's dequantised f32 weights (borrowed, not copied).
    F32,
    /// GGML Q8_0: 32 int8 and an f16 scale per block (8.5 bits per weight).
    Q8_0,
    /// GGML Q4_1: 32 nibbles, an f16 scale and an f16 minimum per block (5.0 bits per weight).
    Q4_1,
}

impl WeightFormat {
    /// All three, f32 first.
    pub(crate) const ALL: [WeightFormat; 3] =
        [WeightFormat::F32, WeightFormat::Q8_0, WeightFormat::Q4_1];

    /// Stored bits per weight.
    pub(crate) fn bits(self) -> f64 {
        match self {
            WeightFormat::F32 => 32.0,
            WeightFormat::Q8_0 => 8.5,
            WeightFormat::Q4_1 => 5.0,
        }
    }

    /// Name as in GGML.
    pub(crate) fn label(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Q8_0 => "Q8_0",
            WeightFormat::Q4_1 => "Q4_1",
        }
    }

    fn dtype(self) -> Option<DType> {
        match self {
            WeightFormat::F32 => None,
            WeightFormat::Q8_0 => Some(DType::Q8_0),
            WeightFormat::Q4_1 => Some(DType::Q4_1),
        }
    }
}

/// Weight rows per rayon task in the quantised products.
const ROWS_PER_TASK: usize = 64;

/// A linear layer `y = x·Wᵀ` with `W` of shape `[rows, cols]` in one storage format.
pub(crate) struct Linear<'a> {
    rows: usize,
    cols: usize,
    data: LinearData<'a>,
}

enum LinearData<'a> {
    F32(Cow<'a, [f32]>),
    Quant {
        fmt: WeightFormat,
        bytes: Vec<u8>,
        row_bytes: usize,
    },
}

/// Little-endian f16 at `b[0..2]` as f32.
fn f16_at(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Dot product of one Q8_0 row (34-byte blocks) with `x`.
fn dot_q8_0(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (b, xb) in row.chunks_exact(34).zip(x.chunks_exact(32)) {
        let mut lanes = [0.0f32; 8];
        for (q8, x8) in b[2..34].chunks_exact(8).zip(xb.chunks_exact(8)) {
            for ((l, &q), &xv) in lanes.iter_mut().zip(q8).zip(x8) {
                *l += f32::from(q as i8) * xv;
            }
        }
        acc += f16_at(b) * lanes.iter().sum::<f32>();
    }
    acc
}

/// Dot product of one Q4_1 row (20-byte blocks, element j in the low nibble of byte j and
/// element j + 16 in its high nibble) with `x`; `xsum[k]` is the sum of block k of `x`.
fn dot_q4_1(row: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for ((b, xb), &s) in row.chunks_exact(20).zip(x.chunks_exact(32)).zip(xsum) {
        let (lo, hi) = xb.split_at(16);
        let mut lanes = [0.0f32; 8];
        for ((q8, l8), h8) in b[4..20]
            .chunks_exact(8)
            .zip(lo.chunks_exact(8))
            .zip(hi.chunks_exact(8))
        {
            for (((l, &q), &xl), &xh) in lanes.iter_mut().zip(q8).zip(l8).zip(h8) {
                *l += f32::from(q & 0x0F) * xl + f32::from(q >> 4) * xh;
            }
        }
        acc += f16_at(b) * lanes.iter().sum::<f32>() + f16_at(&b[2..]) * s;
    }
    acc
}

impl<'a> Linear<'a> {
    /// A linear layer over `w` (`[rows, cols]` row-major): borrowed for f32, re-quantised otherwise
    /// (`cols` must then be a multiple of 32).
    pub(crate) fn new(w: &'a [f32], rows: usize, cols: usize, fmt: WeightFormat) -> Result<Self> {
        if w.len() != rows * cols {
            bail!("linear: {} values for a {rows} × {cols} matrix", w.len());
        }
        let data = match fmt.dtype() {
            None => LinearData::F32(Cow::Borrowed(w)),
            Some(dt) => {
                if !cols.is_multiple_of(32) {
                    bail!(
                        "{}: row length {cols} is not a whole number of blocks",
                        fmt.label()
                    );
                }
                let bytes = claimlab_weights::quantize(dt, w)?;
                let row_bytes = bytes.len() / rows.max(1);
                LinearData::Quant {
                    fmt,
                    bytes,
                    row_bytes,
                }
            }
        };
        Ok(Linear { rows, cols, data })
    }

    /// An owned copy (its own memory, for streaming many distinct matrices).
    pub(crate) fn duplicate(&self) -> Linear<'static> {
        let data = match &self.data {
            LinearData::F32(w) => LinearData::F32(Cow::Owned(w.to_vec())),
            LinearData::Quant {
                fmt,
                bytes,
                row_bytes,
            } => LinearData::Quant {
                fmt: *fmt,
                bytes: bytes.clone(),
                row_bytes: *row_bytes,
            },
        };
        Linear {
            rows: self.rows,
            cols: self.cols,
            data,
        }
    }

    /// Bytes of the stored weights.
    pub(crate) fn weight_bytes(&self) -> usize {
        match &self.data {
            LinearData::F32(w) => 4 * w.len(),
            LinearData::Quant { bytes, .. } => bytes.len(),
        }
    }

    /// `[n, rows]` = `x·Wᵀ` for `x` of shape `[n, cols]`.
    pub(crate) fn apply(&self, x: &[f32], n: usize) -> Vec<f32> {
        let (k, m) = (self.cols, self.rows);
        let mut y = vec![0.0f32; n * m];
        match &self.data {
            LinearData::F32(w) => {
                matmul(
                    MatMut::from_row_major_slice_mut(&mut y, n, m),
                    Accum::Replace,
                    MatRef::from_row_major_slice(x, n, k),
                    MatRef::from_column_major_slice(w, k, m),
                    1.0f32,
                    Par::rayon(0),
                );
            }
            LinearData::Quant {
                fmt,
                bytes,
                row_bytes,
            } => {
                let xsums: Vec<Vec<f32>> = x
                    .chunks_exact(k)
                    .map(|r| r.chunks_exact(32).map(|b| b.iter().sum()).collect())
                    .collect();
                // Output rows in parallel, ROWS_PER_TASK weight rows per task (one task per row
                // costs more in scheduling than the row's dot products); each weight row is read
                // once for all n inputs.
                let mut yt = vec![0.0f32; m * n];
                yt.par_chunks_mut(n * ROWS_PER_TASK)
                    .zip(bytes.par_chunks(*row_bytes * ROWS_PER_TASK))
                    .for_each(|(outs, rows)| {
                        for (out, row) in outs.chunks_mut(n).zip(rows.chunks(*row_bytes)) {
                            for (i, o) in out.iter_mut().enumerate() {
                                let xi = &x[i * k..(i + 1) * k];
                                *o = match fmt {
                                    WeightFormat::Q8_0 => dot_q8_0(row, xi),
                                    _ => dot_q4_1(row, xi, &xsums[i]),
                                };
                            }
                        }
                    });
                for (j, col) in yt.chunks_exact(n).enumerate() {
                    for (i, &v) in col.iter().enumerate() {
                        y[i * m + j] = v;
                    }
                }
            }
        }
        y
    }
}

/// FLOPs and compulsory bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct Cost {
    /// Floating-point operations.
    pub flops: f64,
    /// Bytes moved (see the module's conventions).
    pub bytes: f64,
}

impl Cost {
    fn add(&mut self, flops: f64, bytes: f64) {
        self.flops += flops;
        self.bytes += bytes;
    }

    /// Arithmetic intensity, FLOP per byte.
    pub(crate) fn intensity(&self) -> f64 {
        self.flops / self.bytes
    }
}

fn cost_linear(c: &mut Cost, n: usize, k: usize, m: usize, weight_bytes: f64) {
    let (n, k, m) = (n as f64, k as f64, m as f64);
    c.add(2.0 * n * k * m, weight_bytes + 4.0 * n * (k + m));
}

fn cost_rms(c: &mut Cost, n: usize, d: usize) {
    let e = (n * d) as f64;
    c.add(4.0 * e, 8.0 * e + 4.0 * d as f64);
}

/// Attention of `m` new queries over `ctx` keys per head (full rows, as the runtime computes them).
fn cost_attention(c: &mut Cost, m: usize, ctx: usize, heads: usize, kv_heads: usize, hd: usize) {
    let (m, ctx, h, kvh, hd) = (
        m as f64,
        ctx as f64,
        heads as f64,
        kv_heads as f64,
        hd as f64,
    );
    c.add(
        h * (4.0 * m * ctx * hd + (EXP_FLOPS + 3.0) * m * ctx),
        4.0 * (2.0 * m * h * hd + 2.0 * ctx * kvh * hd),
    );
}

/// Cost of one decoder step: `m` new tokens after `past` cached ones, `logit_rows` rows of the
/// output projection, linear weights of `weight_bits` bits each (the output projection included).
pub(crate) fn step_cost(
    cfg: &LlamaConfig,
    m: usize,
    past: usize,
    logit_rows: usize,
    weight_bits: f64,
) -> Cost {
    let (d, hd, ff) = (cfg.d_model, cfg.head_dim, cfg.d_ff);
    let (qd, kd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let wb = |r: usize, k: usize| (r * k) as f64 * weight_bits / 8.0;
    let mut c = Cost::default();
    c.add(0.0, 8.0 * (m * d) as f64); // embedding rows in, residual out
    for _ in 0..cfg.n_layers {
        cost_rms(&mut c, m, d);
        cost_linear(&mut c, m, d, qd, wb(qd, d));
        cost_linear(&mut c, m, d, kd, wb(kd, d));
        cost_linear(&mut c, m, d, kd, wb(kd, d));
        c.add(3.0 * (m * (qd + kd)) as f64, 8.0 * (m * (qd + kd)) as f64); // RoPE
        cost_attention(&mut c, m, past + m, cfg.n_heads, cfg.n_kv_heads, hd);
        cost_linear(&mut c, m, qd, d, wb(d, qd));
        c.add((m * d) as f64, 12.0 * (m * d) as f64); // residual
        cost_rms(&mut c, m, d);
        cost_linear(&mut c, m, d, ff, wb(ff, d));
        cost_linear(&mut c, m, d, ff, wb(ff, d));
        c.add((EXP_FLOPS + 3.0) * (m * ff) as f64, 12.0 * (m * ff) as f64); // SiLU gate
        cost_linear(&mut c, m, ff, d, wb(d, ff));
        c.add((m * d) as f64, 12.0 * (m * d) as f64); // residual
    }
    cost_rms(&mut c, m, d);
    cost_linear(&mut c, logit_rows, d, cfg.vocab_size, wb(cfg.vocab_size, d));
    c
}

/// Cost of the runtime's BERT forward over `n` tokens (embedding sum and LayerNorm, per block
/// Q/K/V/O with bias, attention, LayerNorms, GELU MLP), f32 weights; counted from the sequence of
/// kernels in `BertModel::forward`.
pub(crate) fn bert_cost(cfg: &claimlab_runtime::BertConfig, n: usize) -> Cost {
    let (d, ff, h) = (cfg.d_model, cfg.d_ff, cfg.n_heads);
    let e = (n * d) as f64;
    let mut c = Cost::default();
    c.add(2.0 * e, 16.0 * e);
    c.add(7.0 * e, 8.0 * e + 8.0 * d as f64); // embedding LayerNorm
    let lin = |c: &mut Cost, k: usize, m: usize| {
        cost_linear(c, n, k, m, 4.0 * (k * m + m) as f64);
        c.add((n * m) as f64, 0.0); // bias
    };
    for _ in 0..cfg.n_layers {
        for _ in 0..3 {
            lin(&mut c, d, d);
        }
        cost_attention(&mut c, n, n, h, h, d / h);
        lin(&mut c, d, d);
        c.add(e, 12.0 * e); // residual
        c.add(7.0 * e, 8.0 * e + 8.0 * d as f64);
        lin(&mut c, d, ff);
        c.add((EXP_FLOPS + 15.0) * (n * ff) as f64, 8.0 * (n * ff) as f64); // GELU
        lin(&mut c, ff, d);
        c.add(e, 12.0 * e);
        c.add(7.0 * e, 8.0 * e + 8.0 * d as f64);
    }
    c
}

/// Peak bytes of the f32 buffers alive at once in the runtime's `LlamaModel::forward` over `n`
/// tokens, from its code: the residual stream, then the largest of the attention phase (normed
/// input, Q, K, V, every head's output and `n × n` probabilities until the heads are joined, the
/// joined output), the MLP phase (normed input, gate, up, down output) and the output phase
/// (normed hidden states and every position's logits). Allocator overhead and faer's workspace are
/// not counted.
pub(crate) fn llama_forward_live_bytes(cfg: &LlamaConfig, n: usize) -> f64 {
    let (d, hd, ff, h) = (cfg.d_model, cfg.head_dim, cfg.d_ff, cfg.n_heads);
    let (qd, kd) = (h * hd, cfg.n_kv_heads * hd);
    let attn = n * (d + qd + 2 * kd + qd) + h * (n * hd + n * n);
    let mlp = n * (d + 2 * ff + d);
    let out = n * (d + cfg.vocab_size);
    4.0 * (n * d + attn.max(mlp).max(out)) as f64
}

/// As [`llama_forward_live_bytes`] for one step of [`Decoder::step`]: `m` new tokens against
/// `ctx` cached positions (the cache itself not included), `logit_rows` rows of logits.
pub(crate) fn decoder_step_live_bytes(
    cfg: &LlamaConfig,
    m: usize,
    ctx: usize,
    logit_rows: usize,
) -> f64 {
    let (d, hd, ff, h) = (cfg.d_model, cfg.head_dim, cfg.d_ff, cfg.n_heads);
    let (qd, kd) = (h * hd, cfg.n_kv_heads * hd);
    let attn = m * (d + qd + 2 * kd + qd) + h * (m * hd + m * ctx);
    let mlp = m * (d + 2 * ff + d);
    let out = logit_rows * (d + cfg.vocab_size);
    4.0 * (m * d + attn.max(mlp).max(out)) as f64
}

/// As [`llama_forward_live_bytes`] for the runtime's `BertModel::forward` over `n` tokens.
pub(crate) fn bert_forward_live_bytes(cfg: &claimlab_runtime::BertConfig, n: usize) -> f64 {
    let (d, ff, h) = (cfg.d_model, cfg.d_ff, cfg.n_heads);
    let attn = n * (3 * d + d) + h * (n * (d / h) + n * n);
    let mlp = n * (ff + d);
    4.0 * (n * d + attn.max(mlp)) as f64
}

/// Largest integer `s` in `0..=limit` with `f(s) ≤ budget` for a non-decreasing `f` (0 if none).
pub(crate) fn largest_fitting(budget: f64, limit: usize, f: impl Fn(usize) -> f64) -> usize {
    if f(0) > budget {
        return 0;
    }
    let (mut lo, mut hi) = (0usize, limit);
    if f(hi) <= budget {
        return hi;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if f(mid) <= budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The K/V cache of one sequence: per layer `[capacity, n_kv_heads · head_dim]` keys and values
/// (f32, post-RoPE keys).
#[derive(Clone, Debug)]
pub(crate) struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    width: usize,
    len: usize,
}

impl KvCache {
    /// An empty cache with room for `capacity` positions (allocated now).
    pub(crate) fn new(cfg: &LlamaConfig, capacity: usize) -> Self {
        let width = cfg.n_kv_heads * cfg.head_dim;
        let mk = || {
            (0..cfg.n_layers)
                .map(|_| Vec::with_capacity(capacity * width))
                .collect::<Vec<_>>()
        };
        KvCache {
            k: mk(),
            v: mk(),
            width,
            len: 0,
        }
    }

    /// Bytes allocated for keys and values (capacities, not lengths).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.k
            .iter()
            .chain(&self.v)
            .map(|b| b.capacity() * std::mem::size_of::<f32>())
            .sum()
    }

    /// Bytes holding cached positions.
    pub(crate) fn used_bytes(&self) -> usize {
        self.k
            .iter()
            .chain(&self.v)
            .map(|b| b.len() * std::mem::size_of::<f32>())
            .sum()
    }

    /// Cached positions.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `n` zero positions (written, so their pages become resident).
    pub(crate) fn fill_zeros(&mut self, n: usize) {
        for b in self.k.iter_mut().chain(self.v.iter_mut()) {
            b.resize(b.len() + n * self.width, 0.0);
        }
        self.len += n;
    }

    /// Forgets positions from `len` on.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len {
            for b in self.k.iter_mut().chain(self.v.iter_mut()) {
                b.truncate(len * self.width);
            }
            self.len = len;
        }
    }
}

struct DecBlock<'a> {
    attn_norm: &'a [f32],
    wq: Linear<'a>,
    wk: Linear<'a>,
    wv: Linear<'a>,
    wo: Linear<'a>,
    ffn_norm: &'a [f32],
    gate: Linear<'a>,
    up: Linear<'a>,
    down: Linear<'a>,
}

/// Incremental decoder over a loaded [`LlamaModel`] (see the module doc).
pub(crate) struct Decoder<'a> {
    cfg: LlamaConfig,
    fmt: WeightFormat,
    embd: &'a [f32],
    blocks: Vec<DecBlock<'a>>,
    out_norm: &'a [f32],
    lm_head: Linear<'a>,
}

fn rms_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let d = w.len();
    let mut y = vec![0.0f32; x.len()];
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let ms = xr.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / d as f64;
        let inv = (1.0 / (ms + eps).sqrt()) as f32;
        for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
            *o = v * inv * g;
        }
    }
    y
}

/// `e^x` for `x ≤ 0` by range reduction and a degree-7 polynomial (relative error below 1e-6);
/// written out because glibc's vector-encoded `expf` is slow when called between faer kernels.
fn exp_neg(x: f32) -> f32 {
    if x < -87.0 {
        return 0.0;
    }
    let k = (x * std::f32::consts::LOG2_E).round();
    // Cody–Waite: ln 2 split in a part exact in f32 and a correction.
    let r = (x - k * 0.693_359_4) - k * -2.121_944_4e-4;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// RoPE (GGUF interleaved pairs) on `x` `[m, heads·hd]` for positions `start..start + m`.
fn rope(x: &mut [f32], heads: usize, hd: usize, start: usize, theta: f64) {
    let half = hd / 2;
    for (t, row) in x.chunks_exact_mut(heads * hd).enumerate() {
        let pos = (start + t) as f64;
        let cs: Vec<(f32, f32)> = (0..half)
            .map(|i| {
                let a = pos * theta.powf(-2.0 * i as f64 / hd as f64);
                (a.cos() as f32, a.sin() as f32)
            })
            .collect();
        for head in row.chunks_exact_mut(hd) {
            for (i, &(c, s)) in cs.iter().enumerate() {
                let (a, b) = (head[2 * i], head[2 * i + 1]);
                head[2 * i] = a * c - b * s;
                head[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

impl<'a> Decoder<'a> {
    /// A decoder over `model`'s weights with every linear (and the output projection) in `fmt`.
    pub(crate) fn new(model: &'a LlamaModel, fmt: WeightFormat) -> Result<Self> {
        let cfg = model.config().clone();
        let get = |name: &str| -> Result<&'a [f32]> {
            model
                .param(name)
                .map(|(_, d)| d)
                .with_context(|| format!("runtime has no tensor {name}"))
        };
        let lin = |name: &str, rows: usize, cols: usize| -> Result<Linear<'a>> {
            Linear::new(get(name)?, rows, cols, fmt)
        };
        let (d, hd, ff) = (cfg.d_model, cfg.head_dim, cfg.d_ff);
        let (qd, kd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            blocks.push(DecBlock {
                attn_norm: get(&n("attn_norm"))?,
                wq: lin(&n("attn_q"), qd, d)?,
                wk: lin(&n("attn_k"), kd, d)?,
                wv: lin(&n("attn_v"), kd, d)?,
                wo: lin(&n("attn_output"), d, qd)?,
                ffn_norm: get(&n("ffn_norm"))?,
                gate: lin(&n("ffn_gate"), ff, d)?,
                up: lin(&n("ffn_up"), ff, d)?,
                down: lin(&n("ffn_down"), d, ff)?,
            });
        }
        let head = if cfg.tied_embeddings {
            "token_embd.weight"
        } else {
            "output.weight"
        };
        Ok(Decoder {
            embd: get("token_embd.weight")?,
            out_norm: get("output_norm.weight")?,
            lm_head: lin(head, cfg.vocab_size, d)?,
            blocks,
            fmt,
            cfg,
        })
    }

    /// The model's hyper-parameters.
    pub(crate) fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Runs `tokens` after the cached positions, appends their keys and values to `cache`, and
    /// returns the logits of the last `logit_rows` new positions (`[logit_rows, vocab]`). Adds
    /// the kernels' FLOPs and bytes to `counter`.
    pub(crate) fn step(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        logit_rows: usize,
        counter: &mut Cost,
    ) -> Result<Vec<f32>> {
        let c = &self.cfg;
        let m = tokens.len();
        if m == 0 || logit_rows > m {
            bail!("decoder step: {m} tokens, {logit_rows} logit rows");
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            bail!("token {t} outside the vocabulary");
        }
        let (d, hd, ff) = (c.d_model, c.head_dim, c.d_ff);
        let (qd, kd) = (c.n_heads * hd, c.n_kv_heads * hd);
        let past = cache.len;
        let ctx = past + m;
        let wbits = self.fmt.bits();
        let wb = |r: usize, k: usize| (r * k) as f64 * wbits / 8.0;
        let mut x = Vec::with_capacity(m * d);
        for &t in tokens {
            x.extend_from_slice(&self.embd[t as usize * d..(t as usize + 1) * d]);
        }
        counter.add(0.0, 8.0 * (m * d) as f64);
        let group = c.n_heads / c.n_kv_heads;
        let scale = (1.0 / (hd as f64).sqrt()) as f32;
        for (l, b) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, b.attn_norm, c.norm_eps);
            cost_rms(counter, m, d);
            let mut q = b.wq.apply(&h, m);
            let mut k = b.wk.apply(&h, m);
            let v = b.wv.apply(&h, m);
            cost_linear(counter, m, d, qd, wb(qd, d));
            cost_linear(counter, m, d, kd, wb(kd, d));
            cost_linear(counter, m, d, kd, wb(kd, d));
            rope(&mut q, c.n_heads, hd, past, c.rope_theta);
            rope(&mut k, c.n_kv_heads, hd, past, c.rope_theta);
            counter.add(3.0 * (m * (qd + kd)) as f64, 8.0 * (m * (qd + kd)) as f64);
            cache.k[l].extend_from_slice(&k);
            cache.v[l].extend_from_slice(&v);
            let (kc, vc) = (&cache.k[l], &cache.v[l]);
            let heads: Vec<Vec<f32>> = (0..c.n_heads)
                .into_par_iter()
                .map(|hh| {
                    let kvh = hh / group;
                    let mut p = vec![0.0f32; m * ctx];
                    matmul(
                        MatMut::from_row_major_slice_mut(&mut p, m, ctx),
                        Accum::Replace,
                        MatRef::from_row_major_slice_with_stride(&q[hh * hd..], m, hd, qd),
                        MatRef::from_column_major_slice_with_stride(&kc[kvh * hd..], hd, ctx, kd),
                        scale,
                        Par::Seq,
                    );
                    for (i, row) in p.chunks_exact_mut(ctx).enumerate() {
                        let len = past + i + 1;
                        let max = row[..len].iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                        let mut sum = 0.0f64;
                        for v in &mut row[..len] {
                            *v = exp_neg(*v - max);
                            sum += f64::from(*v);
                        }
                        let inv = (1.0 / sum) as f32;
                        for v in &mut row[..len] {
                            *v *= inv;
                        }
                        for v in &mut row[len..] {
                            *v = 0.0;
                        }
                    }
                    let mut o = vec![0.0f32; m * hd];
                    matmul(
                        MatMut::from_row_major_slice_mut(&mut o, m, hd),
                        Accum::Replace,
                        MatRef::from_row_major_slice(&p, m, ctx),
                        MatRef::from_row_major_slice_with_stride(&vc[kvh * hd..], ctx, hd, kd),
                        1.0f32,
                        Par::Seq,
                    );
                    o
                })
                .collect();
            cost_attention(counter, m, ctx, c.n_heads, c.n_kv_heads, hd);
            let mut a = vec![0.0f32; m * qd];
            for (hh, o) in heads.iter().enumerate() {
                for t in 0..m {
                    a[t * qd + hh * hd..t * qd + (hh + 1) * hd]
                        .copy_from_slice(&o[t * hd..(t + 1) * hd]);
                }
            }
            let o = b.wo.apply(&a, m);
            cost_linear(counter, m, qd, d, wb(d, qd));
            for (xv, ov) in x.iter_mut().zip(&o) {
                *xv += ov;
            }
            counter.add((m * d) as f64, 12.0 * (m * d) as f64);
            let h = rms_norm(&x, b.ffn_norm, c.norm_eps);
            cost_rms(counter, m, d);
            let mut g = b.gate.apply(&h, m);
            let u = b.up.apply(&h, m);
            cost_linear(counter, m, d, ff, wb(ff, d));
            cost_linear(counter, m, d, ff, wb(ff, d));
            for (gv, uv) in g.iter_mut().zip(&u) {
                // σ(x) from e^{−|x|} on either side, so the exponential never overflows.
                let e = exp_neg(-gv.abs());
                let sig = if *gv >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                *gv = *gv * sig * uv;
            }
            counter.add((EXP_FLOPS + 3.0) * (m * ff) as f64, 12.0 * (m * ff) as f64);
            let y = b.down.apply(&g, m);
            cost_linear(counter, m, ff, d, wb(d, ff));
            for (xv, yv) in x.iter_mut().zip(&y) {
                *xv += yv;
            }
            counter.add((m * d) as f64, 12.0 * (m * d) as f64);
        }
        cache.len = ctx;
        let out = rms_norm(&x[(m - logit_rows) * d..], self.out_norm, c.norm_eps);
        // The counted norm covers all m rows, as `step_cost` assumes a full final norm.
        cost_rms(counter, m, d);
        let logits = self.lm_head.apply(&out, logit_rows);
        cost_linear(counter, logit_rows, d, c.vocab_size, wb(c.vocab_size, d));
        Ok(logits)
    }
}

/// SmolLM2 through the runtime with its tokenizer (the shape the `aecl` passage helpers take).
pub(crate) fn load_smol(ctx: &mut Ctx) -> Result<Loaded> {
    let dec = ctx.decoder()?;
    let llama = LlamaModel::load(dec)?;
    let tok = TextTokenizer::for_model(dec)?;
    let (n_layers, n_heads) = (llama.config().n_layers, llama.config().n_heads);
    Ok(Loaded {
        name: "SmolLM2",
        net: Net::Llama(llama),
        tok,
        n_layers,
        n_heads,
    })
}

/// MiniLM through the runtime with its tokenizer.
pub(crate) fn load_minilm(ctx: &mut Ctx) -> Result<Loaded> {
    let enc = ctx.encoder()?;
    let bert = BertModel::load(enc)?;
    let tok = TextTokenizer::for_model(enc)?;
    let (n_layers, n_heads) = (bert.config().n_layers, bert.config().n_heads);
    Ok(Loaded {
        name: "MiniLM",
        net: Net::Bert(bert),
        tok,
        n_layers,
        n_heads,
    })
}

/// The llama runtime inside a loaded model.
pub(crate) fn llama(l: &Loaded) -> Result<&LlamaModel> {
    match &l.net {
        Net::Llama(m) => Ok(m),
        Net::Bert(_) => bail!("{} is not a llama decoder", l.name),
    }
}

/// The BERT runtime inside a loaded model.
pub(crate) fn bert(l: &Loaded) -> Result<&BertModel> {
    match &l.net {
        Net::Bert(m) => Ok(m),
        Net::Llama(_) => bail!("{} is not a BERT encoder", l.name),
    }
}

/// One timed kernel with its counted cost.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Kernel {
    /// What ran.
    pub name: String,
    /// Whose weights.
    pub model: &'static str,
    /// Weight storage.
    pub format: WeightFormat,
    /// Counted FLOPs and bytes of one call.
    pub cost: Cost,
    /// Median wall time of one call, seconds.
    pub seconds: f64,
    /// Calls timed.
    pub runs: usize,
    /// Whether its weights come from memory (false: the same small matrix again, cache-resident).
    pub streamed: bool,
}

impl Kernel {
    /// Achieved FLOP rate.
    pub(crate) fn achieved(&self) -> f64 {
        self.cost.flops / self.seconds
    }
}

/// Everything the roofline and latency claims time, measured once per process, mode and seed.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Study {
    /// Bandwidth and peak.
    pub machine: Machine,
    /// Context of the decode step and length of the prefill.
    pub context: usize,
    /// SmolLM2 decode step (B = 1) per weight format, f32 first.
    pub decode: Vec<Kernel>,
    /// SmolLM2 decode step (B = 1, f32) through the runtime's own `forward_cached`.
    pub runtime_decode: Kernel,
    /// SmolLM2 prefill through the runtime's `forward` (f32, every position's logits).
    pub prefill: Kernel,
    /// Single matvecs of the MLP up and down shapes per format, streamed and cache-hot.
    pub matvecs: Vec<Kernel>,
    /// MiniLM forward pass through the runtime.
    pub minilm: Kernel,
}

impl Study {
    /// Every kernel, decode steps first.
    pub(crate) fn kernels(&self) -> Vec<&Kernel> {
        self.decode
            .iter()
            .chain(std::iter::once(&self.runtime_decode))
            .chain(std::iter::once(&self.prefill))
            .chain(&self.matvecs)
            .chain(std::iter::once(&self.minilm))
            .collect()
    }

    /// The sample sizes in one line.
    pub(crate) fn describe(&self) -> String {
        format!(
            "decode step at context {c} (median of {d} steps per format), prefill of {c} tokens (median of {p}), \
             matvecs median of {m} calls, MiniLM forward of {n} tokens (median of {b})",
            c = self.context,
            d = self.decode.first().map_or(0, |k| k.runs),
            p = self.prefill.runs,
            m = self.matvecs.first().map_or(0, |k| k.runs),
            n = self.minilm.name.split_whitespace().last().unwrap_or("?"),
            b = self.minilm.runs
        )
    }
}

type StudyKey = (bool, u64);
static STUDY: Mutex<Option<(StudyKey, Arc<Study>)>> = Mutex::new(None);

/// The shared study (see [`Study`]), run on first use with `ctx`'s mode and seed.
pub(crate) fn study(ctx: &mut Ctx) -> Result<Arc<Study>> {
    let key = (ctx.opts.quick, ctx.opts.seed);
    {
        let g = STUDY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, s)) = g.as_ref() {
            if *k == key {
                return Ok(Arc::clone(s));
            }
        }
    }
    let s = Arc::new(run_study(ctx)?);
    *STUDY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, Arc::clone(&s)));
    Ok(s)
}

fn median_of(xs: &[f64]) -> f64 {
    crate::aecl::common::median(xs)
}

fn run_study(ctx: &mut Ctx) -> Result<Study> {
    let quick = ctx.opts.quick;
    let seed = crate::aecl::common::claim_seed(ctx.opts.seed, "roofline-study");
    let (context, decode_reps, prefill_reps, mv_reps, bert_n, bert_reps) = if quick {
        (64, 5, 2, 20, 32, 2)
    } else {
        (256, 20, 5, 50, 128, 5)
    };
    let bar = ctx.bar(7, "roofline: machine, decode, prefill, matvecs, MiniLM");
    let machine = machine(quick);
    bar.inc(1);
    let smol = load_smol(ctx)?;
    let toks =
        crate::aecl::common::passages_from(ctx, &smol, context + 1, 1, seed, false)?.remove(0);
    let model = llama(&smol)?;
    let cfg = model.config().clone();

    // Decode: fill the cache once (f32), then time one step at exactly `context` cached tokens.
    let f32_dec = Decoder::new(model, WeightFormat::F32)?;
    let mut filled = KvCache::new(&cfg, context + 1);
    f32_dec.step(&mut filled, &toks[..context], 1, &mut Cost::default())?;
    let mut decode = Vec::new();
    for fmt in WeightFormat::ALL {
        let dec = if fmt == WeightFormat::F32 {
            None
        } else {
            Some(Decoder::new(model, fmt)?)
        };
        let d = dec.as_ref().unwrap_or(&f32_dec);
        let mut cache = filled.clone();
        let ts = times(decode_reps, || {
            cache.truncate(context);
            d.step(
                &mut cache,
                &toks[context..=context],
                1,
                &mut Cost::default(),
            )?;
            Ok(())
        })?;
        decode.push(Kernel {
            name: format!("decode step ({})", fmt.label()),
            model: "SmolLM2",
            format: fmt,
            cost: step_cost(&cfg, 1, context, 1, fmt.bits()),
            seconds: median_of(&ts),
            runs: ts.len(),
            streamed: true,
        });
    }
    // The runtime's own cached decode step (`LlamaModel::forward_cached`, f32), same context.
    let no_ov = claimlab_runtime::Overrides::new();
    let mut rcache = model.new_cache();
    model.forward_cached(&mut rcache, &toks[..context], &no_ov)?;
    let ts = times(decode_reps, || {
        rcache.truncate(context);
        std::hint::black_box(model.forward_cached(
            &mut rcache,
            &toks[context..=context],
            &no_ov,
        )?);
        Ok(())
    })?;
    let runtime_decode = Kernel {
        name: "decode step (runtime forward_cached)".into(),
        model: "SmolLM2",
        format: WeightFormat::F32,
        cost: step_cost(&cfg, 1, context, 1, 32.0),
        seconds: median_of(&ts),
        runs: ts.len(),
        streamed: true,
    };
    bar.inc(1);
    let none = claimlab_runtime::Hooks::none();
    let ts = times(prefill_reps, || {
        std::hint::black_box(model.forward(&toks[..context], &none)?);
        Ok(())
    })?;
    let prefill = Kernel {
        name: format!("prefill {context} tokens (runtime forward)"),
        model: "SmolLM2",
        format: WeightFormat::F32,
        cost: step_cost(&cfg, context, 0, context, 32.0),
        seconds: median_of(&ts),
        runs: ts.len(),
        streamed: true,
    };
    bar.inc(1);

    // Matvecs of the MLP shapes: streamed (the next layer's matrix each call) and cache-hot.
    let mut matvecs = Vec::new();
    let (d, ff) = (cfg.d_model, cfg.d_ff);
    for (role, rows, cols) in [("ffn_up", ff, d), ("ffn_down", d, ff)] {
        for fmt in WeightFormat::ALL {
            let mats: Vec<Linear<'_>> = (0..cfg.n_layers)
                .map(|l| {
                    let name = format!("blk.{l}.{role}.weight");
                    let w = model
                        .param(&name)
                        .map(|(_, w)| w)
                        .with_context(|| format!("runtime has no tensor {name}"))?;
                    Linear::new(w, rows, cols, fmt)
                })
                .collect::<Result<_>>()?;
            // Streamed: copies of the 30 layers' matrices up to STREAM_BYTES in all, more than the
            // last-level cache holds, visited in turn, so each call reads its weights from memory.
            let per = mats.first().map_or(1, Linear::weight_bytes).max(1);
            let copies: Vec<Linear<'static>> = (0..STREAM_BYTES.div_ceil(per))
                .map(|i| mats[i % mats.len()].duplicate())
                .collect();
            let x: Vec<f32> = (0..cols).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
            let mut weight_bytes = 0.0;
            for (streamed, label) in [(true, "streamed"), (false, "cache-hot")] {
                let mut i = 0usize;
                let ts = times(mv_reps, || {
                    let m = if streamed {
                        &copies[i % copies.len()]
                    } else {
                        &mats[0]
                    };
                    weight_bytes = m.weight_bytes() as f64;
                    std::hint::black_box(m.apply(&x, 1));
                    i += 1;
                    Ok(())
                })?;
                let mut cost = Cost::default();
                cost_linear(&mut cost, 1, cols, rows, weight_bytes);
                matvecs.push(Kernel {
                    name: format!("{cols}→{rows} matvec {} ({label})", fmt.label()),
                    model: "SmolLM2",
                    format: fmt,
                    cost,
                    seconds: median_of(&ts),
                    runs: ts.len(),
                    streamed,
                });
            }
        }
    }
    bar.inc(1);
    drop(smol);
    let mini = load_minilm(ctx)?;
    let text = crate::aecl::common::passages_from(ctx, &mini, bert_n, 1, seed, false)?.remove(0);
    let b = bert(&mini)?;
    let ts = times(bert_reps, || {
        std::hint::black_box(b.forward(&text, &none)?);
        Ok(())
    })?;
    let minilm = Kernel {
        name: format!("MiniLM forward {bert_n}"),
        model: "MiniLM",
        format: WeightFormat::F32,
        cost: bert_cost(b.config(), bert_n),
        seconds: median_of(&ts),
        runs: ts.len(),
        streamed: true,
    };
    bar.inc(1);
    bar.finish_and_clear();
    Ok(Study {
        machine,
        context,
        decode,
        runtime_decode,
        prefill,
        matvecs,
        minilm,
    })
}

/// The roofline chart of `kernels` on `m` (log-log FLOP/s against intensity).
pub(crate) fn roofline_chart(m: &Machine, kernels: &[&Kernel], title: &str) -> crate::plot::Chart {
    use crate::plot::Series;
    let (lo, hi) = kernels
        .iter()
        .fold((m.ridge() / 10.0, m.ridge() * 10.0), |(lo, hi), k| {
            let i = k.cost.intensity();
            (lo.min(i / 2.0), hi.max(i * 2.0))
        });
    let xs: Vec<f64> = (0..=60)
        .map(|j| lo * (hi / lo).powf(f64::from(j) / 60.0))
        .collect();
    let mut series = vec![Series::reference(
        "roofline min(peak, BW·I)",
        xs.iter().map(|&i| (i, m.roof(i))).collect(),
    )];
    for fmt in WeightFormat::ALL {
        let pts: Vec<(f64, f64)> = kernels
            .iter()
            .filter(|k| k.format == fmt)
            .map(|k| (k.cost.intensity(), k.achieved()))
            .collect();
        if !pts.is_empty() {
            series.push(Series::points(
                format!("kernels, {} weights", fmt.label()),
                pts,
            ));
        }
    }
    crate::plot::Chart {
        title: title.into(),
        x_label: "arithmetic intensity (FLOP/byte)".into(),
        y_label: "FLOP/s".into(),
        log_x: true,
        log_y: true,
        series,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use claimlab_runtime::Hooks;
    use claimlab_testkit::rand::RngExt;

    /// A small random llama model (2 blocks, GQA 4:2, width 64, vocabulary 37).
    pub(crate) fn tiny_model(seed: u64) -> LlamaModel {
        let cfg = LlamaConfig {
            n_layers: 2,
            d_model: 64,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            d_ff: 96,
            vocab_size: 37,
            norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_positions: None,
            tied_embeddings: true,
        };
        let mut rng = claimlab_testkit::rng(seed);
        let shape = |name: &str| -> usize {
            let (d, q, k, f) = (64, 64, 32, 96);
            if name.starts_with("token_embd") {
                37 * d
            } else if name.contains("norm") {
                d
            } else if name.contains("attn_q") || name.contains("attn_output") {
                q * d
            } else if name.contains("attn_k") || name.contains("attn_v") {
                k * d
            } else {
                f * d
            }
        };
        LlamaModel::from_tensors(cfg, |name| {
            let n = shape(name);
            Ok((0..n)
                .map(|_| {
                    if name.contains("norm") {
                        1.0 + 0.1 * (rng.random::<f32>() - 0.5)
                    } else {
                        (rng.random::<f32>() - 0.5) * 0.5
                    }
                })
                .collect())
        })
        .expect("tiny model")
    }

    fn max_rel(a: &[f32], b: &[f32]) -> f64 {
        let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .fold(0.0, f64::max)
            / scale
    }

    #[test]
    fn decoder_matches_runtime_forward_in_one_step_and_incrementally() {
        let model = tiny_model(3);
        let tokens: Vec<u32> = (0..9).map(|i| (i * 7 + 3) % 37).collect();
        let full = model.forward(&tokens, &Hooks::none()).unwrap();
        let dec = Decoder::new(&model, WeightFormat::F32).unwrap();
        let mut cache = KvCache::new(dec.config(), 16);
        let mut cost = Cost::default();
        let all = dec
            .step(&mut cache, &tokens, tokens.len(), &mut cost)
            .unwrap();
        assert!(
            max_rel(&all, &full.logits) < 1e-4,
            "{}",
            max_rel(&all, &full.logits)
        );
        // Prefill 6, then one token at a time: the last logits agree with the full pass.
        let mut cache = KvCache::new(dec.config(), 16);
        dec.step(&mut cache, &tokens[..6], 1, &mut cost).unwrap();
        let mut last = Vec::new();
        for &t in &tokens[6..] {
            last = dec.step(&mut cache, &[t], 1, &mut cost).unwrap();
        }
        assert_eq!(cache.len(), 9);
        assert!(
            max_rel(&last, full.row(8)) < 1e-4,
            "{}",
            max_rel(&last, full.row(8))
        );
    }

    #[test]
    fn counter_equals_step_cost() {
        let model = tiny_model(4);
        for fmt in WeightFormat::ALL {
            let dec = Decoder::new(&model, fmt).unwrap();
            let mut cache = KvCache::new(dec.config(), 16);
            let mut c1 = Cost::default();
            dec.step(&mut cache, &[1, 2, 3, 4, 5], 5, &mut c1).unwrap();
            let e1 = step_cost(dec.config(), 5, 0, 5, fmt.bits());
            let mut c2 = Cost::default();
            dec.step(&mut cache, &[6], 1, &mut c2).unwrap();
            let e2 = step_cost(dec.config(), 1, 5, 1, fmt.bits());
            for (a, b) in [(c1, e1), (c2, e2)] {
                assert!((a.flops - b.flops).abs() <= 1e-9 * b.flops, "{a:?} {b:?}");
                assert!((a.bytes - b.bytes).abs() <= 1e-9 * b.bytes, "{a:?} {b:?}");
            }
        }
        // Hand count of one linear: 2·n·k·m FLOPs.
        let mut c = Cost::default();
        cost_linear(&mut c, 3, 4, 5, 80.0);
        assert!((c.flops - 120.0).abs() < 1e-12 && (c.bytes - (80.0 + 4.0 * 27.0)).abs() < 1e-12);
    }

    #[test]
    fn fused_quantised_dots_match_dequantised_products() {
        let mut rng = claimlab_testkit::rng(5);
        let (rows, cols, n) = (7, 96, 3);
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random::<f32>() - 0.4)
            .collect();
        let x: Vec<f32> = (0..n * cols).map(|_| rng.random::<f32>() - 0.5).collect();
        for (fmt, dt) in [
            (WeightFormat::Q8_0, DType::Q8_0),
            (WeightFormat::Q4_1, DType::Q4_1),
        ] {
            let lin = Linear::new(&w, rows, cols, fmt).unwrap();
            let bytes = claimlab_weights::quantize(dt, &w).unwrap();
            assert_eq!(lin.weight_bytes(), bytes.len());
            let deq = claimlab_weights::dequantize(dt, &bytes, rows * cols).unwrap();
            let y = lin.apply(&x, n);
            for i in 0..n {
                for j in 0..rows {
                    let want: f64 = (0..cols)
                        .map(|t| f64::from(x[i * cols + t]) * f64::from(deq[j * cols + t]))
                        .sum();
                    assert!(
                        (f64::from(y[i * rows + j]) - want).abs() < 1e-4,
                        "{fmt:?} {i} {j}"
                    );
                }
            }
        }
        // Bits per weight of the stored formats.
        assert!((8.0 * 34.0 / 32.0 - WeightFormat::Q8_0.bits()).abs() < 1e-12);
        assert!((8.0 * 20.0 / 32.0 - WeightFormat::Q4_1.bits()).abs() < 1e-12);
    }

    #[test]
    fn cache_bytes_follow_the_gqa_formula() {
        let model = tiny_model(6);
        let dec = Decoder::new(&model, WeightFormat::F32).unwrap();
        let mut cache = KvCache::new(dec.config(), 10);
        // 2 (K and V) · S · L · h_kv · d · 4 bytes.
        assert_eq!(cache.allocated_bytes(), 2 * 10 * 2 * 2 * 16 * 4);
        dec.step(&mut cache, &[1, 2, 3], 1, &mut Cost::default())
            .unwrap();
        assert_eq!(cache.used_bytes(), 2 * 3 * 2 * 2 * 16 * 4);
        cache.truncate(1);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used_bytes(), 2 * 2 * 2 * 16 * 4);
    }

    #[test]
    fn live_bytes_and_bisection() {
        let m = tiny_model(8);
        let c = m.config();
        // n = 3 by hand: attention phase 3·(64+64+32+32+64) + 4·(3·16 + 9) = 996 floats beats
        // the MLP phase 3·(64+2·96+64) = 960 and the output phase 3·(64+37) = 303; plus x (192).
        assert!((llama_forward_live_bytes(c, 3) - 4.0 * (192.0 + 996.0)).abs() < 1e-9);
        // One decode step over a long context: the score rows grow with ctx.
        assert!(decoder_step_live_bytes(c, 1, 1000, 1) > decoder_step_live_bytes(c, 1, 10, 1));
        assert_eq!(largest_fitting(10.0, 100, |s| s as f64), 10);
        assert_eq!(largest_fitting(10.0, 5, |s| s as f64), 5);
        assert_eq!(largest_fitting(-1.0, 5, |s| s as f64), 0);
    }

    #[test]
    fn exp_and_roofline() {
        for &x in &[0.0f32, -0.5, -3.0, -20.0, -80.0] {
            let r = (f64::from(exp_neg(x)) - f64::from(x).exp()).abs() / f64::from(x).exp();
            assert!(r < 1e-6, "{x} {r}");
        }
        let m = Machine {
            bandwidth: 10e9,
            peak: 100e9,
            triad_elems: 1,
            triad_reps: 1,
            matmul_n: 1,
            matmul_reps: 1,
            threads: 1,
        };
        assert!((m.ridge() - 10.0).abs() < 1e-12);
        assert!((m.roof(1.0) - 10e9).abs() < 1.0 && (m.roof(100.0) - 100e9).abs() < 1.0);
    }
}
