//! Fixed codebooks with absmax block scaling (NF4 and user-supplied).

use crate::error::{check_finite, check_finite_f32, check_nonempty, invalid, Result};
use crate::quant::{assemble, nearest_sorted, Quantized, SCALE_BITS};

/// The 16 NF4 levels of QLoRA (Dettmers et al. 2023, bitsandbytes), normalised to [−1, 1]:
/// quantiles of N(0, 1) with an exact zero, asymmetric (8 positive, 7 negative).
pub const NF4_LEVELS: [f64; 16] = [
    -1.0,
    -0.696_192_800_998_687_7,
    -0.525_073_051_452_636_7,
    -0.394_917_488_098_144_53,
    -0.284_441_381_692_886_35,
    -0.184_773_430_228_233_34,
    -0.091_050_036_251_544_95,
    0.0,
    0.079_580_299_556_255_34,
    0.160_930_201_411_247_25,
    0.246_112_301_945_686_34,
    0.337_915_241_718_292_24,
    0.440_709_829_330_444_34,
    0.562_617_003_917_694_1,
    0.722_956_836_223_602_3,
    1.0,
];

/// Quantizes `x` with a fixed normalised codebook and one absmax scale per block.
///
/// ```text
/// per block B: s = max|B| (as f32),  j = nearest level to x/s,  x̂ = levels[j] · s
/// ```
///
/// # Arguments
/// * `codebook` — ascending, finite, within [−1, 1], 1 to 65 536 entries.
/// * `block_size` — values per scale, ≥ 1 (the last block may be shorter).
///
/// # Bits
/// Index payload n·⌈log₂ |codebook|⌉; side information one f32 scale ([`SCALE_BITS`]) per
/// block. The codebook is fixed and known to the decoder, so it is not charged.
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` for a bad codebook or block size.
///
/// # Complexity
/// O(n log |codebook|).
///
/// # Example
/// ```
/// use claimlab_ratedist::{fixed_codebook_quantize, NF4_LEVELS};
/// let q = fixed_codebook_quantize(&[1.0, -0.5, 0.0, 2.0], &NF4_LEVELS, 2).unwrap();
/// assert_eq!(q.total_bits, 4 * 4 + 2 * 32);
/// assert!((q.reconstruction[3] - 2.0).abs() < 1e-7);
/// ```
pub fn fixed_codebook_quantize(
    x: &[f32],
    codebook: &[f64],
    block_size: usize,
) -> Result<Quantized> {
    check_nonempty("x", x)?;
    check_finite_f32("x", x)?;
    check_nonempty("codebook", codebook)?;
    check_finite("codebook", codebook)?;
    if codebook.len() > 1 << 16
        || codebook.windows(2).any(|w| w[0] >= w[1])
        || codebook.iter().any(|v| v.abs() > 1.0)
    {
        return Err(invalid(
            "codebook",
            codebook.len(),
            "must be strictly ascending, within [-1, 1], at most 65536 entries",
        ));
    }
    if block_size == 0 {
        return Err(invalid("block_size", block_size, "must be >= 1"));
    }
    let mut idx = Vec::with_capacity(x.len());
    let mut rec = Vec::with_capacity(x.len());
    let mut side = 0;
    for blk in x.chunks(block_size) {
        side += SCALE_BITS;
        let s = f64::from(blk.iter().fold(0.0f32, |a, v| a.max(v.abs())));
        for &v in blk {
            let u = if s > 0.0 { f64::from(v) / s } else { 0.0 };
            let j = nearest_sorted(codebook, u);
            idx.push(j as u32);
            rec.push((codebook[j] * s) as f32);
        }
    }
    Ok(assemble(
        x,
        rec,
        idx,
        codebook.len(),
        side,
        codebook.to_vec(),
        0,
        true,
    ))
}

/// NF4 quantization: [`fixed_codebook_quantize`] with [`NF4_LEVELS`] (QLoRA uses blocks of 64).
///
/// # Errors
/// As [`fixed_codebook_quantize`].
///
/// # References
/// T. Dettmers, A. Pagnoni, A. Holtzman & L. Zettlemoyer, "QLoRA: Efficient finetuning of
/// quantized LLMs", NeurIPS 2023, §3 (double quantization of the scales is not modelled).
///
/// # Example
/// ```
/// let q = claimlab_ratedist::nf4_quantize(&[0.3f32; 128], 64).unwrap();
/// assert!((q.bits_per_weight - 4.5).abs() < 1e-12);
/// ```
pub fn nf4_quantize(x: &[f32], block_size: usize) -> Result<Quantized> {
    fixed_codebook_quantize(x, &NF4_LEVELS, block_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use claimlab_testkit::{read_column, reference_dir};

    #[test]
    fn nf4_on_gaussian_and_brute_force() {
        let xs: Vec<f32> = read_column(reference_dir().join("rd/gauss_n10000_seed8.txt"))
            .iter()
            .map(|&v| v as f32)
            .collect();
        let q = nf4_quantize(&xs, 64).unwrap();
        assert_eq!(q.side_bits, xs.len().div_ceil(64) as u64 * 32);
        assert_eq!(q.index_bits, xs.len() as u64 * 4);
        // Brute force: each value uses the nearest scaled level of its block.
        for (b, blk) in xs.chunks(64).enumerate() {
            let s = blk.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
            for (k, &v) in blk.iter().enumerate() {
                let best = NF4_LEVELS
                    .iter()
                    .map(|l| (f64::from(v) - l * s).abs())
                    .fold(f64::INFINITY, f64::min);
                let got = (f64::from(v) - f64::from(q.reconstruction[b * 64 + k])).abs();
                assert!(got <= best + 1e-6);
            }
        }
        // At 4.5 bits per weight NF4 cannot beat the Gaussian D(R) = σ² 2^(−9), and it must
        // beat the best fixed-rate 4-bit uniform quantizer without scales (0.01154).
        let bound = 0.980_666_7 * (-9.0f64).exp2();
        assert!((q.bits_per_weight - 4.5).abs() < 0.01);
        assert!(q.mse > bound && q.mse < 0.011_54, "{}", q.mse);
        assert!(NF4_LEVELS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn degenerate_inputs() {
        let q = nf4_quantize(&[0.0; 10], 4).unwrap();
        assert!(q.mse.abs() < 1e-300);
        assert!(matches!(nf4_quantize(&[], 4), Err(Error::Empty { .. })));
        assert!(matches!(
            nf4_quantize(&[1.0, f32::INFINITY], 4),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            nf4_quantize(&[1.0], 0),
            Err(Error::InvalidParam {
                name: "block_size",
                ..
            })
        ));
        assert!(matches!(
            fixed_codebook_quantize(&[1.0], &[0.5, 0.2], 4),
            Err(Error::InvalidParam {
                name: "codebook",
                ..
            })
        ));
    }
}
