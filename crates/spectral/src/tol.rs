//! Named tolerances, one line each.

/// Relative step at which Newton iterations on smooth 1-D problems stop.
pub(crate) const NEWTON_REL: f64 = 1e-15;
/// Iteration cap for Newton / bisection solvers.
pub(crate) const NEWTON_MAX_ITER: usize = 200;
/// Relative stop for continued fractions and series in the special functions.
pub(crate) const SERIES_EPS: f64 = 1e-17;
/// Iteration cap for continued fractions and series in the special functions.
pub(crate) const SERIES_MAX_ITER: usize = 10_000;
/// Nelder-Mead stops when the simplex's function values span less than this (absolute, in nats).
pub(crate) const NM_FTOL: f64 = 1e-11;
/// Nelder-Mead stops when the simplex's extent falls below this (in the optimiser's coordinates).
pub(crate) const NM_XTOL: f64 = 1e-10;
/// Nelder-Mead iteration cap per restart.
pub(crate) const NM_MAX_ITER: usize = 20_000;
/// Nelder-Mead iteration cap over all restarts (no new restart starts beyond it).
pub(crate) const NM_MAX_TOTAL: usize = 60_000;
/// Added to each eigenvalue share in WeightWatcher's spectral entropy (`p = λ/Σλ + 1e-10`).
pub(crate) const WW_ENTROPY_EPS: f64 = 1e-10;
