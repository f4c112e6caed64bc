//! q-Wasserstein distance between persistence diagrams: Hungarian method (exact) for small
//! diagrams, auction with ε-scaling (certified relative error) for large ones.

use crate::bottleneck::{essential_cost, finite_off_diagonal, linf, to_diagonal};
use crate::diagram::{Diagram, Interval};
use crate::error::{Error, Result};

/// Options of [`wasserstein_distance_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WassersteinConfig {
    /// The order `q >= 1` (finite).
    pub q: f64,
    /// Diagrams with at most this many off-diagonal finite points in all are solved exactly by the
    /// Hungarian method (`O(N³)`); larger ones by the auction algorithm. Default 600.
    pub exact_max_points: usize,
    /// Relative error allowed on the optimal cost `Σ‖·‖∞^q` by the auction algorithm (the
    /// distance itself is then within the same relative error, as `(1 + δ)^{1/q} <= 1 + δ`).
    /// Default 1e-6 (Hera's default `delta` is 0.01).
    pub relative_error: f64,
}

impl Default for WassersteinConfig {
    fn default() -> Self {
        Self {
            q: 1.0,
            exact_max_points: 600,
            relative_error: 1e-6,
        }
    }
}

/// How [`wasserstein_distance_with`] solved the assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WassersteinMethod {
    /// Nothing to match (no finite off-diagonal points) or an infinite answer.
    Trivial,
    /// Hungarian method: exact up to floating-point rounding.
    Hungarian,
    /// Auction algorithm with ε-scaling: `lower_bound <= distance`, relative gap below the request.
    Auction,
}

/// The result of [`wasserstein_distance_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct WassersteinResult {
    /// The distance (an upper bound attained by a matching, for the auction).
    pub distance: f64,
    /// A certified lower bound on the true distance (equal to `distance` when exact).
    pub lower_bound: f64,
    /// The solver used.
    pub method: WassersteinMethod,
    /// Number of finite off-diagonal points matched (both diagrams).
    pub n_points: usize,
}

/// The q-Wasserstein distance between two persistence diagrams (L∞ ground metric, as Hera and
/// GUDHI's `hera.wasserstein_distance(internal_p=inf)`).
///
/// ```text
/// W_q(A, B) = ( min over matchings γ of Σ_{(a,b) ∈ γ} ‖a − b‖∞^q + Σ_{x unmatched} ((d − b)/2)^q )^{1/q}
/// ```
/// Essential points are matched only among themselves, by sorted birth; different counts give
/// `f64::INFINITY`. Exact (Hungarian) up to [`WassersteinConfig::default`]'s `exact_max_points`,
/// auction with relative error 1e-6 beyond.
///
/// # Errors
/// [`Error::InvalidParam`] unless `q` is finite and `>= 1`; [`Error::InvalidInterval`] for a bad
/// interval.
///
/// # Complexity
/// `O(N³)` time, `O(N)` extra memory for `N` finite off-diagonal points in all (Hungarian).
///
/// # Example
/// ```
/// use claimlab_topology::{wasserstein_distance, Diagram};
/// let a = Diagram::from_pairs(&[(0.0, 4.0), (1.0, 2.0)]).unwrap();
/// let b = Diagram::from_pairs(&[(0.5, 4.5)]).unwrap();
/// // 0.5 for the matched pair plus 0.5 for (1,2) to the diagonal.
/// assert!((wasserstein_distance(&a, &b, 1.0).unwrap() - 1.0).abs() < 1e-12);
/// ```
pub fn wasserstein_distance(a: &Diagram, b: &Diagram, q: f64) -> Result<f64> {
    let cfg = WassersteinConfig {
        q,
        ..WassersteinConfig::default()
    };
    Ok(wasserstein_distance_with(a, b, &cfg)?.distance)
}

/// [`wasserstein_distance`] with explicit options and diagnostics.
///
/// # Errors
/// [`Error::InvalidParam`] for `q` not finite or below 1, or `relative_error` not in `(0, 1)`;
/// [`Error::InvalidInterval`] for a bad interval.
///
/// # Complexity
/// Hungarian `O(N³)`; auction `O(N² · rounds)` per ε-phase with `O(log(1/δ))` phases, costs
/// computed on the fly (`O(N)` memory).
///
/// # References
/// H. W. Kuhn, *The Hungarian method for the assignment problem*, Naval Res. Logist. Q. 2 (1955)
/// 83–97; D. P. Bertsekas, *The auction algorithm: a distributed relaxation method for the
/// assignment problem*, Ann. Oper. Res. 14 (1988) 105–123 (ε-complementary slackness gives
/// `cost <= optimum + N ε`); M. Kerber, D. Morozov, A. Nigmetov, doi:10.1145/3064175 (Hera).
pub fn wasserstein_distance_with(
    a: &Diagram,
    b: &Diagram,
    config: &WassersteinConfig,
) -> Result<WassersteinResult> {
    let q = config.q;
    if !q.is_finite() || q < 1.0 {
        return Err(Error::InvalidParam {
            name: "q",
            value: q.to_string(),
            reason: "must be finite and >= 1",
        });
    }
    let rel = config.relative_error;
    if rel.is_nan() || rel <= 0.0 || rel >= 1.0 {
        return Err(Error::InvalidParam {
            name: "relative_error",
            value: rel.to_string(),
            reason: "must lie in (0, 1)",
        });
    }
    a.validate()?;
    b.validate()?;
    let fa = finite_off_diagonal(a);
    let fb = finite_off_diagonal(b);
    let n_points = fa.len() + fb.len();
    let Some(ess) = essential_cost(a, b, |x| x.powf(q), |s, c| s + c) else {
        return Ok(WassersteinResult {
            distance: f64::INFINITY,
            lower_bound: f64::INFINITY,
            method: WassersteinMethod::Trivial,
            n_points,
        });
    };
    if n_points == 0 {
        let d = ess.powf(1.0 / q);
        return Ok(WassersteinResult {
            distance: d,
            lower_bound: d,
            method: WassersteinMethod::Trivial,
            n_points,
        });
    }
    let costs = Costs { a: &fa, b: &fb, q };
    let (upper, lower, method) = if n_points <= config.exact_max_points {
        let c = hungarian(&costs);
        (c, c, WassersteinMethod::Hungarian)
    } else {
        let (c, lb) = crate::auction::auction(&costs, rel);
        (c, lb, WassersteinMethod::Auction)
    };
    Ok(WassersteinResult {
        distance: (upper + ess).powf(1.0 / q),
        lower_bound: (lower.max(0.0) + ess).powf(1.0 / q),
        method,
        n_points,
    })
}

/// The square cost matrix of the diagram matching, computed on demand: rows are the points of `a`
/// then one diagonal slot per point of `b`; columns the points of `b` then one diagonal slot per
/// point of `a`. A point may use any diagonal slot at the cost of its own distance to the diagonal;
/// two diagonal slots match at zero cost.
pub(crate) struct Costs<'a> {
    pub(crate) a: &'a [Interval],
    pub(crate) b: &'a [Interval],
    pub(crate) q: f64,
}

impl Costs<'_> {
    pub(crate) fn size(&self) -> usize {
        self.a.len() + self.b.len()
    }

    #[inline]
    pub(crate) fn pow(&self, x: f64) -> f64 {
        // Exact comparisons on purpose: the fast paths are for exactly 1 and 2.
        match self.q.to_bits() {
            b if b == 1f64.to_bits() => x,
            b if b == 2f64.to_bits() => x * x,
            _ => x.powf(self.q),
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize, j: usize) -> f64 {
        let (n, m) = (self.a.len(), self.b.len());
        match (i < n, j < m) {
            (true, true) => self.pow(linf(&self.a[i], &self.b[j])),
            (true, false) => self.pow(to_diagonal(&self.a[i])),
            (false, true) => self.pow(to_diagonal(&self.b[j])),
            (false, false) => 0.0,
        }
    }
}

/// Minimum-cost perfect assignment by the Hungarian method with potentials (shortest augmenting
/// paths, `O(N³)`); returns the optimal cost.
fn hungarian(c: &Costs<'_>) -> f64 {
    let n = c.size();
    // 1-based arrays; column 0 is a virtual start.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; n + 1];
    let mut p = vec![0usize; n + 1]; // p[j]: row assigned to column j
    let mut way = vec![0usize; n + 1];
    let mut minv = vec![0.0f64; n + 1];
    let mut used = vec![false; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        minv.fill(f64::INFINITY);
        used.fill(false);
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = c.get(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    // Sum the assigned costs directly (more accurate than the potentials).
    (1..=n).map(|j| c.get(p[j] - 1, j - 1)).sum()
}
