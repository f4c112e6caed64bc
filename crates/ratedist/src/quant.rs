//! The result type shared by the operational quantizers, and the side-information bit widths.

/// Bits charged for each stored scale (and each asymmetric mid-rise offset): an IEEE f32. The
/// reconstruction uses the f32-rounded scale, so the charge is exact.
pub const SCALE_BITS: u64 = 32;
/// Bits charged for each codebook value of a trained codebook (Lloyd-Max, k-means, ECSQ): f32.
pub const CODEBOOK_VALUE_BITS: u64 = 32;

/// Output of an operational quantizer on a slice of `f32`.
///
/// Rates: `index_bits` is the fixed-rate payload (⌈log₂ alphabet⌉ bits per weight),
/// `side_bits` the side information (scales at [`SCALE_BITS`], zero points at the quantizer's bit
/// width, codebook values at [`CODEBOOK_VALUE_BITS`]), `total_bits` their sum. An entropy coder
/// replaces `index_bits` by about `n · index_entropy_bits` (see [`encode_symbols`](crate::encode_symbols)
/// for the real size).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Quantized {
    /// The dequantised values, one per input value.
    pub reconstruction: Vec<f32>,
    /// The symbol stored for each value, in `0..alphabet_size`.
    pub indices: Vec<u32>,
    /// Size of the index alphabet.
    pub alphabet_size: usize,
    /// Mean squared error between input and reconstruction (computed in f64).
    pub mse: f64,
    /// Fixed-rate payload in bits: n · ⌈log₂ alphabet_size⌉.
    pub index_bits: u64,
    /// Side information in bits (scales, zero points, codebooks).
    pub side_bits: u64,
    /// `index_bits + side_bits`.
    pub total_bits: u64,
    /// `total_bits / n`.
    pub bits_per_weight: f64,
    /// Empirical entropy of `indices`, in bits per weight (the ideal entropy-coded payload).
    pub index_entropy_bits: f64,
    /// The codebook (reconstruction levels) when the quantizer uses one shared codebook; empty
    /// for scaled quantizers whose levels differ per group.
    pub codebook: Vec<f64>,
    /// Iterations of the training loop (0 for non-iterative quantizers).
    pub iterations: usize,
    /// Whether the training loop met its stopping rule (true for non-iterative quantizers).
    pub converged: bool,
}

/// ⌈log₂ k⌉ for k ≥ 1 (0 for k = 1).
pub(crate) fn ceil_log2(k: usize) -> u64 {
    if k <= 1 {
        0
    } else {
        u64::from(usize::BITS - (k - 1).leading_zeros())
    }
}

/// Empirical entropy of a symbol stream in bits per symbol (0 for an empty stream).
pub(crate) fn entropy_of_counts(counts: &[u64], n: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / nf;
            -p * p.log2()
        })
        .sum()
}

/// Assembles a [`Quantized`] from its parts, computing MSE, fixed-rate bits and entropy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    x: &[f32],
    reconstruction: Vec<f32>,
    indices: Vec<u32>,
    alphabet_size: usize,
    side_bits: u64,
    codebook: Vec<f64>,
    iterations: usize,
    converged: bool,
) -> Quantized {
    let n = x.len();
    let mut err = 0.0;
    for (&a, &b) in x.iter().zip(&reconstruction) {
        let d = f64::from(a) - f64::from(b);
        err += d * d;
    }
    let mut counts = vec![0u64; alphabet_size];
    for &i in &indices {
        counts[i as usize] += 1;
    }
    let index_bits = n as u64 * ceil_log2(alphabet_size);
    let total_bits = index_bits + side_bits;
    Quantized {
        reconstruction,
        indices,
        alphabet_size,
        mse: err / n as f64,
        index_bits,
        side_bits,
        total_bits,
        bits_per_weight: total_bits as f64 / n as f64,
        index_entropy_bits: entropy_of_counts(&counts, n as u64),
        codebook,
        iterations,
        converged,
    }
}

/// Index of the nearest level in a sorted codebook (ties go to the upper level).
pub(crate) fn nearest_sorted(levels: &[f64], v: f64) -> usize {
    // First level whose midpoint with its predecessor exceeds v.
    let mut lo = 0;
    let mut hi = levels.len() - 1;
    while lo < hi {
        let mid = (lo + hi) / 2;
        if v >= 0.5 * (levels[mid] + levels[mid + 1]) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(16), 4);
        assert_eq!(ceil_log2(17), 5);
        let levels = [-1.0, 0.0, 2.0];
        assert_eq!(nearest_sorted(&levels, -0.6), 0);
        assert_eq!(nearest_sorted(&levels, -0.5), 1);
        assert_eq!(nearest_sorted(&levels, 0.99), 1);
        assert_eq!(nearest_sorted(&levels, 1.0), 2);
        assert_eq!(nearest_sorted(&levels, 50.0), 2);
        assert_eq!(nearest_sorted(&[3.0], -5.0), 0);
        assert!((entropy_of_counts(&[1, 1, 2], 4) - 1.5).abs() < 1e-15);
    }
}
