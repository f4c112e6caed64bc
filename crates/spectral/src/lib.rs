//! Spectral analysis of weight matrices and power-law fitting, usable on its own (no dependency on
//! the `weights`, `runtime` or `experiments` crates).
//!
//! What it computes:
//! - **Power-law fits** by the method of Clauset, Shalizi and Newman (2009), in
//!   [`fit_power_law`]. Alpha is the maximum-likelihood estimate for a given xmin: closed form
//!   for continuous data, the exact MLE with the Hurwitz zeta function for discrete data. Xmin
//!   minimises the Kolmogorov-Smirnov distance over all distinct values, a grid or a fixed
//!   value, with an optional xmax cut. Standard errors come with the fit.
//! - **Goodness of fit** by the semiparametric bootstrap ([`bootstrap_p_value`]): seeded, parallel,
//!   and bit-identical at any thread count.
//! - **Likelihood-ratio tests** (Vuong) against the exponential, lognormal, stretched exponential
//!   and truncated power law ([`compare_power_law`], [`compare_all`]), continuous and discrete
//!   (the discrete alternatives are normalised over the integers `k ≥ xmin`).
//! - **Tail estimators**: Hill with a stability series over k ([`hill_series`]), Pickands and the
//!   moment estimator.
//! - **Spectra**: singular values of f64 and f32 matrices (faer), the ESD of `WᵀW` ([`esd`]),
//!   entropy effective rank (Roy-Vetterli), stable rank, participation ratio, cumulative energy
//!   and components for a share of the energy. [`layer_report`] adds a WeightWatcher-style
//!   report: the ESD power-law fit, alpha-hat, norms, entropy and Marchenko-Pastur spikes.
//! - **Rank-decay fits** `σ_k ≈ C k^(−γ)` against `C e^(−βk)` on the same ranks
//!   ([`fit_rank_decay`]).
//! - The special functions these need ([`special`]).
//!
//! # Example
//! ```
//! use claimlab_spectral::{fit_power_law, PowerLawConfig};
//! // a deterministic continuous power law with alpha = 2.5 above xmin = 1
//! let data: Vec<f64> = (0..5000).map(|i| (1.0 - (i as f64 + 0.5) / 5000.0).powf(-1.0 / 1.5)).collect();
//! let fit = fit_power_law(&data, &PowerLawConfig::continuous()).unwrap();
//! assert!((fit.alpha - 2.5).abs() < 0.02);
//! assert!(fit.ks_distance < 0.01);
//! ```
//!
//! # Conventions
//! - **Alpha is the exponent of the pdf**: `p(x) ∝ x^-alpha` for `x ≥ xmin`. The CCDF then
//!   decays as `x^(1-alpha)`, the tail index is `alpha − 1`, and the extreme-value index of the
//!   tail estimators is `ξ = 1/(alpha − 1)`.
//! - **KS distance**: `D = max_i |F(x_i) − i/n|` over the *distinct* tail values
//!   `x_0 < x_1 < …`, where `i` is the number of tail values strictly below `x_i`. This is the
//!   `i/n` empirical CDF of `powerlaw`, evaluated only at the data; `F` is the fitted model CDF.
//! - **xmin candidates**: every distinct value except the largest; the **first** minimum of D wins.
//! - **Standard error** `sigma = (alpha − 1)/sqrt(n_tail)` (CSN eq. 3.2) for both models.
//!   Discrete fits also report the exact Fisher-information error (CSN eq. 3.6).
//! - **Likelihood ratio** `R = Σ ln p_pl − ln p_alt`: positive favours the power law. Logs are
//!   natural (nats) everywhere except WeightWatcher's `log10` norms.
//! - **ESD**: eigenvalues of `WᵀW` without the 1/N, as WeightWatcher 0.7.x does; [`EsdScale`]
//!   offers `/N`. Alpha and D do not depend on the scale.
//! - **Singular values** come in non-increasing order and ranks are 1-based.
//!
//! # Accuracy and peers
//! Reference values are in `shared/reference/spectral/`.
//! - Continuous fits match the CSN reference (`results_csn_ref.json`, an implementation that
//!   agrees with `powerlaw` 1.5 to ~1e-13) to 1e-10 relative in alpha, sigma, D and the
//!   log-likelihood, with identical xmin, n_tail and candidate counts.
//! - The discrete fit matches to 1e-7. The reference's optimiser stopped 6e-9 short of the root
//!   of the score equation, which we solve to ~1e-15 (checked by brute force).
//! - Likelihood ratios R match to 1e-6 relative with the same sign; normalised R and p match to
//!   1e-4, because the lognormal and truncated optima are flat.
//! - Bootstrap p-values agree within 3 Monte Carlo standard errors on all four reference runs.
//! - The WeightWatcher layer report on the Student-t matrix matches WeightWatcher 0.7.7 to 1e-10
//!   (alpha, xmin, D, λ_max, alpha-hat, norms, stable rank, entropy).
//! - Hill estimates match to 1e-12; rank-decay fits match to 1e-12.
//! - Special functions match mpmath to ~1e-15 (Hurwitz zeta) and 1e-13 (incomplete gamma).
//! - `powerlaw` 2.0.0 caps alpha at 3 by default and so disagrees on lognormal and exponential
//!   samples; we follow CSN with no cap. See [`doc::for_powerlaw_users`].
//!
//! # Features
//! - `rayon` (default): parallel xmin scans and bootstrap batches. The results are bit-identical
//!   with or without it.
//! - `serde`: `Serialize`/`Deserialize` on the configuration and result types.
#![forbid(unsafe_code)]
// STYLE.md asks for float checks written `!(x > 0.0)` so that NaN fails them; clippy would have
// us spell every one with `partial_cmp`, which reads worse.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod bootstrap;
mod compare;
mod compare_discrete;
mod csn;
mod decay;
pub mod doc;
mod error;
mod optimize;
mod specfun;
mod spectrum;
mod tail;
mod tol;

pub use bootstrap::{
    bootstrap_p_value, bootstrap_p_value_with_progress, BootstrapConfig, BootstrapResult,
    BOOTSTRAP_BATCH,
};
pub use compare::{
    compare_all, compare_power_law, Alternative, AlternativeParams, LikelihoodRatio,
};
pub use csn::{fit_power_law, PowerLawConfig, PowerLawFit, XminChoice};
pub use decay::{fit_rank_decay, DecayModel, RankDecayFit};
pub use error::{Error, Result};
pub use faer;
pub use specfun::functions as special;
pub use spectrum::{
    components_for_energy, cumulative_energy, entropy_effective_rank, esd, layer_report,
    layer_report_f32, participation_ratio, singular_values, singular_values_f32, stable_rank,
    EsdScale, LayerReport,
};
pub use tail::{hill_estimator, hill_series, moment_estimator, pickands_estimator, TailEstimate};
