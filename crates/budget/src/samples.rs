//! Sample-size formulas for calibration: how many samples a mean, a distribution function or a tail
//! event needs for a stated accuracy and confidence.

use crate::error::{Error, Result};

fn check_open_unit(name: &'static str, value: f64) -> Result<()> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidParam {
            name,
            value,
            reason: "must lie in (0, 1)",
        })
    }
}

fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParam {
            name,
            value,
            reason: "must be finite and positive",
        })
    }
}

fn ceil_count(x: f64) -> Result<u64> {
    // 2^63 keeps the conversion exact and leaves room for callers' arithmetic.
    if x.is_finite() && x < 9.223_372_036_854_776e18 {
        Ok(x.ceil().max(1.0) as u64)
    } else {
        Err(Error::TooLarge {
            what: "sample count",
            needed: u128::MAX,
            limit: 1 << 63,
        })
    }
}

/// Samples needed to estimate a mean within `±epsilon` with probability at least `1 − delta`, for
/// values in an interval of width `range` (Hoeffding, two-sided).
///
/// ```text
/// n = ⌈ range² · ln(2/δ) / (2 ε²) ⌉
/// ```
///
/// # Errors
/// [`Error::InvalidParam`] for `range` or `epsilon` not finite and positive, or `delta` outside
/// `(0, 1)`; [`Error::TooLarge`] when `n` exceeds 2^63.
///
/// # References
/// Hoeffding (1963), "Probability inequalities for sums of bounded random variables", JASA 58(301),
/// 13–30, doi:10.1080/01621459.1963.10500830, Theorem 2.
///
/// # Example
/// ```
/// use claimlab_budget::hoeffding_samples;
/// assert_eq!(hoeffding_samples(1.0, 0.1, 0.05).unwrap(), 185);
/// ```
pub fn hoeffding_samples(range: f64, epsilon: f64, delta: f64) -> Result<u64> {
    check_positive("range", range)?;
    check_positive("epsilon", epsilon)?;
    check_open_unit("delta", delta)?;
    ceil_count(range * range * (2.0 / delta).ln() / (2.0 * epsilon * epsilon))
}

/// Samples needed for the empirical distribution function to lie within `epsilon` of the true one
/// everywhere with probability at least `1 − delta` (Dvoretzky–Kiefer–Wolfowitz with Massart's
/// constant): enough to calibrate any quantile (a clipping range) to `±epsilon` in probability.
///
/// ```text
/// n = ⌈ ln(2/δ) / (2 ε²) ⌉
/// ```
///
/// # Errors
/// [`Error::InvalidParam`] for `epsilon` or `delta` outside `(0, 1)`.
///
/// # References
/// Massart (1990), "The tight constant in the Dvoretzky–Kiefer–Wolfowitz inequality", Ann. Probab.
/// 18(3), 1269–1283, doi:10.1214/aop/1176990746.
///
/// # Example
/// ```
/// use claimlab_budget::dkw_samples;
/// assert_eq!(dkw_samples(0.01, 0.05).unwrap(), 18_445);
/// ```
pub fn dkw_samples(epsilon: f64, delta: f64) -> Result<u64> {
    check_open_unit("epsilon", epsilon)?;
    check_open_unit("delta", delta)?;
    ceil_count((2.0 / delta).ln() / (2.0 * epsilon * epsilon))
}

/// Samples needed to see at least once an event of probability at least `p`, with probability at
/// least `1 − delta`. For the largest-ratio Lipschitz estimate: with this many sampled pairs, the
/// estimate reaches the top-`p` fraction of all pair ratios with probability at least `1 − delta`.
///
/// ```text
/// n = ⌈ ln δ / ln(1 − p) ⌉     (so that (1 − p)^n ≤ δ)
/// ```
///
/// # Errors
/// [`Error::InvalidParam`] for `p` or `delta` outside `(0, 1)`.
///
/// # Example
/// ```
/// use claimlab_budget::tail_samples;
/// assert_eq!(tail_samples(0.01, 0.05).unwrap(), 299);
/// ```
pub fn tail_samples(p: f64, delta: f64) -> Result<u64> {
    check_open_unit("p", p)?;
    check_open_unit("delta", delta)?;
    ceil_count(delta.ln() / (-p).ln_1p())
}

/// The probability that `n` independent samples include at least one event of probability `p`:
/// `1 − (1 − p)^n`, the confidence to state beside a largest-ratio estimate from `n` pairs.
///
/// # Errors
/// [`Error::InvalidParam`] for `p` outside `[0, 1]`.
///
/// # Example
/// ```
/// use claimlab_budget::tail_confidence;
/// assert!((tail_confidence(299, 0.01).unwrap() - 0.9505).abs() < 1e-4);
/// ```
pub fn tail_confidence(n: u64, p: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::InvalidParam {
            name: "p",
            value: p,
            reason: "must lie in [0, 1]",
        });
    }
    // 1 − exp(n ln(1 − p)), without cancellation for small p.
    Ok(-((n as f64) * (-p).ln_1p()).exp_m1())
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    /// Each count is the least one meeting its inequality.
    #[test]
    fn counts_are_minimal() {
        for &(eps, delta) in &[(0.1, 0.05), (0.01, 0.001), (0.3, 0.5), (0.05, 0.2)] {
            let n = dkw_samples(eps, delta).unwrap() as f64;
            let meets = |n: f64| 2.0 * (-2.0 * n * eps * eps).exp() <= delta;
            assert!(meets(n) && !meets(n - 1.0));
            let h = hoeffding_samples(3.0, eps, delta).unwrap() as f64;
            let meets = |n: f64| 2.0 * (-2.0 * n * eps * eps / 9.0).exp() <= delta;
            assert!(meets(h) && !meets(h - 1.0));
            let t = tail_samples(eps, delta).unwrap();
            assert!(1.0 - tail_confidence(t, eps).unwrap() <= delta);
            assert!(1.0 - tail_confidence(t - 1, eps).unwrap() > delta);
        }
    }

    /// Seeded Monte Carlo: the chance of seeing a p-event in n = tail_samples(p, δ) draws is at least
    /// 1 − δ. With 4000 trials and a true miss rate ≤ 0.1, observing more than 0.12 misses has
    /// probability below 1e-3 (binomial tail), so this test's false-alarm rate is below 0.001.
    #[test]
    fn tail_formula_by_simulation() {
        let (p, delta) = (0.02, 0.1);
        let n = tail_samples(p, delta).unwrap();
        let mut rng = claimlab_testkit::rng(44);
        let trials = 4000;
        let misses = (0..trials)
            .filter(|_| (0..n).all(|_| rng.random::<f64>() >= p))
            .count();
        assert!(
            (misses as f64) / f64::from(trials) <= 0.12,
            "misses {misses}"
        );
    }

    #[test]
    fn errors() {
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                dkw_samples(bad, 0.1),
                Err(Error::InvalidParam {
                    name: "epsilon",
                    ..
                })
            ));
            assert!(matches!(
                dkw_samples(0.1, bad),
                Err(Error::InvalidParam { name: "delta", .. })
            ));
            assert!(matches!(
                tail_samples(bad, 0.1),
                Err(Error::InvalidParam { name: "p", .. })
            ));
            assert!(matches!(
                hoeffding_samples(1.0, 0.1, bad),
                Err(Error::InvalidParam { name: "delta", .. })
            ));
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                hoeffding_samples(bad, 0.1, 0.1),
                Err(Error::InvalidParam { name: "range", .. })
            ));
            assert!(matches!(
                hoeffding_samples(1.0, bad, 0.1),
                Err(Error::InvalidParam {
                    name: "epsilon",
                    ..
                })
            ));
        }
        assert!(matches!(
            tail_confidence(3, 1.5),
            Err(Error::InvalidParam { name: "p", .. })
        ));
        assert!(matches!(
            hoeffding_samples(1.0, 1e-200, 0.1),
            Err(Error::TooLarge { .. })
        ));
    }
}
