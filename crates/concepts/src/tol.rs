//! Named tolerances.

/// Eigenvalues of a covariance below `RANK_TOL · λ_max` are treated as zero (the whitening of
/// LEACE is a pseudo-inverse on the remaining subspace).
pub(crate) const RANK_TOL: f64 = 1e-10;

/// Two-sided standard normal quantile of a 95% interval, Φ⁻¹(0.975).
pub(crate) const Z95: f64 = 1.959_963_984_540_054;

/// Armijo sufficient-decrease constant of the probe's line search.
pub(crate) const ARMIJO: f64 = 1e-4;

/// Singular values of the whitened cross-covariance below `CONCEPT_RANK_TOL · σ_max` are treated
/// as zero (they set the rank of the erased subspace).
pub(crate) const CONCEPT_RANK_TOL: f64 = 1e-8;
