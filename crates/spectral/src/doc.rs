//! Guides (documentation only; no code).

pub mod for_powerlaw_users {
    //! # For users of the Python `powerlaw` package
    //!
    //! The fits follow Clauset, Shalizi and Newman (CSN, 2009), as `powerlaw` 1.5 does. This page
    //! maps `powerlaw` calls to this crate option by option, and lists every place where the
    //! defaults or the results differ.
    //!
    //! ## Fitting
    //!
    //! | `powerlaw` | here |
    //! |---|---|
    //! | `Fit(data)` | [`fit_power_law`]`(&data, &PowerLawConfig::continuous())` |
    //! | `Fit(data, discrete=True)` | [`PowerLawConfig::discrete()`](crate::PowerLawConfig::discrete) |
    //! | `Fit(data, xmin=2.0)` | `.with_xmin(2.0)` ([`XminChoice::Fixed`]) |
    //! | `Fit(data, xmins=[…])` / `xmin=(lo, hi)` | `.with_xmin_grid(vec![…])` ([`XminChoice::Grid`]) |
    //! | `Fit(data, xmax=m)` | `.with_xmax(m)` (see *xmax* below) |
    //! | `fit.alpha`, `fit.xmin`, `fit.sigma`, `fit.D` | [`PowerLawFit`] fields `alpha`, `xmin`, `sigma`, `ks_distance` |
    //! | `fit.n_tail` (the tail size) | `n_tail` |
    //! | `fit.power_law.loglikelihoods(…)`.sum() | `log_likelihood` |
    //! | `fit.distribution_compare('power_law', 'lognormal', normalized_ratio=True)` | [`compare_power_law`]`(&data, &fit, Alternative::Lognormal)`: both `ratio` and `normalized_ratio`, and `p_value` |
    //! | `'exponential'`, `'stretched_exponential'`, `'truncated_power_law'` | [`Alternative`] variants |
    //! | `fit.lognormal.mu`, `.sigma`, `fit.truncated_power_law.Lambda`, … | [`AlternativeParams`] |
    //! | (no equivalent) | [`bootstrap_p_value`]: the CSN goodness-of-fit test |
    //!
    //! ## Where the defaults or results differ
    //!
    //! - **No cap on alpha.** `powerlaw` 2.0.0 restricts alpha to `[1, 3]` by default. On samples
    //!   whose best tail is steeper than 3 it then reports a different xmin. From the reference
    //!   runs in `shared/reference/spectral/` (lognormal μ = 0, σ = 1, n = 10 000, and
    //!   exponential rate 1, n = 5000):
    //!
    //!   | sample | `powerlaw` 2.0.0 default | here (and CSN, `powerlaw` 1.5, 2.0.0 with alpha range [1, 20]) |
    //!   |---|---|---|
    //!   | lognormal | alpha 2.99985, xmin 3.0583, n_tail 1353 | alpha 3.83715, xmin 7.5968, n_tail 233 |
    //!   | exponential | alpha 2.99750, xmin 1.2252, n_tail 1506 | alpha 4.08535, xmin 2.0848, n_tail 625 |
    //!
    //!   The capped fits sit on the boundary of the allowed range, so they are not maximum
    //!   likelihood fits. To reproduce them, scan a grid that leaves out the larger xmins, or fit
    //!   at the fixed xmin that `powerlaw` 2.0.0 reports.
    //! - **Non-positive data are an error** ([`Error::OutOfDomain`](crate::Error::OutOfDomain)).
    //!   `powerlaw` drops them with a warning. Set
    //!   [`dropping_non_positive()`](crate::PowerLawConfig::dropping_non_positive) to do the same;
    //!   the count is in `n_dropped`.
    //! - **Discrete alpha is always the exact MLE.** `powerlaw` defaults to
    //!   `estimate_discrete=True`, a fast approximation (`1 + n / Σ ln(x/(xmin − ½))`) that it calls
    //!   very accurate for xmin > 6 and that can be far off for small xmin (2.017 against the exact
    //!   2.496 on `zipf_a2.5_n10000_seed4.txt` at xmin = 1). Discrete fits also report the
    //!   Fisher-information standard error (`sigma_fisher`, CSN eq. 3.6) beside `powerlaw`'s
    //!   `(alpha − 1)/sqrt(n)`.
    //! - **Exponential alternative in closed form.** `λ = 1/mean(x − xmin)` is the exact MLE. The
    //!   optimiser in `powerlaw` lands within 3e-5 of it (2.0.0) and R is 7e-9 off in relative
    //!   terms (1.5).
    //! - **xmax cuts the data; the model is not truncated.** The data above xmax are left out, and
    //!   alpha, sigma and D are those of the untruncated power law on `[xmin, xmax]`. This
    //!   reproduces WeightWatcher, which passes `xmax = λ_max`. A model renormalised on
    //!   `[xmin, xmax]` is not implemented.
    //! - **Only `fit_method='Likelihood'` and `xmin_distance='D'`.** The KS-fit method, the
    //!   `'V'`/`'Asquare'` distances, `sigma_threshold` and the `'lognormal_positive'`
    //!   alternative are not implemented.
    //! - **Discrete alternatives are summed over the integers.** For a discrete fit each
    //!   alternative's density is evaluated at the integers `k ≥ xmin` and normalised by its sum
    //!   over them (the exponential becomes the geometric law, with a closed-form MLE).
    //!   `powerlaw`'s default `discrete_approximation='round'` instead integrates the continuous
    //!   density over `[k − ½, k + ½]`, so its discrete R values differ from ours. With an xmax
    //!   cut, discrete tests return [`Error::Unsupported`](crate::Error::Unsupported).
    //! - **Degenerate input fails loudly.** All-equal data, a fixed xmin above every value, or a
    //!   one-value tail return [`Error::Degenerate`](crate::Error::Degenerate). `powerlaw` returns
    //!   NaN or warns.
    //!
    //! ## What is the same
    //!
    //! - The KS distance is `max |F(x_i) − i/n|` over the distinct tail values, with `i` the number
    //!   of tail values strictly below `x_i` (`powerlaw`'s `cdf` with `searchsorted(side='left')`).
    //! - The xmin candidates are the distinct values except the largest, and the first minimum of
    //!   D wins (`numpy.argmin`).
    //! - Vuong's test: `R = Σ (ℓ_pl − ℓ_alt)`, `p = erfc(|R| / sqrt(2 n var))`, normalised
    //!   `R / sqrt(n var)` with the population variance. For the nested truncated power law,
    //!   `p = 1 − χ²₁.cdf(2|R|)`, which we evaluate as `erfc(sqrt(|R|))`. A `-inf`
    //!   log-likelihood is clamped to `ln(1e-307)` as in `powerlaw`.
    //!
    //! ## Speed
    //!
    //! The xmin scan gives the same answer as the plain O(n²) scan (a test checks this), but it
    //! rarely does all that work. A pilot pass over 64 spread-out candidates gives an exact D to
    //! beat. A candidate is dropped as soon as one of its points (a strided pre-pass first) pushes
    //! it above that bound. On the reference samples, a full continuous fit of 10 000 values takes
    //! about 0.03 s. `powerlaw` 2.0.0 takes 0.9 to 2.4 s.
    //!
    //! [`fit_power_law`]: crate::fit_power_law
    //! [`compare_power_law`]: crate::compare_power_law
    //! [`bootstrap_p_value`]: crate::bootstrap_p_value
    //! [`XminChoice::Fixed`]: crate::XminChoice::Fixed
    //! [`XminChoice::Grid`]: crate::XminChoice::Grid
    //! [`PowerLawFit`]: crate::PowerLawFit
    //! [`Alternative`]: crate::Alternative
    //! [`AlternativeParams`]: crate::AlternativeParams
}
