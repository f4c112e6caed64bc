//! The multiple-choice knapsack with several budgets at once (HAWQ-V3's integer programme: model
//! size, bit operations and latency), solved exactly by branch and bound.

use crate::error::{Error, Result};
use crate::mckp::{check_budget, cost_slack, suffix_bounds, BranchBoundConfig, Item, SuffixBound};
use crate::sum::sum;
use crate::tol::DIST_REL;

/// One option with a cost per constraint.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MultiItem {
    /// One cost per budget (same order as the budgets).
    pub costs: Vec<f64>,
    /// The option's distortion (smaller is better).
    pub distortion: f64,
}

impl MultiItem {
    /// An item from its costs and distortion.
    #[must_use]
    pub fn new(costs: Vec<f64>, distortion: f64) -> Self {
        Self { costs, distortion }
    }
}

/// An exactly optimal allocation under several budgets.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct MultiSolution {
    /// The option index chosen per layer.
    pub choice: Vec<usize>,
    /// Total cost per constraint.
    pub costs: Vec<f64>,
    /// Total distortion (the optimum, to [`crate::tol::DIST_REL`]).
    pub distortion: f64,
    /// Nodes expanded.
    pub nodes: u64,
}

struct Search<'a> {
    menus: &'a [Vec<MultiItem>],
    order: Vec<usize>,
    /// `bounds[k][s]`: the LP bound of constraint `k` alone over layers `order[s..]`.
    bounds: Vec<Vec<SuffixBound>>,
    slack: Vec<f64>,
    best: f64,
    best_choice: Option<Vec<usize>>,
    cur: Vec<usize>,
    nodes: u64,
    max_nodes: u64,
}

impl Search<'_> {
    /// The lower bound of layers `order[s..]` within `rest`, or `None` when some constraint alone
    /// cannot be met.
    fn bound(&self, s: usize, rest: &[f64]) -> Option<f64> {
        let mut b = f64::NEG_INFINITY;
        for (k, bk) in self.bounds.iter().enumerate() {
            b = b.max(bk[s].at(rest[k], self.slack[k])?);
        }
        Some(b)
    }

    fn search(&mut self, s: usize, rest: &mut Vec<f64>, dist: f64) -> bool {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            return false;
        }
        if s == self.order.len() {
            if dist < self.best - DIST_REL * self.best.abs().max(1.0) || self.best_choice.is_none()
            {
                self.best = dist;
                self.best_choice = Some(self.cur.clone());
            }
            return true;
        }
        let layer = self.order[s];
        let mut kids: Vec<(f64, usize)> = Vec::new();
        let mut trial = rest.clone();
        for (k, it) in self.menus[layer].iter().enumerate() {
            for (t, (&r, &c)) in trial.iter_mut().zip(rest.iter().zip(&it.costs)) {
                *t = r - c;
            }
            if let Some(b) = self.bound(s + 1, &trial) {
                kids.push((dist + it.distortion + b, k));
            }
        }
        kids.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (bound, k) in kids {
            if self.best_choice.is_some()
                && bound >= self.best - DIST_REL * self.best.abs().max(1.0)
            {
                break;
            }
            let it = &self.menus[layer][k];
            for (r, c) in rest.iter_mut().zip(&it.costs) {
                *r -= c;
            }
            self.cur[layer] = k;
            let ok = self.search(s + 1, rest, dist + it.distortion);
            for (r, c) in rest.iter_mut().zip(&it.costs) {
                *r += c;
            }
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The exact optimum of the multiple-choice knapsack under several budgets, by branch and bound.
///
/// ```text
/// minimise Σ_l d_l(x_l)  subject to  Σ_l c_lk(x_l) ≤ B_k  for every constraint k
/// ```
///
/// This is the integer programme of HAWQ-V3 (per-layer bit widths; model size, BOPs and latency
/// budgets). Each node's bound is the largest over constraints of the single-constraint LP relaxation
/// (convex-hull) bound of the remaining layers, which also prunes infeasible branches; layers are
/// branched in order of decreasing distortion range, children by increasing bound.
///
/// # Arguments
/// * `menus` — one menu per layer; every item has one cost per budget.
/// * `budgets` — `B_k`, at least one.
///
/// # Errors
/// [`Error::Empty`] without layers or budgets; [`Error::EmptyMenu`]; [`Error::LengthMismatch`] for an
/// item with the wrong number of costs (`left` = its count); [`Error::NonFiniteItem`];
/// [`Error::InvalidParam`] for a non-finite budget or `max_nodes == 0`; [`Error::Infeasible`] when one
/// constraint alone cannot be met, or when no allocation meets all of them (then `budget` is the first
/// budget and `min_cost` is `NaN`); [`Error::NodeLimit`].
///
/// # Complexity
/// Exponential in the number of layers in the worst case; O(K · L · N log N) memory for the bounds.
///
/// # References
/// Yao et al. (2021), "HAWQ-V3: Dyadic neural network quantization", ICML, PMLR 139, 11875–11886,
/// eq. (5) (the integer linear programme).
///
/// # Example
/// ```
/// use claimlab_budget::{exact_allocation_multi, BranchBoundConfig, MultiItem};
/// // Two layers at 4 or 8 bits: costs (size, latency).
/// let menus = vec![
///     vec![MultiItem::new(vec![4.0, 1.0], 0.5), MultiItem::new(vec![8.0, 3.0], 0.1)],
///     vec![MultiItem::new(vec![4.0, 1.0], 0.4), MultiItem::new(vec![8.0, 1.5], 0.2)],
/// ];
/// let s = exact_allocation_multi(&menus, &[12.0, 2.5], &BranchBoundConfig::default()).unwrap();
/// assert_eq!(s.choice, vec![0, 1]); // latency rules out upgrading layer 0
/// ```
pub fn exact_allocation_multi(
    menus: &[Vec<MultiItem>],
    budgets: &[f64],
    config: &BranchBoundConfig,
) -> Result<MultiSolution> {
    if menus.is_empty() {
        return Err(Error::Empty {
            what: "menus (no layers)",
        });
    }
    if budgets.is_empty() {
        return Err(Error::Empty { what: "budgets" });
    }
    for &b in budgets {
        check_budget(b)?;
    }
    if config.max_nodes == 0 {
        return Err(Error::InvalidParam {
            name: "max_nodes",
            value: 0.0,
            reason: "must be positive",
        });
    }
    for (layer, menu) in menus.iter().enumerate() {
        if menu.is_empty() {
            return Err(Error::EmptyMenu { layer });
        }
        for (option, it) in menu.iter().enumerate() {
            if it.costs.len() != budgets.len() {
                return Err(Error::LengthMismatch {
                    what: "item costs vs budgets",
                    left: it.costs.len(),
                    right: budgets.len(),
                });
            }
            if it.costs.iter().any(|c| !c.is_finite()) {
                return Err(Error::NonFiniteItem {
                    layer,
                    option,
                    field: "cost",
                });
            }
            if !it.distortion.is_finite() {
                return Err(Error::NonFiniteItem {
                    layer,
                    option,
                    field: "distortion",
                });
            }
        }
    }
    let range = |l: usize| {
        let d = menus[l].iter().map(|i| i.distortion);
        d.clone().fold(f64::MIN, f64::max) - d.fold(f64::MAX, f64::min)
    };
    let mut order: Vec<usize> = (0..menus.len()).collect();
    order.sort_by(|&a, &b| range(b).total_cmp(&range(a)).then(a.cmp(&b)));
    let mut bounds = Vec::with_capacity(budgets.len());
    for (k, &budget) in budgets.iter().enumerate() {
        let proj: Vec<Vec<Item>> = order
            .iter()
            .map(|&l| {
                menus[l]
                    .iter()
                    .map(|i| Item::new(i.costs[k], i.distortion))
                    .collect()
            })
            .collect();
        let b = suffix_bounds(&proj);
        if b[0].at(budget, cost_slack(budget)).is_none() {
            let min_cost = sum(menus
                .iter()
                .map(|m| m.iter().map(|i| i.costs[k]).fold(f64::INFINITY, f64::min)));
            return Err(Error::Infeasible { budget, min_cost });
        }
        bounds.push(b);
    }
    let mut search = Search {
        menus,
        order,
        bounds,
        slack: budgets.iter().map(|&b| cost_slack(b)).collect(),
        best: f64::INFINITY,
        best_choice: None,
        cur: vec![0; menus.len()],
        nodes: 0,
        max_nodes: config.max_nodes,
    };
    let mut rest = budgets.to_vec();
    if !search.search(0, &mut rest, 0.0) {
        let lower_bound = search.bound(0, budgets).unwrap_or(f64::NEG_INFINITY);
        return Err(Error::NodeLimit {
            nodes: search.nodes - 1,
            best: search.best,
            lower_bound,
        });
    }
    let Some(choice) = search.best_choice else {
        return Err(Error::Infeasible {
            budget: budgets[0],
            min_cost: f64::NAN,
        });
    };
    let costs = (0..budgets.len())
        .map(|k| sum(menus.iter().zip(&choice).map(|(m, &c)| m[c].costs[k])))
        .collect();
    let distortion = sum(menus.iter().zip(&choice).map(|(m, &c)| m[c].distortion));
    Ok(MultiSolution {
        choice,
        costs,
        distortion,
        nodes: search.nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mckp::exact_allocation_dp;
    use crate::DpConfig;
    use claimlab_testkit::rand::RngExt;

    fn brute(menus: &[Vec<MultiItem>], budgets: &[f64]) -> Option<f64> {
        let mut idx = vec![0usize; menus.len()];
        let mut best: Option<f64> = None;
        loop {
            let ok = (0..budgets.len()).all(|k| {
                let c: f64 = sum(menus.iter().zip(&idx).map(|(m, &i)| m[i].costs[k]));
                c <= budgets[k] + cost_slack(budgets[k])
            });
            let d = sum(menus.iter().zip(&idx).map(|(m, &i)| m[i].distortion));
            if ok && best.is_none_or(|b| d < b) {
                best = Some(d);
            }
            let mut l = 0;
            loop {
                if l == menus.len() {
                    return best;
                }
                idx[l] += 1;
                if idx[l] < menus[l].len() {
                    break;
                }
                idx[l] = 0;
                l += 1;
            }
        }
    }

    #[test]
    fn matches_brute_force_on_random_instances() {
        let mut rng = claimlab_testkit::rng(31);
        let mut feasible = 0;
        for trial in 0..400 {
            let k = rng.random_range(1..4);
            let menus: Vec<Vec<MultiItem>> = (0..rng.random_range(1..6))
                .map(|_| {
                    (0..rng.random_range(1..5))
                        .map(|_| {
                            MultiItem::new(
                                (0..k)
                                    .map(|_| f64::from(rng.random_range(0..10u32)))
                                    .collect(),
                                rng.random::<f64>(),
                            )
                        })
                        .collect()
                })
                .collect();
            let budgets: Vec<f64> = (0..k)
                .map(|_| f64::from(rng.random_range(0..30u32)))
                .collect();
            let got = exact_allocation_multi(&menus, &budgets, &BranchBoundConfig::default());
            match (brute(&menus, &budgets), got) {
                (Some(want), Ok(s)) => {
                    feasible += 1;
                    assert!(
                        (s.distortion - want).abs() < 1e-12,
                        "trial {trial}: {} vs {want}",
                        s.distortion
                    );
                    for (c, b) in s.costs.iter().zip(&budgets) {
                        assert!(c <= b);
                    }
                }
                (None, Err(Error::Infeasible { .. })) => {}
                (want, got) => panic!("trial {trial}: brute {want:?}, branch and bound {got:?}"),
            }
        }
        assert!(feasible > 100, "too few feasible instances: {feasible}");
    }

    #[test]
    fn one_constraint_equals_single_budget_solver() {
        let mut rng = claimlab_testkit::rng(32);
        let menus: Vec<Vec<Item>> = (0..15)
            .map(|_| {
                (0..6)
                    .map(|_| Item::new(f64::from(rng.random_range(0..50u32)), rng.random::<f64>()))
                    .collect()
            })
            .collect();
        let multi: Vec<Vec<MultiItem>> = menus
            .iter()
            .map(|m| {
                m.iter()
                    .map(|i| MultiItem::new(vec![i.cost], i.distortion))
                    .collect()
            })
            .collect();
        for budget in [100.0, 250.0, 400.0] {
            let a = exact_allocation_dp(&menus, budget, &DpConfig::default()).unwrap();
            let b =
                exact_allocation_multi(&multi, &[budget], &BranchBoundConfig::default()).unwrap();
            assert!((a.distortion - b.distortion).abs() < 1e-12);
        }
    }

    #[test]
    fn errors() {
        let it = |c: f64, d: f64| MultiItem::new(vec![c, c], d);
        let cfg = BranchBoundConfig::default();
        assert!(matches!(
            exact_allocation_multi(&[], &[1.0], &cfg),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            exact_allocation_multi(&[vec![it(0.0, 1.0)]], &[], &cfg),
            Err(Error::Empty { .. })
        ));
        assert_eq!(
            exact_allocation_multi(&[vec![it(0.0, 1.0)], vec![]], &[1.0, 1.0], &cfg),
            Err(Error::EmptyMenu { layer: 1 })
        );
        assert!(matches!(
            exact_allocation_multi(&[vec![MultiItem::new(vec![1.0], 1.0)]], &[1.0, 1.0], &cfg),
            Err(Error::LengthMismatch {
                left: 1,
                right: 2,
                ..
            })
        ));
        assert_eq!(
            exact_allocation_multi(&[vec![it(0.0, 1.0), it(f64::NAN, 0.0)]], &[1.0, 1.0], &cfg),
            Err(Error::NonFiniteItem {
                layer: 0,
                option: 1,
                field: "cost"
            })
        );
        assert_eq!(
            exact_allocation_multi(&[vec![it(0.0, f64::INFINITY)]], &[1.0, 1.0], &cfg),
            Err(Error::NonFiniteItem {
                layer: 0,
                option: 0,
                field: "distortion"
            })
        );
        assert!(matches!(
            exact_allocation_multi(&[vec![it(0.0, 1.0)]], &[1.0, f64::NAN], &cfg),
            Err(Error::InvalidParam { name: "budget", .. })
        ));
        assert!(matches!(
            exact_allocation_multi(
                &[vec![it(0.0, 1.0)]],
                &[1.0, 1.0],
                &BranchBoundConfig { max_nodes: 0 }
            ),
            Err(Error::InvalidParam {
                name: "max_nodes",
                ..
            })
        ));
        // One constraint alone infeasible.
        assert_eq!(
            exact_allocation_multi(&[vec![it(2.0, 1.0)]], &[3.0, 1.0], &cfg),
            Err(Error::Infeasible {
                budget: 1.0,
                min_cost: 2.0
            })
        );
        // Each constraint alone feasible, jointly not.
        let m = vec![vec![
            MultiItem::new(vec![0.0, 5.0], 1.0),
            MultiItem::new(vec![5.0, 0.0], 1.0),
        ]];
        assert!(
            matches!(exact_allocation_multi(&m, &[1.0, 1.0], &cfg), Err(Error::Infeasible { budget, .. }) if (budget - 1.0).abs() < 1e-15)
        );
        let mut rng = claimlab_testkit::rng(1);
        let big: Vec<Vec<MultiItem>> = (0..10)
            .map(|_| {
                (0..5)
                    .map(|_| {
                        MultiItem::new(
                            vec![rng.random::<f64>(), rng.random::<f64>()],
                            rng.random::<f64>(),
                        )
                    })
                    .collect()
            })
            .collect();
        assert!(matches!(
            exact_allocation_multi(&big, &[2.5, 2.5], &BranchBoundConfig { max_nodes: 5 }),
            Err(Error::NodeLimit { nodes: 5, .. })
        ));
    }
}
