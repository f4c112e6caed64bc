//! Reverse-mode gradient of the decoder's next-token loss with respect to chosen parameters.
//!
//! The tracked part of the network (from the first block whose gradient is needed, or whose input
//! gradient is needed, up to the loss) is re-run in f64 with every activation stored, then
//! differentiated by hand: tied output projection and log-softmax, final RMSNorm, and for each
//! block the SwiGLU MLP, the output projection, causal grouped-query attention, RoPE in the GGUF
//! (interleaved-pair) layout, the Q/K/V projections and the RMSNorm. The blocks below the tracked
//! part run once in the model's own f32 forward pass; their output (the residual stream entering
//! the first tracked block) is the f32 value widened to f64.

use rayon::prelude::*;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::error::{Error, Result};
use crate::hooks::{Capture, Overrides};
use crate::llama::{LlamaConfig, LlamaModel};

/// The nine weight tensors of a block, as named in GGUF files (`blk.L.<name>.weight`), in the
/// order [`LossGradient::grads`] lists them.
pub const BLOCK_TENSORS: [&str; 9] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Which parameters [`GradModel`] differentiates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GradSpec {
    /// Blocks whose nine tensors get a gradient (any order; duplicates are ignored).
    pub blocks: Vec<usize>,
    /// The final RMSNorm weight (`output_norm.weight`).
    pub output_norm: bool,
    /// The token embedding (`token_embd.weight`, which is also the output projection when tied;
    /// `output.weight` too when untied). Tracking it runs the backward pass down to block 0.
    pub embedding: bool,
}

impl GradSpec {
    /// Every parameter of the model.
    #[must_use]
    pub fn all(n_layers: usize) -> Self {
        GradSpec {
            blocks: (0..n_layers).collect(),
            output_norm: true,
            embedding: true,
        }
    }

    /// The given blocks only.
    #[must_use]
    pub fn blocks(blocks: impl IntoIterator<Item = usize>) -> Self {
        GradSpec {
            blocks: blocks.into_iter().collect(),
            output_norm: false,
            embedding: false,
        }
    }
}

/// Gradient of one tensor.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ParamGrad {
    /// Tensor name as in [`LlamaModel::param_names`].
    pub name: String,
    /// Shape, PyTorch order (`[out, in]` for matrices).
    pub shape: Vec<usize>,
    /// `∂loss/∂θ`, row-major like the tensor.
    pub grad: Vec<f64>,
}

/// Result of [`GradModel::loss_gradient`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LossGradient {
    /// Mean negative log-likelihood (nats) over the scored positions, from the f64 forward pass.
    pub mean_nll: f64,
    /// Positions `t` scored (their logits predict the target).
    pub positions: Vec<usize>,
    /// The target of each scored position.
    pub targets: Vec<u32>,
    /// `−log p(target | tokens[..=t])` of each scored position.
    pub per_token_nll: Vec<f64>,
    /// Gradients of `mean_nll`: the tracked blocks in increasing order with their tensors in
    /// [`BLOCK_TENSORS`] order, then `output_norm.weight`, then `token_embd.weight` (and
    /// `output.weight` if untied), as the [`GradSpec`] asked.
    pub grads: Vec<ParamGrad>,
}

impl LossGradient {
    /// Number of gradient entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.grads.iter().map(|g| g.grad.len()).sum()
    }

    /// Whether no parameter was tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All gradient entries concatenated in [`LossGradient::grads`] order.
    #[must_use]
    pub fn flat(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.len());
        for g in &self.grads {
            v.extend_from_slice(&g.grad);
        }
        v
    }

    /// Squared Euclidean norm of the gradient.
    #[must_use]
    pub fn norm_sq(&self) -> f64 {
        self.grads
            .iter()
            .flat_map(|g| g.grad.iter())
            .map(|x| x * x)
            .sum()
    }

    /// The gradient of a tensor by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ParamGrad> {
        self.grads.iter().find(|g| g.name == name)
    }
}

/// f64 copies of one block's weights.
struct BlockW {
    layer: usize,
    tracked: bool,
    /// In [`BLOCK_TENSORS`] order.
    w: [Vec<f64>; 9],
}

const ATTN_NORM: usize = 0;
const WQ: usize = 1;
const WK: usize = 2;
const WV: usize = 3;
const WO: usize = 4;
const FFN_NORM: usize = 5;
const GATE: usize = 6;
const UP: usize = 7;
const DOWN: usize = 8;

/// A decoder prepared for exact gradients: f64 copies of the weights of the tracked part.
///
/// Memory: 8 bytes per parameter of the blocks from the first tracked one up, plus the output
/// projection (`vocab·d_model`; none with [`GradModel::new_f32_head`]), plus the stored
/// activations of one call (about `n·(8·d_model + 4·q_dim + 4·d_ff) + n_heads·n²` f64 per
/// tracked-path block).
pub struct GradModel<'a> {
    model: &'a LlamaModel,
    spec: GradSpec,
    start: usize,
    blocks: Vec<BlockW>,
    out_norm: Vec<f64>,
    /// f64 copy of the output projection (empty when `head_f32` is set).
    lm_head: Vec<f64>,
    /// The model's own f32 output projection, used instead of `lm_head` when set.
    head_f32: Option<&'a [f32]>,
}

/// Per key/value head: `(query head, dq)` of its query heads, then its `dk` and `dv`.
type KvGrads = (Vec<(usize, Vec<f64>)>, Vec<f64>, Vec<f64>);

/// Stored activations of one block.
pub(crate) struct BlockTape {
    x: Vec<f64>,
    r1: Vec<f64>,
    h: Vec<f64>,
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    /// Attention probabilities `[n_heads, n, n]`.
    p: Vec<f64>,
    a: Vec<f64>,
    x1: Vec<f64>,
    r2: Vec<f64>,
    h2: Vec<f64>,
    gt: Vec<f64>,
    u: Vec<f64>,
    m: Vec<f64>,
}

/// Stored activations of a forward pass over the tracked part.
struct Tape {
    n: usize,
    blocks: Vec<BlockTape>,
    x_last: Vec<f64>,
    rf: Vec<f64>,
    hf: Vec<f64>,
}

pub(crate) fn widen(v: &[f32]) -> Vec<f64> {
    v.par_iter().map(|&x| f64::from(x)).collect()
}

/// `y = x·wᵀ`, `x` `[n, k]`, `w` `[m, k]`, row-major; `y` `[n, m]`.
pub(crate) fn mm_nt(x: &[f64], w: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * m];
    if n * m * k == 0 {
        return y;
    }
    matmul(
        MatMut::from_row_major_slice_mut(&mut y, n, m),
        Accum::Replace,
        MatRef::from_row_major_slice(x, n, k),
        MatRef::from_column_major_slice(w, k, m),
        1.0,
        Par::rayon(0),
    );
    y
}

/// `dx = dy·w`, `dy` `[n, m]`, `w` `[m, k]`; `dx` `[n, k]` (added into `acc` if given).
pub(crate) fn mm_nn_into(acc: &mut [f64], dy: &[f64], w: &[f64], n: usize, m: usize, k: usize) {
    if n * m * k == 0 {
        return;
    }
    matmul(
        MatMut::from_row_major_slice_mut(acc, n, k),
        Accum::Add,
        MatRef::from_row_major_slice(dy, n, m),
        MatRef::from_row_major_slice(w, m, k),
        1.0,
        Par::rayon(0),
    );
}

/// `dw += dyᵀ·x`, `dy` `[n, m]`, `x` `[n, k]`; `dw` `[m, k]`.
pub(crate) fn mm_tn_into(dw: &mut [f64], dy: &[f64], x: &[f64], n: usize, m: usize, k: usize) {
    if n * m * k == 0 {
        return;
    }
    matmul(
        MatMut::from_row_major_slice_mut(dw, m, k),
        Accum::Add,
        MatRef::from_column_major_slice(dy, m, n),
        MatRef::from_row_major_slice(x, n, k),
        1.0,
        Par::rayon(0),
    );
}

/// RMSNorm rows: returns `(y, r)` with `r_t = 1/sqrt(mean(x_t²) + eps)`, `y = x·r ⊙ g`.
pub(crate) fn rms_fwd(x: &[f64], g: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>) {
    let d = g.len();
    let mut y = vec![0.0; x.len()];
    let mut r = Vec::with_capacity(x.len() / d);
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let ms = xr.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, v), w) in yr.iter_mut().zip(xr).zip(g) {
            *o = v * inv * w;
        }
        r.push(inv);
    }
    (y, r)
}

/// RMSNorm backward: adds `∂/∂x` into `dx` and, if given, `∂/∂g` into `dg`.
///
/// `dx_i = r·g_i·dy_i − r³·x_i·(Σ_j dy_j g_j x_j)/d`, `dg_i = Σ_t dy_ti·x_ti·r_t`.
pub(crate) fn rms_bwd(
    dy: &[f64],
    x: &[f64],
    r: &[f64],
    g: &[f64],
    dx: &mut [f64],
    mut dg: Option<&mut [f64]>,
) {
    let d = g.len();
    for (t, ((dyr, xr), dxr)) in dy
        .chunks_exact(d)
        .zip(x.chunks_exact(d))
        .zip(dx.chunks_exact_mut(d))
        .enumerate()
    {
        let rt = r[t];
        let s: f64 = dyr
            .iter()
            .zip(g)
            .zip(xr)
            .map(|((a, b), c)| a * b * c)
            .sum::<f64>()
            / d as f64;
        for i in 0..d {
            dxr[i] += rt * g[i] * dyr[i] - rt * rt * rt * xr[i] * s;
        }
        if let Some(dg) = dg.as_deref_mut() {
            for i in 0..d {
                dg[i] += dyr[i] * xr[i] * rt;
            }
        }
    }
}

/// cos/sin of the RoPE angles for positions `0..n`, `[n, head_dim/2]`.
pub(crate) fn rope_table(n: usize, head_dim: usize, base: f64) -> (Vec<f64>, Vec<f64>) {
    let half = head_dim / 2;
    let mut c = Vec::with_capacity(n * half);
    let mut s = Vec::with_capacity(n * half);
    for t in 0..n {
        for i in 0..half {
            let a = t as f64 * base.powf(-2.0 * i as f64 / head_dim as f64);
            c.push(a.cos());
            s.push(a.sin());
        }
    }
    (c, s)
}

/// Interleaved RoPE (pairs `(2i, 2i+1)`) on `[n, heads·head_dim]`; `inverse` applies the
/// transpose (rotation by the opposite angle), which is the backward pass.
fn rope_apply(x: &mut [f64], head_dim: usize, cs: &(Vec<f64>, Vec<f64>), width: usize, inv: bool) {
    let half = head_dim / 2;
    for (t, row) in x.chunks_exact_mut(width).enumerate() {
        let c = &cs.0[t * half..(t + 1) * half];
        let s = &cs.1[t * half..(t + 1) * half];
        for head in row.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (a, b) = (head[2 * i], head[2 * i + 1]);
                let sn = if inv { -s[i] } else { s[i] };
                head[2 * i] = a * c[i] - b * sn;
                head[2 * i + 1] = a * sn + b * c[i];
            }
        }
    }
}

/// cos and sin tables of [`rope_table`].
pub(crate) type Rope = (Vec<f64>, Vec<f64>);

/// One block's f64 forward pass on the residual stream `x` (`[n, d_model]`, positions `0..n`,
/// `rope` from [`rope_table`] for `n`), keeping every activation its backward pass needs.
///
/// Returns the block's tape and its output (the residual stream after the block).
#[allow(clippy::cast_precision_loss)]
pub(crate) fn block_fwd(
    c: &LlamaConfig,
    w: &[Vec<f64>; 9],
    x: Vec<f64>,
    n: usize,
    rope: &Rope,
) -> (BlockTape, Vec<f64>) {
    let (d, hd, ff) = (c.d_model, c.head_dim, c.d_ff);
    let (nh, nkv) = (c.n_heads, c.n_kv_heads);
    let (qd, kd) = (nh * hd, nkv * hd);
    let group = nh / nkv;
    let scale = 1.0 / (hd as f64).sqrt();
    let (h, r1) = rms_fwd(&x, &w[ATTN_NORM], c.norm_eps);
    let mut q = mm_nt(&h, &w[WQ], n, d, qd);
    let mut k = mm_nt(&h, &w[WK], n, d, kd);
    let v = mm_nt(&h, &w[WV], n, d, kd);
    rope_apply(&mut q, hd, rope, qd, false);
    rope_apply(&mut k, hd, rope, kd, false);
    // Per query head: causal softmax of scaled scores, then the weighted values.
    let heads: Vec<(Vec<f64>, Vec<f64>)> = (0..nh)
        .into_par_iter()
        .map(|hh| {
            let kv = hh / group;
            let mut p = vec![0.0; n * n];
            let mut o = vec![0.0; n * hd];
            for i in 0..n {
                let qi = &q[i * qd + hh * hd..i * qd + (hh + 1) * hd];
                let row = &mut p[i * n..(i + 1) * n];
                let mut mx = f64::NEG_INFINITY;
                for (j, pj) in row.iter_mut().enumerate().take(i + 1) {
                    let kj = &k[j * kd + kv * hd..j * kd + (kv + 1) * hd];
                    let s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() * scale;
                    *pj = s;
                    mx = mx.max(s);
                }
                let mut z = 0.0;
                for pj in &mut row[..=i] {
                    *pj = (*pj - mx).exp();
                    z += *pj;
                }
                let oi = &mut o[i * hd..(i + 1) * hd];
                for (j, pj) in row[..=i].iter_mut().enumerate() {
                    *pj /= z;
                    let vj = &v[j * kd + kv * hd..j * kd + (kv + 1) * hd];
                    for (ot, vt) in oi.iter_mut().zip(vj) {
                        *ot += *pj * vt;
                    }
                }
            }
            (p, o)
        })
        .collect();
    let mut a = vec![0.0; n * qd];
    let mut p = Vec::with_capacity(nh * n * n);
    for (hh, (ph, oh)) in heads.into_iter().enumerate() {
        for t in 0..n {
            a[t * qd + hh * hd..t * qd + (hh + 1) * hd].copy_from_slice(&oh[t * hd..(t + 1) * hd]);
        }
        p.extend_from_slice(&ph);
    }
    let o = mm_nt(&a, &w[WO], n, qd, d);
    let x1: Vec<f64> = x.iter().zip(&o).map(|(u, v)| u + v).collect();
    let (h2, r2) = rms_fwd(&x1, &w[FFN_NORM], c.norm_eps);
    let gt = mm_nt(&h2, &w[GATE], n, d, ff);
    let u = mm_nt(&h2, &w[UP], n, d, ff);
    let m: Vec<f64> = gt.iter().zip(&u).map(|(g, u)| silu(*g) * u).collect();
    let y = mm_nt(&m, &w[DOWN], n, ff, d);
    let x2: Vec<f64> = x1.iter().zip(&y).map(|(u, v)| u + v).collect();
    let tape = BlockTape {
        x,
        r1,
        h,
        q,
        k,
        v,
        p,
        a,
        x1,
        r2,
        h2,
        gt,
        u,
        m,
    };
    (tape, x2)
}

/// One block's backward pass: from `dx` (`∂L/∂` the block's output, `[n, d_model]`) and the
/// block's tape, adds the gradients of its nine tensors into `g` ([`BLOCK_TENSORS`] order) when
/// given and returns `∂L/∂` the block's input.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn block_bwd(
    c: &LlamaConfig,
    w: &[Vec<f64>; 9],
    t: &BlockTape,
    dx: Vec<f64>,
    n: usize,
    rope: &Rope,
    mut g: Option<&mut [ParamGrad]>,
) -> Vec<f64> {
    let (d, hd, ff) = (c.d_model, c.head_dim, c.d_ff);
    let (nh, nkv) = (c.n_heads, c.n_kv_heads);
    let (qd, kd) = (nh * hd, nkv * hd);
    let group = nh / nkv;
    let scale = 1.0 / (hd as f64).sqrt();
    // MLP: x2 = x1 + m·Wdᵀ, m = silu(gt) ⊙ u.
    let mut dm = vec![0.0; n * ff];
    mm_nn_into(&mut dm, &dx, &w[DOWN], n, d, ff);
    if let Some(g) = g.as_deref_mut() {
        mm_tn_into(&mut g[DOWN].grad, &dx, &t.m, n, d, ff);
    }
    let mut dgt = vec![0.0; n * ff];
    let mut du = vec![0.0; n * ff];
    for i in 0..n * ff {
        let z = t.gt[i];
        let sg = sigmoid(z);
        du[i] = dm[i] * z * sg;
        dgt[i] = dm[i] * t.u[i] * sg * (1.0 + z * (1.0 - sg));
    }
    let mut dh2 = vec![0.0; n * d];
    mm_nn_into(&mut dh2, &dgt, &w[GATE], n, ff, d);
    mm_nn_into(&mut dh2, &du, &w[UP], n, ff, d);
    if let Some(g) = g.as_deref_mut() {
        mm_tn_into(&mut g[GATE].grad, &dgt, &t.h2, n, ff, d);
        mm_tn_into(&mut g[UP].grad, &du, &t.h2, n, ff, d);
    }
    let mut dx1 = dx;
    rms_bwd(
        &dh2,
        &t.x1,
        &t.r2,
        &w[FFN_NORM],
        &mut dx1,
        g.as_deref_mut().map(|g| g[FFN_NORM].grad.as_mut_slice()),
    );
    // Attention: x1 = x + a·Woᵀ.
    let mut da = vec![0.0; n * qd];
    mm_nn_into(&mut da, &dx1, &w[WO], n, d, qd);
    if let Some(g) = g.as_deref_mut() {
        mm_tn_into(&mut g[WO].grad, &dx1, &t.a, n, d, qd);
    }
    // Per key/value head: its query heads' dq, and the summed dk, dv.
    let per_kv: Vec<KvGrads> = (0..nkv)
        .into_par_iter()
        .map(|kv| {
            let mut dk = vec![0.0; n * hd];
            let mut dv = vec![0.0; n * hd];
            let mut dqs = Vec::with_capacity(group);
            for hh in kv * group..(kv + 1) * group {
                let p = &t.p[hh * n * n..(hh + 1) * n * n];
                let mut dq = vec![0.0; n * hd];
                let mut dp = vec![0.0; n];
                for i in 0..n {
                    let doi = &da[i * qd + hh * hd..i * qd + (hh + 1) * hd];
                    let pr = &p[i * n..(i + 1) * n];
                    let mut dot = 0.0;
                    for j in 0..=i {
                        let vj = &t.v[j * kd + kv * hd..j * kd + (kv + 1) * hd];
                        dp[j] = doi.iter().zip(vj).map(|(a, b)| a * b).sum();
                        dot += dp[j] * pr[j];
                        for (dvt, dot_) in dv[j * hd..(j + 1) * hd].iter_mut().zip(doi) {
                            *dvt += pr[j] * dot_;
                        }
                    }
                    let qi = &t.q[i * qd + hh * hd..i * qd + (hh + 1) * hd];
                    for j in 0..=i {
                        let ds = pr[j] * (dp[j] - dot) * scale;
                        if ds == 0.0 {
                            continue;
                        }
                        let kj = &t.k[j * kd + kv * hd..j * kd + (kv + 1) * hd];
                        for x in 0..hd {
                            dq[i * hd + x] += ds * kj[x];
                            dk[j * hd + x] += ds * qi[x];
                        }
                    }
                }
                dqs.push((hh, dq));
            }
            (dqs, dk, dv)
        })
        .collect();
    let mut dq = vec![0.0; n * qd];
    let mut dk = vec![0.0; n * kd];
    let mut dv = vec![0.0; n * kd];
    for (kv, (dqs, dkh, dvh)) in per_kv.into_iter().enumerate() {
        for (hh, dqh) in dqs {
            for r in 0..n {
                dq[r * qd + hh * hd..r * qd + (hh + 1) * hd]
                    .copy_from_slice(&dqh[r * hd..(r + 1) * hd]);
            }
        }
        for r in 0..n {
            dk[r * kd + kv * hd..r * kd + (kv + 1) * hd]
                .copy_from_slice(&dkh[r * hd..(r + 1) * hd]);
            dv[r * kd + kv * hd..r * kd + (kv + 1) * hd]
                .copy_from_slice(&dvh[r * hd..(r + 1) * hd]);
        }
    }
    rope_apply(&mut dq, hd, rope, qd, true);
    rope_apply(&mut dk, hd, rope, kd, true);
    let mut dh = vec![0.0; n * d];
    mm_nn_into(&mut dh, &dq, &w[WQ], n, qd, d);
    mm_nn_into(&mut dh, &dk, &w[WK], n, kd, d);
    mm_nn_into(&mut dh, &dv, &w[WV], n, kd, d);
    if let Some(g) = g.as_deref_mut() {
        mm_tn_into(&mut g[WQ].grad, &dq, &t.h, n, qd, d);
        mm_tn_into(&mut g[WK].grad, &dk, &t.h, n, kd, d);
        mm_tn_into(&mut g[WV].grad, &dv, &t.h, n, kd, d);
    }
    let mut dxin = dx1;
    rms_bwd(
        &dh,
        &t.x,
        &t.r1,
        &w[ATTN_NORM],
        &mut dxin,
        g.map(|g| g[ATTN_NORM].grad.as_mut_slice()),
    );
    dxin
}

impl<'a> GradModel<'a> {
    /// Prepares `model` for gradients of the parameters `spec` names.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if a block index is out of range or `spec` tracks nothing.
    pub fn new(model: &'a LlamaModel, spec: &GradSpec) -> Result<Self> {
        Self::build(model, spec, false)
    }

    /// As [`GradModel::new`], but the output projection (the logits, and the gradient flowing
    /// back through it into the final hidden state) runs in f32 on the model's own weights
    /// instead of an f64 copy; everything else stays f64. It is the costliest product of a
    /// gradient for a model with a large vocabulary and a few tracked blocks (SmolLM2: 28M of the
    /// 32M parameters on the path of its last block), and f32 halves its time and saves the f64
    /// copy (`8·vocab·d_model` bytes).
    ///
    /// # Accuracy
    /// The logits and `∂L/∂h_final` carry f32 rounding (about 1e-6 relative, as the runtime's
    /// forward pass), so the gradient is that of a loss within about 1e-6 of the f64 one, and
    /// agrees with [`GradModel::new`]'s to about 1e-5 relative.
    ///
    /// # Errors
    /// As [`GradModel::new`].
    pub fn new_f32_head(model: &'a LlamaModel, spec: &GradSpec) -> Result<Self> {
        Self::build(model, spec, true)
    }

    fn build(model: &'a LlamaModel, spec: &GradSpec, head_f32: bool) -> Result<Self> {
        let c = model.config();
        let mut spec = spec.clone();
        spec.blocks.sort_unstable();
        spec.blocks.dedup();
        if let Some(&b) = spec.blocks.iter().find(|&&b| b >= c.n_layers) {
            return Err(Error::invalid(
                "blocks",
                b,
                &format!("the model has {} blocks", c.n_layers),
            ));
        }
        if spec.blocks.is_empty() && !spec.output_norm && !spec.embedding {
            return Err(Error::invalid(
                "spec",
                "{}",
                "no parameter to differentiate",
            ));
        }
        let start = if spec.embedding {
            0
        } else {
            spec.blocks.first().copied().unwrap_or(c.n_layers)
        };
        let get = |name: &str| -> Result<Vec<f64>> {
            model
                .param(name)
                .map(|(_, v)| widen(v))
                .ok_or_else(|| Error::UnsupportedModel {
                    reason: format!("tensor {name} not loaded"),
                })
        };
        let mut blocks = Vec::with_capacity(c.n_layers - start);
        for l in start..c.n_layers {
            let mut w: [Vec<f64>; 9] = Default::default();
            for (slot, t) in w.iter_mut().zip(BLOCK_TENSORS) {
                *slot = get(&format!("blk.{l}.{t}.weight"))?;
            }
            blocks.push(BlockW {
                layer: l,
                tracked: spec.blocks.binary_search(&l).is_ok(),
                w,
            });
        }
        let tied = model.param("output.weight").is_none();
        let head_name = if tied {
            "token_embd.weight"
        } else {
            "output.weight"
        };
        let (lm_head, head_f32) = if head_f32 {
            let (_, w) = model
                .param(head_name)
                .ok_or_else(|| Error::UnsupportedModel {
                    reason: format!("tensor {head_name} not loaded"),
                })?;
            (Vec::new(), Some(w))
        } else {
            (get(head_name)?, None)
        };
        Ok(GradModel {
            model,
            spec,
            start,
            blocks,
            out_norm: get("output_norm.weight")?,
            lm_head,
            head_f32,
        })
    }

    fn tied(&self) -> bool {
        self.model.param("output.weight").is_none()
    }

    /// The residual stream entering block `start`, `[n, d]`.
    fn input(&self, tokens: &[u32]) -> Result<Vec<f64>> {
        let d = self.model.config().d_model;
        if self.start == 0 {
            let (_, emb) =
                self.model
                    .param("token_embd.weight")
                    .ok_or_else(|| Error::UnsupportedModel {
                        reason: "token_embd.weight not loaded".into(),
                    })?;
            let mut x = Vec::with_capacity(tokens.len() * d);
            for &t in tokens {
                let t = t as usize;
                x.extend(emb[t * d..(t + 1) * d].iter().map(|&v| f64::from(v)));
            }
            return Ok(x);
        }
        let cap = Capture {
            residual: true,
            layers: Some(vec![self.start - 1]),
            ..Capture::default()
        };
        let (_, captures) = self.model.hidden(tokens, &cap, &Overrides::new())?;
        let res = captures
            .layers
            .iter()
            .find(|l| l.layer == self.start - 1)
            .and_then(|l| l.residual.as_ref())
            .ok_or_else(|| Error::UnsupportedModel {
                reason: "residual capture missing".into(),
            })?;
        Ok(widen(res))
    }

    fn forward(&self, tokens: &[u32]) -> Result<Tape> {
        self.model.check_tokens(tokens)?;
        let c = self.model.config();
        let n = tokens.len();
        let rope = rope_table(n, c.head_dim, c.rope_theta);
        let mut x = self.input(tokens)?;
        let mut tapes = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (t, x2) = block_fwd(c, &b.w, x, n, &rope);
            tapes.push(t);
            x = x2;
        }
        let (hf, rf) = rms_fwd(&x, &self.out_norm, c.norm_eps);
        Ok(Tape {
            n,
            blocks: tapes,
            x_last: x,
            rf,
            hf,
        })
    }

    /// Empty gradient buffers in the documented order.
    fn zero_grads(&self) -> Vec<ParamGrad> {
        let mut out = Vec::new();
        for b in self.blocks.iter().filter(|b| b.tracked) {
            for t in BLOCK_TENSORS {
                let name = format!("blk.{}.{t}.weight", b.layer);
                let shape = self
                    .model
                    .param(&name)
                    .map(|(s, _)| s.to_vec())
                    .unwrap_or_default();
                out.push(ParamGrad {
                    grad: vec![0.0; shape.iter().product()],
                    shape,
                    name,
                });
            }
        }
        let mut push = |name: &str| {
            let shape = self
                .model
                .param(name)
                .map(|(s, _)| s.to_vec())
                .unwrap_or_default();
            out.push(ParamGrad {
                grad: vec![0.0; shape.iter().product()],
                shape,
                name: name.to_string(),
            });
        };
        if self.spec.output_norm {
            push("output_norm.weight");
        }
        if self.spec.embedding {
            push("token_embd.weight");
            if !self.tied() {
                push("output.weight");
            }
        }
        out
    }

    /// Back-propagates `dlogits` (`[rows.len(), vocab]`, the loss gradient at the scored rows)
    /// through the tape into `grads` (from [`Self::zero_grads`]).
    fn backward(
        &self,
        tape: &Tape,
        tokens: &[u32],
        rows: &[usize],
        dlogits: &[f64],
        grads: &mut [ParamGrad],
    ) {
        let c = self.model.config();
        let n = tape.n;
        let (d, vocab) = (c.d_model, c.vocab_size);
        let s = rows.len();
        let n_block_grads = 9 * self.blocks.iter().filter(|b| b.tracked).count();
        let (block_grads, rest) = grads.split_at_mut(n_block_grads);
        let mut rest = rest.iter_mut();
        let dnorm = if self.spec.output_norm {
            rest.next()
        } else {
            None
        };
        let (mut demb, dout) = if self.spec.embedding {
            let e = rest.next();
            let o = if self.tied() { None } else { rest.next() };
            (e, o)
        } else {
            (None, None)
        };

        // Output projection: logits_r = hf_r · Eᵀ, so dhf_r = dlogits_r · E and dE += dlogitsᵀ hf.
        let mut dhf_rows = vec![0.0; s * d];
        if let Some(e) = self.head_f32 {
            let dl: Vec<f32> = dlogits.par_iter().map(|&v| v as f32).collect();
            let mut out = vec![0.0f32; s * d];
            if s * d * vocab > 0 {
                matmul(
                    MatMut::from_row_major_slice_mut(&mut out, s, d),
                    Accum::Replace,
                    MatRef::from_row_major_slice(&dl, s, vocab),
                    MatRef::from_row_major_slice(e, vocab, d),
                    1.0f32,
                    Par::rayon(0),
                );
            }
            for (o, v) in dhf_rows.iter_mut().zip(out) {
                *o = f64::from(v);
            }
        } else {
            mm_nn_into(&mut dhf_rows, dlogits, &self.lm_head, s, vocab, d);
        }
        let head = if self.tied() {
            demb.as_deref_mut()
        } else {
            dout
        };
        if let Some(g) = head {
            let hf_rows: Vec<f64> = rows
                .iter()
                .flat_map(|&r| tape.hf[r * d..(r + 1) * d].iter().copied())
                .collect();
            mm_tn_into(&mut g.grad, dlogits, &hf_rows, s, vocab, d);
        }
        let mut dhf = vec![0.0; n * d];
        for (i, &r) in rows.iter().enumerate() {
            dhf[r * d..(r + 1) * d].copy_from_slice(&dhf_rows[i * d..(i + 1) * d]);
        }
        let mut dx = vec![0.0; n * d];
        rms_bwd(
            &dhf,
            &tape.x_last,
            &tape.rf,
            &self.out_norm,
            &mut dx,
            dnorm.map(|g| g.grad.as_mut_slice()),
        );

        let rope = rope_table(n, c.head_dim, c.rope_theta);
        let mut bg = block_grads.chunks_exact_mut(9).rev();
        for (b, t) in self.blocks.iter().zip(&tape.blocks).rev() {
            let g = if b.tracked { bg.next() } else { None };
            dx = block_bwd(c, &b.w, t, dx, n, &rope, g);
        }
        // Input embedding: x_0[t] = E[tokens[t]].
        if let Some(g) = demb {
            for (t, &tok) in tokens.iter().enumerate() {
                let row = &mut g.grad[tok as usize * d..(tok as usize + 1) * d];
                for (a, b) in row.iter_mut().zip(&dx[t * d..(t + 1) * d]) {
                    *a += b;
                }
            }
        }
    }

    /// Logits `[rows.len(), vocab]` of the given rows of the final hidden states.
    fn logits(&self, tape: &Tape, rows: &[usize]) -> Vec<f64> {
        let c = self.model.config();
        let d = c.d_model;
        let hf_rows: Vec<f64> = rows
            .iter()
            .flat_map(|&r| tape.hf[r * d..(r + 1) * d].iter().copied())
            .collect();
        let (s, vocab) = (rows.len(), c.vocab_size);
        let Some(e) = self.head_f32 else {
            return mm_nt(&hf_rows, &self.lm_head, s, d, vocab);
        };
        let h: Vec<f32> = hf_rows.iter().map(|&v| v as f32).collect();
        let mut y = vec![0.0f32; s * vocab];
        if s * d * vocab > 0 {
            matmul(
                MatMut::from_row_major_slice_mut(&mut y, s, vocab),
                Accum::Replace,
                MatRef::from_row_major_slice(&h, s, d),
                MatRef::from_column_major_slice(e, d, vocab),
                1.0f32,
                Par::rayon(0),
            );
        }
        y.par_iter().map(|&v| f64::from(v)).collect()
    }

    /// Mean next-token negative log-likelihood of `tokens` and its exact gradient with respect to
    /// the parameters of the [`GradSpec`]:
    ///
    /// ```text
    /// L = (1/|S|) Σ_{t ∈ S} −log softmax(logits_t)[y_t]
    /// ```
    ///
    /// With `targets = None`, `S = 0..n−1` and `y_t = tokens[t + 1]` (the usual language-model
    /// loss). With `targets = Some(ys)`, `ys.len() == n`, `S = 0..n` and `y_t = ys[t]` (e.g. labels
    /// sampled from the model, for the Fisher information).
    ///
    /// # Accuracy
    /// Everything from the first tracked block on is computed in f64 (weights widened from their
    /// f32 storage), so the gradient is that of the f64 loss to about 1e-12 relative; that loss
    /// differs from the runtime's f32 forward pass by the f32 rounding of the latter (about 1e-6
    /// relative on SmolLM2). Blocks below the tracked part run in f32.
    ///
    /// # Errors
    /// [`Error::Empty`] for no token or nothing to score (one token and no targets),
    /// [`Error::ShapeMismatch`] for targets of the wrong length, [`Error::TokenOutOfRange`] for a
    /// token or target outside the vocabulary, [`Error::TooLong`], and
    /// [`Error::NonFinite`] if the loss is not finite.
    ///
    /// # Complexity
    /// One f32 forward pass below the tracked part, then about three times the f64 cost of the
    /// forward pass over the tracked part (`2·n·P` flops each, `P` its parameters including the
    /// output projection); memory as documented on [`GradModel`].
    pub fn loss_gradient(&self, tokens: &[u32], targets: Option<&[u32]>) -> Result<LossGradient> {
        let (rows, ys) = self.scored(tokens, targets)?;
        let tape = self.forward(tokens)?;
        let logits = self.logits(&tape, &rows);
        let vocab = self.model.config().vocab_size;
        let wgt = 1.0 / rows.len() as f64;
        let mut dlogits = vec![0.0; logits.len()];
        let mut per = Vec::with_capacity(rows.len());
        for (i, &y) in ys.iter().enumerate() {
            let row = &logits[i * vocab..(i + 1) * vocab];
            let (nll, dl) = nll_grad(row, y as usize);
            per.push(nll);
            for (o, g) in dlogits[i * vocab..(i + 1) * vocab].iter_mut().zip(dl) {
                *o = g * wgt;
            }
        }
        let mean = per.iter().sum::<f64>() * wgt;
        if !mean.is_finite() {
            return Err(Error::NonFinite {
                what: "loss",
                count: per.iter().filter(|v| !v.is_finite()).count(),
                first_index: per.iter().position(|v| !v.is_finite()).unwrap_or(0),
            });
        }
        let mut grads = self.zero_grads();
        self.backward(&tape, tokens, &rows, &dlogits, &mut grads);
        Ok(LossGradient {
            mean_nll: mean,
            positions: rows,
            targets: ys,
            per_token_nll: per,
            grads,
        })
    }

    /// Exact per-block Fisher trace for given labels:
    ///
    /// ```text
    /// tr(F_l) = (1/n) Σ_t ‖∇_{θ_l} log p(y_t | tokens[..=t])‖²
    /// ```
    ///
    /// for every tracked block `l` (one backward pass per position over one stored forward
    /// pass). With `ys` the labels [`crate::fisher_trace`] sampled, this is the quantity its
    /// Hutchinson estimate targets.
    ///
    /// # Returns
    /// `(layer, trace)` for each tracked block, in order.
    ///
    /// # Errors
    /// As [`GradModel::loss_gradient`] with `targets = Some(ys)`.
    ///
    /// # Complexity
    /// One forward and `n` backward passes over the tracked part.
    pub fn fisher_trace_exact(&self, tokens: &[u32], ys: &[u32]) -> Result<Vec<(usize, f64)>> {
        let (rows, ys) = self.scored(tokens, Some(ys))?;
        let tape = self.forward(tokens)?;
        let logits = self.logits(&tape, &rows);
        let vocab = self.model.config().vocab_size;
        let tracked: Vec<usize> = self
            .blocks
            .iter()
            .filter(|b| b.tracked)
            .map(|b| b.layer)
            .collect();
        let mut sums = vec![0.0; tracked.len()];
        for (i, &r) in rows.iter().enumerate() {
            let (_, dl) = nll_grad(&logits[i * vocab..(i + 1) * vocab], ys[i] as usize);
            let mut grads = self.zero_grads();
            self.backward(&tape, tokens, &[r], &dl, &mut grads);
            for (k, chunk) in grads.chunks(9).take(tracked.len()).enumerate() {
                sums[k] += chunk
                    .iter()
                    .flat_map(|g| g.grad.iter())
                    .map(|x| x * x)
                    .sum::<f64>();
            }
        }
        let nf = rows.len() as f64;
        Ok(tracked
            .into_iter()
            .zip(sums)
            .map(|(l, s)| (l, s / nf))
            .collect())
    }

    /// Mean NLL of the f64 forward pass (the loss [`GradModel::loss_gradient`] differentiates),
    /// without the backward pass.
    ///
    /// # Errors
    /// As [`GradModel::loss_gradient`].
    pub fn loss(&self, tokens: &[u32], targets: Option<&[u32]>) -> Result<f64> {
        let (rows, ys) = self.scored(tokens, targets)?;
        let tape = self.forward(tokens)?;
        let logits = self.logits(&tape, &rows);
        let vocab = self.model.config().vocab_size;
        let total: f64 = ys
            .iter()
            .enumerate()
            .map(|(i, &y)| nll_grad(&logits[i * vocab..(i + 1) * vocab], y as usize).0)
            .sum();
        Ok(total / rows.len() as f64)
    }

    fn scored(&self, tokens: &[u32], targets: Option<&[u32]>) -> Result<(Vec<usize>, Vec<u32>)> {
        self.model.check_tokens(tokens)?;
        let n = tokens.len();
        let vocab = self.model.config().vocab_size;
        let (rows, ys): (Vec<usize>, Vec<u32>) = match targets {
            None => {
                if n < 2 {
                    return Err(Error::Empty {
                        what: "scored positions (need at least 2 tokens)",
                    });
                }
                ((0..n - 1).collect(), tokens[1..].to_vec())
            }
            Some(ys) => {
                if ys.len() != n {
                    return Err(Error::ShapeMismatch {
                        tensor: "targets".into(),
                        shape: vec![n],
                        expected: n,
                        actual: ys.len(),
                    });
                }
                if let Some((index, &token)) =
                    ys.iter().enumerate().find(|(_, &y)| y as usize >= vocab)
                {
                    return Err(Error::TokenOutOfRange {
                        index,
                        token,
                        vocab_size: vocab,
                    });
                }
                ((0..n).collect(), ys.to_vec())
            }
        };
        Ok((rows, ys))
    }
}

/// [`GradModel::new`] then [`GradModel::loss_gradient`], for a single call.
///
/// # Errors
/// As those two.
pub fn loss_gradient(
    model: &LlamaModel,
    tokens: &[u32],
    targets: Option<&[u32]>,
    spec: &GradSpec,
) -> Result<LossGradient> {
    GradModel::new(model, spec)?.loss_gradient(tokens, targets)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn silu(z: f64) -> f64 {
    z * sigmoid(z)
}

/// `exp(x)` for `x ≤ 0` (what a softmax shifted by its maximum needs), to about 3e-16
/// relative for `x ≥ −708` and 0 below, where `exp(x) < 4e-308` is below any softmax sum's
/// rounding. Range reduction `x = k·ln 2 + r`, `|r| ≤ ln2/2`, then the degree-13 Taylor
/// polynomial of `exp(r)` (truncation `< 1e-17` relative) and `2^k` built from its bits.
///
/// Written out instead of `f64::exp` because it is branch-free and needs no libm call: on
/// AVX-512 machines glibc's `exp` slows down about 30× right after faer's AVX-512 kernels
/// (dirty upper register state), which made the softmax over a 49k vocabulary cost as much as
/// the products around it.
fn exp_nonpos(x: f64) -> f64 {
    /// 1.5·2⁵²: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    /// `1/j!` for `j = 13, 12, …, 0`.
    const INV_FACT: [f64; 14] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    if x < -708.0 {
        return 0.0;
    }
    let t = x * std::f64::consts::LOG2_E + SHIFTER;
    let k = t - SHIFTER;
    // The integer k sits in the low bits of t (two's complement relative to the shifter).
    let k_bits = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = INV_FACT[0];
    for c in &INV_FACT[1..] {
        p = p * r + c;
    }
    p * f64::from_bits(k_bits.wrapping_add(1023) << 52)
}

/// `(−log softmax(row)[y], softmax(row) − e_y)` in f64.
pub(crate) fn nll_grad(row: &[f64], y: usize) -> (f64, Vec<f64>) {
    let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut p: Vec<f64> = row.iter().map(|v| exp_nonpos(v - mx)).collect();
    let z: f64 = p.iter().sum();
    for v in &mut p {
        *v /= z;
    }
    let nll = mx + z.ln() - row[y];
    p[y] -= 1.0;
    (nll, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `exp_nonpos` against libm on a dense grid of `[−745, 0]`: relative error within a few
    /// ulps where `exp(x)` is a normal number, and 0 (or less than 4e-308) below −708.
    #[test]
    fn exp_nonpos_matches_libm() {
        let mut worst = 0.0f64;
        for i in 0..=745_000 {
            let x = -f64::from(i) * 1e-3 - 3.7e-7 * f64::from(i % 7);
            let (want, got) = (x.exp(), exp_nonpos(x));
            if x >= -708.0 {
                worst = worst.max(((got - want) / want).abs());
            } else {
                assert!(got < 4e-308 && want < 4e-308, "x {x}: {got} vs {want}");
            }
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert!((exp_nonpos(0.0) - 1.0).abs() < 1e-16);
        assert!((exp_nonpos(-0.0) - 1.0).abs() < 1e-16);
        assert!(exp_nonpos(f64::NEG_INFINITY) < f64::MIN_POSITIVE);
        assert!(exp_nonpos(f64::NAN).is_nan());
    }

    #[test]
    fn nll_grad_is_softmax_minus_onehot() {
        let row = [2.0, -1.0, 0.5, -30.0];
        let z: f64 = row.iter().map(|v: &f64| v.exp()).sum();
        let (nll, g) = nll_grad(&row, 2);
        assert!((nll - (z.ln() - 0.5)).abs() < 1e-14);
        for (j, (gj, v)) in g.iter().zip(row).enumerate() {
            let want = v.exp() / z - if j == 2 { 1.0 } else { 0.0 };
            assert!((gj - want).abs() < 1e-15, "{j}: {gj} vs {want}");
        }
    }
}
