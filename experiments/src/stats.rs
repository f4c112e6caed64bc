//! Small statistics used by several claims (f64 throughout).

/// Mean and population standard deviation of `xs` (f64 accumulation, two passes).
///
/// Returns `(NaN, NaN)` for an empty slice.
#[must_use]
pub fn mean_std(xs: &[f32]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = xs
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Empirical entropy in bits of the histogram `counts` (zero counts ignored).
#[must_use]
pub fn entropy_bits(counts: impl IntoIterator<Item = u64>) -> f64 {
    let counts: Vec<u64> = counts.into_iter().filter(|&c| c > 0).collect();
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .iter()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Entropy in bits of `xs` rounded to the grid `step * round(x / step)` (mid-tread bins).
#[must_use]
pub fn quantized_entropy_bits(xs: &[f32], step: f64) -> f64 {
    entropy_of_codes(
        xs.iter()
            .map(|&x| (f64::from(x) / step).round() as i64)
            .collect(),
    )
}

/// Differential entropy in bits of a Gaussian with standard deviation `sigma`: ½·log2(2πeσ²).
#[must_use]
pub fn gaussian_differential_entropy_bits(sigma: f64) -> f64 {
    0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * sigma * sigma).log2()
}

/// Empirical entropy in bits of a stream of integer codes.
#[must_use]
pub fn entropy_of_codes(mut codes: Vec<i64>) -> f64 {
    codes.sort_unstable();
    let mut counts = Vec::new();
    let mut i = 0;
    while i < codes.len() {
        let mut j = i;
        while j < codes.len() && codes[j] == codes[i] {
            j += 1;
        }
        counts.push((j - i) as u64);
        i = j;
    }
    entropy_bits(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_uniform_and_point() {
        assert!((entropy_bits([5, 5, 5, 5]) - 2.0).abs() < 1e-12);
        assert!(entropy_bits([7]).abs() < 1e-12);
        assert!(entropy_bits([]).abs() < 1e-12);
    }

    #[test]
    fn gaussian_entropy_of_unit_variance_is_2_05_bits() {
        // ½ log2(2πe) = 2.0471 bits; the source's 4.13 is not this number.
        assert!((gaussian_differential_entropy_bits(1.0) - 2.047_095_585).abs() < 1e-8);
    }

    #[test]
    fn quantized_entropy_matches_h_minus_log_step_for_a_gaussian_sample() {
        use std::f64::consts::PI;
        // Deterministic Gaussian sample by the inverse of a Box-Muller over a regular grid.
        let n = 200_000;
        let mut xs = Vec::with_capacity(n);
        let mut state: u64 = 42;
        for _ in 0..n / 2 {
            let mut next = || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let (u1, u2) = (next(), next());
            let r = (-2.0 * u1.ln()).sqrt();
            xs.push((r * (2.0 * PI * u2).cos()) as f32);
            xs.push((r * (2.0 * PI * u2).sin()) as f32);
        }
        let h = gaussian_differential_entropy_bits(1.0);
        for step in [0.25, 0.1, 0.05] {
            let got = quantized_entropy_bits(&xs, step);
            let want = h - step.log2();
            assert!((got - want).abs() < 0.02, "step {step}: {got} vs {want}");
        }
    }

    #[test]
    fn mean_std_basic() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert!(mean_std(&[]).0.is_nan());
    }
}
