//! Quantisation of `f32` values into GGML block formats: the inverse of [`crate::dequantize`].
//!
//! The 32-element types follow the rounding rules of GGML's reference quantisers
//! (`quantize_row_*_ref` in ggml-quants.c). `scripts/gguf_peer_check.py` found our bytes equal,
//! block for block, to those of the `gguf` Python package 0.19.0 (whose numpy quantisers mirror
//! GGML's) for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and BF16 on 131,072 seeded values:
//!
//! ```text
//! Q4_0  d = m / −8 where m is the element of largest magnitude (with its sign);
//!       q = min(15, ⌊x/d + 8.5⌋)                          (so x = m maps to q = 0)
//! Q5_0  d = m / −16;  q = min(31, ⌊x/d + 16.5⌋)
//! Q4_1  d = (max − min)/15, stored minimum = min;  q = min(15, ⌊(x − min)/d + 0.5⌋)
//! Q5_1  d = (max − min)/31;  q = min(31, ⌊(x − min)/d + 0.5⌋)
//! Q8_0  d = max|x| / 127;  q = round(x/d), halves away from zero
//! ```
//!
//! Codes are computed with the unrounded f32 scale and `1/d`; the scale is then stored as f16, as
//! GGML does. F16 and BF16 round to nearest, ties to even.
//!
//! The K-quants search their sub-block scales:
//!
//! - `Q4_K` and `Q5_K`: per sub-block of 32, a weighted least-squares fit of scale and minimum
//!   over a sweep of candidate inverse scales, weights `rms(block) + |x|` (the scheme of GGML's
//!   `make_qkx2_quants`: 21 candidates for Q4_K, 16 for Q5_K, minimum clamped to ≤ 0); the
//!   eight scales and minima are then quantised to 6 bits against the block's largest, and every
//!   code is recomputed as the nearest one for the stored (rounded) scale and minimum.
//! - `Q6_K`: per sub-block of 16, a symmetric scale chosen from 19 candidates by the
//!   `x²`-weighted least-squares criterion (GGML's `make_qx_quants` with weight type 1); the 16
//!   scales are stored as signed 8-bit values against the largest, and codes recomputed as above.
//!
//! - `Q2_K`: per sub-block of 16, the `make_qkx2_quants` fit with 2-bit codes, weights `|x|`
//!   and absolute error (16 candidates); scales and minima quantised to 4 bits.
//! - `Q3_K`: per sub-block of 16, symmetric 3-bit codes refined by coordinate descent on the
//!   `x²`-weighted fit (GGML's `make_q3_quants`); scales stored as signed 6-bit values.
//!
//! Differences from GGML: only the reference paths are modelled (no importance matrix); Q8_K
//! (an activation type) is not implemented. Codes of a sub-block whose stored scale rounds to
//! zero are written as the neutral code (GGML keeps its first-pass codes there); they decode to
//! the same values. Sub-blocks whose candidates tie may pick
//! a different but equally good scale if f32 sums are accumulated in another order.
//!
//! Non-finite input is an error: GGML would write garbage blocks for it.

use std::path::PathBuf;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// Quantises `values` (in storage order) into the block format `dtype`.
///
/// Supported: `F32`, `F16`, `BF16`, `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`, `Q2_K`, `Q3_K`,
/// `Q4_K`, `Q5_K`, `Q6_K`. Rounding follows GGML's reference quantisers for the 32-element types; the K-quants
/// search their sub-block scales (GGML's `make_qkx2_quants` / `make_qx_quants` schemes, without
/// an importance matrix). The result decodes with [`crate::dequantize`].
///
/// # Errors
/// [`Error::UnknownDtype`] for a type this function cannot produce (`I64`, `Q8_K`, `Other`); [`Error::NotWholeBlocks`] when the length is not a whole
/// number of blocks; [`Error::NonFinite`] (path `<values>`) naming the count
/// and first index of NaN or infinite values.
pub fn quantize(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    let be = dtype.block_elems();
    let supported = matches!(
        dtype,
        DType::F32
            | DType::F16
            | DType::BF16
            | DType::Q4_0
            | DType::Q4_1
            | DType::Q5_0
            | DType::Q5_1
            | DType::Q8_0
            | DType::Q2_K
            | DType::Q3_K
            | DType::Q4_K
            | DType::Q5_K
            | DType::Q6_K
    );
    if !supported {
        return Err(Error::UnknownDtype {
            path: PathBuf::from("<values>"),
            offset: 0,
            tensor: String::new(),
            dtype: format!("{dtype} (no quantiser)"),
        });
    }
    if !values.len().is_multiple_of(be) {
        return Err(Error::NotWholeBlocks {
            dtype,
            n_elems: values.len() as u64,
            block_elems: be,
        });
    }
    let mut count = 0usize;
    let mut first = usize::MAX;
    for (i, x) in values.iter().enumerate() {
        if !x.is_finite() {
            count += 1;
            first = first.min(i);
        }
    }
    if count > 0 {
        return Err(Error::NonFinite {
            path: PathBuf::from("<values>"),
            tensor: String::new(),
            count,
            first_index: first,
        });
    }
    let bb = dtype.block_bytes();
    let mut out = vec![0u8; values.len() / be * bb];
    let blocks = values.chunks_exact(be).zip(out.chunks_exact_mut(bb));
    match dtype {
        DType::F32 => blocks.for_each(|(x, b)| b.copy_from_slice(&x[0].to_le_bytes())),
        DType::F16 => blocks.for_each(|(x, b)| {
            b.copy_from_slice(&half::f16::from_f32(x[0]).to_bits().to_le_bytes());
        }),
        DType::BF16 => blocks.for_each(|(x, b)| {
            b.copy_from_slice(&half::bf16::from_f32(x[0]).to_bits().to_le_bytes());
        }),
        DType::Q4_0 => blocks.for_each(|(x, b)| q4_0(x, b)),
        DType::Q4_1 => blocks.for_each(|(x, b)| q4_1(x, b)),
        DType::Q5_0 => blocks.for_each(|(x, b)| q5_0(x, b)),
        DType::Q5_1 => blocks.for_each(|(x, b)| q5_1(x, b)),
        DType::Q8_0 => blocks.for_each(|(x, b)| q8_0(x, b)),
        DType::Q2_K => blocks.for_each(|(x, b)| q2_k(x, b)),
        DType::Q3_K => blocks.for_each(|(x, b)| q3_k(x, b)),
        DType::Q4_K => blocks.for_each(|(x, b)| q45_k(x, b, false)),
        DType::Q5_K => blocks.for_each(|(x, b)| q45_k(x, b, true)),
        DType::Q6_K => blocks.for_each(|(x, b)| q6_k(x, b)),
        _ => unreachable!("rejected above"),
    }
    Ok(out)
}

#[inline]
fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
}

#[inline]
fn round_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// GGML's `nearest_int`: round to nearest, ties to even (the magic-number trick), for |v| < 2^22.
#[inline]
fn nearest_int(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// The element of largest magnitude, with its sign (the first one on ties).
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

#[inline]
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Symmetric codes `min(top, ⌊x·id + offset⌋)` as in GGML's Q4_0 / Q5_0 (the float-to-int cast
/// truncates; the argument is ≥ 0.5 by construction).
fn symmetric_codes(x: &[f32], levels: f32) -> (f32, [u8; 32]) {
    let d = signed_absmax(x) / -levels;
    let id = inverse(d);
    let top = 2.0 * levels - 1.0;
    let mut q = [0u8; 32];
    for (qi, &v) in q.iter_mut().zip(x) {
        *qi = (v * id + levels + 0.5).trunc().clamp(0.0, top) as u8;
    }
    (d, q)
}

fn affine_codes(x: &[f32], levels: f32) -> (f32, f32, [u8; 32]) {
    let (lo, hi) = min_max(x);
    let d = (hi - lo) / levels;
    let id = inverse(d);
    let mut q = [0u8; 32];
    for (qi, &v) in q.iter_mut().zip(x) {
        *qi = ((v - lo) * id + 0.5).trunc().clamp(0.0, levels) as u8;
    }
    (d, lo, q)
}

fn pack_nibbles(q: &[u8; 32], out: &mut [u8]) {
    for j in 0..16 {
        out[j] = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
    }
}

fn fifth_bits(q: &[u8; 32]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= u32::from(v >> 4) << j;
    }
    qh.to_le_bytes()
}

fn q4_0(x: &[f32], b: &mut [u8]) {
    let (d, q) = symmetric_codes(x, 8.0);
    put_f16(b, 0, d);
    pack_nibbles(&q, &mut b[2..18]);
}

fn q5_0(x: &[f32], b: &mut [u8]) {
    let (d, q) = symmetric_codes(x, 16.0);
    put_f16(b, 0, d);
    b[2..6].copy_from_slice(&fifth_bits(&q));
    pack_nibbles(&q, &mut b[6..22]);
}

fn q4_1(x: &[f32], b: &mut [u8]) {
    let (d, m, q) = affine_codes(x, 15.0);
    put_f16(b, 0, d);
    put_f16(b, 2, m);
    pack_nibbles(&q, &mut b[4..20]);
}

fn q5_1(x: &[f32], b: &mut [u8]) {
    let (d, m, q) = affine_codes(x, 31.0);
    put_f16(b, 0, d);
    put_f16(b, 2, m);
    b[4..8].copy_from_slice(&fifth_bits(&q));
    pack_nibbles(&q, &mut b[8..24]);
}

fn q8_0(x: &[f32], b: &mut [u8]) {
    let amax = x.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    put_f16(b, 0, d);
    for (o, &v) in b[2..34].iter_mut().zip(x) {
        // `f32::round` rounds halves away from zero, like C's `roundf`.
        *o = ((v * id).round().clamp(-127.0, 127.0) as i8) as u8;
    }
}

/// Weighted least-squares fit of `x ≈ scale·l + min` with integer codes `l` in `0..=nmax`, over a
/// sweep of candidate inverse scales (GGML's `make_qkx2_quants` scheme). The candidate is judged
/// by weighted squared error, or weighted absolute error with `use_mad`. Returns `(scale, −min)`
/// with `min ≤ 0`.
fn fit_scale_min(
    x: &[f32],
    w: &[f32],
    nmax: i32,
    (rmin, rdelta, nstep): (f32, f32, i32),
    use_mad: bool,
) -> (f32, f32) {
    let (mut lo, hi) = min_max(x);
    lo = lo.min(0.0);
    // Exact comparison on purpose: a constant sub-block has no range to fit.
    #[allow(clippy::float_cmp)]
    let flat = hi == lo;
    if flat {
        return (0.0, -lo);
    }
    let n = x.len();
    let sum_w: f32 = w.iter().sum();
    let sum_x: f32 = w.iter().zip(x).map(|(a, b)| a * b).sum();
    let code = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, nmax);
    let mut iscale = nmax as f32 / (hi - lo);
    let mut scale = 1.0 / iscale;
    let mut min = lo;
    let loss = |d: f32| if use_mad { d.abs() } else { d * d };
    let mut best = 0.0f32;
    for i in 0..n {
        let l = code(iscale, x[i], lo);
        best += w[i] * loss(scale * l as f32 + lo - x[i]);
    }
    let mut laux = vec![0i32; n];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (hi - lo);
        let (mut sl, mut sl2, mut sxl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = code(iscale, x[i], lo);
            laux[i] = l;
            let lf = l as f32;
            sl += w[i] * lf;
            sl2 += w[i] * lf * lf;
            sxl += w[i] * lf * x[i];
        }
        let det = sum_w * sl2 - sl * sl;
        if det > 0.0 {
            let mut this_scale = (sum_w * sxl - sum_x * sl) / det;
            let mut this_min = (sl2 * sum_x - sl * sxl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sxl / sl2;
            }
            let mut err = 0.0f32;
            for i in 0..n {
                err += w[i] * loss(this_scale * laux[i] as f32 + this_min - x[i]);
            }
            if err < best {
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Packs six-bit scale `j` and minimum `j` (0..8) into the 12-byte K-quant scale field.
fn pack_scale_min_k4(j: usize, ls: u8, lm: u8, s: &mut [u8]) {
    if j < 4 {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
        s[j - 4] |= (ls >> 4) << 6;
        s[j] |= (lm >> 4) << 6;
    }
}

fn q45_k(x: &[f32], b: &mut [u8], five: bool) {
    let nmax: i32 = if five { 31 } else { 15 };
    let (rmin, nstep) = if five { (-0.5, 15) } else { (-1.0, 20) };
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let sum_x2: f32 = x.iter().map(|v| v * v).sum();
    let av_x = (sum_x2 / 256.0).sqrt();
    let mut w = [0.0f32; 32];
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = av_x + v.abs();
        }
        (scales[j], mins[j]) = fit_scale_min(xs, &w, nmax, (rmin, 0.1, nstep), false);
    }
    let max_scale = scales.iter().fold(0.0f32, |a, &v| a.max(v));
    let max_min = mins.iter().fold(0.0f32, |a, &v| a.max(v));
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut sfield = [0u8; 12];
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        ls[j] = nearest_int(inv_scale * scales[j]).clamp(0, 63) as u8;
        lm[j] = nearest_int(inv_min * mins[j]).clamp(0, 63) as u8;
        pack_scale_min_k4(j, ls[j], lm[j], &mut sfield);
    }
    put_f16(b, 0, max_scale / 63.0);
    put_f16(b, 2, max_min / 63.0);
    b[4..16].copy_from_slice(&sfield);
    let d = round_f16(max_scale / 63.0);
    let dmin = round_f16(max_min / 63.0);
    let mut codes = [0u8; 256];
    for j in 0..8 {
        let dl = d * f32::from(ls[j]);
        if dl == 0.0 {
            continue;
        }
        let ml = dmin * f32::from(lm[j]);
        for i in 32 * j..32 * j + 32 {
            codes[i] = nearest_int((x[i] + ml) / dl).clamp(0, nmax) as u8;
        }
    }
    let (mut qh, qs) = if five {
        let (qh, qs) = b[16..176].split_at_mut(32);
        (Some(qh), qs)
    } else {
        (None, &mut b[16..144])
    };
    for chunk in 0..4 {
        for l in 0..32 {
            let lo = codes[64 * chunk + l];
            let hi = codes[64 * chunk + 32 + l];
            qs[32 * chunk + l] = (lo & 0x0F) | ((hi & 0x0F) << 4);
            if let Some(qh) = qh.as_deref_mut() {
                qh[l] |= ((lo >> 4) << (2 * chunk)) | ((hi >> 4) << (2 * chunk + 1));
            }
        }
    }
}

/// Symmetric scale for codes in `−nmax..nmax` chosen among 19 candidates by the `x²`-weighted
/// least-squares criterion (GGML's `make_qx_quants`, weight type 1). Returns the scale (signed;
/// 0 for an all-zero sub-block).
fn fit_symmetric_scale(x: &[f32], nmax: i32) -> f32 {
    let max = signed_absmax(x);
    if max.abs() < 1e-15 {
        return 0.0;
    }
    let nm = nmax as f32;
    let eval = |iscale: f32| {
        let (mut sxl, mut sl2) = (0.0f32, 0.0f32);
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
            let w = v * v;
            sxl += w * v * l;
            sl2 += w * l * l;
        }
        (sxl, sl2)
    };
    let (sxl, sl2) = eval(-nm / max);
    let mut scale = sxl / sl2;
    let mut best = scale * sxl;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let (sxl, sl2) = eval(-(nm + 0.1 * is as f32) / max);
        if sl2 > 0.0 && sxl * sxl > best * sl2 {
            scale = sxl / sl2;
            best = scale * sxl;
        }
    }
    scale
}

fn q6_k(x: &[f32], b: &mut [u8]) {
    let mut scales = [0.0f32; 16];
    for (j, s) in scales.iter_mut().enumerate() {
        *s = fit_symmetric_scale(&x[16 * j..16 * j + 16], 32);
    }
    let max_scale = signed_absmax(&scales);
    if max_scale.abs() < 1e-15 {
        b.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    let mut sc = [0i8; 16];
    for (o, &s) in sc.iter_mut().zip(&scales) {
        *o = nearest_int(iscale * s).clamp(-128, 127) as i8;
    }
    put_f16(b, 208, 1.0 / iscale);
    let d = round_f16(1.0 / iscale);
    let mut codes = [32u8; 256];
    for (j, &s) in sc.iter().enumerate() {
        let dl = d * f32::from(s);
        if dl == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            codes[i] = (nearest_int(x[i] / dl).clamp(-32, 31) + 32) as u8;
        }
    }
    for (o, &s) in b[192..208].iter_mut().zip(&sc) {
        *o = s as u8;
    }
    let (ql_all, rest) = b.split_at_mut(128);
    let qh_all = &mut rest[..64];
    for half in 0..2 {
        let c = &codes[128 * half..128 * half + 128];
        let ql = &mut ql_all[64 * half..64 * half + 64];
        let qh = &mut qh_all[32 * half..32 * half + 32];
        for l in 0..32 {
            let (q1, q2, q3, q4) = (c[l], c[l + 32], c[l + 64], c[l + 96]);
            ql[l] = (q1 & 0x0F) | ((q3 & 0x0F) << 4);
            ql[l + 32] = (q2 & 0x0F) | ((q4 & 0x0F) << 4);
            qh[l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}

/// Packs 256 two-bit codes as the Q2_K / Q3_K `qs` field: element `128·h + 32·p + i` sits in
/// byte `32·h + i`, bits `2p..2p+2`.
fn pack_2bit_planes(codes: &[u8; 256], qs: &mut [u8]) {
    for h in 0..2 {
        for i in 0..32 {
            let e = 128 * h + i;
            qs[32 * h + i] = (codes[e] & 3)
                | ((codes[e + 32] & 3) << 2)
                | ((codes[e + 64] & 3) << 4)
                | ((codes[e + 96] & 3) << 6);
        }
    }
}

fn q2_k(x: &[f32], b: &mut [u8]) {
    let mut scales = [0.0f32; 16];
    let mut mins = [0.0f32; 16];
    let mut w = [0.0f32; 16];
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = v.abs();
        }
        (scales[j], mins[j]) = fit_scale_min(xs, &w, 3, (-0.5, 0.1, 15), true);
    }
    let max_scale = scales.iter().fold(0.0f32, |a, &v| a.max(v));
    let max_min = mins.iter().fold(0.0f32, |a, &v| a.max(v));
    let inv_scale = if max_scale > 0.0 {
        15.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 15.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 16];
    let mut lm = [0u8; 16];
    for j in 0..16 {
        ls[j] = nearest_int(inv_scale * scales[j]).clamp(0, 15) as u8;
        lm[j] = nearest_int(inv_min * mins[j]).clamp(0, 15) as u8;
        b[j] = ls[j] | (lm[j] << 4);
    }
    put_f16(b, 80, max_scale / 15.0);
    put_f16(b, 82, max_min / 15.0);
    let d = round_f16(max_scale / 15.0);
    let dmin = round_f16(max_min / 15.0);
    let mut codes = [0u8; 256];
    for j in 0..16 {
        let dl = d * f32::from(ls[j]);
        if dl == 0.0 {
            continue;
        }
        let ml = dmin * f32::from(lm[j]);
        for i in 16 * j..16 * j + 16 {
            codes[i] = nearest_int((x[i] + ml) / dl).clamp(0, 3) as u8;
        }
    }
    pack_2bit_planes(&codes, &mut b[16..80]);
}

/// Symmetric codes in `−nmax..nmax` for a sub-block, refined by coordinate descent on the
/// `x²`-weighted least-squares fit (GGML's `make_q3_quants` with `do_rmse`). Returns the scale
/// (0 for an all-zero sub-block).
fn fit_q3_scale(x: &[f32], nmax: i32) -> f32 {
    let max = signed_absmax(x);
    if max.abs() < 1e-15 {
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut l: Vec<i32> = x
        .iter()
        .map(|&v| nearest_int(iscale * v).clamp(-nmax, nmax - 1))
        .collect();
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (&v, &li) in x.iter().zip(&l) {
        let w = v * v;
        sumlx += w * v * li as f32;
        suml2 += w * (li * li) as f32;
    }
    for _ in 0..5 {
        let mut changed = false;
        for (i, &v) in x.iter().enumerate() {
            let w = v * v;
            let li = l[i] as f32;
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l[i] {
                    slx += w * v * new_l as f32;
                    sl2 += w * (new_l * new_l) as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

fn q3_k(x: &[f32], b: &mut [u8]) {
    let mut scales = [0.0f32; 16];
    for (j, s) in scales.iter_mut().enumerate() {
        *s = fit_q3_scale(&x[16 * j..16 * j + 16], 4);
    }
    b.fill(0);
    let max_scale = signed_absmax(&scales);
    if max_scale.abs() < 1e-15 {
        // All codes 0 with the high bit clear decode to 0·(0 − 4) = 0 with d = 0.
        return;
    }
    let iscale = -32.0 / max_scale;
    let mut sc = [0i32; 16];
    {
        let field = &mut b[96..108];
        for (j, o) in sc.iter_mut().enumerate() {
            let l = nearest_int(iscale * scales[j]).clamp(-32, 31);
            *o = l;
            let u = (l + 32) as u8;
            if j < 8 {
                field[j] = u & 0x0F;
            } else {
                field[j - 8] |= (u & 0x0F) << 4;
            }
            field[8 + j % 4] |= (u >> 4) << (2 * (j / 4));
        }
    }
    put_f16(b, 108, 1.0 / iscale);
    let d = round_f16(1.0 / iscale);
    // Codes 0..8 = l + 4; the high bit goes to hmask (set means "no −4").
    let mut codes = [4u8; 256];
    for (j, &s) in sc.iter().enumerate() {
        let dl = d * s as f32;
        if dl == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            codes[i] = (nearest_int(x[i] / dl).clamp(-4, 3) + 4) as u8;
        }
    }
    let (hmask, rest) = b.split_at_mut(32);
    for (e, &c) in codes.iter().enumerate() {
        if c > 3 {
            // Element e: hmask byte e mod 32, bit e / 32.
            hmask[e % 32] |= 1 << (e / 32);
        }
    }
    pack_2bit_planes(&codes, &mut rest[..64]);
}
