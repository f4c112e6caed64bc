//! claimlab-orbits: permutation groups, orbit counting, and the weight-space symmetry of networks.
//!
//! # What it computes
//! - [`Perm`], [`PermGroup`]: permutations of `0..n` and groups given by generators, with the exact
//!   order (a [`num_bigint::BigUint`]), membership, orbits, point stabilisers, a base and strong
//!   generating set, uniform and product-replacement random elements. Whole symmetric and
//!   alternating groups on an orbit are recognised structurally (Jordan's theorem), so products of
//!   symmetric groups of degree in the thousands cost milliseconds; everything else goes through
//!   deterministic Schreier-Sims.
//! - Counting: [`burnside_count`] (Burnside's lemma from a fixed-point function),
//!   [`burnside_count_classes`], [`CycleIndex`] (Pólya cycle index of `S_n`, `A_n`, `C_n`, `D_n`,
//!   direct and wreath products, or of any small group by enumeration) and
//!   [`CycleIndex::colourings`]; [`GroupExpr`] parses `S4 x C3`, `S2 wr S3`;
//!   [`brute_force_colouring_orbits`] checks all of them on small cases.
//! - Networks: [`weight_graph`] (petgraph graph of index spaces and weight matrices),
//!   [`weight_space_symmetry`] (the function-preserving group per component, exact order and
//!   `log2`, continuous part as a Lie dimension), the stabiliser of concrete weights
//!   ([`unit_stabiliser_of_rows`], [`signed_unit_stabiliser`]), [`canonical_permutation`] and the
//!   bits a canonical form can save ([`canonical_savings`]).
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
//! # How permutation groups are analysed
//! The generators are split into classes of orbits: two orbits belong to the same class when one
//! generator moves points of both. Generators of different classes have disjoint supports, so the
//! group is the direct product of the groups of the classes (a *factor* each). A factor that is one
//! orbit of size `m >= 8` is tested for being the whole symmetric or alternating group on its orbit
//! (a "giant") by Jordan's theorem: a transitive group of degree `m` that contains a `p`-cycle for a
//! prime `m/2 < p <= m - 3` is primitive and therefore contains `A_m` (Dixon and Mortimer,
//! *Permutation Groups*, 1996, Thm 3.3E; the same test as GAP's `IsNaturalSymmetricGroup`). Such a
//! `p`-cycle is the power `x^(L/p)` of an element `x` with a cycle of length `p`; the candidates `x`
//! are the generators and a fixed, seeded sequence of product-replacement elements. The result is a
//! proof, not a guess: when the test succeeds the factor is `S_m` (some generator is odd) or `A_m`,
//! with a closed-form BSGS. Every other factor gets deterministic Schreier-Sims on its own points
//! (Holt, Eick, O'Brien, *Handbook of Computational Group Theory*, 2005, §4.4.2). So a product of symmetric groups of degree thousands costs a few
//! dozen permutation products per block, while a large factor that is neither giant nor small falls
//! back to Schreier-Sims, whose cost grows like `m^5` in the worst case.
//!
//! # Weight-space symmetry of a network
//!
//! The weight-space symmetry of a transformer: which relabellings of hidden units, heads and
//! coordinates leave the network's function unchanged, and how big that group is.
//!
//! The model is a graph ([`weight_graph`]): nodes are index spaces (the residual stream, each MLP
//! hidden layer, each key/value group's query-key and value-output spaces, the vocabulary), edges
//! are weight matrices mapping one space into another. The symmetry group is read off the graph
//! ([`weight_space_symmetry`]), one component per node plus one per attention layer for the head
//! permutations:
//!
//! ```text
//! space                 discrete part (signed coordinate permutations)   continuous part (Lie dim)
//! MLP hidden, GELU/SiLU S_dff                                            0
//! MLP hidden, ReLU      S_dff                                            d_ff   (positive scaling)
//! MLP hidden, tanh      C2 ≀ S_dff  (sign flips: tanh is odd)            0
//! MLP hidden, identity  C2 ≀ S_dff                                       d_ff²  (GL(d_ff))
//! gated MLP (act(G x) ⊙ U x): the up row is linear, so ×2 signs and +d_ff dims on top of the above
//! heads of one layer    S_q ≀ S_g  (g key/value groups of q query heads) 0
//! query-key space       C2 ≀ S_dh without RoPE; C4^(dh/2) with RoPE      dh² (GL) or dh (C*^(dh/2))
//! value-output space    C2 ≀ S_dh                                        dh²    (GL(dh))
//! residual, LayerNorm   S_d                                              (d-1)(d-2)/2 without affine
//! residual, RMSNorm     C2 ≀ S_d                                         d(d-1)/2 without gain (O(d))
//! residual, no norm     C2 ≀ S_d                                         d²     (GL(d))
//! ```
//!
//! *Discrete part* means: the group of signed permutations of parameter coordinates that leave
//! the function unchanged. This is what a lossless canonical form can exploit, and its order is
//! exact. The continuous factors (scalings, orthogonal or general linear changes of basis) are
//! reported only by their dimension; they contain some of the discrete elements (a signed
//! permutation is orthogonal), which is why the two are kept apart rather than multiplied.
//!
//! When the residual stream is itself the model's output (an embedding model read out by pooling),
//! relabelling it changes the output, so the residual component is reported with order 1 and a
//! note. References: Hecht-Nielsen, "On the algebraic structure of feedforward network weight
//! spaces" (1990) for permutation and sign symmetries; Neyshabur et al. (2015) for ReLU scaling;
//! Ashkboos et al., "SliceGPT" (2024) for the orthogonal symmetry of RMSNorm residual streams.
//!
//! # Accuracy
//! All group orders and orbit counts are exact integers; the only floating-point outputs are
//! `log2` summaries, which are computed from the exact integers (relative error below 1e-15).
#![forbid(unsafe_code)]

mod burnside;
mod cycle_index;
pub mod doc;
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
pub use group::{factorial, FactorKind, FactorSummary, GroupConfig, PermGroup, ProductReplacement};
pub use named::{alternating_group, cyclic_group, dihedral_group, symmetric_group};
pub use network::{
    log2_big, weight_graph, weight_space_symmetry, Activation, IndexSpace, KindSummary,
    NetworkShape, NormKind, SpaceKind, SymmetryComponent, SymmetryReport, TensorRole, WeightGraph,
    WeightTensor,
};
pub use num_bigint;
pub use perm::Perm;
pub use petgraph;
pub use stabiliser::{
    block_permutation, canonical_permutation, canonical_savings, canonical_unit_permutation,
    log2_orbit_size, mlp_units, permute_cols, permute_rows, signed_unit_stabiliser,
    unit_stabiliser, unit_stabiliser_by_key, unit_stabiliser_of_rows, CanonicalSavings,
    UnitStabiliser,
};
