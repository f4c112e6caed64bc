//! Tail-index estimators from the top order statistics: Hill (with a stability series over k),
//! Pickands and the Dekkers-Einmahl-de Haan moment estimator.
//!
//! Order statistics are 1-based and descending: `X_(1) ≥ X_(2) ≥ … ≥ X_(n)`. Each estimates the
//! extreme-value index `ξ > 0`; the tail index is `1/ξ` (CCDF ∝ x^(−1/ξ)) and the pdf exponent of
//! the crate's convention is `alpha = 1 + 1/ξ`.

use crate::error::{check_finite, Error, Result};

/// One tail-index estimate at a given k.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TailEstimate {
    /// Number of top order statistics used.
    pub k: usize,
    /// The threshold order statistic `X_(k+1)` (Hill and moment) or `X_(4k)` (Pickands).
    pub threshold: f64,
    /// Extreme-value index ξ (for Hill, the mean log excess `H`).
    pub xi: f64,
    /// Tail index `1/ξ`.
    pub tail_index: f64,
    /// pdf exponent `1 + 1/ξ`.
    pub alpha_pdf: f64,
}

impl TailEstimate {
    fn new(k: usize, threshold: f64, xi: f64) -> Self {
        Self {
            k,
            threshold,
            xi,
            tail_index: 1.0 / xi,
            alpha_pdf: 1.0 + 1.0 / xi,
        }
    }
}

/// Sorted descending copy after validation.
fn descending(data: &[f64]) -> Result<Vec<f64>> {
    check_finite(data)?;
    let mut x = data.to_vec();
    x.sort_by(|a, b| b.total_cmp(a));
    Ok(x)
}

fn check_k(k: usize, max: usize) -> Result<()> {
    if k == 0 || k > max {
        return Err(Error::InvalidParam {
            name: "k",
            value: k as f64,
            reason: "must satisfy 1 ≤ k and leave enough order statistics below the top k",
        });
    }
    Ok(())
}

/// Hill estimates for every `k` in `ks` from one sort and prefix sums of logs (a Hill plot).
///
/// ```text
/// H_k = (1/k) Σ_{i=1..k} ln(X_(i) / X_(k+1)),   tail index = 1/H_k,   alpha = 1 + 1/H_k
/// ```
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`]; [`Error::InvalidParam`] for `k = 0` or `k ≥ n`;
/// [`Error::OutOfDomain`] if a threshold `X_(k+1)` is ≤ 0; [`Error::Degenerate`] if the top `k+1`
/// values are all equal (H = 0).
///
/// # Complexity
/// O(n log n + |ks|) time, O(n) memory.
///
/// # References
/// B. M. Hill, "A simple general approach to inference about the tail of a distribution",
/// Annals of Statistics 3(5), 1163–1174 (1975), doi:10.1214/aos/1176343247.
///
/// # Example
/// ```
/// // exact Pareto quantiles with ξ = 0.5: X_(j) = (n/j)^0.5
/// let x: Vec<f64> = (1..=10_000).map(|j| (10_000.0 / j as f64).sqrt()).collect();
/// let h = claimlab_spectral::hill_series(&x, &[100, 1000]).unwrap();
/// // H_k = 0.5 (ln(k+1) − ln(k!)/k): 0.489 at k = 100, 0.4985 at k = 1000
/// assert!((h[0].xi - 0.489).abs() < 1e-3 && (h[1].alpha_pdf - 3.006).abs() < 1e-3);
/// ```
pub fn hill_series(data: &[f64], ks: &[usize]) -> Result<Vec<TailEstimate>> {
    let x = descending(data)?;
    let n = x.len();
    for &k in ks {
        check_k(k, n - 1)?;
    }
    let kmax = ks.iter().copied().max().unwrap_or(0);
    if let Some(i) = (0..=kmax.min(n - 1)).find(|&i| !(x[i] > 0.0)) {
        return Err(Error::OutOfDomain {
            index: i,
            value: x[i],
            reason: "Hill needs positive top order statistics",
        });
    }
    let mut prefix = Vec::with_capacity(kmax + 1);
    prefix.push(0.0);
    let mut acc = 0.0;
    for v in &x[..kmax] {
        acc += v.ln();
        prefix.push(acc);
    }
    ks.iter()
        .map(|&k| {
            let t = x[k];
            let h = prefix[k] / k as f64 - t.ln();
            if !(h > 0.0) {
                return Err(Error::Degenerate(
                    "the top k + 1 values are equal: Hill's H is 0",
                ));
            }
            Ok(TailEstimate::new(k, t, h))
        })
        .collect()
}

/// The Hill estimate at one `k`; see [`hill_series`].
///
/// # Errors
/// As [`hill_series`].
pub fn hill_estimator(data: &[f64], k: usize) -> Result<TailEstimate> {
    Ok(hill_series(data, &[k])?[0])
}

/// Pickands' estimator of ξ from `X_(k)`, `X_(2k)`, `X_(4k)` (needs `4k ≤ n`).
///
/// ```text
/// ξ = ln[(X_(k) − X_(2k)) / (X_(2k) − X_(4k))] / ln 2
/// ```
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`]; [`Error::InvalidParam`] unless `1 ≤ k ≤ n/4`;
/// [`Error::Degenerate`] when the spacings vanish or the estimate is not positive (ξ ≤ 0 has no
/// power-law tail index).
///
/// # References
/// J. Pickands III, "Statistical inference using extreme order statistics", Annals of Statistics
/// 3(1), 119–131 (1975), doi:10.1214/aos/1176343003.
///
/// # Example
/// ```
/// let x: Vec<f64> = (1..=4000).map(|j| (4000.0 / j as f64).powf(0.7)).collect();
/// let p = claimlab_spectral::pickands_estimator(&x, 100).unwrap();
/// assert!((p.xi - 0.7).abs() < 1e-12);
/// ```
pub fn pickands_estimator(data: &[f64], k: usize) -> Result<TailEstimate> {
    let x = descending(data)?;
    check_k(k, x.len() / 4)?;
    let (a, b, c) = (x[k - 1], x[2 * k - 1], x[4 * k - 1]);
    let xi = ((a - b) / (b - c)).ln() / std::f64::consts::LN_2;
    if !(xi > 0.0) || !xi.is_finite() {
        return Err(Error::Degenerate(
            "Pickands' estimate is not a positive finite number",
        ));
    }
    Ok(TailEstimate::new(k, c, xi))
}

/// The moment estimator of Dekkers, Einmahl and de Haan.
///
/// ```text
/// M_j = (1/k) Σ_{i=1..k} ln(X_(i) / X_(k+1))^j,   ξ = M_1 + 1 − 1 / (2 (1 − M_1² / M_2))
/// ```
///
/// # Errors
/// As [`hill_series`]; also [`Error::Degenerate`] when the estimate is not positive.
///
/// # References
/// A. L. M. Dekkers, J. H. J. Einmahl, L. de Haan, "A moment estimator for the index of an
/// extreme-value distribution", Annals of Statistics 17(4), 1833–1855 (1989),
/// doi:10.1214/aos/1176347397.
///
/// # Example
/// ```
/// let x: Vec<f64> = (1..=20_000).map(|j| (20_000.0 / j as f64).powf(0.5)).collect();
/// let m = claimlab_spectral::moment_estimator(&x, 2000).unwrap();
/// assert!((m.xi - 0.5).abs() < 0.01);
/// ```
pub fn moment_estimator(data: &[f64], k: usize) -> Result<TailEstimate> {
    let x = descending(data)?;
    check_k(k, x.len() - 1)?;
    if let Some(i) = (0..=k).find(|&i| !(x[i] > 0.0)) {
        return Err(Error::OutOfDomain {
            index: i,
            value: x[i],
            reason: "the moment estimator needs positive top order statistics",
        });
    }
    let lt = x[k].ln();
    let (m1, m2) = x[..k].iter().fold((0.0, 0.0), |(a, b), v| {
        let d = v.ln() - lt;
        (a + d, b + d * d)
    });
    let (m1, m2) = (m1 / k as f64, m2 / k as f64);
    if !(m2 > 0.0) {
        return Err(Error::Degenerate("the top k + 1 values are equal"));
    }
    let xi = m1 + 1.0 - 0.5 / (1.0 - m1 * m1 / m2);
    if !(xi > 0.0) || !xi.is_finite() {
        return Err(Error::Degenerate(
            "the moment estimate is not a positive finite number",
        ));
    }
    Ok(TailEstimate::new(k, x[k], xi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;
    use claimlab_testkit::rng;

    #[test]
    fn hill_matches_direct_sum() {
        let mut r = rng(8);
        let data: Vec<f64> = (0..500)
            .map(|_| (1.0 - r.random::<f64>()).powf(-0.8))
            .collect();
        let ks = [1, 7, 50, 499];
        let hs = hill_series(&data, &ks).unwrap();
        let mut x = data.clone();
        x.sort_by(|a, b| b.total_cmp(a));
        for (h, &k) in hs.iter().zip(&ks) {
            let direct = x[..k].iter().map(|v| (v / x[k]).ln()).sum::<f64>() / k as f64;
            assert!((h.xi - direct).abs() < 1e-12 * direct);
            assert_eq!(h.threshold.to_bits(), x[k].to_bits());
        }
    }

    #[test]
    fn estimators_on_a_pareto_sample() {
        // Pareto with ξ = 2/3 (alpha = 2.5), n = 20000, k = 1000. Asymptotic standard errors:
        // Hill ξ/√k = 0.021, moment √(1+ξ²)/√k = 0.038, Pickands ≈ 2.0/√k = 0.064.
        // Bounds at 4 standard errors: false alarm below 1e-4 each.
        let mut r = rng(21);
        let data: Vec<f64> = (0..20_000)
            .map(|_| (1.0 - r.random::<f64>()).powf(-2.0 / 3.0))
            .collect();
        let xi = 2.0 / 3.0;
        assert!((hill_estimator(&data, 1000).unwrap().xi - xi).abs() < 4.0 * 0.021);
        assert!((moment_estimator(&data, 1000).unwrap().xi - xi).abs() < 4.0 * 0.038);
        assert!((pickands_estimator(&data, 1000).unwrap().xi - xi).abs() < 4.0 * 0.064);
    }

    #[test]
    fn error_paths() {
        assert_eq!(hill_estimator(&[], 1), Err(Error::Empty));
        assert_eq!(
            hill_estimator(&[1.0, f64::NAN], 1),
            Err(Error::NonFinite { index: 1, count: 1 })
        );
        assert!(matches!(
            hill_estimator(&[1.0, 2.0], 0),
            Err(Error::InvalidParam { name: "k", .. })
        ));
        assert!(matches!(
            hill_estimator(&[1.0, 2.0], 2),
            Err(Error::InvalidParam { name: "k", .. })
        ));
        assert!(matches!(
            hill_estimator(&[3.0; 5], 2),
            Err(Error::Degenerate(_))
        ));
        assert!(matches!(
            hill_estimator(&[3.0, 2.0, -1.0], 2),
            Err(Error::OutOfDomain { .. })
        ));
        assert!(matches!(
            pickands_estimator(&[1.0, 2.0, 3.0], 1),
            Err(Error::InvalidParam { .. })
        ));
        assert!(matches!(
            pickands_estimator(&[1.0; 8], 2),
            Err(Error::Degenerate(_))
        ));
        assert!(matches!(
            moment_estimator(&[2.0; 8], 2),
            Err(Error::Degenerate(_))
        ));
        assert!(matches!(
            moment_estimator(&[2.0, 1.0, 0.0], 2),
            Err(Error::OutOfDomain { .. })
        ));
    }
}
