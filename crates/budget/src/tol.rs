//! Named tolerances (one line each, like statrs' `prec.rs`).

/// Relative slack in budget feasibility tests: an allocation is feasible when
/// `cost <= budget + COST_REL * max(1, |budget|)`, so that sums taken in a different order agree.
pub const COST_REL: f64 = 1e-12;

/// Relative distance of `cost / quantum` from an integer that still counts as on the grid.
pub const GRID_REL: f64 = 1e-9;

/// Relative slack when comparing distortions of competing allocations (ties within it go to the
/// earlier option or layer).
pub const DIST_REL: f64 = 1e-12;
