//! Forward auction with ε-scaling for the diagram assignment problem (Bertsekas 1988), with a
//! certified duality gap.

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
            // Best and second-best net value -(c_ij + p_j).
            let (mut best, mut second, mut jbest) = (f64::NEG_INFINITY, f64::NEG_INFINITY, 0);
            for (j, &p) in price.iter().enumerate() {
                let val = -(c.get(i, j) + p);
                if val > best {
                    second = best;
                    best = val;
                    jbest = j;
                } else if val > second {
                    second = val;
                }
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
