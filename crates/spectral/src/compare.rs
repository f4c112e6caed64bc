//! Likelihood-ratio tests of a fitted power law against alternative tail models (Vuong 1989, as
//! in Clauset, Shalizi and Newman §5 and the `powerlaw` package).

use crate::csn::{prepare, PowerLawConfig, PowerLawFit};
use crate::error::{Error, Result};
use crate::optimize::nelder_mead;
use crate::specfun::{erfc, ln_erfc, ln_upper_gamma};

/// An alternative to the power law for the tail `x ≥ xmin` (each normalised on `[xmin, ∞)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Alternative {
    /// `p(x) = λ e^{-λ(x - xmin)}`.
    Exponential,
    /// Lognormal truncated to `x ≥ xmin`.
    Lognormal,
    /// `p(x) ∝ x^{β-1} e^{-(λx)^β}` (Weibull tail).
    StretchedExponential,
    /// `p(x) ∝ x^{-α} e^{-λx}`; nests the power law (λ → 0).
    TruncatedPowerLaw,
}

impl Alternative {
    /// All four alternatives, in the order `powerlaw` reports them.
    pub const ALL: [Alternative; 4] = [
        Alternative::Exponential,
        Alternative::Lognormal,
        Alternative::StretchedExponential,
        Alternative::TruncatedPowerLaw,
    ];

    /// The `powerlaw` package's name for this distribution.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Alternative::Exponential => "exponential",
            Alternative::Lognormal => "lognormal",
            Alternative::StretchedExponential => "stretched_exponential",
            Alternative::TruncatedPowerLaw => "truncated_power_law",
        }
    }
}

/// Fitted parameters of an alternative.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum AlternativeParams {
    /// Rate λ.
    Exponential {
        /// Rate.
        lambda: f64,
    },
    /// Parameters of ln X ~ N(μ, σ²).
    Lognormal {
        /// Mean of ln X.
        mu: f64,
        /// Standard deviation of ln X.
        sigma: f64,
    },
    /// Scale rate λ and shape β.
    StretchedExponential {
        /// Rate.
        lambda: f64,
        /// Shape.
        beta: f64,
    },
    /// Exponent α and cutoff rate λ (λ = 0 means the optimum is the power law itself).
    TruncatedPowerLaw {
        /// Exponent of the power-law factor.
        alpha: f64,
        /// Cutoff rate.
        lambda: f64,
    },
}

/// Result of a likelihood-ratio test of the power law against one alternative.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LikelihoodRatio {
    /// Which alternative.
    pub alternative: Alternative,
    /// Its maximum-likelihood parameters on the tail.
    pub params: AlternativeParams,
    /// Log-likelihood of the tail under the alternative (nats).
    pub log_likelihood: f64,
    /// Log-likelihood of the tail under the power law (nats).
    pub log_likelihood_power_law: f64,
    /// `R = Σ (ln p_pl(x_i) − ln p_alt(x_i))`; positive favours the power law.
    pub ratio: f64,
    /// `R / sqrt(n · var)`, Vuong's normalised statistic.
    pub normalized_ratio: f64,
    /// Two-sided p-value of the sign of R: `erfc(|R| / sqrt(2 n var))`; for the nested
    /// truncated power law, `P(χ²₁ > 2|R|) = erfc(sqrt(|R|))` instead.
    pub p_value: f64,
    /// Whether the nested test was used.
    pub nested: bool,
    /// Optimiser iterations spent (0 for closed forms).
    pub iterations: usize,
    /// Whether the optimiser met its tolerance (always true for closed forms). On a flat
    /// likelihood (an alternative drifting to its power-law limit) it may stop at its iteration
    /// cap; the likelihood is then still within the tolerance of its supremum in practice.
    pub converged: bool,
}

/// `powerlaw` replaces `-inf` log-likelihoods by `ln(10^-307)`.
const LN_TINY: f64 = -706.893_623_549_172_4;

/// Vuong's test on per-point log-likelihoods: (R, R normalised, p).
pub(crate) fn vuong(l1: &[f64], l2: &[f64], nested: bool) -> (f64, f64, f64) {
    let n = l1.len() as f64;
    let clamp = |v: f64| if v == f64::NEG_INFINITY { LN_TINY } else { v };
    let d: Vec<f64> = l1
        .iter()
        .zip(l2)
        .map(|(a, b)| clamp(*a) - clamp(*b))
        .collect();
    let r: f64 = d.iter().sum();
    let mean = r / n;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let p = if nested {
        erfc(r.abs().sqrt())
    } else {
        erfc(r.abs() / (2.0 * n * var).sqrt())
    };
    (r, r / (n * var).sqrt(), p)
}

/// The best of several Nelder-Mead runs (lowest objective) and the iterations of all of them.
pub(crate) fn best_of_starts(
    obj: impl Fn(&[f64]) -> f64,
    starts: &[[f64; 2]],
    step: &[f64; 2],
    method: &'static str,
) -> Result<(crate::optimize::NmResult, usize)> {
    let mut best: Option<crate::optimize::NmResult> = None;
    let mut iters = 0;
    for s in starts {
        let r = nelder_mead(&obj, s, step);
        iters += r.iterations;
        if best.as_ref().is_none_or(|b| r.f < b.f) {
            best = Some(r);
        }
    }
    let best = best.ok_or(Error::NoConvergence {
        method,
        iterations: 0,
    })?;
    Ok((best, iters))
}

/// Everything a fitted alternative contributes to a [`LikelihoodRatio`].
pub(crate) struct FittedAlternative {
    pub(crate) alternative: Alternative,
    pub(crate) params: AlternativeParams,
    pub(crate) iterations: usize,
    pub(crate) nested: bool,
    pub(crate) converged: bool,
}

/// The likelihood-ratio record from per-point log-likelihoods of the power law (`lpl`) and of the
/// fitted alternative (`la`), refusing a non-finite alternative likelihood.
pub(crate) fn assemble(
    fit: FittedAlternative,
    lpl: &[f64],
    la: &[f64],
    ll_pl: f64,
    method: &'static str,
) -> Result<LikelihoodRatio> {
    let log_likelihood: f64 = la.iter().sum();
    if !log_likelihood.is_finite() {
        return Err(Error::NoConvergence {
            method,
            iterations: fit.iterations,
        });
    }
    let (ratio, normalized_ratio, p_value) = vuong(lpl, la, fit.nested);
    Ok(LikelihoodRatio {
        alternative: fit.alternative,
        params: fit.params,
        log_likelihood,
        log_likelihood_power_law: ll_pl,
        ratio,
        normalized_ratio,
        p_value,
        nested: fit.nested,
        iterations: fit.iterations,
        converged: fit.converged,
    })
}

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Per-point log-density of the lognormal truncated to `x ≥ xmin`.
fn lognormal_ll(xmin: f64, mu: f64, sigma: f64) -> impl Fn(f64) -> f64 {
    let z0 = (xmin.ln() - mu) / (sigma * std::f64::consts::SQRT_2);
    let c = -sigma.ln() - LN_SQRT_2PI - (ln_erfc(z0) - std::f64::consts::LN_2);
    move |v| {
        let l = v.ln();
        c - l - (l - mu).powi(2) / (2.0 * sigma * sigma)
    }
}

/// Per-point log-density of the stretched exponential on `x ≥ xmin`.
fn stretched_ll(xmin: f64, lambda: f64, beta: f64) -> impl Fn(f64) -> f64 {
    let c = beta.ln() + beta * lambda.ln() + (lambda * xmin).powf(beta);
    move |v| c + (beta - 1.0) * v.ln() - (lambda * v).powf(beta)
}

/// Per-point log-density of the truncated power law on `x ≥ xmin`.
fn truncated_ll(xmin: f64, alpha: f64, lambda: f64) -> impl Fn(f64) -> f64 {
    let c = (1.0 - alpha) * lambda.ln() - ln_upper_gamma(1.0 - alpha, lambda * xmin);
    move |v| c - alpha * v.ln() - lambda * v
}

/// Σ f(x_i).
fn total(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    x.iter().map(|&v| f(v)).sum()
}

/// [f(x_i)].
fn per_point(x: &[f64], f: impl Fn(f64) -> f64) -> Vec<f64> {
    x.iter().map(|&v| f(v)).collect()
}

/// Tests the fitted power law against an alternative on the same tail by Vuong's likelihood
/// ratio, fitting the alternative by maximum likelihood on `x ≥ xmin` (and `≤ xmax`).
///
/// ```text
/// R = Σ_i [ln p_pl(x_i) − ln p_alt(x_i)],   d_i = per-point difference, var = mean (d_i − d̄)²
/// normalised R = R / sqrt(n var),  p = erfc(|R| / sqrt(2 n var))
/// nested (truncated power law):  p = P(χ²₁ > 2|R|)
/// ```
///
/// For a discrete fit every alternative is a distribution on the integers `k ≥ xmin`: its
/// density evaluated at the integers and normalised by its sum over them (the exponential becomes
/// the geometric law, MLE `λ = ln(1 + 1/mean(k − xmin))`; the power law is normalised by the
/// Hurwitz zeta function). The sums are exact up to ~1e-10 relative (direct summation closed by
/// an Euler-Maclaurin tail, checked against brute-force sums).
///
/// The exponential fit is closed form (`λ = 1/mean(x − xmin)`); the others maximise the
/// likelihood by Nelder-Mead with restarts in log-parameters. For the truncated power law the
/// optimum may sit at the boundary λ → 0 (the power law itself): then λ = 0 is reported and R = 0.
///
/// # Arguments
/// - `data`: the same data given to [`fit_power_law`](crate::fit_power_law).
/// - `fit`: the power-law fit (its `xmin` and `xmax` define the tail).
/// - `alternative`: which model to compare with.
///
/// # Errors
/// - [`Error::Unsupported`] for a discrete fit with an xmax cut.
/// - The input errors of [`fit_power_law`](crate::fit_power_law); [`Error::Degenerate`] if the
///   tail is empty.
/// - [`Error::NoConvergence`] if the optimiser fails to reach a finite optimum.
///
/// # Complexity
/// O(n log n) for sorting, then O(n) per likelihood evaluation (a few thousand evaluations).
///
/// # References
/// Q. H. Vuong, "Likelihood ratio tests for model selection and non-nested hypotheses",
/// Econometrica 57(2), 307–333 (1989), doi:10.2307/1912557; Clauset, Shalizi, Newman (2009) §5.
///
/// # Example
/// ```
/// use claimlab_spectral::{compare_power_law, fit_power_law, Alternative, PowerLawConfig};
/// let data: Vec<f64> = (0..3000).map(|i| (1.0 - (i as f64 + 0.5) / 3000.0).powf(-1.0 / 1.5)).collect();
/// let fit = fit_power_law(&data, &PowerLawConfig::continuous().with_xmin(1.0)).unwrap();
/// let lr = compare_power_law(&data, &fit, Alternative::Exponential).unwrap();
/// assert!(lr.ratio > 0.0 && lr.p_value < 1e-3); // the power law wins clearly
/// ```
pub fn compare_power_law(
    data: &[f64],
    fit: &PowerLawFit,
    alternative: Alternative,
) -> Result<LikelihoodRatio> {
    if fit.discrete {
        return crate::compare_discrete::compare_discrete(data, fit, alternative);
    }
    let mut cfg = PowerLawConfig::continuous().with_xmin(fit.xmin);
    cfg.xmax = fit.xmax;
    cfg.drop_non_positive = fit.n_dropped > 0;
    let p = prepare(data, &cfg)?;
    let start = p.x.partition_point(|v| *v < fit.xmin);
    let x = &p.x[start..];
    if x.is_empty() {
        return Err(Error::Degenerate("no tail left at this xmin"));
    }
    if x[0].total_cmp(&x[x.len() - 1]).is_eq() {
        // a one-value tail makes the lognormal and truncated likelihoods unbounded
        return Err(Error::Degenerate("the tail has a single distinct value"));
    }
    let xmin = fit.xmin;
    let n = x.len();
    let alpha = fit.alpha;
    let lpl: Vec<f64> = x
        .iter()
        .map(|v| (alpha - 1.0).ln() - xmin.ln() - alpha * (v / xmin).ln())
        .collect();
    let ll_pl: f64 = lpl.iter().sum();
    let la: Vec<f64>;
    let mean_x = x.iter().sum::<f64>() / n as f64;
    let (params, iterations, nested, converged) = match alternative {
        Alternative::Exponential => {
            let lambda = 1.0 / (mean_x - xmin);
            if !(lambda.is_finite() && lambda > 0.0) {
                return Err(Error::Degenerate("all tail values equal xmin"));
            }
            la = per_point(x, |v| lambda.ln() - lambda * (v - xmin));
            (AlternativeParams::Exponential { lambda }, 0, false, true)
        }
        Alternative::Lognormal => {
            let m = x.iter().map(|v| v.ln()).sum::<f64>() / n as f64;
            let s = (x.iter().map(|v| (v.ln() - m).powi(2)).sum::<f64>() / n as f64)
                .sqrt()
                .max(1e-3);
            let r = nelder_mead(
                |q| -total(x, lognormal_ll(xmin, q[0], q[1].exp())),
                &[m, s.ln()],
                &[0.5 * s, 0.2],
            );
            let (mu, sigma) = (r.x[0], r.x[1].exp());
            la = per_point(x, lognormal_ll(xmin, mu, sigma));
            (
                AlternativeParams::Lognormal { mu, sigma },
                r.iterations,
                false,
                r.converged,
            )
        }
        Alternative::StretchedExponential => {
            let lam0 = 1.0 / mean_x;
            let r = nelder_mead(
                |q| -total(x, stretched_ll(xmin, q[0].exp(), q[1].exp())),
                &[lam0.ln(), 0.0],
                &[0.3, 0.2],
            );
            let (lambda, beta) = (r.x[0].exp(), r.x[1].exp());
            la = per_point(x, stretched_ll(xmin, lambda, beta));
            (
                AlternativeParams::StretchedExponential { lambda, beta },
                r.iterations,
                false,
                r.converged,
            )
        }
        Alternative::TruncatedPowerLaw => {
            let obj = |q: &[f64]| -total(x, truncated_ll(xmin, q[0], q[1].exp()));
            // two starts: a strong cutoff near the scale of the data, and a weak one
            let starts = [[alpha, (1.0 / mean_x).ln()], [alpha, (1e-3 / mean_x).ln()]];
            let (r, iters) = best_of_starts(obj, &starts, &[0.1, 0.5], "truncated power-law fit")?;
            if !(-r.f > ll_pl) {
                // the supremum is the power law itself (λ → 0)
                la = lpl.clone();
                (
                    AlternativeParams::TruncatedPowerLaw { alpha, lambda: 0.0 },
                    iters,
                    true,
                    true,
                )
            } else {
                let (a, lambda) = (r.x[0], r.x[1].exp());
                la = per_point(x, truncated_ll(xmin, a, lambda));
                (
                    AlternativeParams::TruncatedPowerLaw { alpha: a, lambda },
                    iters,
                    true,
                    r.converged,
                )
            }
        }
    };
    let fitted = FittedAlternative {
        alternative,
        params,
        iterations,
        nested,
        converged,
    };
    assemble(
        fitted,
        &lpl,
        &la,
        ll_pl,
        "alternative maximum-likelihood fit",
    )
}

/// Runs [`compare_power_law`] against every alternative in [`Alternative::ALL`].
///
/// # Errors
/// As [`compare_power_law`].
pub fn compare_all(data: &[f64], fit: &PowerLawFit) -> Result<Vec<LikelihoodRatio>> {
    Alternative::ALL
        .iter()
        .map(|&a| compare_power_law(data, fit, a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit_power_law;

    #[test]
    fn vuong_by_hand() {
        let l1 = [0.0, 1.0, 2.0];
        let l2 = [1.0, 1.0, 0.0];
        // d = [-1, 0, 2]: R = 1, mean 1/3, var = ((4/3)² + (1/3)² + (5/3)²)/3 = 14/9
        let (r, rn, p) = vuong(&l1, &l2, false);
        assert!((r - 1.0).abs() < 1e-15);
        let var: f64 = 14.0 / 9.0;
        assert!((rn - 1.0 / (3.0 * var).sqrt()).abs() < 1e-15);
        assert!((p - erfc(1.0 / (6.0 * var).sqrt())).abs() < 1e-15);
        let (_, _, pn) = vuong(&l1, &l2, true);
        assert!((pn - erfc(1.0)).abs() < 1e-15);
        // -inf is clamped as powerlaw does
        let (r, _, _) = vuong(&[0.0], &[f64::NEG_INFINITY], false);
        assert!((r + LN_TINY).abs() < 1e-12);
    }

    #[test]
    fn densities_integrate_to_one() {
        // trapezoid on a log grid from xmin = 1.5 to far in the tail
        let xmin = 1.5;
        let xs: Vec<f64> = (0..=200_000)
            .map(|i| xmin * (1.0 + i as f64 * 1e-4).powi(3))
            .collect();
        let check = |f: &dyn Fn(f64) -> f64| {
            let l = per_point(&xs, f);
            let total: f64 = (1..xs.len())
                .map(|i| 0.5 * (l[i].exp() + l[i - 1].exp()) * (xs[i] - xs[i - 1]))
                .sum();
            assert!((total - 1.0).abs() < 1e-6, "{total}");
        };
        check(&lognormal_ll(xmin, 0.3, 0.8));
        check(&stretched_ll(xmin, 0.7, 0.6));
        check(&truncated_ll(xmin, 2.2, 0.4));
        check(&truncated_ll(xmin, 0.6, 1.1));
    }

    #[test]
    fn errors() {
        let data: Vec<f64> = (1..=50).map(f64::from).collect();
        let cont = fit_power_law(&data, &PowerLawConfig::continuous()).unwrap();
        let mut bad = data.clone();
        bad[3] = f64::NAN;
        assert!(matches!(
            compare_power_law(&bad, &cont, Alternative::Exponential),
            Err(Error::NonFinite { index: 3, count: 1 })
        ));
        assert_eq!(
            compare_power_law(&[], &cont, Alternative::Exponential),
            Err(Error::Empty)
        );
        assert!(matches!(
            compare_power_law(&[0.5, 0.7], &cont, Alternative::Exponential),
            Err(Error::Degenerate(_))
        ));
        assert_eq!(compare_all(&data, &cont).unwrap().len(), 4);
        // a one-value tail (xmin below the largest value, not a data value)
        let one = [1.0, 2.0, 5.0];
        let fit = fit_power_law(&one, &PowerLawConfig::continuous().with_xmin(4.0)).unwrap();
        assert_eq!(fit.n_tail, 1);
        assert!(matches!(
            compare_power_law(&one, &fit, Alternative::Lognormal),
            Err(Error::Degenerate(_))
        ));
    }
}
