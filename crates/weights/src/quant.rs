//! Conversion of stored tensors to `f32`: plain floats and GGML block quantisations.
//!
//! Block layouts (all little endian, `d` and `m` are f16 unless stated):
//!
//! ```text
//! Q4_0  [d][qs: 16 B]                 x = d·(q − 8),      q = 4 bits; low nibbles → 0..16, high → 16..32
//! Q4_1  [d][m][qs: 16 B]              x = d·q + m
//! Q5_0  [d][qh: u32][qs: 16 B]        x = d·(q − 16),     5th bit of element j is bit j of qh
//! Q5_1  [d][m][qh: u32][qs: 16 B]     x = d·q + m
//! Q8_0  [d][qs: 32 × i8]              x = d·q
//! Q2_K  [scales: 16 B][qs: 64 B][d][dmin]           16 groups of 16; scale nibble low, min high
//! Q3_K  [hmask: 32 B][qs: 64 B][scales: 12 B][d]    16 groups of 16; 6-bit scales − 32
//! Q4_K  [d][dmin][scales: 12 B][qs: 128 B]          8 groups of 32; 6-bit scales and mins
//! Q5_K  [d][dmin][scales: 12 B][qh: 32 B][qs: 128 B]
//! Q6_K  [ql: 128 B][qh: 64 B][scales: 16 × i8][d]   16 groups of 16; x = d·s·(q − 32)
//! Q8_K  [d: f32][qs: 256 × i8][bsums: 16 × i16]     x = d·q
//! ```
//!
//! The bit placement inside each K-quant block follows GGML's reference dequantisers
//! (`dequantize_row_*` in ggml-quants.c); the unit tests rebuild blocks by hand from the layout
//! and check every element.

use std::path::PathBuf;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// Converts `n_elems` elements stored as `dtype` in `bytes` to `f32`, in storage order.
///
/// # Errors
/// [`Error::UnknownDtype`] for `I64` and `Other`; [`Error::ShapeMismatch`] when `n_elems` is not a
/// whole number of blocks or `bytes` has the wrong length. The path in these errors is `<bytes>`.
/// Non-finite values are returned as they are (the model reader checks them).
pub fn dequantize(dtype: DType, bytes: &[u8], n_elems: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; 0];
    check_len(dtype, bytes, n_elems)?;
    out.resize(n_elems, 0.0);
    dequantize_into(dtype, bytes, &mut out)?;
    Ok(out)
}

fn check_len(dtype: DType, bytes: &[u8], n_elems: usize) -> Result<()> {
    if matches!(dtype, DType::I64 | DType::Other(_)) {
        return Err(Error::UnknownDtype {
            path: PathBuf::from("<bytes>"),
            offset: 0,
            tensor: String::new(),
            dtype: format!("{dtype} (not convertible to f32)"),
        });
    }
    match dtype.bytes_for(n_elems as u64) {
        Some(b) if b == bytes.len() as u64 => Ok(()),
        other => Err(Error::ShapeMismatch {
            path: PathBuf::from("<bytes>"),
            tensor: String::new(),
            expected_bytes: other.unwrap_or(u64::MAX),
            actual_bytes: bytes.len() as u64,
        }),
    }
}

/// Like [`dequantize`], writing into `out` (whose length is the element count).
///
/// # Errors
/// As [`dequantize`].
pub fn dequantize_into(dtype: DType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    check_len(dtype, bytes, out.len())?;
    let bb = dtype.block_bytes();
    let be = dtype.block_elems();
    let blocks = bytes.chunks_exact(bb).zip(out.chunks_exact_mut(be));
    match dtype {
        DType::F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        DType::F16 => blocks.for_each(|(b, y)| y[0] = f16(b, 0)),
        DType::BF16 => blocks.for_each(|(b, y)| {
            y[0] = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
        }),
        DType::Q4_0 => blocks.for_each(|(b, y)| q4_0(b, y)),
        DType::Q4_1 => blocks.for_each(|(b, y)| q4_1(b, y)),
        DType::Q5_0 => blocks.for_each(|(b, y)| q5_0(b, y)),
        DType::Q5_1 => blocks.for_each(|(b, y)| q5_1(b, y)),
        DType::Q8_0 => blocks.for_each(|(b, y)| q8_0(b, y)),
        DType::Q2_K => blocks.for_each(|(b, y)| q2_k(b, y)),
        DType::Q3_K => blocks.for_each(|(b, y)| q3_k(b, y)),
        DType::Q4_K => blocks.for_each(|(b, y)| q4_k(b, y)),
        DType::Q5_K => blocks.for_each(|(b, y)| q5_k(b, y)),
        DType::Q6_K => blocks.for_each(|(b, y)| q6_k(b, y)),
        DType::Q8_K => blocks.for_each(|(b, y)| q8_k(b, y)),
        DType::I64 | DType::Other(_) => unreachable!("rejected by check_len"),
    }
    Ok(())
}

#[inline]
fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = d * (f32::from(qs[j] & 0x0F) - 8.0);
        y[j + 16] = d * (f32::from(qs[j] >> 4) - 8.0);
    }
}

fn q4_1(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = d * f32::from(qs[j] & 0x0F) + m;
        y[j + 16] = d * f32::from(qs[j] >> 4) + m;
    }
}

/// The 5-bit codes of a Q5 block: low nibbles from `qs`, fifth bit of element `i` is bit `i` of `qh`.
fn q5_codes(qh: u32, qs: &[u8]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for j in 0..16 {
        let h0 = ((qh >> j) & 1) as u8;
        let h1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = (qs[j] & 0x0F) | (h0 << 4);
        q[j + 16] = (qs[j] >> 4) | (h1 << 4);
    }
    q
}

fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let q = q5_codes(qh, &b[6..22]);
    for (yi, &qi) in y.iter_mut().zip(q.iter()) {
        *yi = d * (f32::from(qi) - 16.0);
    }
}

fn q5_1(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let q = q5_codes(qh, &b[8..24]);
    for (yi, &qi) in y.iter_mut().zip(q.iter()) {
        *yi = d * f32::from(qi) + m;
    }
}

fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    for (yi, &q) in y.iter_mut().zip(&b[2..34]) {
        *yi = d * f32::from(q as i8);
    }
}

fn q8_k(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (yi, &q) in y.iter_mut().zip(&b[4..260]) {
        *yi = d * f32::from(q as i8);
    }
}

fn q2_k(b: &[u8], y: &mut [f32]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let d = f16(b, 80);
    let dmin = f16(b, 82);
    // Two halves of 128 weights, each from 32 bytes of qs; within a half, four 2-bit planes
    // (shift 0, 2, 4, 6), each plane split into two groups of 16 with their own scale byte.
    let mut is = 0;
    for half in 0..2 {
        let q = &qs[32 * half..32 * half + 32];
        for plane in 0..4 {
            let shift = 2 * plane;
            for g in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * f32::from(sc & 0x0F);
                let ml = dmin * f32::from(sc >> 4);
                let base = 128 * half + 32 * plane + 16 * g;
                for l in 0..16 {
                    y[base + l] = dl * f32::from((q[16 * g + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/// Unpacks the twelve bytes of 6-bit K-quant scales into sixteen values (Q3_K layout): bytes 0..8
/// hold the low nibbles (scale i in byte i mod 8, low nibble for i < 8, high for i ≥ 8); bytes
/// 8..12 hold the top two bits (scale i in byte 8 + i mod 4, bit pair i / 4).
fn q3_k_scales(s: &[u8]) -> [i32; 16] {
    let mut out = [0i32; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = if i < 8 { s[i] & 0x0F } else { s[i - 8] >> 4 };
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        *o = i32::from(low | (high << 4)) - 32;
    }
    out
}

fn q3_k(b: &[u8], y: &mut [f32]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let scales = q3_k_scales(&b[96..108]);
    let d = f16(b, 108);
    let mut is = 0;
    let mut m: u8 = 1;
    for half in 0..2 {
        let q = &qs[32 * half..32 * half + 32];
        for plane in 0..4 {
            let shift = 2 * plane;
            for g in 0..2 {
                let dl = d * scales[is] as f32;
                is += 1;
                let base = 128 * half + 32 * plane + 16 * g;
                for l in 0..16 {
                    let low = i32::from((q[16 * g + l] >> shift) & 3);
                    let sub = if hmask[16 * g + l] & m != 0 { 0 } else { 4 };
                    y[base + l] = dl * (low - sub) as f32;
                }
            }
            m <<= 1;
        }
    }
}

/// Scale and minimum `j` (0..8) of the Q4_K / Q5_K 12-byte scale field.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let dmin = f16(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for chunk in 0..4 {
        let q = &qs[32 * chunk..32 * chunk + 32];
        let (s1, m1) = scale_min_k4(2 * chunk, scales);
        let (s2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * f32::from(s1), dmin * f32::from(m1));
        let (d2, m2) = (d * f32::from(s2), dmin * f32::from(m2));
        for l in 0..32 {
            y[64 * chunk + l] = d1 * f32::from(q[l] & 0x0F) - m1;
            y[64 * chunk + 32 + l] = d2 * f32::from(q[l] >> 4) - m2;
        }
    }
}

fn q5_k(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let dmin = f16(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for chunk in 0..4 {
        let q = &qs[32 * chunk..32 * chunk + 32];
        let (s1, m1) = scale_min_k4(2 * chunk, scales);
        let (s2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * f32::from(s1), dmin * f32::from(m1));
        let (d2, m2) = (d * f32::from(s2), dmin * f32::from(m2));
        let u1 = 1u8 << (2 * chunk);
        let u2 = 2u8 << (2 * chunk);
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[64 * chunk + l] = d1 * f32::from((q[l] & 0x0F) + h1) - m1;
            y[64 * chunk + 32 + l] = d2 * f32::from((q[l] >> 4) + h2) - m2;
        }
    }
}

fn q6_k(b: &[u8], y: &mut [f32]) {
    let ql_all = &b[0..128];
    let qh_all = &b[128..192];
    let sc_all = &b[192..208];
    let d = f16(b, 208);
    for half in 0..2 {
        let ql = &ql_all[64 * half..64 * half + 64];
        let qh = &qh_all[32 * half..32 * half + 32];
        let sc = &sc_all[8 * half..8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = i32::from((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
            let q2 = i32::from((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            let s = |k: usize| f32::from(sc[is + k] as i8);
            y[l] = d * s(0) * q1 as f32;
            y[l + 32] = d * s(2) * q2 as f32;
            y[l + 64] = d * s(4) * q3 as f32;
            y[l + 96] = d * s(6) * q4 as f32;
        }
    }
}
