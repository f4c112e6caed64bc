//! Persistence intervals, diagrams and the barcodes of a filtration.

use crate::error::{Error, Result};

/// One persistence interval `[birth, death)`; `death` is `f64::INFINITY` for a class that never dies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Filtration value at which the class is born.
    pub birth: f64,
    /// Filtration value at which it dies (`f64::INFINITY`: never, within the threshold).
    pub death: f64,
}

impl Interval {
    /// A new interval (not validated; [`Diagram::from_pairs`] validates).
    #[must_use]
    pub const fn new(birth: f64, death: f64) -> Self {
        Self { birth, death }
    }

    /// `death - birth` (infinite for an essential class).
    #[must_use]
    pub fn persistence(&self) -> f64 {
        self.death - self.birth
    }

    /// True when the class never dies.
    #[must_use]
    pub fn is_essential(&self) -> bool {
        self.death == f64::INFINITY
    }
}

/// A persistence diagram: a multiset of intervals of one dimension.
///
/// Diagrams built by this crate are sorted by birth, then death ([`Diagram::sort`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagram {
    /// The intervals, in no guaranteed order unless sorted.
    pub intervals: Vec<Interval>,
}

impl Diagram {
    /// An empty diagram.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            intervals: Vec::new(),
        }
    }

    /// Builds a diagram from `(birth, death)` pairs, checking each one.
    ///
    /// # Errors
    /// [`Error::InvalidInterval`] when a birth is not finite, a death is NaN or `-∞`, or
    /// `death < birth`.
    pub fn from_pairs(pairs: &[(f64, f64)]) -> Result<Self> {
        let d = Self {
            intervals: pairs.iter().map(|&(b, d)| Interval::new(b, d)).collect(),
        };
        d.validate()?;
        Ok(d)
    }

    /// Checks every interval: finite birth, `birth <= death`, death finite or `+∞`.
    ///
    /// # Errors
    /// [`Error::InvalidInterval`] naming the first bad interval.
    pub fn validate(&self) -> Result<()> {
        for (index, iv) in self.intervals.iter().enumerate() {
            if !iv.birth.is_finite() || iv.death.is_nan() || iv.birth > iv.death {
                return Err(Error::InvalidInterval {
                    index,
                    birth: iv.birth,
                    death: iv.death,
                });
            }
        }
        Ok(())
    }

    /// Number of intervals.
    #[must_use]
    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// True when the diagram holds no interval.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// The intervals with a finite death.
    pub fn finite(&self) -> impl Iterator<Item = &Interval> + '_ {
        self.intervals.iter().filter(|iv| !iv.is_essential())
    }

    /// The intervals that never die.
    pub fn essential(&self) -> impl Iterator<Item = &Interval> + '_ {
        self.intervals.iter().filter(|iv| iv.is_essential())
    }

    /// Sorts by birth, then death (`total_cmp`).
    pub fn sort(&mut self) {
        self.intervals.sort_by(|a, b| {
            a.birth
                .total_cmp(&b.birth)
                .then(a.death.total_cmp(&b.death))
        });
    }

    /// The `(birth, death)` pairs.
    #[must_use]
    pub fn to_pairs(&self) -> Vec<(f64, f64)> {
        self.intervals
            .iter()
            .map(|iv| (iv.birth, iv.death))
            .collect()
    }
}

/// Counters of how the reduction in one dimension went (Ripser's shortcuts made visible).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DimStats {
    /// Simplices of this dimension in the filtration (within the threshold).
    pub simplices: usize,
    /// Columns that went through the reduction loop.
    pub columns_reduced: usize,
    /// Columns skipped as members of zero-persistence apparent pairs.
    pub apparent_pairs: usize,
    /// Columns paired at once as emergent pairs (no heap built).
    pub emergent_pairs: usize,
    /// Columns removed by clearing (they were pivots one dimension down).
    pub cleared: usize,
    /// Column additions performed.
    pub additions: usize,
}

/// The persistence diagrams of a filtration in dimensions `0..=max_dim`, with diagnostics.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Barcodes {
    /// `diagrams[k]` is the diagram of `H_k`, sorted by birth then death.
    pub diagrams: Vec<Diagram>,
    /// The threshold used (the enclosing radius unless one was given).
    pub threshold: f64,
    /// Number of points (vertices).
    pub n_points: usize,
    /// Per-dimension counters, indexed like `diagrams` (all zero for the brute-force path).
    pub stats: Vec<DimStats>,
    /// With [`crate::VrConfig::cocycles`]: one representative cocycle per interval of
    /// `diagrams[1]`, in the same order; empty otherwise.
    pub cocycles: Vec<Cocycle>,
}

/// A representative 1-cocycle of an `H¹` class, as Ripser reports it.
///
/// For an interval `[b, d)` the cochain `z = Σ c · [i, j]` satisfies `δz = 0` on every triangle of
/// diameter below `d`, and it contains the edge that gives birth to the class (diameter `b`); all
/// its edges have diameter at least `b` (it is a column of the reduction matrix of the coboundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cocycle {
    /// `(i, j, coefficient)` with vertices `i > j` and a coefficient in `1..p`, sorted.
    pub edges: Vec<(usize, usize, u32)>,
}

impl Barcodes {
    /// The diagram of dimension `dim`, if computed.
    #[must_use]
    pub fn diagram(&self, dim: usize) -> Option<&Diagram> {
        self.diagrams.get(dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_rejects_bad_intervals() {
        assert!(Diagram::from_pairs(&[(0.0, 1.0), (0.5, f64::INFINITY)]).is_ok());
        for (i, bad) in [
            (1.0, 0.5),
            (f64::NAN, 1.0),
            (0.0, f64::NAN),
            (f64::INFINITY, f64::INFINITY),
        ]
        .into_iter()
        .enumerate()
        {
            let e = Diagram::from_pairs(&[(0.0, 1.0), bad]).unwrap_err();
            assert!(
                matches!(e, Error::InvalidInterval { index: 1, .. }),
                "case {i}: {e:?}"
            );
        }
    }

    #[test]
    fn essential_and_finite_split() {
        let d = Diagram::from_pairs(&[(0.0, 1.0), (0.5, f64::INFINITY), (0.2, 0.3)]).unwrap();
        assert_eq!(d.finite().count(), 2);
        assert_eq!(d.essential().count(), 1);
        assert!(d.intervals[1].is_essential());
    }
}
