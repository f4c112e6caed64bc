//! Error composition of a pipeline `C_n ∘ … ∘ C_1`: the propagated bound, Lipschitz estimates from
//! sampled pairs, and the ordering of stages (a rule against brute force over all orders).

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{check_finite, Error, Result};
use crate::sum::Neumaier;

/// The most stages [`best_order_brute_force`] enumerates (10! = 3 628 800 orders).
pub const MAX_BRUTE_FORCE_STAGES: usize = 10;

fn check_nonneg(xs: &[f64], reason: &'static str) -> Result<()> {
    check_finite(xs)?;
    if let Some((index, &value)) = xs.iter().enumerate().find(|(_, &x)| x < 0.0) {
        return Err(Error::OutOfRange {
            index,
            value,
            reason,
        });
    }
    Ok(())
}

fn check_stages(errors: &[f64], lipschitz: &[f64]) -> Result<()> {
    if errors.is_empty() {
        return Err(Error::Empty { what: "stages" });
    }
    if errors.len() != lipschitz.len() {
        return Err(Error::LengthMismatch {
            what: "errors vs Lipschitz constants",
            left: errors.len(),
            right: lipschitz.len(),
        });
    }
    check_nonneg(errors, "stage error must be non-negative")?;
    check_nonneg(lipschitz, "Lipschitz constant must be non-negative")
}

/// The propagated error bound of a pipeline, term by term.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CompositionBound {
    /// `Σ_i ε_i Π_{j>i} L_j`.
    pub bound: f64,
    /// `ε_i Π_{j>i} L_j` per stage (in pipeline order).
    pub terms: Vec<f64>,
    /// `Π_{j>i} L_j` per stage: how much the later stages amplify stage `i`'s error.
    pub amplification: Vec<f64>,
    /// The measured end-to-end error, when given.
    pub measured: Option<f64>,
    /// `measured ≤ bound` (with relative slack 1e-12), when measured is given.
    pub holds: Option<bool>,
}

/// The error bound of `C_n ∘ … ∘ C_1` from each stage's own error and Lipschitz constant.
///
/// ```text
/// ‖C_n∘…∘C_1(x) − C'_n∘…∘C'_1(x)‖ ≤ Σ_i ε_i Π_{j>i} L_j
/// ε_i = sup ‖C_i − C'_i‖ on the data reaching stage i,  L_i = Lipschitz constant of C_i
/// ```
///
/// Stage 0 is applied first. `measured`, when given, is compared with the bound.
///
/// # Errors
/// [`Error::Empty`]; [`Error::LengthMismatch`]; [`Error::NonFinite`]; [`Error::OutOfRange`] for a
/// negative error or constant; [`Error::InvalidParam`] for a negative or non-finite measured error.
///
/// # Complexity
/// O(n).
///
/// # Example
/// ```
/// use claimlab_budget::composition_bound;
/// let b = composition_bound(&[0.1, 0.2, 0.05], &[2.0, 0.5, 3.0], Some(0.5)).unwrap();
/// // 0.1·0.5·3 + 0.2·3 + 0.05
/// assert!((b.bound - 0.8).abs() < 1e-12 && b.holds == Some(true));
/// ```
pub fn composition_bound(
    errors: &[f64],
    lipschitz: &[f64],
    measured: Option<f64>,
) -> Result<CompositionBound> {
    check_stages(errors, lipschitz)?;
    if let Some(m) = measured {
        if !(m.is_finite() && m >= 0.0) {
            return Err(Error::InvalidParam {
                name: "measured",
                value: m,
                reason: "must be finite and non-negative",
            });
        }
    }
    let n = errors.len();
    let mut amplification = vec![1.0; n];
    for i in (0..n - 1).rev() {
        amplification[i] = amplification[i + 1] * lipschitz[i + 1];
    }
    let terms: Vec<f64> = errors
        .iter()
        .zip(&amplification)
        .map(|(e, a)| e * a)
        .collect();
    let mut s = Neumaier::default();
    for &t in &terms {
        s.add(t);
    }
    let bound = s.value();
    Ok(CompositionBound {
        bound,
        terms,
        amplification,
        measured,
        holds: measured.map(|m| m <= bound * (1.0 + 1e-12)),
    })
}

/// The bound `Σ_k ε_{o_k} Π_{m>k} L_{o_m}` of the stages run in `order` (`order[0]` first).
///
/// # Errors
/// As [`composition_bound`]; [`Error::InvalidParam`] when `order` is not a permutation of the stages.
pub fn bound_for_order(errors: &[f64], lipschitz: &[f64], order: &[usize]) -> Result<f64> {
    check_stages(errors, lipschitz)?;
    check_permutation(order, errors.len())?;
    Ok(bound_unchecked(errors, lipschitz, order))
}

fn bound_unchecked(errors: &[f64], lipschitz: &[f64], order: &[usize]) -> f64 {
    // Horner form: b = ((ε_{o0} L_{o1} + ε_{o1}) L_{o2} + ε_{o2}) ...
    let mut b = 0.0;
    for &i in order {
        b = b * lipschitz[i] + errors[i];
    }
    b
}

fn check_permutation(order: &[usize], n: usize) -> Result<()> {
    let mut seen = vec![false; n];
    if order.len() != n {
        return Err(Error::LengthMismatch {
            what: "order vs stages",
            left: order.len(),
            right: n,
        });
    }
    for &i in order {
        if i >= n || seen[i] {
            return Err(Error::InvalidParam {
                name: "order",
                value: i as f64,
                reason: "not a permutation of the stages",
            });
        }
        seen[i] = true;
    }
    Ok(())
}

/// An estimate of a Lipschitz constant from sampled pairs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LipschitzEstimate {
    /// `max_pairs d_out / d_in`: a lower bound on the true constant.
    pub estimate: f64,
    /// The pair attaining it (indices into the pair list, or the two sample indices for
    /// [`lipschitz_sampled`]); `None` when no pair had a positive input distance.
    pub argmax: Option<(usize, usize)>,
    /// How many pairs entered the maximum (the sample size to state beside the estimate).
    pub pairs_used: usize,
    /// Pairs skipped because both distances were zero.
    pub pairs_skipped: usize,
    /// Whether every pair of samples was used (no randomness involved).
    pub exhaustive: bool,
}

/// The Lipschitz estimate `max_k d_out[k] / d_in[k]` over given pairs of distances.
///
/// Pairs with both distances zero are skipped and counted. `argmax` is `(k, k)` for pair `k`.
///
/// # Errors
/// [`Error::Empty`]; [`Error::LengthMismatch`]; [`Error::NonFinite`]; [`Error::OutOfRange`] for a
/// negative distance, or for a positive output distance at zero input distance (no finite constant).
///
/// # Complexity
/// O(n).
///
/// # Example
/// ```
/// use claimlab_budget::lipschitz_from_pairs;
/// let e = lipschitz_from_pairs(&[1.0, 2.0, 0.0], &[0.5, 3.0, 0.0]).unwrap();
/// assert!((e.estimate - 1.5).abs() < 1e-15 && e.pairs_used == 2 && e.pairs_skipped == 1);
/// ```
pub fn lipschitz_from_pairs(input_dist: &[f64], output_dist: &[f64]) -> Result<LipschitzEstimate> {
    if input_dist.is_empty() {
        return Err(Error::Empty { what: "pairs" });
    }
    if input_dist.len() != output_dist.len() {
        return Err(Error::LengthMismatch {
            what: "input vs output distances",
            left: input_dist.len(),
            right: output_dist.len(),
        });
    }
    check_nonneg(input_dist, "distance must be non-negative")?;
    check_nonneg(output_dist, "distance must be non-negative")?;
    let mut est = LipschitzEstimate {
        estimate: 0.0,
        argmax: None,
        pairs_used: 0,
        pairs_skipped: 0,
        exhaustive: true,
    };
    for (k, (&a, &b)) in input_dist.iter().zip(output_dist).enumerate() {
        if a <= 0.0 {
            if b > 0.0 {
                return Err(Error::OutOfRange {
                    index: k,
                    value: b,
                    reason: "output distance positive at zero input distance",
                });
            }
            est.pairs_skipped += 1;
            continue;
        }
        est.pairs_used += 1;
        let r = b / a;
        if est.argmax.is_none() || r > est.estimate {
            est.estimate = r;
            est.argmax = Some((k, k));
        }
    }
    Ok(est)
}

fn euclid(a: &[f64], b: &[f64]) -> f64 {
    // Scaled to avoid overflow in the squares.
    let m = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    if m == 0.0 || !m.is_finite() {
        return m;
    }
    let mut s = Neumaier::default();
    for (x, y) in a.iter().zip(b) {
        let d = (x - y) / m;
        s.add(d * d);
    }
    m * s.value().sqrt()
}

/// The Lipschitz estimate of the map `inputs[i] ↦ outputs[i]` from pairs of samples, in the
/// Euclidean norm.
///
/// With `n_pairs` at least the number of distinct pairs `n(n−1)/2`, every pair is used (`exhaustive`);
/// otherwise `n_pairs` pairs `i ≠ j` are drawn uniformly with replacement from `Xoshiro256PlusPlus`
/// seeded with `seed`. The estimate is a lower bound on the true constant; state `pairs_used` with it.
///
/// # Errors
/// [`Error::Empty`] for fewer than two samples; [`Error::LengthMismatch`] for differing sample counts or
/// dimensions; [`Error::NonFinite`] (index = sample); [`Error::InvalidParam`] for `n_pairs == 0`;
/// [`Error::OutOfRange`] when two equal inputs have different outputs.
///
/// # Complexity
/// O(P·d) for P pairs in dimension d.
///
/// # Example
/// ```
/// use claimlab_budget::lipschitz_sampled;
/// let xs: Vec<Vec<f64>> = (0..5).map(|i| vec![i as f64]).collect();
/// let ys: Vec<Vec<f64>> = xs.iter().map(|x| vec![3.0 * x[0]]).collect();
/// let e = lipschitz_sampled(&xs, &ys, 100, 1).unwrap();
/// assert!(e.exhaustive && e.pairs_used == 10 && (e.estimate - 3.0).abs() < 1e-12);
/// ```
pub fn lipschitz_sampled(
    inputs: &[Vec<f64>],
    outputs: &[Vec<f64>],
    n_pairs: usize,
    seed: u64,
) -> Result<LipschitzEstimate> {
    if inputs.len() < 2 {
        return Err(Error::Empty {
            what: "samples (need at least two)",
        });
    }
    if inputs.len() != outputs.len() {
        return Err(Error::LengthMismatch {
            what: "inputs vs outputs",
            left: inputs.len(),
            right: outputs.len(),
        });
    }
    if n_pairs == 0 {
        return Err(Error::InvalidParam {
            name: "n_pairs",
            value: 0.0,
            reason: "must be positive",
        });
    }
    for (what, set) in [("input dimension", inputs), ("output dimension", outputs)] {
        let d = set[0].len();
        if let Some(bad) = set.iter().find(|v| v.len() != d) {
            return Err(Error::LengthMismatch {
                what,
                left: d,
                right: bad.len(),
            });
        }
    }
    let bad = |v: &Vec<f64>| v.iter().any(|x| !x.is_finite());
    for set in [inputs, outputs] {
        if let Some(index) = set.iter().position(bad) {
            return Err(Error::NonFinite {
                index,
                count: set.iter().filter(|v| bad(v)).count(),
            });
        }
    }
    let n = inputs.len();
    let total = (n as u128) * (n as u128 - 1) / 2;
    let exhaustive = n_pairs as u128 >= total;
    let mut est = LipschitzEstimate {
        estimate: 0.0,
        argmax: None,
        pairs_used: 0,
        pairs_skipped: 0,
        exhaustive,
    };
    let mut visit = |i: usize, j: usize| -> Result<()> {
        let a = euclid(&inputs[i], &inputs[j]);
        let b = euclid(&outputs[i], &outputs[j]);
        if a <= 0.0 {
            if b > 0.0 {
                return Err(Error::OutOfRange {
                    index: j,
                    value: b,
                    reason: "equal inputs with different outputs",
                });
            }
            est.pairs_skipped += 1;
            return Ok(());
        }
        est.pairs_used += 1;
        let r = b / a;
        if est.argmax.is_none() || r > est.estimate {
            est.estimate = r;
            est.argmax = Some((i, j));
        }
        Ok(())
    };
    if exhaustive {
        for i in 0..n {
            for j in i + 1..n {
                visit(i, j)?;
            }
        }
    } else {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for _ in 0..n_pairs {
            let i = rng.random_range(0..n);
            let mut j = rng.random_range(0..n - 1);
            if j >= i {
                j += 1;
            }
            visit(i.min(j), i.max(j))?;
        }
    }
    Ok(est)
}

/// The order the rule "largest `ε_i / (1 − ρ_i)` first" gives (`order[0]` runs first).
///
/// ```text
/// sort by the angle of (1 − ρ_i, ε_i), largest first:  atan2(ε_i, 1 − ρ_i)
/// ```
///
/// For `ρ_i < 1` this is the ratio `ε_i/(1 − ρ_i)`, largest first; the angle extends it to `ρ_i ≥ 1`
/// (expanding stages go first). With `ρ_i = L_i` the order minimises the composition bound exactly
/// (an adjacent-exchange argument: `a` before `b` is no worse iff `ε_b(1−ρ_a) ≤ ε_a(1−ρ_b)`). Ties
/// keep the lower index first.
///
/// # Errors
/// As [`composition_bound`].
///
/// # Complexity
/// O(n log n).
///
/// # Example
/// ```
/// use claimlab_budget::order_by_rule;
/// // ratios 0.1/0.5 = 0.2, 0.3/0.9 = 0.33, 0.05/0.1 = 0.5
/// assert_eq!(order_by_rule(&[0.1, 0.3, 0.05], &[0.5, 0.1, 0.9]).unwrap(), vec![2, 1, 0]);
/// ```
pub fn order_by_rule(errors: &[f64], rho: &[f64]) -> Result<Vec<usize>> {
    check_stages(errors, rho)?;
    let key: Vec<f64> = errors
        .iter()
        .zip(rho)
        .map(|(&e, &r)| e.atan2(1.0 - r))
        .collect();
    let mut order: Vec<usize> = (0..errors.len()).collect();
    order.sort_by(|&a, &b| key[b].total_cmp(&key[a]).then(a.cmp(&b)));
    Ok(order)
}

/// The result of an exhaustive search over stage orders.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OrderSearch {
    /// The cheapest order (lexicographically first among ties).
    pub best_order: Vec<usize>,
    /// Its cost.
    pub best_cost: f64,
    /// The most expensive order's cost.
    pub worst_cost: f64,
    /// Orders evaluated (`n!`).
    pub orders_evaluated: u64,
}

/// Evaluates `cost(order)` for all `n!` orders of `n` stages, in lexicographic order.
///
/// # Errors
/// [`Error::Empty`] for `n == 0`; [`Error::TooLarge`] for `n > MAX_BRUTE_FORCE_STAGES`;
/// [`Error::UserFunction`] when `cost` returns NaN or ±∞.
///
/// # Complexity
/// O(n!·(n + cost)) time, O(n) memory.
///
/// # Example
/// ```
/// use claimlab_budget::best_order_brute_force;
/// let s = best_order_brute_force(3, &|o| (o[0] as f64 - 2.0).abs()).unwrap();
/// assert_eq!(s.best_order, vec![2, 0, 1]);
/// assert_eq!(s.orders_evaluated, 6);
/// ```
pub fn best_order_brute_force(n: usize, cost: &dyn Fn(&[usize]) -> f64) -> Result<OrderSearch> {
    if n == 0 {
        return Err(Error::Empty { what: "stages" });
    }
    if n > MAX_BRUTE_FORCE_STAGES {
        return Err(Error::TooLarge {
            what: "stages for exhaustive ordering",
            needed: n as u128,
            limit: MAX_BRUTE_FORCE_STAGES as u128,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut best_order = order.clone();
    let (mut best, mut worst) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut count = 0u64;
    loop {
        let c = cost(&order);
        if !c.is_finite() {
            return Err(Error::UserFunction { what: "order cost" });
        }
        count += 1;
        if c < best {
            best = c;
            best_order.clone_from(&order);
        }
        worst = worst.max(c);
        if !next_permutation(&mut order) {
            break;
        }
    }
    Ok(OrderSearch {
        best_order,
        best_cost: best,
        worst_cost: worst,
        orders_evaluated: count,
    })
}

/// Advances to the next permutation in lexicographic order; `false` after the last.
fn next_permutation(p: &mut [usize]) -> bool {
    let Some(i) = (1..p.len()).rev().find(|&i| p[i - 1] < p[i]) else {
        return false;
    };
    let j = (i..p.len()).rev().find(|&j| p[j] > p[i - 1]).unwrap_or(i);
    p.swap(i - 1, j);
    p[i..].reverse();
    true
}

/// How the ordering rule fares against the best order of a cost function.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OrderingReport {
    /// [`order_by_rule`]'s order.
    pub rule_order: Vec<usize>,
    /// Its cost.
    pub rule_cost: f64,
    /// The exhaustive search.
    pub search: OrderSearch,
    /// `rule_cost − best_cost ≥ 0`.
    pub regret: f64,
}

/// The regret of the rule "sort by `ε_i/(1 − ρ_i)`" against all `n!` orders of a cost function
/// (for example a measured end-to-end error, or [`bound_for_order`]).
///
/// # Errors
/// As [`order_by_rule`] and [`best_order_brute_force`].
///
/// # Complexity
/// That of [`best_order_brute_force`].
///
/// # Example
/// ```
/// use claimlab_budget::{bound_for_order, ordering_regret};
/// let (e, r) = ([0.1, 0.3, 0.05, 0.2], [0.5, 0.1, 0.9, 1.5]);
/// let rep = ordering_regret(&e, &r, &|o| bound_for_order(&e, &r, o).unwrap()).unwrap();
/// assert!(rep.regret.abs() < 1e-15); // the rule is exact for the bound itself
/// ```
pub fn ordering_regret(
    errors: &[f64],
    rho: &[f64],
    cost: &dyn Fn(&[usize]) -> f64,
) -> Result<OrderingReport> {
    let rule_order = order_by_rule(errors, rho)?;
    let search = best_order_brute_force(errors.len(), cost)?;
    let rule_cost = cost(&rule_order);
    if !rule_cost.is_finite() {
        return Err(Error::UserFunction { what: "order cost" });
    }
    Ok(OrderingReport {
        regret: rule_cost - search.best_cost,
        rule_order,
        rule_cost,
        search,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    #[test]
    fn bound_matches_direct_formula_and_real_pipeline() {
        let mut rng = claimlab_testkit::rng(2);
        for _ in 0..100 {
            let n = rng.random_range(1..7);
            let e: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let l: Vec<f64> = (0..n).map(|_| 2.0 * rng.random::<f64>()).collect();
            let b = composition_bound(&e, &l, None).unwrap();
            let direct: f64 = (0..n)
                .map(|i| e[i] * l[i + 1..].iter().product::<f64>())
                .sum();
            assert!((b.bound - direct).abs() < 1e-12 * direct.max(1.0));
            let order: Vec<usize> = (0..n).collect();
            assert!(
                (bound_for_order(&e, &l, &order).unwrap() - direct).abs() < 1e-12 * direct.max(1.0)
            );
        }
        // A real pipeline of scalar affine maps C_i(x) = L_i x and perturbed C'_i(x) = L_i x + ε_i:
        // the end-to-end error meets the bound with equality.
        let (e, l) = ([0.1, 0.2, 0.3], [1.5, 0.5, 2.0]);
        let exact = l.iter().fold(1.0, |x, li| li * x);
        let pert = l.iter().zip(&e).fold(1.0, |x, (li, ei)| li * x + ei);
        let b = composition_bound(&e, &l, Some((pert - exact).abs())).unwrap();
        assert_eq!(b.holds, Some(true));
        assert!((b.bound - (pert - exact)).abs() < 1e-12);
        assert_eq!(
            composition_bound(&e, &l, Some(b.bound * 1.01))
                .unwrap()
                .holds,
            Some(false)
        );
    }

    /// The rule is exactly optimal for the bound (ρ = L), including expanding stages (ρ > 1).
    #[test]
    fn rule_is_optimal_for_the_bound() {
        let mut rng = claimlab_testkit::rng(8);
        for _ in 0..200 {
            let n = rng.random_range(1..7);
            let e: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let l: Vec<f64> = (0..n).map(|_| 2.0 * rng.random::<f64>()).collect();
            let rep = ordering_regret(&e, &l, &|o| bound_for_order(&e, &l, o).unwrap()).unwrap();
            assert!(
                rep.regret <= 1e-12 * rep.search.best_cost.max(1.0),
                "regret {}",
                rep.regret
            );
            assert!(rep.search.worst_cost >= rep.search.best_cost);
            assert_eq!(rep.search.orders_evaluated, (1..=n as u64).product::<u64>());
        }
    }

    #[test]
    fn regret_is_reported_for_other_costs() {
        let (e, r) = ([0.3, 0.1, 0.2], [0.2, 0.2, 0.2]);
        // A cost that prefers the identity order: regret = cost(rule) − 0.
        let cost = |o: &[usize]| o.iter().enumerate().filter(|(k, &i)| *k != i).count() as f64;
        let rep = ordering_regret(&e, &r, &cost).unwrap();
        assert_eq!(rep.rule_order, vec![0, 2, 1]);
        assert_eq!(rep.search.best_order, vec![0, 1, 2]);
        assert!((rep.regret - 2.0).abs() < 1e-15);
    }

    #[test]
    fn permutations_are_all_visited_once() {
        let seen = std::cell::RefCell::new(std::collections::HashSet::new());
        let s = best_order_brute_force(5, &|o| {
            assert!(seen.borrow_mut().insert(o.to_vec()));
            0.0
        })
        .unwrap();
        assert_eq!(seen.borrow().len(), 120);
        assert_eq!(s.best_order, vec![0, 1, 2, 3, 4]); // ties: lexicographically first
    }

    #[test]
    fn lipschitz_estimates() {
        let mut rng = claimlab_testkit::rng(12);
        let xs: Vec<Vec<f64>> = (0..30)
            .map(|_| vec![rng.random::<f64>(), rng.random::<f64>()])
            .collect();
        let ys: Vec<Vec<f64>> = xs.iter().map(|x| vec![2.0 * x[0], 0.5 * x[1]]).collect();
        // Exhaustive: equals the maximum over all pairs computed directly.
        let all = lipschitz_sampled(&xs, &ys, usize::MAX, 0).unwrap();
        let mut want: f64 = 0.0;
        for i in 0..30 {
            for j in i + 1..30 {
                want = want.max(euclid(&ys[i], &ys[j]) / euclid(&xs[i], &xs[j]));
            }
        }
        assert!(all.exhaustive && all.pairs_used == 435);
        assert!((all.estimate - want).abs() < 1e-15 * want);
        assert!(all.estimate <= 2.0 + 1e-12);
        // Sampled: a lower bound on the exhaustive one, with the stated sample size, reproducible.
        let s = lipschitz_sampled(&xs, &ys, 50, 7).unwrap();
        assert!(!s.exhaustive && s.pairs_used + s.pairs_skipped == 50);
        assert!(s.estimate <= all.estimate);
        assert_eq!(s, lipschitz_sampled(&xs, &ys, 50, 7).unwrap());
        // Repeated samples: zero-zero pairs are skipped, not an error.
        let xs2 = vec![vec![1.0], vec![1.0], vec![2.0]];
        let ys2 = vec![vec![0.0], vec![0.0], vec![1.0]];
        let e = lipschitz_sampled(&xs2, &ys2, 10, 0).unwrap();
        assert_eq!((e.pairs_used, e.pairs_skipped), (2, 1));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            composition_bound(&[], &[], None),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            composition_bound(&[1.0], &[1.0, 2.0], None),
            Err(Error::LengthMismatch { .. })
        ));
        assert_eq!(
            composition_bound(&[1.0, f64::NAN], &[1.0, 1.0], None),
            Err(Error::NonFinite { index: 1, count: 1 })
        );
        assert!(matches!(
            composition_bound(&[1.0, 1.0], &[1.0, -1.0], None),
            Err(Error::OutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            composition_bound(&[1.0], &[1.0], Some(f64::NAN)),
            Err(Error::InvalidParam {
                name: "measured",
                ..
            })
        ));
        assert!(matches!(
            bound_for_order(&[1.0, 1.0], &[1.0, 1.0], &[0, 0]),
            Err(Error::InvalidParam { name: "order", .. })
        ));
        assert!(matches!(
            bound_for_order(&[1.0, 1.0], &[1.0, 1.0], &[0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            order_by_rule(&[-1.0], &[0.5]),
            Err(Error::OutOfRange { index: 0, .. })
        ));
        assert!(matches!(
            best_order_brute_force(0, &|_| 0.0),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            best_order_brute_force(11, &|_| 0.0),
            Err(Error::TooLarge { .. })
        ));
        assert_eq!(
            best_order_brute_force(3, &|_| f64::NAN),
            Err(Error::UserFunction { what: "order cost" })
        );
        assert!(matches!(
            lipschitz_from_pairs(&[], &[]),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            lipschitz_from_pairs(&[1.0], &[1.0, 1.0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            lipschitz_from_pairs(&[0.0], &[1.0]),
            Err(Error::OutOfRange { index: 0, .. })
        ));
        assert!(matches!(
            lipschitz_from_pairs(&[-1.0], &[1.0]),
            Err(Error::OutOfRange { index: 0, .. })
        ));
        assert_eq!(
            lipschitz_from_pairs(&[1.0], &[f64::INFINITY]),
            Err(Error::NonFinite { index: 0, count: 1 })
        );
        let e = lipschitz_from_pairs(&[0.0], &[0.0]).unwrap();
        assert!(e.argmax.is_none() && e.pairs_used == 0);
        let x = vec![vec![0.0], vec![1.0]];
        assert!(matches!(
            lipschitz_sampled(&x[..1], &x[..1], 1, 0),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            lipschitz_sampled(&x, &x[..1], 1, 0),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            lipschitz_sampled(&x, &x, 0, 0),
            Err(Error::InvalidParam {
                name: "n_pairs",
                ..
            })
        ));
        assert!(matches!(
            lipschitz_sampled(&x, &[vec![0.0], vec![1.0, 2.0]], 1, 0),
            Err(Error::LengthMismatch { .. })
        ));
        assert_eq!(
            lipschitz_sampled(&[vec![0.0], vec![f64::NAN]], &x, 1, 0),
            Err(Error::NonFinite { index: 1, count: 1 })
        );
        let same = vec![vec![0.0], vec![0.0]];
        assert!(matches!(
            lipschitz_sampled(&same, &x, 1, 0),
            Err(Error::OutOfRange { .. })
        ));
    }
}
