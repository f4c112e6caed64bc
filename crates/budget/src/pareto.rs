//! Pareto fronts of (size, loss) points: extraction, lower convex hull, hypervolume and a convexity
//! test with its largest violation. Both coordinates are minimised.

use crate::error::{Error, Result};

fn validate(points: &[(f64, f64)]) -> Result<()> {
    if points.is_empty() {
        return Err(Error::Empty { what: "points" });
    }
    let bad = |p: &(f64, f64)| !(p.0.is_finite() && p.1.is_finite());
    if let Some(index) = points.iter().position(bad) {
        return Err(Error::NonFinite {
            index,
            count: points.iter().filter(|p| bad(p)).count(),
        });
    }
    Ok(())
}

/// The indices of the non-dominated points, in increasing size (so decreasing loss).
///
/// ```text
/// p dominates q  ⇔  size_p ≤ size_q, loss_p ≤ loss_q, and one of them strictly
/// ```
///
/// Of several identical points only the lowest index is kept.
///
/// # Errors
/// [`Error::Empty`]; [`Error::NonFinite`] naming the first point with a NaN or infinite coordinate.
///
/// # Complexity
/// O(n log n) time, O(n) memory.
///
/// # References
/// Kung, Luccio and Preparata (1975), "On finding the maxima of a set of vectors", J. ACM 22(4),
/// 469–476, doi:10.1145/321906.321910 (the two-dimensional sweep).
///
/// # Example
/// ```
/// use claimlab_budget::pareto_front;
/// let pts = [(1.0, 5.0), (2.0, 3.0), (2.0, 4.0), (3.0, 3.0), (4.0, 1.0), (1.0, 5.0)];
/// assert_eq!(pareto_front(&pts).unwrap(), vec![0, 1, 4]);
/// ```
pub fn pareto_front(points: &[(f64, f64)]) -> Result<Vec<usize>> {
    validate(points)?;
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[a].1.total_cmp(&points[b].1))
            .then(a.cmp(&b))
    });
    let mut out: Vec<usize> = Vec::new();
    for i in idx {
        match out.last() {
            Some(&j) if points[i].1 >= points[j].1 => {}
            _ => out.push(i),
        }
    }
    Ok(out)
}

/// The points of the lower convex hull of the Pareto front, in increasing size.
///
/// ```text
/// the front points that minimise  loss + λ·size  for some λ ≥ 0   (collinear points kept)
/// ```
///
/// # Errors
/// As [`pareto_front`].
///
/// # Complexity
/// O(n log n).
///
/// # Example
/// ```
/// use claimlab_budget::pareto_hull;
/// let pts = [(0.0, 4.0), (1.0, 3.5), (2.0, 1.0), (4.0, 0.0)];
/// assert_eq!(pareto_hull(&pts).unwrap(), vec![0, 2, 3]);
/// ```
pub fn pareto_hull(points: &[(f64, f64)]) -> Result<Vec<usize>> {
    let front = pareto_front(points)?;
    Ok(hull_of_front(points, &front))
}

fn hull_of_front(points: &[(f64, f64)], front: &[usize]) -> Vec<usize> {
    let mut hull: Vec<usize> = Vec::with_capacity(front.len());
    for &i in front {
        while hull.len() >= 2 {
            let a = points[hull[hull.len() - 2]];
            let b = points[hull[hull.len() - 1]];
            let c = points[i];
            let cross = (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0);
            if cross < 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(i);
    }
    hull
}

/// The area dominated by the points and bounded by a reference point (both coordinates minimised).
///
/// ```text
/// HV = area( ⋃_i [size_i, ref_size] × [loss_i, ref_loss] )
/// ```
///
/// Points not strictly better than the reference in both coordinates add nothing.
///
/// # Errors
/// As [`pareto_front`]; [`Error::InvalidParam`] for a non-finite reference.
///
/// # Complexity
/// O(n log n).
///
/// # References
/// Zitzler and Thiele (1998), "Multiobjective optimization using evolutionary algorithms — a comparative
/// case study", PPSN V, doi:10.1007/BFb0056872 (the S metric).
///
/// # Example
/// ```
/// use claimlab_budget::hypervolume;
/// let hv = hypervolume(&[(1.0, 3.0), (2.0, 1.0)], (4.0, 4.0)).unwrap();
/// assert!((hv - 7.0).abs() < 1e-12);
/// ```
pub fn hypervolume(points: &[(f64, f64)], reference: (f64, f64)) -> Result<f64> {
    validate(points)?;
    for (v, name) in [
        (reference.0, "reference size"),
        (reference.1, "reference loss"),
    ] {
        if !v.is_finite() {
            return Err(Error::InvalidParam {
                name,
                value: v,
                reason: "must be finite",
            });
        }
    }
    let inside: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0 < reference.0 && p.1 < reference.1)
        .collect();
    if inside.is_empty() {
        return Ok(0.0);
    }
    let front = pareto_front(&inside)?;
    let mut area = 0.0;
    for (k, &i) in front.iter().enumerate() {
        let next_x = front.get(k + 1).map_or(reference.0, |&j| inside[j].0);
        area += (next_x - inside[i].0) * (reference.1 - inside[i].1);
    }
    Ok(area)
}

/// The result of [`convexity`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Convexity {
    /// The Pareto front (indices into the input, increasing size).
    pub front: Vec<usize>,
    /// The front's lower convex hull (indices into the input).
    pub hull: Vec<usize>,
    /// The largest vertical distance of a front point above the hull (0 for a convex front).
    pub largest_violation: f64,
    /// The point with the largest violation (lowest index on ties; `None` when convex).
    pub worst: Option<usize>,
    /// `largest_violation ≤ 1e-12 · max(1, loss range)`.
    pub is_convex: bool,
}

/// Tests whether the Pareto front is convex, and by how much it fails.
///
/// ```text
/// violation(p) = loss_p − hull(size_p),   hull = lower convex envelope of the front
/// ```
///
/// # Errors
/// As [`pareto_front`].
///
/// # Complexity
/// O(n log n).
///
/// # Example
/// ```
/// use claimlab_budget::convexity;
/// let c = convexity(&[(0.0, 4.0), (1.0, 3.5), (2.0, 1.0), (4.0, 0.0)]).unwrap();
/// assert!(!c.is_convex && c.worst == Some(1) && (c.largest_violation - 1.0).abs() < 1e-12);
/// ```
pub fn convexity(points: &[(f64, f64)]) -> Result<Convexity> {
    let front = pareto_front(points)?;
    let hull = hull_of_front(points, &front);
    let mut largest = 0.0;
    let mut worst: Option<usize> = None;
    let mut h = 0;
    for &i in &front {
        let (x, y) = points[i];
        while h + 1 < hull.len() && points[hull[h + 1]].0 <= x {
            h += 1;
        }
        let a = points[hull[h]];
        let chord = match hull.get(h + 1) {
            Some(&j) if points[j].0 > a.0 => {
                let b = points[j];
                a.1 + (x - a.0) / (b.0 - a.0) * (b.1 - a.1)
            }
            _ => a.1,
        };
        let v = y - chord;
        if v > largest || (v >= largest && worst.is_some_and(|w| i < w) && v > 0.0) {
            largest = v;
            worst = Some(i);
        }
    }
    let lo = front.last().map_or(0.0, |&i| points[i].1);
    let hi = points[front[0]].1;
    let is_convex = largest <= 1e-12 * (hi - lo).max(1.0);
    Ok(Convexity {
        front,
        hull,
        largest_violation: largest,
        worst: if is_convex { None } else { worst },
        is_convex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    fn random_points(
        rng: &mut impl claimlab_testkit::rand::Rng,
        n: usize,
        grid: bool,
    ) -> Vec<(f64, f64)> {
        (0..n)
            .map(|_| {
                if grid {
                    (
                        f64::from(rng.random_range(0..8u32)),
                        f64::from(rng.random_range(0..8u32)),
                    )
                } else {
                    (rng.random::<f64>(), rng.random::<f64>())
                }
            })
            .collect()
    }

    fn brute_front(p: &[(f64, f64)]) -> Vec<usize> {
        let dominated = |i: usize| {
            p.iter().enumerate().any(|(j, q)| {
                j != i && q.0 <= p[i].0 && q.1 <= p[i].1 && (q.0 < p[i].0 || q.1 < p[i].1 || j < i)
            })
        };
        let mut f: Vec<usize> = (0..p.len()).filter(|&i| !dominated(i)).collect();
        f.sort_by(|&a, &b| p[a].0.total_cmp(&p[b].0));
        f
    }

    /// Hypervolume by strips: between consecutive distinct sizes, the height is set by the least loss
    /// among points at or left of the strip.
    fn brute_hv(p: &[(f64, f64)], r: (f64, f64)) -> f64 {
        let mut xs: Vec<f64> = p.iter().map(|q| q.0).filter(|&x| x < r.0).collect();
        xs.push(r.0);
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut area = 0.0;
        for w in xs.windows(2) {
            let best = p
                .iter()
                .filter(|q| q.0 <= w[0])
                .map(|q| q.1)
                .fold(r.1, f64::min);
            area += (w[1] - w[0]) * (r.1 - best);
        }
        area
    }

    fn brute_violation(p: &[(f64, f64)], front: &[usize]) -> Vec<f64> {
        front
            .iter()
            .map(|&i| {
                let mut v: f64 = 0.0;
                for &j in front {
                    for &k in front {
                        let (a, b, c) = (p[j], p[i], p[k]);
                        if a.0 < b.0 && b.0 < c.0 {
                            v = v.max(b.1 - (a.1 + (b.0 - a.0) / (c.0 - a.0) * (c.1 - a.1)));
                        }
                    }
                }
                v
            })
            .collect()
    }

    #[test]
    fn front_hull_hypervolume_and_convexity_match_brute_force() {
        let mut rng = claimlab_testkit::rng(17);
        for trial in 0..300 {
            let n = rng.random_range(1..25);
            let p = random_points(&mut rng, n, trial % 2 == 0);
            let front = pareto_front(&p).unwrap();
            assert_eq!(front, brute_front(&p), "trial {trial}");
            let r = (rng.random::<f64>() * 9.0, rng.random::<f64>() * 9.0);
            let hv = hypervolume(&p, r).unwrap();
            assert!(
                (hv - brute_hv(&p, r)).abs() < 1e-12 * brute_hv(&p, r).max(1.0),
                "trial {trial}"
            );
            let c = convexity(&p).unwrap();
            let v = brute_violation(&p, &front);
            let worst = v.iter().copied().fold(0.0, f64::max);
            assert!(
                (c.largest_violation - worst).abs() < 1e-12,
                "trial {trial}: {} vs {worst}",
                c.largest_violation
            );
            // Hull points have no violation; non-hull front points have some (or are collinear).
            for (&i, &vi) in front.iter().zip(&v) {
                if c.hull.contains(&i) {
                    assert!(vi < 1e-12);
                }
            }
            if let Some(w) = c.worst {
                let pos = front.iter().position(|&i| i == w).unwrap();
                assert!((v[pos] - worst).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(pareto_front(&[(1.0, 1.0)]).unwrap(), vec![0]);
        assert_eq!(pareto_front(&[(1.0, 1.0); 4]).unwrap(), vec![0]);
        let c = convexity(&[(2.0, 2.0)]).unwrap();
        assert!(c.is_convex && c.worst.is_none());
        assert!(hypervolume(&[(5.0, 0.0)], (4.0, 4.0)).unwrap().abs() < 1e-300);
        // A straight line is convex.
        let line: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), 4.0 - f64::from(i))).collect();
        let c = convexity(&line).unwrap();
        assert!(c.is_convex);
        assert_eq!(c.hull, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn errors() {
        assert!(matches!(pareto_front(&[]), Err(Error::Empty { .. })));
        let bad = [(0.0, 1.0), (f64::NAN, 1.0), (1.0, f64::INFINITY)];
        assert_eq!(
            pareto_front(&bad),
            Err(Error::NonFinite { index: 1, count: 2 })
        );
        assert_eq!(
            pareto_hull(&bad),
            Err(Error::NonFinite { index: 1, count: 2 })
        );
        assert_eq!(
            convexity(&bad).map(|_| ()),
            Err(Error::NonFinite { index: 1, count: 2 })
        );
        assert_eq!(
            hypervolume(&bad, (1.0, 1.0)),
            Err(Error::NonFinite { index: 1, count: 2 })
        );
        assert!(matches!(
            hypervolume(&[], (1.0, 1.0)),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            hypervolume(&[(0.0, 0.0)], (f64::NAN, 1.0)),
            Err(Error::InvalidParam {
                name: "reference size",
                ..
            })
        ));
    }
}
