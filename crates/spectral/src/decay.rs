//! Rank-decay fits of singular values: `σ_k ≈ C k^(−γ)` against `σ_k ≈ C e^(−βk)` on the same
//! range of ranks, both by least squares on `ln σ_k`.

use crate::error::{check_finite, Error, Result};

/// Which decay law fits better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum DecayModel {
    /// `σ_k ≈ C k^(−γ)`.
    PowerLaw,
    /// `σ_k ≈ C e^(−βk)`.
    Exponential,
}

/// Result of [`fit_rank_decay`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RankDecayFit {
    /// First rank used (1-based, inclusive).
    pub k_first: usize,
    /// Last rank used (1-based, inclusive).
    pub k_last: usize,
    /// Power law: decay exponent γ (`ln σ_k = log_c − γ ln k`).
    pub gamma: f64,
    /// Power law: intercept `ln C`.
    pub log_c: f64,
    /// Power law: R² of the log-log regression.
    pub r_squared: f64,
    /// Power law: residual sum of squares in `ln σ`.
    pub rss: f64,
    /// Exponential: rate β (`ln σ_k = exp_log_c − β k`).
    pub exp_rate: f64,
    /// Exponential: intercept `ln C`.
    pub exp_log_c: f64,
    /// Exponential: R² of the semi-log regression.
    pub exp_r_squared: f64,
    /// Exponential: residual sum of squares in `ln σ`.
    pub exp_rss: f64,
    /// Log-likelihood ratio (nats) of the power law over the exponential under Gaussian errors on
    /// `ln σ` with fitted variance: `(n/2) ln(exp_rss / rss)`; positive favours the power law.
    /// Both models have two parameters, so no penalty is needed.
    pub log_likelihood_ratio: f64,
    /// The model with the smaller residual sum of squares.
    pub preferred: DecayModel,
}

/// Ordinary least squares of `y` on `x`: (slope, intercept, rss, R²).
fn ols(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxx += (a - mx) * (a - mx);
        sxy += (a - mx) * (b - my);
        syy += (b - my) * (b - my);
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let rss: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - intercept - slope * a).powi(2))
        .sum();
    (slope, intercept, rss, 1.0 - rss / syy)
}

/// Fits `σ_k ≈ C k^(−γ)` by least squares of `ln σ_k` on `ln k` over ranks `k_first..=k_last`
/// (values sorted in non-increasing order, ranks 1-based), and the exponential law
/// `σ_k ≈ C e^(−βk)` on the same ranks, reporting which fits better and by how much.
///
/// ```text
/// ln σ_k = ln C − γ ln k + ε     vs     ln σ_k = ln C' − β k + ε'
/// LLR = (n/2) ln(RSS_exp / RSS_pow)
/// ```
///
/// # Arguments
/// - `sv`: singular values (any order; sorted internally).
/// - `k_first`, `k_last`: inclusive 1-based rank range, at least 3 ranks.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`]; [`Error::InvalidParam`] for a range that is not
/// `1 ≤ k_first`, `k_first + 2 ≤ k_last ≤ len`; [`Error::OutOfDomain`] for a value ≤ 0 in the
/// range; [`Error::Degenerate`] when all values in the range are equal.
///
/// # Complexity
/// O(n log n) for the sort, O(k_last − k_first) for the fits.
///
/// # Example
/// ```
/// let sv: Vec<f64> = (1..=100).map(|k| 2.0 * (k as f64).powf(-0.5)).collect();
/// let f = claimlab_spectral::fit_rank_decay(&sv, 1, 100).unwrap();
/// assert!((f.gamma - 0.5).abs() < 1e-12 && (f.log_c - 2f64.ln()).abs() < 1e-12);
/// assert_eq!(f.preferred, claimlab_spectral::DecayModel::PowerLaw);
/// ```
pub fn fit_rank_decay(sv: &[f64], k_first: usize, k_last: usize) -> Result<RankDecayFit> {
    check_finite(sv)?;
    if k_first == 0 || k_last < k_first + 2 || k_last > sv.len() {
        return Err(Error::InvalidParam {
            name: "k_last",
            value: k_last as f64,
            reason: "need 1 ≤ k_first and k_first + 2 ≤ k_last ≤ number of values",
        });
    }
    let mut s = sv.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let range = &s[k_first - 1..k_last];
    if let Some(i) = range.iter().position(|v| !(*v > 0.0)) {
        return Err(Error::OutOfDomain {
            index: k_first - 1 + i,
            value: range[i],
            reason: "values in the fitted range must be > 0",
        });
    }
    if range
        .first()
        .zip(range.last())
        .is_some_and(|(a, b)| a.total_cmp(b).is_eq())
    {
        return Err(Error::Degenerate("all values in the rank range are equal"));
    }
    let ks: Vec<f64> = (k_first..=k_last).map(|k| k as f64).collect();
    let lk: Vec<f64> = ks.iter().map(|k| k.ln()).collect();
    let ly: Vec<f64> = range.iter().map(|v| v.ln()).collect();
    let (slope, log_c, rss, r_squared) = ols(&lk, &ly);
    let (eslope, exp_log_c, exp_rss, exp_r_squared) = ols(&ks, &ly);
    let n = ly.len() as f64;
    Ok(RankDecayFit {
        k_first,
        k_last,
        gamma: -slope,
        log_c,
        r_squared,
        rss,
        exp_rate: -eslope,
        exp_log_c,
        exp_r_squared,
        exp_rss,
        log_likelihood_ratio: 0.5 * n * (exp_rss / rss).ln(),
        preferred: if rss <= exp_rss {
            DecayModel::PowerLaw
        } else {
            DecayModel::Exponential
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_decay_is_recognised() {
        let sv: Vec<f64> = (1..=60)
            .map(|k| 3.0 * (-0.1 * k as f64).exp() * (1.0 + 0.01 * ((k * 7) % 5) as f64))
            .collect();
        let f = fit_rank_decay(&sv, 1, 60).unwrap();
        assert_eq!(f.preferred, DecayModel::Exponential);
        assert!(f.log_likelihood_ratio < 0.0);
        assert!((f.exp_rate - 0.1).abs() < 2e-3);
    }

    #[test]
    fn error_paths() {
        assert_eq!(fit_rank_decay(&[], 1, 3), Err(Error::Empty));
        assert_eq!(
            fit_rank_decay(&[1.0, f64::NAN, 2.0], 1, 3),
            Err(Error::NonFinite { index: 1, count: 1 })
        );
        assert!(matches!(
            fit_rank_decay(&[3.0, 2.0, 1.0], 0, 3),
            Err(Error::InvalidParam { .. })
        ));
        assert!(matches!(
            fit_rank_decay(&[3.0, 2.0, 1.0], 1, 2),
            Err(Error::InvalidParam { .. })
        ));
        assert!(matches!(
            fit_rank_decay(&[3.0, 2.0, 1.0], 1, 4),
            Err(Error::InvalidParam { .. })
        ));
        assert!(matches!(
            fit_rank_decay(&[3.0, 2.0, 0.0], 1, 3),
            Err(Error::OutOfDomain { index: 2, .. })
        ));
        assert!(matches!(
            fit_rank_decay(&[2.0; 5], 1, 5),
            Err(Error::Degenerate(_))
        ));
    }
}
