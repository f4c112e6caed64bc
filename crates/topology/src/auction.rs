//! Forward auction with ε-scaling for the diagram assignment problem (Bertsekas 1988), with a
//! certified duality gap.

use crate::bottleneck::{linf, to_diagonal};
use crate::wasserstein::Costs;

const NONE: usize = usize::MAX;

/// Minimum-cost assignment of the square matrix `c` to relative error `rel`.
///
/// Returns `(cost, lower)`: the cost of the assignment found and the dual bound
/// `Σ_i min_j (c_ij + p_j) − Σ_j p_j <= optimum`, with `cost − lower <= rel · lower` (or, when the
/// optimum is zero, a gap below `1e-15 · max c · N`).
pub(crate) fn auction(c: &Costs<'_>, rel: f64) -> (f64, f64) {
    let n = c.size();
    let mut cmax = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            cmax = cmax.max(c.get(i, j));
        }
    }
    if cmax <= 0.0 {
        return (0.0, 0.0);
    }
    let (na, nb) = (c.a.len(), c.b.len());
    // Cost of a point of `a` to any diagonal slot, and of any diagonal slot to a point of `b`.
    let row_diag: Vec<f64> = c.a.iter().map(|x| c.pow(to_diagonal(x))).collect();
    let col_diag: Vec<f64> = c.b.iter().map(|y| c.pow(to_diagonal(y))).collect();
    let mut price = vec![0.0f64; n];
    let mut owner = vec![NONE; n];
    let mut assigned = vec![NONE; n];
    let mut queue: Vec<usize> = Vec::with_capacity(n);
    let mut eps = cmax / 4.0;
    loop {
        owner.fill(NONE);
        assigned.fill(NONE);
        queue.clear();
        queue.extend((0..n).rev());
        while let Some(i) = queue.pop() {
            // Best and second-best net value -(c_ij + p_j), scanning the real columns with the
            // row's own cost formula and the diagonal columns (a constant cost per row) by price.
            let (mut best, mut second, mut jbest) = (f64::NEG_INFINITY, f64::NEG_INFINITY, 0);
            let mut offer = |val: f64, j: usize| {
                if val > best {
                    second = best;
                    best = val;
                    jbest = j;
                } else if val > second {
                    second = val;
                }
            };
            let diag_cost = if i < na {
                let x = &c.a[i];
                for (j, (y, &p)) in c.b.iter().zip(&price[..nb]).enumerate() {
                    offer(-(c.pow(linf(x, y)) + p), j);
                }
                row_diag[i]
            } else {
                for (j, (&cd, &p)) in col_diag.iter().zip(&price[..nb]).enumerate() {
                    offer(-(cd + p), j);
                }
                0.0
            };
            for (j, &p) in price.iter().enumerate().skip(nb) {
                offer(-(diag_cost + p), j);
            }
            if second.is_infinite() {
                second = best;
            }
            price[jbest] += best - second + eps;
            let old = owner[jbest];
            if old != NONE {
                assigned[old] = NONE;
                queue.push(old);
            }
            owner[jbest] = i;
            assigned[i] = jbest;
        }
        let cost: f64 = (0..n).map(|i| c.get(i, assigned[i])).sum();
        let dual: f64 = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| c.get(i, j) + price[j])
                    .fold(f64::INFINITY, f64::min)
            })
            .sum::<f64>()
            - price.iter().sum::<f64>();
        let gap = cost - dual;
        if gap <= rel * dual.max(0.0) || gap <= 1e-15 * cmax * n as f64 || eps < cmax * 1e-18 {
            return (cost, dual.min(cost));
        }
        // ε-CS bounds the gap by N ε: aim the next phase well below the current gap.
        eps = (eps / 5.0).min(gap / (5.0 * n as f64));
    }
}
