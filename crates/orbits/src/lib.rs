//! claimlab-orbits: permutation groups, orbit counting, and the weight-space symmetry of networks.
//!
//! # What it computes
//! - [`Perm`], [`PermGroup`]: permutations of `0..n` and groups given by generators, with the exact
//!   order (a [`num_bigint::BigUint`]), membership, orbits, point stabilisers, a base and strong
//!   generating set, uniform and product-replacement random elements. Whole symmetric and
//!   alternating groups on an orbit are recognised structurally (Jordan's theorem), so products of
//!   symmetric groups of degree in the thousands cost milliseconds; everything else goes through
//!   deterministic Schreier-Sims.
//!
//! # Conventions
//! - Points are 0-based in the API; cycle notation (parsing and `Display`) is 1-based as in GAP.
//! - Products are read left to right: `p.compose(q)` is "first `p`, then `q`" (GAP's `p*q`).
//! - `log2` everywhere means base-2 logarithms (bits).
//!
//! # Example
//! ```
//! use claimlab_orbits::{Perm, PermGroup};
//! // Rubik's cube group from its six face turns (GAP's numbering of the 48 facets).
//! let faces = [
//!     "(1,3,8,6)(2,5,7,4)(9,33,25,17)(10,34,26,18)(11,35,27,19)",
//!     "(9,11,16,14)(10,13,15,12)(1,17,41,40)(4,20,44,37)(6,22,46,35)",
//!     "(17,19,24,22)(18,21,23,20)(6,25,43,16)(7,28,42,13)(8,30,41,11)",
//!     "(25,27,32,30)(26,29,31,28)(3,38,43,19)(5,36,45,21)(8,33,48,24)",
//!     "(33,35,40,38)(34,37,39,36)(3,9,46,32)(2,12,47,29)(1,14,48,27)",
//!     "(41,43,48,46)(42,45,47,44)(14,22,30,38)(15,23,31,39)(16,24,32,40)",
//! ];
//! let gens = faces.iter().map(|s| Perm::parse_cycles(s, 48)).collect::<Result<Vec<_>, _>>()?;
//! let cube = PermGroup::new(48, gens)?;
//! assert_eq!(cube.order().to_string(), "43252003274489856000");
//! # Ok::<(), claimlab_orbits::Error>(())
//! ```
//!
//! # Accuracy
//! All group orders and orbit counts are exact integers; the only floating-point outputs are
//! `log2` summaries, which are computed from the exact integers (relative error below 1e-15).
#![forbid(unsafe_code)]

mod burnside;
mod cycle_index;
mod error;
mod expr;
mod group;
mod named;
mod network;
mod perm;
mod schreier_sims;
mod stabiliser;

pub use burnside::{
    brute_force_colouring_orbits, burnside_count, burnside_count_classes, BRUTE_FORCE_LIMIT,
};
pub use cycle_index::{CycleIndex, Monomial, MAX_TERMS};
pub use error::{Error, Result};
pub use expr::{direct_product, wreath_product, GroupExpr};
pub use group::{factorial, FactorKind, FactorSummary, PermGroup, ProductReplacement};
pub use named::{alternating_group, cyclic_group, dihedral_group, symmetric_group};
pub use network::{
    log2_big, weight_graph, weight_space_symmetry, Activation, IndexSpace, NetworkShape, NormKind,
    SpaceKind, SymmetryComponent, SymmetryReport, TensorRole, WeightGraph, WeightTensor,
};
pub use perm::Perm;
pub use petgraph;
pub use stabiliser::{
    canonical_permutation, canonical_savings, log2_orbit_size, permute_cols, permute_rows,
    signed_unit_stabiliser, unit_stabiliser, unit_stabiliser_by_key, unit_stabiliser_of_rows,
    CanonicalSavings, UnitStabiliser,
};
