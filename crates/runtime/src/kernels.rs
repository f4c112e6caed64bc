//! Dense kernels shared by both architectures: matrix products through faer, norms, activations,
//! rotary embeddings and multi-head attention. All activations are f32 (storage precision of the
//! checkpoints); reductions over a row (norm statistics, softmax sums) accumulate in f64.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// `y = x · wᵀ` with `x` of shape `[n, k]` and `w` of shape `[m, k]` (PyTorch linear layout), both
/// row-major; returns `[n, m]` row-major. Runs on the global rayon pool: through faer, except a
/// single row (`n = 1`, decoding), which goes through the bandwidth-bound kernel of
/// [`crate::matvec`].
pub(crate) fn matmul_nt(x: &[f32], w: &[f32], n: usize, k: usize, m: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * k, "matmul_nt: x has the wrong length");
    assert_eq!(w.len(), m * k, "matmul_nt: w has the wrong length");
    if n == 1 && k > 0 {
        return crate::matvec::matvec_stacked(x, &[w]);
    }
    matmul_nt_faer(x, w, n, k, m)
}

/// [`matmul_nt`] of the same `x` by several matrices `ws[i]` (`[m_i, k]`, `m_i = len/k`), one
/// result per matrix. A single row (`n = 1`) reads all the matrices in one parallel pass.
pub(crate) fn matmul_nt_many<const N: usize>(
    x: &[f32],
    ws: [&[f32]; N],
    n: usize,
    k: usize,
) -> [Vec<f32>; N] {
    assert!(k > 0, "matmul_nt_many: k must be positive");
    if n == 1 {
        assert_eq!(x.len(), k, "matmul_nt_many: x has the wrong length");
        let mut all = crate::matvec::matvec_stacked(x, &ws);
        // Split the stacked result from the back, so that the first matrix keeps the buffer.
        let mut parts: [Vec<f32>; N] = std::array::from_fn(|_| Vec::new());
        for (part, w) in parts.iter_mut().zip(ws).rev() {
            *part = all.split_off(all.len() - w.len() / k);
        }
        return parts;
    }
    ws.map(|w| matmul_nt(x, w, n, k, w.len() / k))
}

/// [`matmul_nt`] through faer for every `n` (also the reference for the decoding kernel's tests).
pub(crate) fn matmul_nt_faer(x: &[f32], w: &[f32], n: usize, k: usize, m: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * k, "matmul_nt: x has the wrong length");
    assert_eq!(w.len(), m * k, "matmul_nt: w has the wrong length");
    let mut y = vec![0.0f32; n * m];
    if n == 0 || m == 0 {
        return y;
    }
    if k == 0 {
        return y;
    }
    let a = MatRef::from_row_major_slice(x, n, k);
    let b = MatRef::from_column_major_slice(w, k, m);
    let c = MatMut::from_row_major_slice_mut(&mut y, n, m);
    matmul(c, Accum::Replace, a, b, 1.0f32, Par::rayon(0));
    y
}

/// Adds `bias` (length `m`) to every row of the `[n, m]` matrix `y`.
pub(crate) fn add_bias(y: &mut [f32], bias: &[f32]) {
    let m = bias.len();
    for row in y.chunks_exact_mut(m) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// Adds `b` into `a` element-wise (the residual connection).
pub(crate) fn add_into(a: &mut [f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "add_into: lengths differ");
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// RMSNorm over rows of width `d`: `y = x / sqrt(mean(x²) + eps) ⊙ w`.
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
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

/// LayerNorm over rows of width `d` (biased variance, as PyTorch): `y = (x − μ)/sqrt(σ² + eps) ⊙ w + b`.
pub(crate) fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f64) -> Vec<f32> {
    let d = w.len();
    let mut y = vec![0.0f32; x.len()];
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let mean = xr.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
        let var = xr
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / d as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, &v), &g), &bb) in yr.iter_mut().zip(xr).zip(w).zip(b) {
            *o = ((f64::from(v) - mean) * inv) as f32 * g + bb;
        }
    }
    y
}

/// Below this, `exp` underflows in f32; glibc's `expf` then takes a slow path, so such arguments
/// are mapped to 0 directly (the result differs from the exact one by less than 1e-35).
const EXP_UNDERFLOW_F32: f32 = -87.0;

/// Softmax terms with `x − max < SOFTMAX_CUTOFF` are set to 0: `e^−40 ≈ 4e−18` is below f32
/// resolution next to the maximum's term 1, and skipping them keeps tiny values (and the denormals
/// they turn into after normalisation, which are slow on x86) out of the attention matrix.
const SOFTMAX_CUTOFF: f32 = -40.0;

/// `e^x` in f32 by range reduction `x = k·ln2 + r`, |r| ≤ ln2/2, and a degree-7 Taylor polynomial
/// (relative error below 3e−7, about 2.5 ulp). Returns 0 below −87 (true value < 1.7e−38) and
/// ∞ above 88 (callers here only need the negative range). Written out instead of calling libm's `expf`
/// because, right after faer's AVX-512 kernels ran on a thread, calls into glibc's VEX-encoded
/// `expf` from this crate's SSE code cost ~250 ns each on the test machine (an SSE/AVX state
/// transition per call), which made attention softmax 20× slower than the matrix products.
pub(crate) fn exp_f32(x: f32) -> f32 {
    if x < EXP_UNDERFLOW_F32 {
        return 0.0;
    }
    if x > 88.0 {
        return f32::INFINITY;
    }
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let k = (x * std::f32::consts::LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // k is in [−126, 127] here, so 2^k is a normal f32.
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    p * scale
}

/// `x·σ(x)`, the SiLU (swish) activation.
pub(crate) fn silu(x: f32) -> f32 {
    if x < EXP_UNDERFLOW_F32 {
        // σ(x) = e^x/(1 + e^x) < 1e-37: x·σ(x) is zero in f32 up to a denormal.
        return 0.0;
    }
    x / (1.0 + exp_f32(-x))
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7 plus the 3e-7
/// relative error of [`exp_f32`] in the Gaussian factor), polynomial in f64.
pub(crate) fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let gauss = f64::from(exp_f32((-x * x).max(-100.0) as f32));
    sign * (1.0 - poly * gauss)
}

/// GELU in its exact (erf) form, as BERT and `torch.nn.functional.gelu`: `x·(1 + erf(x/√2))/2`.
pub(crate) fn gelu(x: f32) -> f32 {
    let xd = f64::from(x);
    (0.5 * xd * (1.0 + erf(xd / std::f64::consts::SQRT_2))) as f32
}

/// Numerically stable softmax of `row[..len]` in place; entries from `len` on are set to zero.
pub(crate) fn softmax_prefix(row: &mut [f32], len: usize) {
    let max = row[..len]
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let mut sum = 0.0f64;
    for v in &mut row[..len] {
        let z = *v - max;
        let e = if z < SOFTMAX_CUTOFF { 0.0 } else { exp_f32(z) };
        *v = e;
        sum += f64::from(e);
    }
    let inv = (1.0 / sum) as f32;
    for v in &mut row[..len] {
        *v *= inv;
    }
    for v in &mut row[len..] {
        *v = 0.0;
    }
}

/// How rotary position embeddings pair the coordinates of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RopeLayout {
    /// Pairs (2i, 2i+1): llama.cpp's "normal" mode, used on GGUF files whose Q/K rows were permuted
    /// by the converter.
    Interleaved,
    #[cfg_attr(not(test), allow(dead_code))]
    /// Pairs (i, i + d/2): Hugging Face's `rotate_half` on unpermuted weights.
    HalfSplit,
}

/// cos and sin of the RoPE angles `t·θ_i`, `θ_i = base^(−2i/head_dim)`, for t < n and
/// i < head_dim/2 (computed in f64, stored row-major `[n, head_dim/2]`).
#[derive(Clone, Debug)]
pub(crate) struct RopeTable {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// The table for positions `start..start + n` (row `t` holds position `start + t`).
    pub(crate) fn positions(start: usize, n: usize, head_dim: usize, base: f64) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for t in start..start + n {
            for i in 0..half {
                let a = t as f64 * base.powf(-2.0 * i as f64 / head_dim as f64);
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        RopeTable { half, cos, sin }
    }
}

/// Applies RoPE in place to `x` of shape `[n, n_heads · head_dim]`, position of row t = t.
pub(crate) fn rope(x: &mut [f32], n_heads: usize, table: &RopeTable, layout: RopeLayout) {
    let half = table.half;
    let head_dim = 2 * half;
    let width = n_heads * head_dim;
    for (t, row) in x.chunks_exact_mut(width).enumerate() {
        let cs = &table.cos[t * half..(t + 1) * half];
        let sn = &table.sin[t * half..(t + 1) * half];
        for head in row.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (c, s) = (cs[i], sn[i]);
                let (ia, ib) = match layout {
                    RopeLayout::Interleaved => (2 * i, 2 * i + 1),
                    RopeLayout::HalfSplit => (i, i + half),
                };
                let (a, b) = (head[ia], head[ib]);
                head[ia] = a * c - b * s;
                head[ib] = a * s + b * c;
            }
        }
    }
}

/// Shape of one multi-head attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttnShape {
    pub(crate) n: usize,
    pub(crate) n_heads: usize,
    pub(crate) n_kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) causal: bool,
}

/// Scaled dot-product attention with grouped key/value heads.
///
/// `q` is `[n, n_heads·head_dim]`, `k` and `v` are `[n, n_kv_heads·head_dim]`; query head h reads
/// key/value head `h / (n_heads / n_kv_heads)`. Returns the concatenated head outputs
/// `[n, n_heads·head_dim]` and, when `keep_probs`, the probabilities `[n_heads, n, n]`
/// (row = query, column = key; zero above the diagonal when causal).
pub(crate) fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: AttnShape,
    keep_probs: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    attention_at(q, k, v, s, s.n, 0, keep_probs)
}

/// [`attention`] for `s.n` new queries at positions `offset..offset + s.n` against `n_keys` keys at
/// positions `0..n_keys` (the cached ones first): `k` and `v` are `[n_keys, n_kv_heads·head_dim]`.
/// Under a causal mask query `i` sees keys `0..=offset + i`. Probabilities are `[n_heads, n, n_keys]`.
pub(crate) fn attention_at(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: AttnShape,
    n_keys: usize,
    offset: usize,
    keep_probs: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let AttnShape {
        n,
        n_heads,
        n_kv_heads,
        head_dim: hd,
        causal,
    } = s;
    debug_assert!(offset + n <= n_keys || !causal);
    if n == 1 && n_heads * n_keys * hd <= SINGLE_QUERY_SEQUENTIAL {
        return attention_one(q, k, v, s, n_keys, offset, keep_probs);
    }
    let qs = n_heads * hd;
    let ks = n_kv_heads * hd;
    let group = n_heads / n_kv_heads;
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    let per_head: Vec<(Vec<f32>, Vec<f32>)> = (0..n_heads)
        .into_par_iter()
        .map(|h| {
            let kvh = h / group;
            let qh = MatRef::from_row_major_slice_with_stride(&q[h * hd..], n, hd, qs);
            let kt = MatRef::from_column_major_slice_with_stride(&k[kvh * hd..], hd, n_keys, ks);
            let vh = MatRef::from_row_major_slice_with_stride(&v[kvh * hd..], n_keys, hd, ks);
            let mut p = vec![0.0f32; n * n_keys];
            matmul(
                MatMut::from_row_major_slice_mut(&mut p, n, n_keys),
                Accum::Replace,
                qh,
                kt,
                scale,
                Par::Seq,
            );
            for (i, row) in p.chunks_exact_mut(n_keys).enumerate() {
                let len = if causal { offset + i + 1 } else { n_keys };
                softmax_prefix(row, len);
            }
            let mut o = vec![0.0f32; n * hd];
            matmul(
                MatMut::from_row_major_slice_mut(&mut o, n, hd),
                Accum::Replace,
                MatRef::from_row_major_slice(&p, n, n_keys),
                vh,
                1.0f32,
                Par::Seq,
            );
            (o, p)
        })
        .collect();
    let mut out = vec![0.0f32; n * qs];
    for (h, (o, _)) in per_head.iter().enumerate() {
        for t in 0..n {
            out[t * qs + h * hd..t * qs + (h + 1) * hd].copy_from_slice(&o[t * hd..(t + 1) * hd]);
        }
    }
    let probs = keep_probs.then(|| {
        let mut all = Vec::with_capacity(n_heads * n * n_keys);
        for (_, p) in &per_head {
            all.extend_from_slice(p);
        }
        all
    });
    (out, probs)
}

/// Largest `n_heads·n_keys·head_dim` for which one query's attention runs on the calling thread:
/// below it (about a thousand cached tokens for SmolLM2) a parallel dispatch and faer's per-call
/// set-up cost more than the ~2 flops per element of work.
const SINGLE_QUERY_SEQUENTIAL: usize = 1 << 19;

/// Dot product of two equal-length slices with 8 partial sums (vectorised by the compiler).
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// [`attention_at`] for one query (`s.n == 1`, decoding) on the calling thread, with plain loops:
/// the same scores, softmax ([`softmax_prefix`]) and weighted sum as the general path, without its
/// per-head dispatch.
fn attention_one(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: AttnShape,
    n_keys: usize,
    offset: usize,
    keep_probs: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let hd = s.head_dim;
    let ks = s.n_kv_heads * hd;
    let group = s.n_heads / s.n_kv_heads;
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    let len = if s.causal { offset + 1 } else { n_keys };
    let mut out = vec![0.0f32; s.n_heads * hd];
    let mut probs = vec![0.0f32; s.n_heads * n_keys];
    for ((h, oh), p) in out
        .chunks_exact_mut(hd)
        .enumerate()
        .zip(probs.chunks_exact_mut(n_keys))
    {
        let kvh = h / group;
        let qh = &q[h * hd..(h + 1) * hd];
        for (j, pj) in p[..len].iter_mut().enumerate() {
            *pj = scale * dot8(qh, &k[j * ks + kvh * hd..j * ks + (kvh + 1) * hd]);
        }
        softmax_prefix(p, len);
        for (j, &pj) in p[..len].iter().enumerate() {
            let vj = &v[j * ks + kvh * hd..j * ks + (kvh + 1) * hd];
            for (o, &x) in oh.iter_mut().zip(vj) {
                *o += pj * x;
            }
        }
    }
    (out, keep_probs.then_some(probs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    fn naive_nt(x: &[f32], w: &[f32], n: usize, k: usize, m: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; n * m];
        for i in 0..n {
            for j in 0..m {
                y[i * m + j] = (0..k)
                    .map(|t| f64::from(x[i * k + t]) * f64::from(w[j * k + t]))
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    fn randv(rng: &mut impl claimlab_testkit::rand::Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
    }

    #[test]
    fn matmul_matches_naive() {
        let mut rng = claimlab_testkit::rng(1);
        for &(n, k, m) in &[(1, 7, 5), (13, 33, 17), (64, 96, 40), (3, 1, 2)] {
            let x = randv(&mut rng, n * k);
            let w = randv(&mut rng, m * k);
            let got = matmul_nt(&x, &w, n, k, m);
            let want = naive_nt(&x, &w, n, k, m);
            let got: Vec<f64> = got.iter().map(|&v| f64::from(v)).collect();
            let want: Vec<f64> = want.iter().map(|&v| f64::from(v)).collect();
            claimlab_testkit::assert_slice_close(&got, &want, 1e-4, 1e-5);
        }
    }

    #[test]
    fn erf_known_values() {
        // erf values from the DLMF tables (7.23 / Abramowitz & Stegun table 7.1).
        for &(x, want) in &[
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            assert!((erf(x) - want).abs() < 5e-7, "erf({x})");
        }
    }

    #[test]
    fn exp_f32_matches_f64_exp() {
        let mut worst = 0.0f64;
        for i in -86_999..=87_999 {
            let x = i as f32 * 1e-3;
            let want = f64::from(x).exp();
            let got = f64::from(exp_f32(x));
            let e = ((got - want) / want).abs();
            assert!(e < 5e-7, "exp_f32({x}) = {got}, exp = {want}");
            worst = worst.max(e);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp_f32(-100.0).abs() < f32::MIN_POSITIVE);
        assert!(exp_f32(100.0).is_infinite());
    }

    #[test]
    fn softmax_rows_sum_to_one_and_mask() {
        let mut row = vec![1.0f32, 2.0, 3.0, 100.0];
        softmax_prefix(&mut row, 3);
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!(row[3].abs() < f32::MIN_POSITIVE);
        assert!(row[2] > row[1] && row[1] > row[0]);
    }

    /// Interleaved RoPE on permuted rows equals half-split RoPE on the unpermuted rows (the
    /// llama.cpp converter's permutation: within a head, new row 2i ← old i, 2i+1 ← old i + d/2).
    #[test]
    fn rope_layouts_agree_under_permutation() {
        let mut rng = claimlab_testkit::rng(2);
        let (n, heads, hd) = (5, 2, 8);
        let x = randv(&mut rng, n * heads * hd);
        let perm = |src: &[f32]| -> Vec<f32> {
            let mut out = src.to_vec();
            for t in 0..n {
                for h in 0..heads {
                    let base = t * heads * hd + h * hd;
                    for i in 0..hd / 2 {
                        out[base + 2 * i] = src[base + i];
                        out[base + 2 * i + 1] = src[base + i + hd / 2];
                    }
                }
            }
            out
        };
        let mut a = x.clone();
        let table = RopeTable::positions(0, n, hd, 1e4);
        rope(&mut a, heads, &table, RopeLayout::HalfSplit);
        let mut b = perm(&x);
        rope(&mut b, heads, &table, RopeLayout::Interleaved);
        let a = perm(&a);
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-6);
        }
        // Position 0 is the identity; the rotation preserves each pair's norm.
        let mut c = x.clone();
        rope(&mut c, heads, &table, RopeLayout::Interleaved);
        for i in 0..heads * hd {
            assert!((c[i] - x[i]).abs() < 1e-7);
        }
        let w = heads * hd;
        let norm = |r: &[f32]| r.iter().map(|v| v * v).sum::<f32>();
        assert!((norm(&c[3 * w..4 * w]) - norm(&x[3 * w..4 * w])).abs() < 1e-4);
    }

    /// One query against a cache (the sequential decoding path) gives the general path's output
    /// and probabilities, causal and not, with grouped heads.
    #[test]
    fn single_query_attention_matches_general_path() {
        let mut rng = claimlab_testkit::rng(4);
        for (causal, n_keys, offset, hd) in
            [(true, 37, 35, 16), (true, 40, 21, 12), (false, 9, 0, 5)]
        {
            let s = AttnShape {
                n: 1,
                n_heads: 6,
                n_kv_heads: 2,
                head_dim: hd,
                causal,
            };
            let q = randv(&mut rng, s.n_heads * hd);
            let k = randv(&mut rng, n_keys * s.n_kv_heads * hd);
            let v = randv(&mut rng, n_keys * s.n_kv_heads * hd);
            let (o1, p1) = attention_one(&q, &k, &v, s, n_keys, offset, true);
            // n = 2 with a duplicated query row takes the general (faer) path.
            let q2 = [q.clone(), q.clone()].concat();
            let s2 = AttnShape { n: 2, ..s };
            let (o2, p2) = attention_at(&q2, &k, &v, s2, n_keys, offset, true);
            let (p1, p2) = (p1.expect("kept"), p2.expect("kept"));
            let qs = s.n_heads * hd;
            claimlab_testkit::assert_slice_close(
                &o1.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                &o2[..qs].iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                1e-5,
                1e-6,
            );
            for h in 0..s.n_heads {
                let a = &p1[h * n_keys..(h + 1) * n_keys];
                let b = &p2[h * 2 * n_keys..h * 2 * n_keys + n_keys];
                claimlab_testkit::assert_slice_close(
                    &a.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                    &b.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                    1e-5,
                    1e-7,
                );
            }
        }
    }

    /// Attention against a direct triple loop.
    #[test]
    fn attention_matches_naive() {
        let mut rng = claimlab_testkit::rng(3);
        let s = AttnShape {
            n: 6,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 3,
            causal: true,
        };
        let q = randv(&mut rng, s.n * s.n_heads * s.head_dim);
        let k = randv(&mut rng, s.n * s.n_kv_heads * s.head_dim);
        let v = randv(&mut rng, s.n * s.n_kv_heads * s.head_dim);
        let (out, probs) = attention(&q, &k, &v, s, true);
        let probs = probs.expect("kept");
        let (qs, ks, hd) = (
            s.n_heads * s.head_dim,
            s.n_kv_heads * s.head_dim,
            s.head_dim,
        );
        for h in 0..s.n_heads {
            let g = h / 2;
            for i in 0..s.n {
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..hd)
                            .map(|t| {
                                f64::from(q[i * qs + h * hd + t])
                                    * f64::from(k[j * ks + g * hd + t])
                            })
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                let p: Vec<f64> = scores.iter().map(|s| (s - mx).exp() / z).collect();
                for j in 0..s.n {
                    let want = if j <= i { p[j] } else { 0.0 };
                    assert!((f64::from(probs[h * s.n * s.n + i * s.n + j]) - want).abs() < 1e-5);
                }
                for t in 0..hd {
                    let want: f64 = (0..=i)
                        .map(|j| p[j] * f64::from(v[j * ks + g * hd + t]))
                        .sum();
                    assert!((f64::from(out[i * qs + h * hd + t]) - want).abs() < 1e-5);
                }
            }
        }
    }
}
