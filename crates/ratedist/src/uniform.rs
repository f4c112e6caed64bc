//! Uniform scalar quantizers with per-tensor, per-channel and per-group scales.

use crate::error::{check_finite_f32, check_nonempty, invalid, Result};
use crate::quant::{assemble, Quantized, SCALE_BITS};

/// Where the uniform grid puts its levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UniformMode {
    /// Levels at integer multiples of the step; 0 is a level.
    MidTread,
    /// Levels at half-integer multiples of the step; 0 is a threshold.
    MidRise,
}

/// Which values share one scale (and zero point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Granularity {
    /// One scale for the whole slice.
    PerTensor,
    /// The slice is a row-major matrix with this many rows (channels); one scale per row.
    PerChannel {
        /// Number of rows; must divide the slice length.
        channels: usize,
    },
    /// Consecutive groups of this many values (the last may be shorter); one scale per group.
    PerGroup {
        /// Values per group, ≥ 1.
        group_size: usize,
    },
}

/// Settings of [`uniform_quantize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniformConfig {
    /// Bits per index b (1 ≤ b ≤ 16; symmetric mid-tread needs b ≥ 2).
    pub bits: u32,
    /// Mid-tread or mid-rise.
    pub mode: UniformMode,
    /// Symmetric grid around 0 (scale only) or asymmetric min/max grid (scale and zero point or
    /// offset).
    pub symmetric: bool,
    /// Scale sharing.
    pub granularity: Granularity,
}

impl Default for UniformConfig {
    /// 8-bit asymmetric mid-tread per tensor (the common "int8 with zero point" scheme).
    fn default() -> Self {
        Self {
            bits: 8,
            mode: UniformMode::MidTread,
            symmetric: false,
            granularity: Granularity::PerTensor,
        }
    }
}

/// Uniform scalar quantization of `x` with min/max (or absmax) scales.
///
/// Per group G, with b bits and L = 2^b:
/// ```text
/// mid-tread, asymmetric:  Δ = (max(G,0) − min(G,0)) / (L−1),  z = round(−min/Δ),
///                         q = clamp(round(x/Δ) + z, 0, L−1),   x̂ = (q − z) Δ
/// mid-tread, symmetric:   Δ = max|G| / (L/2 − 1),  k = clamp(round(x/Δ), −(L/2−1), L/2−1),  x̂ = kΔ
/// mid-rise, symmetric:    Δ = max|G| / (L/2),      k = clamp(⌊x/Δ⌋, −L/2, L/2−1),  x̂ = (k+½)Δ
/// mid-rise, asymmetric:   Δ = (max − min) / L,     k = clamp(⌊(x−min)/Δ⌋, 0, L−1), x̂ = min + (k+½)Δ
/// ```
/// Δ (and the mid-rise offset `min`) are rounded to f32 before use. A group whose range is 0 is
/// reconstructed exactly (Δ is treated as 0).
///
/// # Bits
/// Index payload n·b. Side information per group: the scale at [`SCALE_BITS`] bits, plus a
/// b-bit zero point (asymmetric mid-tread) or a 32-bit f32 offset (asymmetric mid-rise).
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` for bits outside 1..=16 (2..=16 for symmetric
/// mid-tread), zero or non-dividing channel counts, or a zero group size.
///
/// # Complexity
/// O(n) time and memory.
///
/// # Example
/// ```
/// use claimlab_ratedist::{uniform_quantize, UniformConfig};
/// let x = [0.0f32, 0.5, 1.0, -1.0];
/// let q = uniform_quantize(&x, &UniformConfig { bits: 2, ..UniformConfig::default() }).unwrap();
/// // Δ = 2/3 and z = 2: levels −4/3, −2/3, 0, 2/3 (0 is exact; 1.0 clamps to 2/3).
/// assert!(q.reconstruction[0].abs() < f32::MIN_POSITIVE);
/// assert!((q.reconstruction[2] - 2.0 / 3.0).abs() < 1e-6);
/// // 4 indices × 2 bits, one 32-bit scale, one 2-bit zero point.
/// assert_eq!(q.total_bits, 8 + 32 + 2);
/// ```
pub fn uniform_quantize(x: &[f32], cfg: &UniformConfig) -> Result<Quantized> {
    check_nonempty("x", x)?;
    check_finite_f32("x", x)?;
    let b = cfg.bits;
    let min_bits = if cfg.symmetric && cfg.mode == UniformMode::MidTread {
        2
    } else {
        1
    };
    if b < min_bits || b > 16 {
        return Err(invalid(
            "bits",
            b,
            "must be in 1..=16 (2..=16 for symmetric mid-tread)",
        ));
    }
    let group = match cfg.granularity {
        Granularity::PerTensor => x.len(),
        Granularity::PerChannel { channels } => {
            if channels == 0 || !x.len().is_multiple_of(channels) {
                return Err(invalid(
                    "channels",
                    channels,
                    "must be >= 1 and divide the length",
                ));
            }
            x.len() / channels
        }
        Granularity::PerGroup { group_size } => {
            if group_size == 0 {
                return Err(invalid("group_size", group_size, "must be >= 1"));
            }
            group_size
        }
    };
    let levels = 1u64 << b;
    let lf = levels as f64;
    let mut recon = Vec::with_capacity(x.len());
    let mut idx = Vec::with_capacity(x.len());
    let mut side = 0u64;
    for g in x.chunks(group) {
        let lo = g.iter().fold(f64::INFINITY, |a, &v| a.min(f64::from(v)));
        let hi = g
            .iter()
            .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
        let absmax = lo.abs().max(hi.abs());
        side += SCALE_BITS;
        match (cfg.mode, cfg.symmetric) {
            (UniformMode::MidTread, false) => {
                side += u64::from(b);
                let (lo0, hi0) = (lo.min(0.0), hi.max(0.0));
                let delta = f64::from(((hi0 - lo0) / (lf - 1.0)) as f32);
                let z = if delta > 0.0 {
                    (-lo0 / delta).round().clamp(0.0, lf - 1.0)
                } else {
                    0.0
                };
                for &v in g {
                    let q = if delta > 0.0 {
                        ((f64::from(v) / delta).round() + z).clamp(0.0, lf - 1.0)
                    } else {
                        z
                    };
                    idx.push(q as u32);
                    recon.push(((q - z) * delta) as f32);
                }
            }
            (UniformMode::MidTread, true) => {
                let kmax = lf / 2.0 - 1.0;
                let delta = f64::from((absmax / kmax) as f32);
                for &v in g {
                    let k = if delta > 0.0 {
                        (f64::from(v) / delta).round().clamp(-kmax, kmax)
                    } else {
                        0.0
                    };
                    idx.push((k + kmax) as u32);
                    recon.push((k * delta) as f32);
                }
            }
            (UniformMode::MidRise, true) => {
                let half = lf / 2.0;
                let delta = f64::from((absmax / half) as f32);
                for &v in g {
                    if delta > 0.0 {
                        let k = (f64::from(v) / delta).floor().clamp(-half, half - 1.0);
                        idx.push((k + half) as u32);
                        recon.push(((k + 0.5) * delta) as f32);
                    } else {
                        idx.push(half as u32);
                        recon.push(0.0);
                    }
                }
            }
            (UniformMode::MidRise, false) => {
                side += SCALE_BITS; // the f32 offset
                let off = f64::from(lo as f32);
                let delta = f64::from(((hi - off) / lf) as f32);
                for &v in g {
                    if delta > 0.0 {
                        let k = ((f64::from(v) - off) / delta).floor().clamp(0.0, lf - 1.0);
                        idx.push(k as u32);
                        recon.push((off + (k + 0.5) * delta) as f32);
                    } else {
                        idx.push(0);
                        recon.push(off as f32);
                    }
                }
            }
        }
    }
    Ok(assemble(
        x,
        recon,
        idx,
        levels as usize,
        side,
        Vec::new(),
        0,
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use claimlab_testkit::rand::RngExt;

    fn all_cfgs(bits: u32, granularity: Granularity) -> Vec<UniformConfig> {
        let mut v = Vec::new();
        for mode in [UniformMode::MidTread, UniformMode::MidRise] {
            for symmetric in [false, true] {
                if symmetric && mode == UniformMode::MidTread && bits < 2 {
                    continue;
                }
                v.push(UniformConfig {
                    bits,
                    mode,
                    symmetric,
                    granularity,
                });
            }
        }
        v
    }

    #[test]
    fn error_bounded_by_half_step_and_bits_exact() {
        let mut r = claimlab_testkit::rng(4);
        let x: Vec<f32> = (0..4096).map(|_| r.random::<f32>() * 4.0 - 1.0).collect();
        for bits in [1, 2, 3, 4, 8] {
            for gran in [
                Granularity::PerTensor,
                Granularity::PerChannel { channels: 16 },
                Granularity::PerGroup { group_size: 100 },
            ] {
                for cfg in all_cfgs(bits, gran) {
                    let q = uniform_quantize(&x, &cfg).unwrap();
                    let groups = match gran {
                        Granularity::PerTensor => 1,
                        Granularity::PerChannel { channels } => channels,
                        Granularity::PerGroup { group_size } => x.len().div_ceil(group_size),
                    } as u64;
                    let per_group = SCALE_BITS
                        + match (cfg.mode, cfg.symmetric) {
                            (UniformMode::MidTread, false) => u64::from(bits),
                            (UniformMode::MidRise, false) => 32,
                            _ => 0,
                        };
                    assert_eq!(q.side_bits, groups * per_group, "{cfg:?}");
                    assert_eq!(q.index_bits, 4096 * u64::from(bits));
                    assert!(q.indices.iter().all(|&i| (i as usize) < q.alphabet_size));
                    let max_err = x
                        .iter()
                        .zip(&q.reconstruction)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    // Per-tensor steps for x in [−1, 3); per-group steps are no larger.
                    let l = (1u32 << bits) as f32;
                    let bound = match (cfg.mode, cfg.symmetric) {
                        // The rounded zero point may add another half step.
                        (UniformMode::MidTread, false) => 4.0 / (l - 1.0),
                        (UniformMode::MidTread, true) => 0.5 * 3.0 / (l / 2.0 - 1.0),
                        (UniformMode::MidRise, true) => 0.5 * 3.0 / (l / 2.0),
                        (UniformMode::MidRise, false) => 0.5 * 4.0 / l,
                    };
                    assert!(max_err <= bound + 1e-5, "{cfg:?} {max_err}");
                }
            }
        }
    }

    #[test]
    fn brute_force_matches_nearest_level() {
        // Symmetric mid-tread and mid-rise pick the nearest of their levels (except exact ties).
        let mut r = claimlab_testkit::rng(9);
        let x: Vec<f32> = (0..500).map(|_| r.random::<f32>() * 2.0 - 1.0).collect();
        for cfg in all_cfgs(3, Granularity::PerTensor) {
            if !cfg.symmetric {
                continue;
            }
            let q = uniform_quantize(&x, &cfg).unwrap();
            let absmax = x.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
            let levels: Vec<f64> = match cfg.mode {
                UniformMode::MidTread => {
                    let d = f64::from((absmax / 3.0) as f32);
                    (-3..=3).map(|k| k as f64 * d).collect()
                }
                UniformMode::MidRise => {
                    let d = f64::from((absmax / 4.0) as f32);
                    (-4..4).map(|k| (k as f64 + 0.5) * d).collect()
                }
            };
            for (&v, &rv) in x.iter().zip(&q.reconstruction) {
                let best = levels
                    .iter()
                    .map(|l| (f64::from(v) - l).abs())
                    .fold(f64::INFINITY, f64::min);
                assert!((f64::from(v) - f64::from(rv)).abs() <= best + 1e-6);
            }
        }
    }

    #[test]
    fn degenerate_inputs() {
        // All zeros: exact reconstruction, zero MSE, every mode.
        for cfg in all_cfgs(4, Granularity::PerGroup { group_size: 3 }) {
            let q = uniform_quantize(&[0.0; 7], &cfg).unwrap();
            assert!(q.mse.abs() < 1e-300, "{cfg:?}");
            assert!(q.index_entropy_bits.abs() < 1e-12);
        }
        // Constant nonzero group: asymmetric mid-rise is exact.
        let cfg = UniformConfig {
            bits: 2,
            mode: UniformMode::MidRise,
            symmetric: false,
            granularity: Granularity::PerTensor,
        };
        assert!(uniform_quantize(&[1.5; 4], &cfg).unwrap().mse < 1e-12);
        let d = UniformConfig::default();
        assert!(matches!(
            uniform_quantize(&[], &d),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            uniform_quantize(&[1.0, f32::NAN], &d),
            Err(Error::NonFinite { index: 1, .. })
        ));
        for bits in [0, 17] {
            assert!(matches!(
                uniform_quantize(&[1.0], &UniformConfig { bits, ..d }),
                Err(Error::InvalidParam { name: "bits", .. })
            ));
        }
        assert!(matches!(
            uniform_quantize(
                &[1.0, 2.0, 3.0],
                &UniformConfig {
                    granularity: Granularity::PerChannel { channels: 2 },
                    ..d
                }
            ),
            Err(Error::InvalidParam {
                name: "channels",
                ..
            })
        ));
    }

    #[test]
    fn matches_reference_uniform_on_gaussian_sample() {
        // Fixed-rate uniform quantizer at the reference's optimal Gaussian steps, applied to the
        // n = 10⁴ sample: the sample MSE must be within sampling error (≈ 5%) of the reference's
        // density MSE. This checks the grid placement, not only self-consistency.
        let r = claimlab_testkit::read_json(
            claimlab_testkit::reference_dir().join("rd/quant_reference.json"),
        );
        let xs: Vec<f32> = claimlab_testkit::read_column(
            claimlab_testkit::reference_dir().join("rd/gauss_n10000_seed8.txt"),
        )
        .iter()
        .map(|&v| v as f32)
        .collect();
        for pt in r["uniform_fixed_rate"].as_array().unwrap().iter().take(4) {
            let bits = pt["bits"].as_f64().unwrap() as u32;
            let step = pt["step"].as_f64().unwrap();
            let half = (1u32 << (bits - 1)) as f32;
            // Scale the data so that max|x| / 2^(b−1) equals the reference step.
            let absmax = xs.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let clip = (half as f64 * step) as f32;
            let clipped: Vec<f32> = xs.iter().map(|v| v.clamp(-clip, clip)).collect();
            let mut with_edge = clipped.clone();
            with_edge.push(if absmax > clip { clip } else { -clip });
            let q = uniform_quantize(
                &with_edge,
                &UniformConfig {
                    bits,
                    mode: UniformMode::MidRise,
                    symmetric: true,
                    granularity: Granularity::PerTensor,
                },
            )
            .unwrap();
            let mse: f64 = xs
                .iter()
                .zip(&q.reconstruction)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
                / xs.len() as f64;
            let want = pt["mse"].as_f64().unwrap();
            assert!(
                (mse / want - 1.0).abs() < 0.06,
                "bits {bits}: {mse} vs {want}"
            );
        }
    }
}
