//! Small statistics for accuracies: the Wilson interval and the exact binomial tail.

use crate::error::{Error, Result};
use crate::tol::Z95;

/// Wilson score 95% interval of a proportion with `successes` out of `trials`.
///
/// ```text
/// centre = (p̂ + z²/2n) / (1 + z²/n),  half = z √(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n),  z = 1.95996
/// ```
///
/// # Errors
/// [`Error::Empty`] when `trials == 0`; [`Error::InvalidParam`] when `successes > trials`.
///
/// # References
/// E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
/// JASA 22 (1927) 209–212.
///
/// # Example
/// ```
/// let (lo, hi) = claimlab_concepts::wilson_interval(50, 100).unwrap();
/// assert!((lo - 0.4038).abs() < 1e-4 && (hi - 0.5962).abs() < 1e-4);
/// ```
pub fn wilson_interval(successes: usize, trials: usize) -> Result<(f64, f64)> {
    if trials == 0 {
        return Err(Error::Empty);
    }
    if successes > trials {
        return Err(Error::InvalidParam {
            name: "successes",
            value: successes as f64,
            reason: "more successes than trials",
        });
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Ok(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// One-sided exact binomial p-value `P(X ≥ successes)` for `X ~ Binomial(trials, p)`.
///
/// Summed in log space from the largest term, so it is accurate for tails far below 1e−300 ratio
/// and for `trials` up to millions (O(trials) time).
///
/// # Errors
/// [`Error::InvalidParam`] when `p` is outside [0, 1] or `successes > trials`.
///
/// # Example
/// ```
/// // 8 or more heads in 10 fair tosses: 56/1024.
/// let p = claimlab_concepts::binomial_upper_tail(8, 10, 0.5).unwrap();
/// assert!((p - 56.0 / 1024.0).abs() < 1e-12);
/// ```
pub fn binomial_upper_tail(successes: usize, trials: usize, p: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::InvalidParam {
            name: "p",
            value: p,
            reason: "a probability lies in [0, 1]",
        });
    }
    if successes > trials {
        return Err(Error::InvalidParam {
            name: "successes",
            value: successes as f64,
            reason: "more successes than trials",
        });
    }
    if successes == 0 {
        return Ok(1.0);
    }
    if p <= 0.0 {
        return Ok(0.0);
    }
    if p >= 1.0 {
        return Ok(1.0);
    }
    let n = trials as f64;
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    // log C(n, k) through ln Γ by summation of logs is O(n); use the recurrence instead.
    let mut logs = Vec::with_capacity(trials - successes + 1);
    // log pmf(successes) by a direct sum of logs.
    let mut lc = 0.0;
    for i in 0..successes {
        lc += ((n - i as f64) / (i as f64 + 1.0)).ln();
    }
    let mut lt = lc + successes as f64 * lp + (n - successes as f64) * lq;
    logs.push(lt);
    for k in successes..trials {
        let kf = k as f64;
        lt += ((n - kf) / (kf + 1.0)).ln() + lp - lq;
        logs.push(lt);
    }
    let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = logs.iter().map(|l| (l - m).exp()).sum();
    Ok((m + s.ln()).exp().min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_matches_brute_force() {
        fn choose(n: u64, k: u64) -> f64 {
            (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        }
        for &(n, p) in &[(7usize, 0.3f64), (12, 0.5), (20, 0.9), (1, 0.2)] {
            for k in 0..=n {
                let brute: f64 = (k..=n)
                    .map(|j| {
                        choose(n as u64, j as u64)
                            * p.powi(j as i32)
                            * (1.0 - p).powi((n - j) as i32)
                    })
                    .sum();
                let fast = binomial_upper_tail(k, n, p).unwrap();
                assert!(
                    (fast - brute).abs() < 1e-12 * brute.max(1e-300) + 1e-15,
                    "{n} {k} {p}"
                );
            }
        }
    }

    #[test]
    fn tail_errors_and_edges() {
        assert!(matches!(
            binomial_upper_tail(1, 2, 1.5),
            Err(Error::InvalidParam { name: "p", .. })
        ));
        assert!(matches!(
            binomial_upper_tail(3, 2, 0.5),
            Err(Error::InvalidParam {
                name: "successes",
                ..
            })
        ));
        assert!((binomial_upper_tail(0, 5, 0.3).unwrap() - 1.0).abs() < 1e-15);
        // Far tail stays positive and tiny: P(X ≥ 1000 | 1000, 0.5) = 2^-1000.
        let t = binomial_upper_tail(1000, 1000, 0.5).unwrap();
        assert!((t.ln() - (-1000.0 * 2f64.ln())).abs() < 1e-9);
    }

    #[test]
    fn wilson_known_and_errors() {
        let (lo, hi) = wilson_interval(0, 10).unwrap();
        assert!(lo.abs() < 1e-15 && (hi - 0.277_532).abs() < 1e-5);
        assert!(matches!(wilson_interval(0, 0), Err(Error::Empty)));
        assert!(matches!(
            wilson_interval(3, 2),
            Err(Error::InvalidParam { .. })
        ));
    }
}
