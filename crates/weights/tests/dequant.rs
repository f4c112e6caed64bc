//! Dequantisation checked against values computed independently of the crate's code.
//!
//! Two kinds of test per format:
//! - a hand-worked block: a few bytes written out literally, and the expected numbers worked out
//!   by hand from the format definition (in the comments);
//! - random blocks: integer codes and scales are drawn first, packed into bytes by a packer
//!   written here from the *quantiser's* description of the layout (the inverse direction of the
//!   crate's dequantiser), and the expected value of every element is the format's formula
//!   evaluated in f64 on the drawn codes. Scales are exact f16 values, so the products are exact
//!   in f32 and the tolerance only guards against a reordering of the arithmetic.

// Element-index loops mirror the format's formulas (element e → byte, bit), clearer than iterators.
#![allow(clippy::needless_range_loop)]

use claimlab_testkit::rand::RngExt;
use claimlab_testkit::{assert_slice_close, rng};
use claimlab_weights::{dequantize, DType, Error};

fn h(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

/// An f16-exact scale: a small integer times a power of two.
fn scale(r: &mut impl RngExt) -> f32 {
    let m = r.random_range(1..=31) as f32;
    let e = r.random_range(-10..=0);
    m * 2f32.powi(e)
}

fn check(dtype: DType, bytes: &[u8], expected: &[f64]) {
    let got = dequantize(dtype, bytes, expected.len()).unwrap();
    let got: Vec<f64> = got.iter().map(|&v| f64::from(v)).collect();
    assert_slice_close(&got, expected, 1e-6, 1e-9);
}

// ---------------------------------------------------------------- hand-worked blocks

#[test]
fn q4_0_by_hand() {
    // d = 0.5; qs[0] = 0x9F: element 0 low nibble 15 → (15 − 8)·0.5 = 3.5,
    // element 16 high nibble 9 → (9 − 8)·0.5 = 0.5. All other bytes 0x08 → element j: 8 → 0,
    // element j+16: 0 → −4.
    let mut b = h(0.5).to_vec();
    b.push(0x9F);
    b.extend([0x08; 15]);
    let y = dequantize(DType::Q4_0, &b, 32).unwrap();
    let mut e = vec![0.0; 32];
    e[0] = 3.5;
    e[16] = 0.5;
    for v in &mut e[17..32] {
        *v = -4.0;
    }
    assert_slice_close(
        &y.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        &e,
        0.0,
        0.0,
    );
}

#[test]
fn q4_1_by_hand() {
    // d = 0.25, m = −1; qs[3] = 0x2C: element 3 = 12·0.25 − 1 = 2, element 19 = 2·0.25 − 1 = −0.5.
    let mut b = [h(0.25), h(-1.0)].concat();
    let mut qs = [0u8; 16];
    qs[3] = 0x2C;
    b.extend(qs);
    let mut e = vec![-1.0; 32];
    e[3] = 2.0;
    e[19] = -0.5;
    check(DType::Q4_1, &b, &e);
}

#[test]
fn q5_0_by_hand() {
    // d = 2; qh = bit 1 and bit 17 set (0x0002_0002); qs[1] = 0x3A.
    // element 1: low 0xA | 0x10 = 26 → (26 − 16)·2 = 20; element 17: 3 | 0x10 = 19 → 6.
    // element 0: 0 → −32; element 16: 0 → −32.
    let mut b = h(2.0).to_vec();
    b.extend(0x0002_0002u32.to_le_bytes());
    let mut qs = [0u8; 16];
    qs[1] = 0x3A;
    b.extend(qs);
    let mut e = vec![-32.0; 32];
    e[1] = 20.0;
    e[17] = 6.0;
    check(DType::Q5_0, &b, &e);
}

#[test]
fn q5_1_by_hand() {
    // d = 0.5, m = 1; qh bit 31 set → element 31 high bit; qs[15] = 0xF0 → element 31 low 0xF:
    // 31·0.5 + 1 = 16.5; element 15 low 0 → 1.
    let mut b = [h(0.5), h(1.0)].concat();
    b.extend(0x8000_0000u32.to_le_bytes());
    let mut qs = [0u8; 16];
    qs[15] = 0xF0;
    b.extend(qs);
    let mut e = vec![1.0; 32];
    e[31] = 16.5;
    check(DType::Q5_1, &b, &e);
}

#[test]
fn q8_0_by_hand() {
    // d = 0.125; codes 0, 1, −1, 127, −128, then 0: values 0, 0.125, −0.125, 15.875, −16.
    let mut b = h(0.125).to_vec();
    let mut qs = [0u8; 32];
    qs[1] = 1;
    qs[2] = 0xFF;
    qs[3] = 127;
    qs[4] = 0x80;
    b.extend(qs);
    let mut e = vec![0.0; 32];
    e[1] = 0.125;
    e[2] = -0.125;
    e[3] = 15.875;
    e[4] = -16.0;
    check(DType::Q8_0, &b, &e);
}

#[test]
fn q4_k_by_hand() {
    // d = 1, dmin = 0.5. Sub-block 0: scale 3, min 2 (bytes 0 and 4). Sub-block 5: scale 33
    // (= 0b10_0001: low nibble 1 in byte 9 low, top bits 0b10 in byte 1 bits 6-7), min 17
    // (= 0b01_0001: low nibble 1 in byte 9 high, top bits 0b01 in byte 5 bits 6-7).
    // Element 0 (sub-block 0, qs[0] low nibble 7): 1·3·7 − 0.5·2 = 20.
    // Element 160 (sub-block 5 = chunk 2 high nibbles, qs[64] high nibble 4): 33·4 − 0.5·17 = 123.5.
    let mut b = [h(1.0), h(0.5)].concat();
    let mut sc = [0u8; 12];
    sc[0] = 3;
    sc[4] = 2;
    sc[1] = 0b10 << 6;
    sc[5] = 0b01 << 6;
    sc[9] = 0x11;
    b.extend(sc);
    let mut qs = [0u8; 128];
    qs[0] = 0x07;
    qs[64] = 0x40;
    b.extend(qs);
    let y = dequantize(DType::Q4_K, &b, 256).unwrap();
    assert!((y[0] - 20.0).abs() < 1e-6);
    assert!((y[160] - 123.5).abs() < 1e-6);
    // Element 1 (sub-block 0, code 0): −1. Element 161 (code 0): −8.5. Element 32 (sub-block 1,
    // scale 0 min 0... top bits of byte 1 belong to sub-block 5 only): 0.
    assert!((y[1] + 1.0).abs() < 1e-6);
    assert!((y[161] + 8.5).abs() < 1e-6);
    assert!(y[32].abs() < 1e-9);
}

#[test]
fn q6_k_by_hand() {
    // d = 0.5; scales[0] = 2, scales[6] = −1. Element 0: ql[0] low 5, qh[0] bits 0-1 = 2 →
    // q = 5 + 32 = 37 → 0.5·2·(37 − 32) = 5. Element 96 (sub-block 6): ql[32] high nibble 0,
    // qh[0] bits 6-7 = 0 → q = 0 → 0.5·(−1)·(−32) = 16.
    let mut b = vec![0u8; 210];
    b[0] = 0x05;
    b[128] = 0x02;
    b[192] = 2;
    b[192 + 6] = 0xFF;
    b[208..210].copy_from_slice(&h(0.5));
    let y = dequantize(DType::Q6_K, &b, 256).unwrap();
    assert!((y[0] - 5.0).abs() < 1e-6);
    assert!((y[96] - 16.0).abs() < 1e-6);
}

// ---------------------------------------------------------------- random blocks

const BLOCKS: usize = 20;

#[test]
fn q4_0_and_q4_1_random() {
    let mut r = rng(40);
    for with_min in [false, true] {
        let (mut bytes, mut exp) = (Vec::new(), Vec::new());
        for _ in 0..BLOCKS {
            let d = scale(&mut r);
            let m = -scale(&mut r);
            let q: Vec<u8> = (0..32).map(|_| r.random_range(0..16u8)).collect();
            bytes.extend(h(d));
            if with_min {
                bytes.extend(h(m));
            }
            bytes.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
            for &qi in &q {
                exp.push(if with_min {
                    f64::from(d) * f64::from(qi) + f64::from(m)
                } else {
                    f64::from(d) * (f64::from(qi) - 8.0)
                });
            }
        }
        check(
            if with_min { DType::Q4_1 } else { DType::Q4_0 },
            &bytes,
            &exp,
        );
    }
}

#[test]
fn q5_0_and_q5_1_random() {
    let mut r = rng(50);
    for with_min in [false, true] {
        let (mut bytes, mut exp) = (Vec::new(), Vec::new());
        for _ in 0..BLOCKS {
            let d = scale(&mut r);
            let m = -scale(&mut r);
            let q: Vec<u8> = (0..32).map(|_| r.random_range(0..32u8)).collect();
            bytes.extend(h(d));
            if with_min {
                bytes.extend(h(m));
            }
            // Quantiser's description: the 5th bit of element e goes to bit e of qh.
            let qh: u32 = (0..32).map(|e| u32::from(q[e] >> 4) << e).sum();
            bytes.extend(qh.to_le_bytes());
            bytes.extend((0..16).map(|j| (q[j] & 15) | ((q[j + 16] & 15) << 4)));
            for &qi in &q {
                exp.push(if with_min {
                    f64::from(d) * f64::from(qi) + f64::from(m)
                } else {
                    f64::from(d) * (f64::from(qi) - 16.0)
                });
            }
        }
        check(
            if with_min { DType::Q5_1 } else { DType::Q5_0 },
            &bytes,
            &exp,
        );
    }
}

#[test]
fn q8_0_and_q8_k_random() {
    let mut r = rng(80);
    let (mut b0, mut e0, mut bk, mut ek) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        let d = scale(&mut r);
        b0.extend(h(d));
        for _ in 0..32 {
            let q: i8 = r.random_range(-128..=127);
            b0.push(q as u8);
            e0.push(f64::from(d) * f64::from(q));
        }
        let dk: f32 = r.random_range(-1.0f32..1.0);
        bk.extend(dk.to_le_bytes());
        let q: Vec<i8> = (0..256).map(|_| r.random_range(-128..=127)).collect();
        bk.extend(q.iter().map(|&v| v as u8));
        for g in 0..16 {
            let s: i16 = q[16 * g..16 * g + 16].iter().map(|&v| i16::from(v)).sum();
            bk.extend(s.to_le_bytes());
        }
        ek.extend(q.iter().map(|&v| f64::from(dk * f32::from(v))));
    }
    check(DType::Q8_0, &b0, &e0);
    check(DType::Q8_K, &bk, &ek);
}

/// Packs 256 2-bit values the way the Q2_K / Q3_K quantisers do: element 128h + 32p + r goes to
/// bits 2p..2p+2 of byte 32h + r.
fn pack_2bit(low: &[u8]) -> Vec<u8> {
    let mut qs = vec![0u8; 64];
    for (e, &v) in low.iter().enumerate() {
        let (h, p, r) = (e / 128, (e % 128) / 32, e % 32);
        qs[32 * h + r] |= (v & 3) << (2 * p);
    }
    qs
}

#[test]
fn q2_k_random() {
    let mut r = rng(20);
    let (mut bytes, mut exp) = (Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        let (d, dmin) = (scale(&mut r), scale(&mut r));
        let sc: Vec<u8> = (0..16).map(|_| r.random_range(0..16u8)).collect();
        let mn: Vec<u8> = (0..16).map(|_| r.random_range(0..16u8)).collect();
        let q: Vec<u8> = (0..256).map(|_| r.random_range(0..4u8)).collect();
        bytes.extend((0..16).map(|s| sc[s] | (mn[s] << 4)));
        bytes.extend(pack_2bit(&q));
        bytes.extend(h(d));
        bytes.extend(h(dmin));
        for e in 0..256 {
            let s = e / 16;
            exp.push(
                f64::from(d) * f64::from(sc[s]) * f64::from(q[e])
                    - f64::from(dmin) * f64::from(mn[s]),
            );
        }
    }
    check(DType::Q2_K, &bytes, &exp);
}

#[test]
fn q3_k_random() {
    let mut r = rng(30);
    let (mut bytes, mut exp) = (Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        let d = scale(&mut r);
        let s6: Vec<u8> = (0..16).map(|_| r.random_range(0..64u8)).collect();
        let q: Vec<u8> = (0..256).map(|_| r.random_range(0..8u8)).collect();
        // High bit of element e: bit e / 32 of hmask[e % 32].
        let mut hmask = [0u8; 32];
        for e in 0..256 {
            if q[e] >= 4 {
                hmask[e % 32] |= 1 << (e / 32);
            }
        }
        // 6-bit scales: low nibble of scale i in byte i % 8 (low half for i < 8), top two bits in
        // byte 8 + i % 4 at bit pair i / 4.
        let mut sc = [0u8; 12];
        for (i, &s) in s6.iter().enumerate() {
            sc[i % 8] |= (s & 15) << (if i < 8 { 0 } else { 4 });
            sc[8 + i % 4] |= (s >> 4) << (2 * (i / 4));
        }
        bytes.extend(hmask);
        bytes.extend(pack_2bit(&q));
        bytes.extend(sc);
        bytes.extend(h(d));
        for e in 0..256 {
            let s = f64::from(s6[e / 16]) - 32.0;
            exp.push(f64::from(d) * s * (f64::from(q[e]) - 4.0));
        }
    }
    check(DType::Q3_K, &bytes, &exp);
}

/// Packs eight 6-bit scales and minima into the 12 bytes of Q4_K / Q5_K.
fn pack_k4_scales(sc: &[u8], mn: &[u8]) -> [u8; 12] {
    let mut b = [0u8; 12];
    for i in 0..4 {
        b[i] = sc[i] | ((sc[i + 4] >> 4) << 6);
        b[i + 4] = mn[i] | ((mn[i + 4] >> 4) << 6);
        b[i + 8] = (sc[i + 4] & 15) | ((mn[i + 4] & 15) << 4);
    }
    b
}

#[test]
fn q4_k_and_q5_k_random() {
    let mut r = rng(45);
    for five in [false, true] {
        let (mut bytes, mut exp) = (Vec::new(), Vec::new());
        for _ in 0..BLOCKS {
            let (d, dmin) = (scale(&mut r), scale(&mut r));
            let sc: Vec<u8> = (0..8).map(|_| r.random_range(0..64u8)).collect();
            let mn: Vec<u8> = (0..8).map(|_| r.random_range(0..64u8)).collect();
            let top = if five { 32u8 } else { 16 };
            let q: Vec<u8> = (0..256).map(|_| r.random_range(0..top)).collect();
            bytes.extend(h(d));
            bytes.extend(h(dmin));
            bytes.extend(pack_k4_scales(&sc, &mn));
            // Element 64c + 32k + l: nibble k of byte 32c + l; fifth bit: bit 2c + k of qh[l].
            let mut qs = [0u8; 128];
            let mut qh = [0u8; 32];
            for e in 0..256 {
                let (c, k, l) = (e / 64, (e % 64) / 32, e % 32);
                qs[32 * c + l] |= (q[e] & 15) << (4 * k);
                qh[l] |= (q[e] >> 4) << (2 * c + k);
            }
            if five {
                bytes.extend(qh);
            }
            bytes.extend(qs);
            for e in 0..256 {
                let s = e / 32;
                exp.push(
                    f64::from(d) * f64::from(sc[s]) * f64::from(q[e])
                        - f64::from(dmin) * f64::from(mn[s]),
                );
            }
        }
        check(if five { DType::Q5_K } else { DType::Q4_K }, &bytes, &exp);
    }
}

#[test]
fn q6_k_random() {
    let mut r = rng(60);
    let (mut bytes, mut exp) = (Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        let d = scale(&mut r);
        let sc: Vec<i8> = (0..16).map(|_| r.random_range(-128..=127)).collect();
        let q: Vec<u8> = (0..256).map(|_| r.random_range(0..64u8)).collect();
        // Element 128h + 32p + l: low nibble in ql[64h + 32(p % 2) + l] (low half for p < 2),
        // top two bits in qh[32h + l] at bit pair p.
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for e in 0..256 {
            let (hh, p, l) = (e / 128, (e % 128) / 32, e % 32);
            ql[64 * hh + 32 * (p % 2) + l] |= (q[e] & 15) << (4 * (p / 2));
            qh[32 * hh + l] |= (q[e] >> 4) << (2 * p);
        }
        bytes.extend(ql);
        bytes.extend(qh);
        bytes.extend(sc.iter().map(|&s| s as u8));
        bytes.extend(h(d));
        for e in 0..256 {
            exp.push(f64::from(d) * f64::from(sc[e / 16]) * (f64::from(q[e]) - 32.0));
        }
    }
    check(DType::Q6_K, &bytes, &exp);
}

#[test]
fn plain_floats() {
    // F32 1.5 = 0x3FC00000; F16 −2 = 0xC000; BF16 0.5 = 0x3F00 (top half of 0x3F000000).
    check(DType::F32, &0x3FC0_0000u32.to_le_bytes(), &[1.5]);
    check(DType::F16, &0xC000u16.to_le_bytes(), &[-2.0]);
    check(DType::BF16, &0x3F00u16.to_le_bytes(), &[0.5]);
}

#[test]
fn wrong_lengths_and_types_are_errors() {
    assert!(matches!(
        dequantize(DType::Q4_0, &[0u8; 17], 32),
        Err(Error::ShapeMismatch {
            expected_bytes: 18,
            actual_bytes: 17,
            ..
        })
    ));
    // 33 elements are not a whole number of 32-element blocks.
    assert!(matches!(
        dequantize(DType::Q8_0, &[0u8; 34], 33),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        dequantize(DType::I64, &[0u8; 8], 1),
        Err(Error::UnknownDtype { .. })
    ));
    assert!(matches!(
        dequantize(DType::Other(99), &[], 0),
        Err(Error::UnknownDtype { .. })
    ));
    assert!(dequantize(DType::Q6_K, &[], 0).unwrap().is_empty());
}

#[test]
fn block_geometry() {
    // bits per weight from the block definitions: Q4_1 is 20 bytes per 32 → 5.0, Q8_0 8.5,
    // Q4_K 144 per 256 → 4.5, Q6_K 210 per 256 → 6.5625.
    let cases = [
        (DType::Q4_1, 5.0),
        (DType::Q8_0, 8.5),
        (DType::Q4_K, 4.5),
        (DType::Q6_K, 6.5625),
        (DType::F16, 16.0),
    ];
    for (d, bits) in cases {
        assert!((d.bits_per_elem() - bits).abs() < 1e-12, "{d}");
        assert_eq!(DType::from_ggml_id(d.ggml_id().unwrap()), Some(d));
    }
}
