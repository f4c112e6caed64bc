//! Likelihood-ratio tests for discrete power-law fits: the alternatives as distributions on the
//! integers `k ≥ xmin`, each normalised by its sum over those integers.
//!
//! ```text
//! p(k) = f(k) / Z,   Z = Σ_{k ≥ xmin} f(k)
//! exponential            f(k) = e^{-λ(k - xmin)}             Z = 1 / (1 - e^{-λ})  (geometric)
//! lognormal              f(k) = (1/k) e^{-(ln k - μ)² / (2σ²)}
//! stretched exponential  f(k) = k^{β-1} e^{-(λk)^β}
//! truncated power law    f(k) = k^{-α} e^{-λk}
//! power law              f(k) = k^{-α}                          Z = ζ(α, xmin)
//! ```
//!
//! The densities are evaluated at the integers (not integrated over unit bins). Z is summed
//! directly in the log domain until the terms become smooth on the unit scale or negligible, and
//! the remainder is closed by the Euler-Maclaurin formula with the continuous tail integral:
//!
//! ```text
//! Σ_{k ≥ K} f(k) = ∫_K^∞ f + f(K)/2 − f'(K)/12 + O(f'''(K)/720)
//! ```
//!
//! applied only where |d ln f/dk| ≤ [`EM_MAX_SLOPE`] and K ≥ xmin + [`EM_MIN_TERMS`], which keeps
//! the neglected term below ~1e-10 of Z (checked against brute-force sums in the tests).

use crate::compare::{
    assemble, best_of_starts, Alternative, AlternativeParams, FittedAlternative, LikelihoodRatio,
};
use crate::csn::{prepare, PowerLawConfig, PowerLawFit};
use crate::error::{Error, Result};
use crate::optimize::nelder_mead;
use crate::specfun::{hurwitz_zeta, ln_erfc, ln_upper_gamma};

/// Terms summed directly before the Euler-Maclaurin tail may close the sum.
pub(crate) const EM_MIN_TERMS: f64 = 256.0;
/// Largest |d ln f/dk| at which the Euler-Maclaurin tail is used (its first neglected term is
/// about |slope|³/720 of f(K)).
pub(crate) const EM_MAX_SLOPE: f64 = 0.02;
/// A directly summed tail stops once its rigorous bound falls below this share of the sum (ln).
const LN_NEGLIGIBLE: f64 = -46.0;
/// Most terms summed directly; beyond it the normaliser is reported as not computable.
const MAX_TERMS: usize = 200_000;
/// Integers from here on are not all representable as f64 steps of 1 (2^52).
const LARGEST_INTEGER: f64 = 4_503_599_627_370_496.0;

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// ln(e^a + e^b), exact for infinite arguments.
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// An unnormalised discrete family: ln f, its derivative in k, and the continuous tail integral.
trait Family {
    /// ln f(k) (up to a constant shared by every k).
    fn ln_f(&self, k: f64) -> f64;
    /// d ln f / dk.
    fn slope(&self, k: f64) -> f64;
    /// ln ∫_K^∞ f(x) dx, with the same constant as [`Family::ln_f`].
    fn ln_tail_integral(&self, k: f64) -> f64;
}

struct Lognormal {
    mu: f64,
    sigma: f64,
}

impl Family for Lognormal {
    fn ln_f(&self, k: f64) -> f64 {
        let l = k.ln();
        -l - (l - self.mu).powi(2) / (2.0 * self.sigma * self.sigma)
    }
    fn slope(&self, k: f64) -> f64 {
        -(1.0 + (k.ln() - self.mu) / (self.sigma * self.sigma)) / k
    }
    fn ln_tail_integral(&self, k: f64) -> f64 {
        let z = (k.ln() - self.mu) / (self.sigma * std::f64::consts::SQRT_2);
        self.sigma.ln() + LN_SQRT_2PI + ln_erfc(z) - std::f64::consts::LN_2
    }
}

struct Stretched {
    lambda: f64,
    beta: f64,
}

impl Family for Stretched {
    fn ln_f(&self, k: f64) -> f64 {
        (self.beta - 1.0) * k.ln() - (self.lambda * k).powf(self.beta)
    }
    fn slope(&self, k: f64) -> f64 {
        ((self.beta - 1.0) - self.beta * (self.lambda * k).powf(self.beta)) / k
    }
    fn ln_tail_integral(&self, k: f64) -> f64 {
        -(self.lambda * k).powf(self.beta) - self.beta.ln() - self.beta * self.lambda.ln()
    }
}

struct Truncated {
    alpha: f64,
    lambda: f64,
}

impl Family for Truncated {
    fn ln_f(&self, k: f64) -> f64 {
        -self.alpha * k.ln() - self.lambda * k
    }
    fn slope(&self, k: f64) -> f64 {
        -self.alpha / k - self.lambda
    }
    fn ln_tail_integral(&self, k: f64) -> f64 {
        (self.alpha - 1.0) * self.lambda.ln() + ln_upper_gamma(1.0 - self.alpha, self.lambda * k)
    }
}

/// ln Σ_{k ≥ xmin} f(k) over the integers, or `None` if the sum does not settle within
/// [`MAX_TERMS`] terms or is not finite. The families are unimodal, so once the slope is negative
/// the terms decrease for good and `f(K) + ∫_K^∞ f` bounds the rest.
fn ln_normaliser(fam: &impl Family, xmin: f64) -> Option<f64> {
    let mut m = fam.ln_f(xmin); // running maximum
    let mut s = 1.0_f64; // Σ e^{ln f - m}
    if !m.is_finite() {
        return None;
    }
    let mut k = xmin + 1.0;
    for _ in 0..MAX_TERMS {
        let lk = fam.ln_f(k);
        let g = fam.slope(k);
        if lk.is_nan() || lk == f64::INFINITY || g.is_nan() {
            return None;
        }
        let ln_sum = m + s.ln();
        if k - xmin >= EM_MIN_TERMS && g.abs() <= EM_MAX_SLOPE {
            // Σ_{j ≥ k} f(j) ≈ ∫_k^∞ f + f(k)(1/2 − g/12)
            let tail = log_add(fam.ln_tail_integral(k), lk + (0.5 - g / 12.0).ln());
            let z = log_add(ln_sum, tail);
            return z.is_finite().then_some(z);
        }
        if g < 0.0 {
            let bound = log_add(lk, fam.ln_tail_integral(k));
            if bound < ln_sum + LN_NEGLIGIBLE || lk == f64::NEG_INFINITY {
                return Some(ln_sum); // the rest is below e^-46 of the sum
            }
        }
        if lk > m {
            s = s * (m - lk).exp() + 1.0;
            m = lk;
        } else {
            s += (lk - m).exp();
        }
        k += 1.0;
    }
    None
}

/// The tail as distinct values with their counts, and the sufficient statistics.
struct Tail {
    values: Vec<f64>,
    counts: Vec<f64>,
    n: f64,
    sum_x: f64,
    sum_ln: f64,
    sum_ln2: f64,
}

impl Tail {
    fn new(x: &[f64]) -> Self {
        let mut values = Vec::new();
        let mut counts: Vec<f64> = Vec::new();
        for &v in x {
            if values.last().is_some_and(|l: &f64| l.total_cmp(&v).is_eq()) {
                if let Some(c) = counts.last_mut() {
                    *c += 1.0;
                }
            } else {
                values.push(v);
                counts.push(1.0);
            }
        }
        let sum_x = x.iter().sum();
        let sum_ln = x.iter().map(|v| v.ln()).sum();
        let sum_ln2 = x.iter().map(|v| v.ln().powi(2)).sum();
        Self {
            values,
            counts,
            n: x.len() as f64,
            sum_x,
            sum_ln,
            sum_ln2,
        }
    }

    /// Σ_i ln p(x_i) for a family, or −∞ where its normaliser fails.
    fn log_likelihood(&self, fam: &impl Family, xmin: f64) -> f64 {
        let Some(z) = ln_normaliser(fam, xmin) else {
            return f64::NEG_INFINITY;
        };
        let s: f64 = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(&v, &c)| c * fam.ln_f(v))
            .sum();
        s - self.n * z
    }
}

/// Per-point log-likelihoods `ln p(x_i)` of a family on the tail.
fn per_point(x: &[f64], fam: &impl Family, xmin: f64) -> Result<Vec<f64>> {
    let z = ln_normaliser(fam, xmin).ok_or(Error::NoConvergence {
        method: "discrete normalising sum",
        iterations: MAX_TERMS,
    })?;
    Ok(x.iter().map(|&v| fam.ln_f(v) - z).collect())
}

/// [`compare_power_law`](crate::compare_power_law) for a discrete fit.
pub(crate) fn compare_discrete(
    data: &[f64],
    fit: &PowerLawFit,
    alternative: Alternative,
) -> Result<LikelihoodRatio> {
    if fit.xmax.is_some() {
        return Err(Error::Unsupported(
            "likelihood-ratio tests for discrete fits with an xmax cut",
        ));
    }
    let cfg = PowerLawConfig {
        drop_non_positive: fit.n_dropped > 0,
        ..PowerLawConfig::discrete().with_xmin(fit.xmin)
    };
    let p = prepare(data, &cfg)?;
    let start = p.x.partition_point(|v| *v < fit.xmin);
    let x = &p.x[start..];
    if x.is_empty() {
        return Err(Error::Degenerate("no tail left at this xmin"));
    }
    if x[0].total_cmp(&x[x.len() - 1]).is_eq() {
        return Err(Error::Degenerate("the tail has a single distinct value"));
    }
    if x[x.len() - 1] + MAX_TERMS as f64 >= LARGEST_INTEGER {
        return Err(Error::Unsupported(
            "discrete likelihood-ratio tests for values of 2^52 or more",
        ));
    }
    let xmin = fit.xmin;
    let alpha = fit.alpha;
    let ln_zeta = hurwitz_zeta(alpha, xmin).ln();
    let lpl: Vec<f64> = x.iter().map(|v| -alpha * v.ln() - ln_zeta).collect();
    let ll_pl: f64 = lpl.iter().sum();
    let t = Tail::new(x);
    let mean_x = t.sum_x / t.n;
    let (la, params, iterations, nested, converged) = match alternative {
        Alternative::Exponential => {
            // geometric on k − xmin: the MLE is closed form
            let m = mean_x - xmin;
            let lambda = (1.0 / m).ln_1p();
            if !(lambda.is_finite() && lambda > 0.0) {
                return Err(Error::Degenerate("all tail values equal xmin"));
            }
            let c = (-(-lambda).exp_m1()).ln();
            let la = x.iter().map(|v| c - lambda * (v - xmin)).collect();
            (
                la,
                AlternativeParams::Exponential { lambda },
                0,
                false,
                true,
            )
        }
        Alternative::Lognormal => {
            let m = t.sum_ln / t.n;
            let s = (t.sum_ln2 / t.n - m * m).max(0.0).sqrt().max(1e-3);
            // sufficient statistics: Σ ln f = −Σ ln x − (Σ ln²x − 2μ Σ ln x + n μ²) / (2σ²)
            let obj = |q: &[f64]| {
                let (mu, sigma) = (q[0], q[1].exp());
                let fam = Lognormal { mu, sigma };
                let Some(z) = ln_normaliser(&fam, xmin) else {
                    return f64::INFINITY;
                };
                let quad = t.sum_ln2 - 2.0 * mu * t.sum_ln + t.n * mu * mu;
                t.sum_ln + quad / (2.0 * sigma * sigma) + t.n * z
            };
            let r = nelder_mead(obj, &[m, s.ln()], &[0.5 * s, 0.2]);
            let (mu, sigma) = (r.x[0], r.x[1].exp());
            let la = per_point(x, &Lognormal { mu, sigma }, xmin)?;
            (
                la,
                AlternativeParams::Lognormal { mu, sigma },
                r.iterations,
                false,
                r.converged,
            )
        }
        Alternative::StretchedExponential => {
            let obj = |q: &[f64]| {
                let fam = Stretched {
                    lambda: q[0].exp(),
                    beta: q[1].exp(),
                };
                -t.log_likelihood(&fam, xmin)
            };
            let r = nelder_mead(obj, &[(1.0 / mean_x).ln(), 0.0], &[0.3, 0.2]);
            let (lambda, beta) = (r.x[0].exp(), r.x[1].exp());
            let la = per_point(x, &Stretched { lambda, beta }, xmin)?;
            (
                la,
                AlternativeParams::StretchedExponential { lambda, beta },
                r.iterations,
                false,
                r.converged,
            )
        }
        Alternative::TruncatedPowerLaw => {
            let obj = |q: &[f64]| {
                let (a, lambda) = (q[0], q[1].exp());
                let fam = Truncated { alpha: a, lambda };
                let Some(z) = ln_normaliser(&fam, xmin) else {
                    return f64::INFINITY;
                };
                a * t.sum_ln + lambda * t.sum_x + t.n * z
            };
            let starts = [[alpha, (1.0 / mean_x).ln()], [alpha, (1e-3 / mean_x).ln()]];
            let (r, iters) = best_of_starts(
                obj,
                &starts,
                &[0.1, 0.5],
                "discrete truncated power-law fit",
            )?;
            if !(-r.f > ll_pl) {
                // the supremum is the discrete power law itself (λ → 0)
                (
                    lpl.clone(),
                    AlternativeParams::TruncatedPowerLaw { alpha, lambda: 0.0 },
                    iters,
                    true,
                    true,
                )
            } else {
                let (a, lambda) = (r.x[0], r.x[1].exp());
                let la = per_point(x, &Truncated { alpha: a, lambda }, xmin)?;
                (
                    la,
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
        "discrete alternative maximum-likelihood fit",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compare_power_law, fit_power_law};

    /// ln Σ_{k=xmin}^{xmin+terms-1} f(k) by brute force (log-sum-exp, compensated).
    fn brute_ln_sum(fam: &impl Family, xmin: f64, terms: usize) -> f64 {
        let l = |i: usize| fam.ln_f(xmin + i as f64);
        let m = (0..terms).map(l).fold(f64::NEG_INFINITY, f64::max);
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        for v in (0..terms).map(l) {
            let y = (v - m).exp() - comp;
            let t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
        m + sum.ln()
    }

    /// A normaliser check: (fast, brute force).
    type Case = Box<dyn Fn() -> (f64, f64)>;

    #[test]
    fn normaliser_matches_brute_force() {
        // parameters whose sums converge within 2e7 terms (checked: the last term is < 1e-25 of Z)
        let cases: Vec<(Case, &str)> = vec![
            (
                Box::new(|| {
                    let f = Lognormal {
                        mu: 1.0,
                        sigma: 1.5,
                    };
                    (
                        ln_normaliser(&f, 1.0).unwrap(),
                        brute_ln_sum(&f, 1.0, 20_000_000),
                    )
                }),
                "lognormal mu 1 sigma 1.5",
            ),
            (
                Box::new(|| {
                    let f = Lognormal {
                        mu: -3.0,
                        sigma: 2.0,
                    };
                    (
                        ln_normaliser(&f, 5.0).unwrap(),
                        brute_ln_sum(&f, 5.0, 20_000_000),
                    )
                }),
                "lognormal mu -3 sigma 2 from 5",
            ),
            (
                Box::new(|| {
                    let f = Stretched {
                        lambda: 0.01,
                        beta: 0.5,
                    };
                    (
                        ln_normaliser(&f, 1.0).unwrap(),
                        brute_ln_sum(&f, 1.0, 20_000_000),
                    )
                }),
                "stretched lambda 0.01 beta 0.5",
            ),
            (
                Box::new(|| {
                    let f = Stretched {
                        lambda: 0.3,
                        beta: 1.7,
                    };
                    (
                        ln_normaliser(&f, 2.0).unwrap(),
                        brute_ln_sum(&f, 2.0, 10_000),
                    )
                }),
                "stretched lambda 0.3 beta 1.7",
            ),
            (
                Box::new(|| {
                    let f = Truncated {
                        alpha: 1.5,
                        lambda: 1e-4,
                    };
                    (
                        ln_normaliser(&f, 1.0).unwrap(),
                        brute_ln_sum(&f, 1.0, 2_000_000),
                    )
                }),
                "truncated alpha 1.5 lambda 1e-4",
            ),
            (
                Box::new(|| {
                    let f = Truncated {
                        alpha: 0.5,
                        lambda: 0.05,
                    };
                    (
                        ln_normaliser(&f, 3.0).unwrap(),
                        brute_ln_sum(&f, 3.0, 100_000),
                    )
                }),
                "truncated alpha 0.5 lambda 0.05",
            ),
            (
                Box::new(|| {
                    let f = Truncated {
                        alpha: 2.5,
                        lambda: 2.0,
                    };
                    (
                        ln_normaliser(&f, 1.0).unwrap(),
                        brute_ln_sum(&f, 1.0, 1_000),
                    )
                }),
                "truncated alpha 2.5 lambda 2",
            ),
        ];
        for (case, name) in cases {
            let (fast, brute) = case();
            // Z itself to 1e-10 relative
            assert!((fast - brute).abs() < 1e-10, "{name}: {fast} vs {brute}");
        }
    }

    #[test]
    fn truncated_normaliser_tends_to_hurwitz_zeta() {
        // λ → 0: Σ k^{-α} e^{-λk} → ζ(α, xmin)
        let f = Truncated {
            alpha: 2.5,
            lambda: 1e-12,
        };
        let z = ln_normaliser(&f, 3.0).unwrap();
        assert!((z - hurwitz_zeta(2.5, 3.0).ln()).abs() < 1e-9, "{z}");
    }

    /// Seeded integer draws: a discrete power law (inverse-CDF on a Zipf table) or a geometric.
    fn zipf_sample(n: usize, alpha: f64, seed: u64) -> Vec<f64> {
        use rand::{RngExt as _, SeedableRng as _};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let kmax = 100_000usize;
        let mut cdf = Vec::with_capacity(kmax);
        let mut acc = 0.0;
        for k in 1..=kmax {
            acc += (k as f64).powf(-alpha);
            cdf.push(acc);
        }
        (0..n)
            .map(|_| {
                let u = rng.random::<f64>() * acc;
                (cdf.partition_point(|c| *c < u) + 1) as f64
            })
            .collect()
    }

    fn geometric_sample(n: usize, q: f64, seed: u64) -> Vec<f64> {
        use rand::{RngExt as _, SeedableRng as _};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n)
            .map(|_| 1.0 + (rng.random::<f64>().ln() / q.ln()).floor())
            .collect()
    }

    #[test]
    fn fitted_alternatives_are_local_maxima() {
        let data = zipf_sample(3000, 2.3, 11);
        let fit = fit_power_law(&data, &PowerLawConfig::discrete().with_xmin(2.0)).unwrap();
        let x: Vec<f64> = {
            let mut v: Vec<f64> = data.iter().copied().filter(|v| *v >= 2.0).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let t = Tail::new(&x);
        for alt in Alternative::ALL {
            let lr = compare_power_law(&data, &fit, alt).unwrap();
            // R is ll_pl − ll_alt
            assert!((lr.ratio - (lr.log_likelihood_power_law - lr.log_likelihood)).abs() < 1e-6);
            let ll = |a: f64, b: f64| -> f64 {
                match lr.params {
                    AlternativeParams::Lognormal { .. } => {
                        t.log_likelihood(&Lognormal { mu: a, sigma: b }, 2.0)
                    }
                    AlternativeParams::StretchedExponential { .. } => {
                        t.log_likelihood(&Stretched { lambda: a, beta: b }, 2.0)
                    }
                    AlternativeParams::TruncatedPowerLaw { .. } => t.log_likelihood(
                        &Truncated {
                            alpha: a,
                            lambda: b,
                        },
                        2.0,
                    ),
                    AlternativeParams::Exponential { lambda } => {
                        let c = (-(-lambda).exp_m1()).ln();
                        x.iter().map(|v| c - lambda * (v - 2.0)).sum()
                    }
                }
            };
            let (a, b) = match lr.params {
                AlternativeParams::Lognormal { mu, sigma } => (mu, sigma),
                AlternativeParams::StretchedExponential { lambda, beta } => (lambda, beta),
                AlternativeParams::TruncatedPowerLaw { alpha, lambda } => (alpha, lambda),
                AlternativeParams::Exponential { lambda } => (lambda, f64::NAN),
            };
            if let AlternativeParams::Exponential { lambda } = lr.params {
                // geometric MLE: the score vanishes; check by perturbation
                let base = ll(lambda, 0.0);
                for h in [1e-4, -1e-4] {
                    let c = (-(-(lambda * (1.0 + h))).exp_m1()).ln();
                    let v: f64 = x.iter().map(|v| c - lambda * (1.0 + h) * (v - 2.0)).sum();
                    assert!(v <= base + 1e-9, "exponential not a maximum");
                }
                continue;
            }
            if b == 0.0 {
                continue; // truncated power law at its power-law boundary
            }
            // the summed likelihood at the optimum reproduces the per-point total
            let base = ll(a, b);
            assert!(
                (base - lr.log_likelihood).abs() < 1e-6 * base.abs(),
                "{alt:?}: {base} vs {}",
                lr.log_likelihood
            );
            for (da, db) in [(1e-3, 0.0), (-1e-3, 0.0), (0.0, 1e-3), (0.0, -1e-3)] {
                let v = ll(a * (1.0 + da), b * (1.0 + db));
                assert!(
                    v <= base + 1e-7,
                    "{alt:?} not a local maximum: {v} > {base}"
                );
            }
        }
    }

    #[test]
    fn discrete_tests_pick_the_right_model() {
        // a discrete power law: the exponential loses clearly, the nested truncation does not win
        let data = zipf_sample(5000, 2.5, 3);
        let fit = fit_power_law(&data, &PowerLawConfig::discrete()).unwrap();
        let exp = compare_power_law(&data, &fit, Alternative::Exponential).unwrap();
        // the heavy tail makes the per-point differences very spread out, so Vuong's p is only
        // moderate even though R is in the thousands
        assert!(exp.ratio > 1000.0 && exp.normalized_ratio > 1.5, "{exp:?}");
        let tpl = compare_power_law(&data, &fit, Alternative::TruncatedPowerLaw).unwrap();
        assert!(
            tpl.nested && tpl.ratio <= 1e-9 && tpl.p_value > 0.01,
            "{tpl:?}"
        );
        // a geometric sample: the exponential wins
        let data = geometric_sample(5000, 0.7, 5);
        let fit = fit_power_law(&data, &PowerLawConfig::discrete().with_xmin(1.0)).unwrap();
        let exp = compare_power_law(&data, &fit, Alternative::Exponential).unwrap();
        assert!(exp.ratio < 0.0 && exp.p_value < 1e-3, "{exp:?}");
        // the geometric MLE recovers the rate: P(X = k) ∝ 0.7^k, so λ = −ln 0.7
        if let AlternativeParams::Exponential { lambda } = exp.params {
            assert!((lambda + 0.7f64.ln()).abs() < 0.03, "{lambda}");
        }
        let str_exp = compare_power_law(&data, &fit, Alternative::StretchedExponential).unwrap();
        assert!(str_exp.ratio < 0.0, "{str_exp:?}");
    }

    #[test]
    fn discrete_errors() {
        let data: Vec<f64> = (1..=50).map(f64::from).collect();
        let fit = fit_power_law(&data, &PowerLawConfig::discrete().with_xmax(40.0)).unwrap();
        assert_eq!(
            compare_power_law(&data, &fit, Alternative::Lognormal),
            Err(Error::Unsupported(
                "likelihood-ratio tests for discrete fits with an xmax cut"
            ))
        );
        let fit = fit_power_law(&data, &PowerLawConfig::discrete()).unwrap();
        let mut bad = data.clone();
        bad[2] = 2.5;
        assert!(matches!(
            compare_power_law(&bad, &fit, Alternative::Exponential),
            Err(Error::OutOfDomain { index: 2, .. })
        ));
        let huge = [1.0, 2.0, 3.0, 3.0, 9_007_199_254_740_992.0];
        let fit = fit_power_law(&huge, &PowerLawConfig::discrete().with_xmin(1.0)).unwrap();
        assert_eq!(
            compare_power_law(&huge, &fit, Alternative::Exponential),
            Err(Error::Unsupported(
                "discrete likelihood-ratio tests for values of 2^52 or more"
            ))
        );
        let one = [1.0, 2.0, 5.0];
        let fit = fit_power_law(&one, &PowerLawConfig::discrete().with_xmin(4.0)).unwrap();
        assert!(matches!(
            compare_power_law(&one, &fit, Alternative::Lognormal),
            Err(Error::Degenerate(_))
        ));
    }
}
