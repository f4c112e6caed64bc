//! Budget optimisation for compression pipelines: where to spend a size budget, and how errors of
//! chained stages add up.
//!
//! - **Discrete allocation** (the multiple-choice knapsack): each layer has a menu of [`Item`]s
//!   (cost, distortion); pick one per layer to minimise total distortion within a total cost.
//!   [`lagrangian_path`] sweeps the multiplier and lists every allocation the Lagrangian
//!   (Shoham–Gersho) method can return; [`lagrangian_allocation`] and [`lagrangian_bisection`] pick one
//!   for a budget; [`exact_allocation_dp`], [`exact_curve_dp`] and [`exact_allocation_bnb`] give the
//!   exact optimum; [`duality_gaps`] compares them. [`exact_allocation_multi`] solves HAWQ-V3's variant
//!   with several budgets at once (size, BOPs, latency).
//! - **Continuous allocation**: minimise `Σ S_l ε_l²` within a total size. [`allocate_continuous`]
//!   gives the closed forms (weighted reverse water-filling, `ε_l ∝ S_l^-1`), [`reverse_water_filling`]
//!   the textbook Gaussian case, [`minimise_within_budget`] an augmented-Lagrangian solver on argmin
//!   for user functions, and [`allocate_continuous_numeric`] the built-in models through it.
//! - **Pareto fronts** of (size, loss) points: [`pareto_front`], [`pareto_hull`], [`hypervolume`],
//!   [`convexity`] (with the largest violation).
//! - **Error composition** of a pipeline `C_n ∘ … ∘ C_1`: [`composition_bound`]
//!   (`Σ ε_i Π_{j>i} L_j`), [`lipschitz_from_pairs`] and [`lipschitz_sampled`] (largest ratio, with
//!   the sample size), [`order_by_rule`] (largest `ε_i/(1 − ρ_i)` first), [`best_order_brute_force`]
//!   and [`ordering_regret`].
//! - **Sample sizes** for calibration: [`hoeffding_samples`], [`dkw_samples`], [`tail_samples`] and
//!   [`tail_confidence`] (the confidence to state beside a largest-ratio estimate).
//!
//! # Example
//! ```
//! use claimlab_budget::{exact_allocation_dp, lagrangian_allocation, DpConfig, Item};
//! // Two layers, each at 2, 4 or 8 bits per weight (costs in bits), distortion = MSE.
//! let menus = vec![
//!     vec![Item::new(200.0, 0.30), Item::new(400.0, 0.08), Item::new(800.0, 0.01)],
//!     vec![Item::new(100.0, 0.50), Item::new(200.0, 0.10), Item::new(400.0, 0.02)],
//! ];
//! let lag = lagrangian_allocation(&menus, 700.0).unwrap();
//! let exact = exact_allocation_dp(&menus, 700.0, &DpConfig::default()).unwrap();
//! assert_eq!(exact.choice, vec![1, 1]);
//! assert!((exact.distortion - 0.18).abs() < 1e-12);
//! assert!(lag.distortion >= exact.distortion - 1e-12 && exact.distortion >= lag.dual_bound - 1e-12);
//! ```
//!
//! # Conventions
//! - Everything is minimised: distortion, loss, size. Costs are in the caller's unit; a cost is within
//!   budget `B` when it is at most `B + 1e-12·max(1, |B|)` ([`tol::COST_REL`]).
//! - Ties go to the lower index (options, layers, points) unless an item says otherwise.
//! - The multiplier `λ` is in distortion per cost unit.
//!
//! # Accuracy and checks
//! Exact algorithms are exact up to floating-point summation (compensated sums throughout); each item
//! states its promise. Tolerances are the named constants in [`tol`]. The tests check: the dynamic
//! programme, branch and bound and the multi-budget solver against brute force over all combinations
//! (relative 1e-9 to 1e-12); Everett's theorem at every point of the Lagrangian path; dual ≤ exact ≤
//! Lagrangian with the gap under the next hull step; reverse water-filling against
//! `shared/reference/rd/rd_reference.json` (to 1e-12); the numerical continuous solver against the
//! closed forms (1e-6 relative); Pareto fronts, hypervolume and convexity violations against O(n³)
//! brute force; the ordering rule's zero regret on the composition bound against all n! orders.
//!
//! # Features
//! `serde`: `Serialize`/`Deserialize` on the public data, configuration and result types.
//!
//! # Performance
//! 200 layers × 32 options at 10^5 budget units: the exact dynamic programme took 0.4–0.6 s and the
//! Lagrangian sweep 0.4–5 ms in release on a shared, loaded 2-core machine (the ignored test
//! `dp_at_issue_scale`; criterion benches are still to come).
#![forbid(unsafe_code)]

mod composition;
mod continuous;
mod error;
mod mckp;
mod multi;
mod pareto;
mod samples;
mod sum;
pub mod tol;

pub use composition::{
    best_order_brute_force, bound_for_order, composition_bound, lipschitz_from_pairs,
    lipschitz_sampled, order_by_rule, ordering_regret, CompositionBound, LipschitzEstimate,
    OrderSearch, OrderingReport, MAX_BRUTE_FORCE_STAGES,
};
pub use continuous::{
    allocate_continuous, allocate_continuous_numeric, minimise_within_budget,
    reverse_water_filling, ContinuousAllocation, ContinuousLayer, InnerSolver, NumericConfig,
    NumericSolution, SizeModel, WaterFilling,
};
pub use error::{Error, Result};
pub use mckp::{
    allocate_bits, duality_gaps, exact_allocation_bnb, exact_allocation_dp, exact_curve_dp,
    lagrangian_allocation, lagrangian_bisection, lagrangian_path, layer_hull, AllocateConfig,
    AllocationReport, BisectionConfig, BranchBoundConfig, DpConfig, ExactCurve, ExactMethod,
    ExactSolution, GapPoint, Item, LagrangianPath, LagrangianSolution, PathPoint, SweepStep,
};
pub use multi::{exact_allocation_multi, MultiItem, MultiSolution};
pub use pareto::{convexity, hypervolume, pareto_front, pareto_hull, Convexity};
pub use samples::{dkw_samples, hoeffding_samples, tail_confidence, tail_samples};

#[cfg(test)]
mod tests {
    /// STYLE.md: area crates never depend on `weights`, `runtime` or `experiments`.
    #[test]
    fn no_dependency_on_weights_runtime_or_experiments() {
        let manifest = include_str!("../Cargo.toml");
        let forbidden = [
            "claimlab-weights",
            "claimlab-runtime",
            "claimlab-experiments",
        ];
        for line in manifest.lines() {
            let key = line.split(['=', '.']).next().unwrap_or("").trim();
            assert!(!forbidden.contains(&key), "Cargo.toml depends on {key}");
        }
    }
}
