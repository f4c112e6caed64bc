//! Continuous allocation: choose each layer's error level to minimise the weighted squared error
//! within a total size, by closed forms (reverse water-filling and its weighted variants) and by a
//! numerical augmented-Lagrangian method on argmin's solvers for user functions.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

use crate::error::{check_finite, Error, Result};
use crate::sum::sum;

/// One layer of a continuous allocation problem.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ContinuousLayer {
    /// `S_l > 0`: how much a unit of squared error in this layer costs in the objective (for example a
    /// Hessian trace or Fisher sensitivity).
    pub sensitivity: f64,
    /// `n_l > 0`: the number of parameters (the size scale).
    pub params: f64,
    /// `σ_l > 0`: the error when the layer is given no size at all (for example the weights' RMS).
    pub scale: f64,
}

impl ContinuousLayer {
    /// A layer from `S_l`, `n_l` and `σ_l`.
    #[must_use]
    pub const fn new(sensitivity: f64, params: f64, scale: f64) -> Self {
        Self {
            sensitivity,
            params,
            scale,
        }
    }
}

/// How a layer's size depends on its error `ε` (see each variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum SizeModel {
    /// `size_l(ε) = n_l · max(0, log2(σ_l / ε))`: one bit per parameter halves the error (the
    /// Gaussian `D(R) = σ² 2^(−2R)` with `D = ε²`). The optimum is weighted reverse water-filling:
    /// `ε_l² = min(θ n_l / S_l, σ_l²)`.
    Log2Bits,
    /// `size_l(ε) = n_l · max(0, 1 − ε/σ_l)`: size falls linearly to nothing at `ε = σ_l`. The optimum is
    /// `ε_l = min(σ_l, μ n_l / (2 S_l σ_l))`, i.e. `ε_l ∝ S_l^-1` for equal `n_l` and `σ_l`.
    Linear,
}

impl SizeModel {
    /// The layer's size at error `eps` under this model.
    #[must_use]
    pub fn size(self, layer: &ContinuousLayer, eps: f64) -> f64 {
        match self {
            Self::Log2Bits => layer.params * (layer.scale / eps).log2().max(0.0),
            Self::Linear => layer.params * (1.0 - eps / layer.scale).max(0.0),
        }
    }
}

/// A continuous allocation.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ContinuousAllocation {
    /// `ε_l` per layer.
    pub error: Vec<f64>,
    /// `size_l(ε_l)` per layer.
    pub size: Vec<f64>,
    /// `Σ size_l`.
    pub total_size: f64,
    /// `Σ S_l ε_l²`.
    pub objective: f64,
    /// The multiplier: the objective's decrease per extra unit of size at the optimum.
    pub multiplier: f64,
    /// Whether each layer gets a positive size and an error below `σ_l` (`false`: left at `σ_l`).
    pub active: Vec<bool>,
}

fn validate_layers(layers: &[ContinuousLayer]) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::Empty { what: "layers" });
    }
    for (index, l) in layers.iter().enumerate() {
        for (value, reason) in [
            (l.sensitivity, "sensitivity must be finite and positive"),
            (l.params, "params must be finite and positive"),
            (l.scale, "scale must be finite and positive"),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::OutOfRange {
                    index,
                    value,
                    reason,
                });
            }
        }
    }
    Ok(())
}

fn finish(
    layers: &[ContinuousLayer],
    model: SizeModel,
    error: Vec<f64>,
    multiplier: f64,
) -> ContinuousAllocation {
    let size: Vec<f64> = layers
        .iter()
        .zip(&error)
        .map(|(l, &e)| model.size(l, e))
        .collect();
    let active = layers
        .iter()
        .zip(&error)
        .map(|(l, &e)| e < l.scale)
        .collect();
    ContinuousAllocation {
        total_size: sum(size.iter().copied()),
        objective: sum(layers
            .iter()
            .zip(&error)
            .map(|(l, &e)| l.sensitivity * e * e)),
        error,
        size,
        multiplier,
        active,
    }
}

/// The exact optimum of `minimise Σ_l S_l ε_l²  subject to  Σ_l size_l(ε_l) ≤ B` in closed form.
///
/// ```text
/// Log2Bits:  ε_l² = min(θ n_l/S_l, σ_l²),   Σ_l n_l · ½ log2(σ_l²/ε_l²) = B,   multiplier 2 ln 2 · θ
/// Linear:    ε_l  = min(σ_l, μ n_l/(2 S_l σ_l)),   Σ_l n_l (1 − ε_l/σ_l) = B,   multiplier μ
/// ```
///
/// Both are water-filling: the layers are sorted by their threshold (`S_l σ_l²/n_l` for `Log2Bits`,
/// `2 S_l σ_l²/n_l` for `Linear`) and the active set grows until the level is consistent. With all
/// `S_l = n_l = 1`, `Log2Bits` is textbook reverse water-filling (Cover and Thomas, Theorem 10.3.3).
///
/// # Arguments
/// * `layers` — `S_l`, `n_l`, `σ_l` per layer, all finite and positive.
/// * `model` — how size depends on error.
/// * `budget` — the total size `B ≥ 0`; for `Linear`, budgets of `Σ n_l` or more give `ε = 0`.
///
/// # Errors
/// [`Error::Empty`], [`Error::OutOfRange`] for a non-positive or non-finite layer field,
/// [`Error::InvalidParam`] for a negative or non-finite budget.
///
/// # Complexity
/// O(L log L) time, O(L) memory.
///
/// # References
/// Cover and Thomas, *Elements of Information Theory*, 2nd ed. (2006), Theorem 10.3.3;
/// Huang and Schultheiss (1963), "Block quantization of correlated Gaussian random variables", IEEE
/// Trans. Commun. Syst. 11(3), 289–296, doi:10.1109/TCOM.1963.1088759.
///
/// # Example
/// ```
/// use claimlab_budget::{allocate_continuous, ContinuousLayer, SizeModel};
/// // Reverse water-filling on variances 4, 2, 1, 0.5, 0.25 (σ = √var) at 5.8048 bits: level 0.2.
/// let layers: Vec<_> = [4.0_f64, 2.0, 1.0, 0.5, 0.25].iter().map(|v| ContinuousLayer::new(1.0, 1.0, v.sqrt())).collect();
/// let a = allocate_continuous(&layers, SizeModel::Log2Bits, 5.804820237218405).unwrap();
/// assert!((a.error[0].powi(2) - 0.2).abs() < 1e-12);
/// ```
pub fn allocate_continuous(
    layers: &[ContinuousLayer],
    model: SizeModel,
    budget: f64,
) -> Result<ContinuousAllocation> {
    validate_layers(layers)?;
    if !(budget.is_finite() && budget >= 0.0) {
        return Err(Error::InvalidParam {
            name: "budget",
            value: budget,
            reason: "must be finite and non-negative",
        });
    }
    match model {
        SizeModel::Log2Bits => Ok(water_fill_bits(layers, budget)),
        SizeModel::Linear => Ok(water_fill_linear(layers, budget)),
    }
}

fn water_fill_bits(layers: &[ContinuousLayer], budget: f64) -> ContinuousAllocation {
    // Threshold t_l = S_l σ_l² / n_l: layer l is active when θ < t_l.
    let t: Vec<f64> = layers
        .iter()
        .map(|l| l.sensitivity * l.scale * l.scale / l.params)
        .collect();
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| t[b].total_cmp(&t[a]).then(a.cmp(&b)));
    // Work in log2: log2 θ = (Σ_A n_l log2 t_l − 2B) / Σ_A n_l.
    let mut log_theta = t[order[0]].log2();
    if budget > 0.0 {
        let (mut num, mut den) = (0.0, 0.0);
        for (k, &l) in order.iter().enumerate() {
            num += layers[l].params * t[l].log2();
            den += layers[l].params;
            log_theta = (num - 2.0 * budget) / den;
            let next = order.get(k + 1).map_or(f64::NEG_INFINITY, |&m| t[m].log2());
            if log_theta >= next {
                break;
            }
        }
    }
    let theta = log_theta.exp2();
    let error = layers
        .iter()
        .zip(&t)
        .map(|(l, &tl)| {
            if log_theta < tl.log2() {
                (theta * l.params / l.sensitivity).sqrt()
            } else {
                l.scale
            }
        })
        .collect();
    finish(
        layers,
        SizeModel::Log2Bits,
        error,
        2.0 * std::f64::consts::LN_2 * theta,
    )
}

fn water_fill_linear(layers: &[ContinuousLayer], budget: f64) -> ContinuousAllocation {
    let total: f64 = sum(layers.iter().map(|l| l.params));
    if budget >= total {
        return finish(layers, SizeModel::Linear, vec![0.0; layers.len()], 0.0);
    }
    // Layer l is active when μ < t_l = 2 S_l σ_l² / n_l; μ = 2(Σ_A n_l − B) / Σ_A n_l²/(S_l σ_l²).
    let t: Vec<f64> = layers
        .iter()
        .map(|l| 2.0 * l.sensitivity * l.scale * l.scale / l.params)
        .collect();
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| t[b].total_cmp(&t[a]).then(a.cmp(&b)));
    let mut mu = t[order[0]];
    if budget > 0.0 {
        let (mut n, mut w) = (0.0, 0.0);
        for (k, &l) in order.iter().enumerate() {
            let ly = &layers[l];
            n += ly.params;
            w += ly.params * ly.params / (ly.sensitivity * ly.scale * ly.scale);
            mu = 2.0 * (n - budget) / w;
            let next = order.get(k + 1).map_or(f64::NEG_INFINITY, |&m| t[m]);
            if mu >= next {
                break;
            }
        }
    }
    let error = layers
        .iter()
        .map(|l| (mu * l.params / (2.0 * l.sensitivity * l.scale)).clamp(0.0, l.scale))
        .collect();
    finish(layers, SizeModel::Linear, error, mu)
}

/// Reverse water-filling for independent Gaussian components at a given total distortion.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct WaterFilling {
    /// The water level `θ`.
    pub theta: f64,
    /// `D_i = min(θ, σ_i²)`.
    pub distortion: Vec<f64>,
    /// `R_i = max(0, ½ log2(σ_i²/θ))` in bits.
    pub rate_bits: Vec<f64>,
    /// `Σ R_i` in bits.
    pub rate_total_bits: f64,
    /// `σ_i² > θ`.
    pub active: Vec<bool>,
}

/// Reverse water-filling: the rate–distortion function of independent Gaussians at total MSE `D`.
///
/// ```text
/// D_i = min(θ, σ_i²),  Σ_i D_i = D,  R(D) = Σ_i max(0, ½ log2(σ_i²/θ))
/// ```
///
/// # Errors
/// [`Error::Empty`]; [`Error::NonFinite`]; [`Error::OutOfRange`] for a variance that is not positive;
/// [`Error::InvalidParam`] when `D` is not in `(0, Σ σ_i²]`.
///
/// # Complexity
/// O(n log n).
///
/// # References
/// Cover and Thomas (2006), Theorem 10.3.3.
///
/// # Example
/// ```
/// use claimlab_budget::reverse_water_filling;
/// let w = reverse_water_filling(&[4.0, 2.0, 1.0, 0.5, 0.25], 1.0).unwrap();
/// assert!((w.theta - 0.2).abs() < 1e-12 && (w.rate_total_bits - 5.804820237218405).abs() < 1e-12);
/// ```
pub fn reverse_water_filling(variances: &[f64], total_distortion: f64) -> Result<WaterFilling> {
    if variances.is_empty() {
        return Err(Error::Empty { what: "variances" });
    }
    check_finite(variances)?;
    if let Some((index, &value)) = variances.iter().enumerate().find(|(_, &v)| v <= 0.0) {
        return Err(Error::OutOfRange {
            index,
            value,
            reason: "variance must be positive",
        });
    }
    let total = sum(variances.iter().copied());
    if !(total_distortion > 0.0 && total_distortion <= total * (1.0 + 1e-12)) {
        return Err(Error::InvalidParam {
            name: "total_distortion",
            value: total_distortion,
            reason: "must lie in (0, sum of variances]",
        });
    }
    let mut sorted = variances.to_vec();
    sorted.sort_by(f64::total_cmp);
    // θ = (D − Σ_{i<k} σ_(i)²) / (n − k) for the first k where it does not exceed σ_(k)².
    let n = sorted.len();
    let mut below = 0.0;
    let mut theta = sorted[n - 1];
    for (k, &v) in sorted.iter().enumerate() {
        let cand = (total_distortion - below) / (n - k) as f64;
        if cand <= v {
            theta = cand;
            break;
        }
        below += v;
    }
    let distortion: Vec<f64> = variances.iter().map(|&v| v.min(theta)).collect();
    let rate_bits: Vec<f64> = variances
        .iter()
        .map(|&v| (0.5 * (v / theta).log2()).max(0.0))
        .collect();
    Ok(WaterFilling {
        theta,
        active: variances.iter().map(|&v| v > theta).collect(),
        rate_total_bits: sum(rate_bits.iter().copied()),
        distortion,
        rate_bits,
    })
}

/// Which argmin solver runs the inner minimisations of [`minimise_within_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum InnerSolver {
    /// argmin's L-BFGS (memory 7) with a More–Thuente line search and central-difference gradients.
    Lbfgs,
    /// argmin's Nelder–Mead (for non-smooth user functions); slower and less precise.
    NelderMead,
}

/// Settings of [`minimise_within_budget`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct NumericConfig {
    /// The inner solver (default L-BFGS).
    pub solver: InnerSolver,
    /// Most augmented-Lagrangian updates (default 100).
    pub max_outer: usize,
    /// Most iterations of each inner solve (default 2000).
    pub max_inner: u64,
    /// Stop when the constraint is violated by at most `feas_tol · max(1, |B|, |g(x0)|)` and the
    /// scaled multiplier moved by at most `√feas_tol · max(1, μ̃)` (default 1e-9).
    pub feas_tol: f64,
    /// Initial penalty weight `ρ` on the scaled problem (default 10; multiplied by 10 when the
    /// violation does not shrink fourfold, up to 1e8).
    pub rho: f64,
    /// Stop only when the scaled Lagrangian's gradient `‖∇(f/f₀ + μ̃ g/g₀)‖∞` is at most this
    /// (default 1e-6; `f₀ = |f(x0)|`, `g₀ = max(1, |B|, |g(x0)|)`).
    pub kkt_tol: f64,
}

impl Default for NumericConfig {
    fn default() -> Self {
        Self {
            solver: InnerSolver::Lbfgs,
            max_outer: 100,
            max_inner: 2000,
            feas_tol: 1e-9,
            rho: 10.0,
            kkt_tol: 1e-6,
        }
    }
}

/// The result of [`minimise_within_budget`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct NumericSolution {
    /// The minimiser.
    pub x: Vec<f64>,
    /// `f(x)`.
    pub objective: f64,
    /// `g(x)`.
    pub size: f64,
    /// The constraint's multiplier estimate `μ ≥ 0`.
    pub multiplier: f64,
    /// `max(0, g(x) − B)`.
    pub violation: f64,
    /// Augmented-Lagrangian updates made.
    pub outer_iterations: usize,
    /// Inner solver iterations in all.
    pub inner_iterations: u64,
    /// Inner solves that argmin ended with an error (typically a line search that found no descent at a
    /// numerical minimum); the outer loop then continues from the unchanged point. Diagnostics only: the
    /// stopping rule is the constraint residual, the multiplier's movement and the KKT residual.
    pub inner_failures: usize,
    /// The scaled KKT stationarity residual at `x` (at most `kkt_tol`).
    pub kkt_residual: f64,
}

/// The augmented Lagrangian `f + ((max(0, μ + ρ c))² − μ²)/(2ρ)`, `c = g − B`.
struct AugLag<'a> {
    f: &'a dyn Fn(&[f64]) -> f64,
    g: &'a dyn Fn(&[f64]) -> f64,
    budget: f64,
    /// Scales: the objective is divided by `fs`, the constraint by `gs`.
    fs: f64,
    gs: f64,
    mu: f64,
    rho: f64,
}

impl AugLag<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        let c = ((self.g)(x) - self.budget) / self.gs;
        let p = (self.mu + self.rho * c).max(0.0);
        (self.f)(x) / self.fs + (p * p - self.mu * self.mu) / (2.0 * self.rho)
    }

    /// `‖∇(f/fs + μ g/gs)‖∞` by central differences: the KKT stationarity residual (scaled).
    fn kkt_residual(&self, x: &[f64], mu: f64) -> f64 {
        let phi = |y: &[f64]| (self.f)(y) / self.fs + mu * (self.g)(y) / self.gs;
        central_gradient(&phi, x)
            .into_iter()
            .fold(0.0, |m, v| m.max(v.abs()))
    }
}

fn central_gradient(phi: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let mut y = x.to_vec();
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let h = 1e-6 * x[i].abs().max(1.0);
        y[i] = x[i] + h;
        let up = phi(&y);
        y[i] = x[i] - h;
        let down = phi(&y);
        y[i] = x[i];
        out.push((up - down) / (2.0 * h));
    }
    out
}

impl CostFunction for AugLag<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.value(x))
    }
}

impl Gradient for AugLag<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(central_gradient(&|y| self.value(y), x))
    }
}

fn inner_solve(
    problem: AugLag<'_>,
    x0: Vec<f64>,
    config: &NumericConfig,
) -> Result<(Vec<f64>, u64, bool)> {
    let fail = |e: argmin::core::Error| Error::NotConverged {
        iterations: 0,
        reason: format!("inner solver: {e}"),
    };
    match config.solver {
        InnerSolver::Lbfgs => {
            let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
                .with_tolerance_grad(1e-12)
                .and_then(|s| s.with_tolerance_cost(1e-15))
                .map_err(fail)?;
            let res = Executor::new(problem, solver)
                .configure(|s| s.param(x0.clone()).max_iters(config.max_inner))
                .run();
            match res {
                Ok(r) => {
                    let it = r.state().get_iter();
                    let x = r.state().get_best_param().cloned().unwrap_or(x0);
                    Ok((x, it, false))
                }
                // A line search that cannot descend further means we are at a (numerical) minimum of
                // the inner problem: keep the start point of this inner solve, the outer loop decides.
                Err(_) => Ok((x0, 0, true)),
            }
        }
        InnerSolver::NelderMead => {
            let mut simplex = vec![x0.clone()];
            for i in 0..x0.len() {
                let mut p = x0.clone();
                p[i] += 0.05 * x0[i].abs().max(1e-2);
                simplex.push(p);
            }
            let solver = NelderMead::new(simplex)
                .with_sd_tolerance(1e-14)
                .map_err(fail)?;
            let r = Executor::new(problem, solver)
                .configure(|s| s.max_iters(config.max_inner))
                .run()
                .map_err(fail)?;
            let it = r.state().get_iter();
            let x = r.state().get_best_param().cloned().unwrap_or(x0);
            Ok((x, it, false))
        }
    }
}

/// Minimises a user objective under one size constraint by the augmented-Lagrangian method.
///
/// ```text
/// minimise f(x)  subject to  g(x) ≤ B
/// L_ρ(x; μ) = f(x) + (max(0, μ + ρ(g(x) − B))² − μ²) / (2ρ),   μ ← max(0, μ + ρ(g(x*) − B))
/// ```
///
/// `f` is scaled by `|f(x0)|` and the constraint by `max(1, |B|, |g(x0)|)` first. Each inner
/// minimisation of `L_ρ` runs on argmin (see [`InnerSolver`]) from the previous point. It stops only
/// when the constraint residual, the multiplier's movement and the KKT stationarity residual (by
/// central differences) are all within tolerance, so a stalled inner solver gives
/// [`Error::NotConverged`], not a wrong answer. The
/// variables are unconstrained: reparameterise inside `f` and `g` for bounds (the built-in models use
/// `ε = σ 2^(−v²)`). Converges to a KKT point; for convex problems, to the optimum.
///
/// # Arguments
/// * `objective`, `size` — `f` and `g`; must return finite values near the path.
/// * `budget` — `B`.
/// * `x0` — the start.
///
/// # Errors
/// [`Error::Empty`] for no variables; [`Error::NonFinite`] for a non-finite start;
/// [`Error::InvalidParam`] for a bad budget or config; [`Error::UserFunction`] when `f` or `g` returns
/// a non-finite value at an iterate; [`Error::NotConverged`] when `max_outer` updates do not reach the
/// tolerance.
///
/// # Complexity
/// Per inner iteration O(n) evaluations of `f` and `g` (central differences).
///
/// # References
/// Nocedal and Wright, *Numerical Optimization*, 2nd ed. (2006), section 17.4 (bound-constrained
/// formulation, eq. 17.65 for inequalities).
///
/// # Example
/// ```
/// use claimlab_budget::{minimise_within_budget, NumericConfig};
/// // minimise x² + y² subject to −(x + y) ≤ −2: the optimum is x = y = 1.
/// let s = minimise_within_budget(&|x| x[0] * x[0] + x[1] * x[1], &|x| -(x[0] + x[1]), -2.0, &[0.0, 0.0], &NumericConfig::default()).unwrap();
/// assert!((s.x[0] - 1.0).abs() < 1e-5 && (s.multiplier - 2.0).abs() < 1e-4);
/// ```
pub fn minimise_within_budget(
    objective: &dyn Fn(&[f64]) -> f64,
    size: &dyn Fn(&[f64]) -> f64,
    budget: f64,
    x0: &[f64],
    config: &NumericConfig,
) -> Result<NumericSolution> {
    if x0.is_empty() {
        return Err(Error::Empty {
            what: "start point",
        });
    }
    check_finite(x0)?;
    if !budget.is_finite() {
        return Err(Error::InvalidParam {
            name: "budget",
            value: budget,
            reason: "must be finite",
        });
    }
    if config.max_outer == 0 || config.max_inner == 0 {
        return Err(Error::InvalidParam {
            name: "max_outer/max_inner",
            value: 0.0,
            reason: "must be positive",
        });
    }
    if !(config.feas_tol > 0.0 && config.feas_tol < 1.0) {
        return Err(Error::InvalidParam {
            name: "feas_tol",
            value: config.feas_tol,
            reason: "must lie in (0, 1)",
        });
    }
    if !(config.kkt_tol.is_finite() && config.kkt_tol > 0.0) {
        return Err(Error::InvalidParam {
            name: "kkt_tol",
            value: config.kkt_tol,
            reason: "must be finite and positive",
        });
    }
    if !(config.rho.is_finite() && config.rho > 0.0) {
        return Err(Error::InvalidParam {
            name: "rho",
            value: config.rho,
            reason: "must be finite and positive",
        });
    }
    let check = |x: &[f64]| -> Result<(f64, f64)> {
        let (fx, gx) = (objective(x), size(x));
        if !fx.is_finite() {
            return Err(Error::UserFunction { what: "objective" });
        }
        if !gx.is_finite() {
            return Err(Error::UserFunction { what: "size" });
        }
        Ok((fx, gx))
    };
    let (f0, _) = check(x0)?;
    // Scale both functions to order one at the start, so that ρ and the tolerances mean the same for
    // every problem.
    let fs = if f0.abs() > 0.0 { f0.abs() } else { 1.0 };
    let gs = budget.abs().max(size(x0).abs()).max(1.0);
    let (mut x, mut mu, mut rho) = (x0.to_vec(), 0.0_f64, config.rho);
    let mut inner_total = 0;
    let mut inner_failures = 0;
    let mut last_residual = f64::INFINITY;
    let mut last_kkt = f64::INFINITY;
    for outer in 1..=config.max_outer {
        let problem = AugLag {
            f: objective,
            g: size,
            budget,
            fs,
            gs,
            mu,
            rho,
        };
        let (nx, it, failed) = inner_solve(problem, x.clone(), config)?;
        inner_total += it;
        inner_failures += usize::from(failed);
        x = nx;
        let (fx, gx) = check(&x)?;
        let c = (gx - budget) / gs;
        let new_mu = (mu + rho * c).max(0.0);
        // Complementarity residual: |max(c, −μ/ρ)|.
        let residual = c.max(-mu / rho).abs();
        let mu_moved = (new_mu - mu).abs();
        mu = new_mu;
        let probe = AugLag {
            f: objective,
            g: size,
            budget,
            fs,
            gs,
            mu,
            rho,
        };
        let kkt = probe.kkt_residual(&x, mu);
        last_kkt = kkt;
        if residual <= config.feas_tol
            && mu_moved <= config.feas_tol.sqrt() * mu.max(1.0)
            && kkt <= config.kkt_tol
        {
            return Ok(NumericSolution {
                x,
                objective: fx,
                size: gx,
                multiplier: mu * fs / gs,
                violation: (gx - budget).max(0.0),
                outer_iterations: outer,
                inner_iterations: inner_total,
                inner_failures,
                kkt_residual: kkt,
            });
        }
        if residual > 0.25 * last_residual && rho < 1e8 {
            rho *= 10.0;
        }
        last_residual = residual;
    }
    Err(Error::NotConverged {
        iterations: config.max_outer as u64,
        reason: format!(
            "scaled constraint residual {last_residual} (tolerance {}), KKT residual {last_kkt} (tolerance {})",
            config.feas_tol, config.kkt_tol
        ),
    })
}

/// [`allocate_continuous`] solved numerically (augmented Lagrangian on argmin) in smooth unconstrained
/// variables (`ε_l = σ_l 2^(−v_l²)` for `Log2Bits`, `ε_l = σ_l (1 + cos v_l)/2` for `Linear`), as an
/// independent check of the closed forms.
///
/// `start` gives `ε_l` to start from (`None`: the closed form, the issue's "first guess").
///
/// # Errors
/// As [`allocate_continuous`] and [`minimise_within_budget`]; [`Error::LengthMismatch`] when `start`
/// has the wrong length; [`Error::OutOfRange`] for a start error that is not positive.
///
/// # Example
/// ```
/// use claimlab_budget::{allocate_continuous, allocate_continuous_numeric, ContinuousLayer, NumericConfig, SizeModel};
/// let layers = [ContinuousLayer::new(3.0, 1.0, 1.0), ContinuousLayer::new(1.0, 2.0, 0.5)];
/// let exact = allocate_continuous(&layers, SizeModel::Log2Bits, 4.0).unwrap();
/// let num = allocate_continuous_numeric(&layers, SizeModel::Log2Bits, 4.0, Some(&[0.5, 0.3]), &NumericConfig::default()).unwrap();
/// assert!((num.objective - exact.objective).abs() < 1e-6 * exact.objective);
/// ```
pub fn allocate_continuous_numeric(
    layers: &[ContinuousLayer],
    model: SizeModel,
    budget: f64,
    start: Option<&[f64]>,
    config: &NumericConfig,
) -> Result<ContinuousAllocation> {
    let closed = allocate_continuous(layers, model, budget)?;
    let eps0 = match start {
        None => closed.error,
        Some(s) => {
            if s.len() != layers.len() {
                return Err(Error::LengthMismatch {
                    what: "start vs layers",
                    left: s.len(),
                    right: layers.len(),
                });
            }
            check_finite(s)?;
            if let Some((index, &value)) = s.iter().enumerate().find(|(_, &e)| e <= 0.0) {
                return Err(Error::OutOfRange {
                    index,
                    value,
                    reason: "start error must be positive",
                });
            }
            s.to_vec()
        }
    };
    // ε = 0 (a Linear budget of Σ n or more) has no bits representation; the closed form is exact.
    if eps0.iter().any(|&e| e <= 0.0) {
        return allocate_continuous(layers, model, budget);
    }
    // Smooth reparameterisations keep ε_l in (0, σ_l]: bits v_l² for Log2Bits, ε_l = σ_l (1 + cos v_l)/2
    // for Linear. Layers that end inactive sit at the stationary point v_l = 0, so starts are moved off
    // it (and off v = π for Linear).
    let v0: Vec<f64> = layers
        .iter()
        .zip(&eps0)
        .map(|(l, &e)| match model {
            SizeModel::Log2Bits => (l.scale / e).log2().max(0.0).sqrt().max(1e-3),
            SizeModel::Linear => (2.0 * e / l.scale - 1.0)
                .clamp(-1.0, 1.0)
                .acos()
                .clamp(1e-3, std::f64::consts::PI - 1e-3),
        })
        .collect();
    let eps_of = |v: &[f64]| -> Vec<f64> {
        layers
            .iter()
            .zip(v)
            .map(|(l, &vi)| match model {
                SizeModel::Log2Bits => l.scale * (-vi * vi).exp2(),
                SizeModel::Linear => l.scale * 0.5 * (1.0 + vi.cos()),
            })
            .collect()
    };
    let objective = |v: &[f64]| {
        sum(layers
            .iter()
            .zip(eps_of(v))
            .map(|(l, e)| l.sensitivity * e * e))
    };
    let size = |v: &[f64]| {
        sum(layers.iter().zip(v).map(|(l, &vi)| match model {
            SizeModel::Log2Bits => l.params * vi * vi,
            SizeModel::Linear => l.params * 0.5 * (1.0 - vi.cos()),
        }))
    };
    let sol = minimise_within_budget(&objective, &size, budget, &v0, config)?;
    let error = eps_of(&sol.x)
        .into_iter()
        .zip(layers)
        .map(|(e, l)| e.min(l.scale))
        .collect();
    Ok(finish(layers, model, error, sol.multiplier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;
    use claimlab_testkit::{assert_slice_close, read_json, reference_dir};

    fn unit_layers(variances: &[f64]) -> Vec<ContinuousLayer> {
        variances
            .iter()
            .map(|&v| ContinuousLayer::new(1.0, 1.0, v.sqrt()))
            .collect()
    }

    fn f64s(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    /// `rd/rd_reference.json`, reverse water-filling (closed form computed independently in Python
    /// with numpy; exact up to rounding, so 1e-12).
    #[test]
    fn water_filling_matches_reference() {
        let r = read_json(reference_dir().join("rd/rd_reference.json"));
        let rwf = &r["reverse_water_filling"];
        let var = f64s(&rwf["variances"]);
        for case in rwf["cases"].as_array().unwrap() {
            let d_total = case["D_total"].as_f64().unwrap();
            let theta = case["theta"].as_f64().unwrap();
            let r_total = case["R_total"].as_f64().unwrap();
            let w = reverse_water_filling(&var, d_total).unwrap();
            assert_slice_close(
                &[w.theta, w.rate_total_bits],
                &[theta, r_total],
                1e-12,
                1e-12,
            );
            assert_slice_close(&w.distortion, &f64s(&case["D_i"]), 1e-12, 1e-12);
            assert_slice_close(&w.rate_bits, &f64s(&case["R_i"]), 1e-12, 1e-12);
            let active: Vec<bool> = case["active"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            assert_eq!(w.active, active);
            // The same point from the rate side: the weighted model with S = n = 1.
            let a = allocate_continuous(&unit_layers(&var), SizeModel::Log2Bits, r_total).unwrap();
            let d: Vec<f64> = a.error.iter().map(|e| e * e).collect();
            assert_slice_close(&d, &f64s(&case["D_i"]), 1e-12, 1e-12);
            assert_slice_close(
                &[a.total_size, a.objective],
                &[r_total, d_total],
                1e-12,
                1e-12,
            );
            if r_total > 0.0 {
                assert_eq!(a.active, active);
                assert!((a.multiplier - 2.0 * std::f64::consts::LN_2 * theta).abs() < 1e-12);
            }
        }
    }

    fn random_layers(rng: &mut impl claimlab_testkit::rand::Rng, n: usize) -> Vec<ContinuousLayer> {
        (0..n)
            .map(|_| {
                ContinuousLayer::new(
                    0.1 + 10.0 * rng.random::<f64>(),
                    1.0 + rng.random_range(0..4u32) as f64,
                    0.1 + rng.random::<f64>(),
                )
            })
            .collect()
    }

    /// The closed forms spend the budget exactly, and no feasible random perturbation beats them
    /// (perturb two layers' sizes in opposite directions and compare).
    #[test]
    fn closed_forms_are_optimal_against_perturbations() {
        let mut rng = claimlab_testkit::rng(21);
        for model in [SizeModel::Log2Bits, SizeModel::Linear] {
            for _ in 0..50 {
                let layers = random_layers(&mut rng, 5);
                let cap: f64 = match model {
                    SizeModel::Log2Bits => 12.0,
                    _ => layers.iter().map(|l| l.params).sum(),
                };
                let budget = cap * rng.random::<f64>();
                let a = allocate_continuous(&layers, model, budget).unwrap();
                assert!(
                    (a.total_size - budget).abs() <= 1e-9 * budget.max(1.0),
                    "{model:?} {} vs {budget}",
                    a.total_size
                );
                // Move size δ from layer i to layer j (both kept in range) through the exact inverse.
                for _ in 0..40 {
                    let (i, j) = (rng.random_range(0..5), rng.random_range(0..5));
                    if i == j {
                        continue;
                    }
                    let delta = a.size[i] * rng.random::<f64>();
                    let mut e = a.error.clone();
                    let inv = |l: &ContinuousLayer, s: f64| match model {
                        SizeModel::Log2Bits => l.scale * (-s / l.params).exp2(),
                        _ => l.scale * (1.0 - s / l.params),
                    };
                    let sj = a.size[j] + delta;
                    if matches!(model, SizeModel::Linear) && sj > layers[j].params {
                        continue;
                    }
                    e[i] = inv(&layers[i], a.size[i] - delta);
                    e[j] = inv(&layers[j], sj);
                    let obj: f64 = layers
                        .iter()
                        .zip(&e)
                        .map(|(l, x)| l.sensitivity * x * x)
                        .sum();
                    assert!(
                        obj >= a.objective * (1.0 - 1e-12),
                        "{model:?}: perturbation {obj} beats {}",
                        a.objective
                    );
                }
            }
        }
    }

    #[test]
    fn linear_model_gives_inverse_sensitivity() {
        let layers: Vec<_> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&s| ContinuousLayer::new(s, 1.0, 1.0))
            .collect();
        let a = allocate_continuous(&layers, SizeModel::Linear, 3.0).unwrap();
        for (l, e) in layers.iter().zip(&a.error) {
            assert!((e * l.sensitivity - a.error[0] * layers[0].sensitivity).abs() < 1e-12);
        }
        let all = allocate_continuous(&layers, SizeModel::Linear, 10.0).unwrap();
        assert!(all.error.iter().all(|&e| e == 0.0) && all.multiplier.abs() < 1e-300);
        let none = allocate_continuous(&layers, SizeModel::Linear, 0.0).unwrap();
        assert_eq!(none.active, vec![false; 4]);
        let none = allocate_continuous(&layers, SizeModel::Log2Bits, 0.0).unwrap();
        assert_eq!(none.active, vec![false; 4]);
        assert!(none.total_size.abs() < 1e-15);
    }

    /// Closed form against the numerical augmented-Lagrangian solution started from ε = σ/2, on 200
    /// instances of 2 to 10 layers with sensitivities over four decades and 1 to 100 parameters.
    /// Tolerance 1e-6 relative on the objective (the worst seen is about 2e-7): central differences
    /// (h = 1e-6) and the KKT tolerance 1e-6 limit the numeric side to about that.
    #[test]
    fn numeric_agrees_with_closed_form() {
        let mut rng = claimlab_testkit::rng(99);
        for t in 0..200 {
            let model = if t % 2 == 0 {
                SizeModel::Log2Bits
            } else {
                SizeModel::Linear
            };
            let layers: Vec<ContinuousLayer> = (0..2 + t % 9)
                .map(|_| {
                    ContinuousLayer::new(
                        0.01 + 100.0 * rng.random::<f64>(),
                        f64::from(1 + rng.random_range(0..100u32)),
                        0.01 + rng.random::<f64>(),
                    )
                })
                .collect();
            let total: f64 = layers.iter().map(|l| l.params).sum();
            let cap = if t % 2 == 0 { 6.0 * total } else { total };
            let budget = cap * rng.random::<f64>();
            let exact = allocate_continuous(&layers, model, budget).unwrap();
            let start: Vec<f64> = layers.iter().map(|l| 0.5 * l.scale).collect();
            let num = allocate_continuous_numeric(
                &layers,
                model,
                budget,
                Some(&start),
                &NumericConfig::default(),
            )
            .unwrap_or_else(|e| panic!("instance {t}: {e}"));
            let rel = (num.objective - exact.objective).abs() / exact.objective;
            assert!(
                rel < 1e-6,
                "instance {t} {model:?}: numeric {} closed {} (rel {rel})",
                num.objective,
                exact.objective
            );
            assert!(num.total_size <= budget * (1.0 + 1e-8) + 1e-9);
            assert!(
                (num.multiplier - exact.multiplier).abs() < 1e-3 * exact.multiplier.max(1e-6),
                "instance {t}: multiplier {} vs {}",
                num.multiplier,
                exact.multiplier
            );
        }
    }

    #[test]
    fn nelder_mead_inner_solver_also_agrees() {
        let layers = [
            ContinuousLayer::new(2.0, 1.0, 1.0),
            ContinuousLayer::new(0.5, 1.0, 1.0),
        ];
        let exact = allocate_continuous(&layers, SizeModel::Log2Bits, 3.0).unwrap();
        // Nelder–Mead stalls near 1e-3 in the KKT residual, so it needs a looser tolerance.
        let cfg = NumericConfig {
            solver: InnerSolver::NelderMead,
            kkt_tol: 1e-2,
            ..NumericConfig::default()
        };
        let num =
            allocate_continuous_numeric(&layers, SizeModel::Log2Bits, 3.0, Some(&[0.5, 0.5]), &cfg)
                .unwrap();
        assert!((num.objective - exact.objective).abs() < 1e-5 * exact.objective);
    }

    #[test]
    fn errors() {
        let ok = [ContinuousLayer::new(1.0, 1.0, 1.0)];
        assert!(matches!(
            allocate_continuous(&[], SizeModel::Linear, 1.0),
            Err(Error::Empty { .. })
        ));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let l = [ok[0], ContinuousLayer::new(bad, 1.0, 1.0)];
            assert!(matches!(
                allocate_continuous(&l, SizeModel::Linear, 1.0),
                Err(Error::OutOfRange { index: 1, .. })
            ));
            let l = [ContinuousLayer::new(1.0, 1.0, bad)];
            assert!(matches!(
                allocate_continuous(&l, SizeModel::Log2Bits, 1.0),
                Err(Error::OutOfRange { index: 0, .. })
            ));
        }
        for b in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                allocate_continuous(&ok, SizeModel::Log2Bits, b),
                Err(Error::InvalidParam { name: "budget", .. })
            ));
        }
        assert!(matches!(
            reverse_water_filling(&[], 1.0),
            Err(Error::Empty { .. })
        ));
        assert_eq!(
            reverse_water_filling(&[1.0, f64::NAN, f64::NAN], 1.0),
            Err(Error::NonFinite { index: 1, count: 2 })
        );
        assert!(matches!(
            reverse_water_filling(&[1.0, 0.0], 1.0),
            Err(Error::OutOfRange { index: 1, .. })
        ));
        for d in [0.0, 2.5, f64::NAN] {
            assert!(matches!(
                reverse_water_filling(&[1.0, 1.0], d),
                Err(Error::InvalidParam {
                    name: "total_distortion",
                    ..
                })
            ));
        }
        let f = |x: &[f64]| x[0] * x[0];
        let g = |x: &[f64]| -x[0];
        let cfg = NumericConfig::default();
        assert!(matches!(
            minimise_within_budget(&f, &g, -1.0, &[], &cfg),
            Err(Error::Empty { .. })
        ));
        assert_eq!(
            minimise_within_budget(&f, &g, -1.0, &[f64::NAN], &cfg),
            Err(Error::NonFinite { index: 0, count: 1 })
        );
        assert!(matches!(
            minimise_within_budget(&f, &g, f64::NAN, &[0.0], &cfg),
            Err(Error::InvalidParam { name: "budget", .. })
        ));
        let nan_f = |_: &[f64]| f64::NAN;
        assert_eq!(
            minimise_within_budget(&nan_f, &g, -1.0, &[0.0], &cfg),
            Err(Error::UserFunction { what: "objective" })
        );
        let inf_g = |_: &[f64]| f64::INFINITY;
        assert_eq!(
            minimise_within_budget(&f, &inf_g, -1.0, &[0.0], &cfg),
            Err(Error::UserFunction { what: "size" })
        );
        for bad in [
            NumericConfig {
                max_outer: 0,
                ..cfg
            },
            NumericConfig {
                max_inner: 0,
                ..cfg
            },
            NumericConfig {
                feas_tol: 0.0,
                ..cfg
            },
            NumericConfig {
                rho: f64::NAN,
                ..cfg
            },
            NumericConfig {
                kkt_tol: 0.0,
                ..cfg
            },
        ] {
            assert!(matches!(
                minimise_within_budget(&f, &g, -1.0, &[0.0], &bad),
                Err(Error::InvalidParam { .. })
            ));
        }
        // Infeasible constraint (x² ≤ −1): the outer loop gives up.
        let sq = |x: &[f64]| x[0] * x[0];
        let short = NumericConfig {
            max_outer: 5,
            ..cfg
        };
        assert!(matches!(
            minimise_within_budget(&f, &sq, -1.0, &[1.0], &short),
            Err(Error::NotConverged { .. })
        ));
        assert!(matches!(
            allocate_continuous_numeric(&ok, SizeModel::Linear, 0.5, Some(&[0.5, 0.5]), &cfg),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            allocate_continuous_numeric(&ok, SizeModel::Linear, 0.5, Some(&[-0.5]), &cfg),
            Err(Error::OutOfRange { index: 0, .. })
        ));
    }
}
