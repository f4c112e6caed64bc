//! Guides for users of peer tools (documentation only).

/// For users of GAP and SymPy's `sympy.combinatorics`.
///
/// | GAP / SymPy                                          | here                                                  |
/// |------------------------------------------------------|-------------------------------------------------------|
/// | `(1,2,3)(4,5)` / `Permutation([[0,1,2],[3,4]])`      | [`Perm::parse_cycles`](crate::Perm::parse_cycles) (1-based) / [`Perm::from_cycles`](crate::Perm::from_cycles) (0-based) |
/// | `p*q` (both tools: first `p`, then `q`)              | [`p.compose(&q)`](crate::Perm::compose), same order   |
/// | `Group(gens)` / `PermutationGroup(gens)`             | [`PermGroup::new`](crate::PermGroup::new)             |
/// | `Size(G)` / `G.order()`                              | [`PermGroup::order`](crate::PermGroup::order) (exact `BigUint`) |
/// | `g in G` / `G.contains(g)`                           | [`PermGroup::contains`](crate::PermGroup::contains)   |
/// | `Orbits(G)` / `G.orbits()`                           | [`PermGroup::orbits`](crate::PermGroup::orbits), sorted lists |
/// | `Stabilizer(G, p)` / `G.stabilizer(p)`               | [`PermGroup::stabiliser`](crate::PermGroup::stabiliser) |
/// | `BaseStabChain`, `StrongGeneratorsStabChain` / `G.base`, `G.strong_gens` | [`PermGroup::base`](crate::PermGroup::base), [`PermGroup::strong_generators`](crate::PermGroup::strong_generators) |
/// | `PseudoRandom(G)` / `G.random_pr()`                  | [`ProductReplacement`](crate::ProductReplacement)     |
/// | `Random(G)` / `G.random()`                           | [`PermGroup::uniform_element`](crate::PermGroup::uniform_element) |
/// | `WreathProduct(G, H)`, `DirectProduct(G, H)`         | [`wreath_product`](crate::wreath_product), [`direct_product`](crate::direct_product) |
/// | `CycleStructurePerm(p)` / `p.cycle_structure`        | [`Perm::cycle_type`](crate::Perm::cycle_type) (a count per length, fixed points included) |
///
/// Where we differ:
/// - Points are 0-based in the API (SymPy's convention), 1-based in cycle notation (GAP's).
/// - GAP computes stabiliser chains by random Schreier-Sims and verifies them; SymPy's
///   `schreier_sims` is deterministic. Here a factor that is the whole symmetric or alternating
///   group on an orbit of size at least 8 is recognised by Jordan's theorem and never gets a chain
///   (see the [crate documentation](crate#how-permutation-groups-are-analysed)); every other
///   factor gets deterministic Schreier-Sims, bounded by [`GroupConfig`](crate::GroupConfig), which
///   returns [`Error::TooLarge`](crate::Error::TooLarge) instead of running for hours.
/// - The base of a recognised giant is its points in ascending order, not GAP's choice, so bases
///   and strong generating sets differ from GAP's even where the group is the same.
/// - Orders, orbit sizes and colouring counts are checked against SymPy 1.14 in
///   `tests/sympy_reference.rs` (exact agreement on 28 groups, Rubik's cube and M12 included).
pub mod for_gap_and_sympy_users {}
