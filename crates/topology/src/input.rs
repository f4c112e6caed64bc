//! Inputs of the Vietoris-Rips computations: the configuration and the compressed distance matrix.

use crate::error::{Error, Result};

/// Largest homology dimension accepted by [`VrConfig::max_dim`].
pub const MAX_DIM: usize = 6;

/// Largest coefficient modulus accepted by [`VrConfig::modulus`].
pub const MAX_MODULUS: u32 = 251;

/// Options of the Vietoris-Rips computations; the defaults are Ripser's.
///
/// | field | default | Ripser |
/// |---|---|---|
/// | `max_dim` | 1 | `--dim 1` (ripser.py `maxdim=1`) |
/// | `threshold` | `None`: the enclosing radius | `--threshold`, default enclosing radius |
/// | `modulus` | 2 | `--modulus 2` (ripser.py `coeff=2`) |
/// | `cocycles` | false | ripser.py `do_cocycles=False` |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VrConfig {
    /// Compute diagrams in dimensions `0..=max_dim` (at most [`MAX_DIM`]).
    pub max_dim: usize,
    /// Keep only simplices of diameter `<= threshold`; `None` uses the enclosing radius
    /// `min_i max_j d(i, j)`, which leaves every diagram unchanged (the complex at that radius is a
    /// cone). `Some(f64::INFINITY)` keeps everything. Classes alive at the threshold are reported
    /// with an infinite death.
    pub threshold: Option<f64>,
    /// Coefficients in Z/p for this prime p (2 to [`MAX_MODULUS`]).
    pub modulus: u32,
    /// Also return a representative cocycle for each `H¹` interval ([`crate::Barcodes::cocycles`];
    /// the fast path only, the brute force ignores it).
    pub cocycles: bool,
}

impl Default for VrConfig {
    fn default() -> Self {
        Self {
            max_dim: 1,
            threshold: None,
            modulus: 2,
            cocycles: false,
        }
    }
}

impl VrConfig {
    /// The default configuration with diagrams up to dimension `max_dim`.
    #[must_use]
    pub fn with_max_dim(max_dim: usize) -> Self {
        Self {
            max_dim,
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.max_dim > MAX_DIM {
            return Err(Error::InvalidParam {
                name: "max_dim",
                value: self.max_dim.to_string(),
                reason: "at most 6 is supported",
            });
        }
        if let Some(t) = self.threshold {
            if t.is_nan() || t < 0.0 {
                return Err(Error::InvalidParam {
                    name: "threshold",
                    value: t.to_string(),
                    reason: "must be >= 0 (infinity allowed)",
                });
            }
        }
        let p = self.modulus;
        if !(2..=MAX_MODULUS).contains(&p)
            || !(2..)
                .take_while(|d| d * d <= p)
                .all(|d| !p.is_multiple_of(d))
        {
            return Err(Error::InvalidParam {
                name: "modulus",
                value: p.to_string(),
                reason: "must be a prime between 2 and 251",
            });
        }
        Ok(())
    }
}

/// A symmetric distance matrix with zero diagonal, stored as its strict lower triangle, row by row:
/// `d(1,0), d(2,0), d(2,1), d(3,0), …` (Ripser's `lower-distance` format).
#[derive(Debug, Clone)]
pub(crate) struct DistanceMatrix {
    pub(crate) n: usize,
    pub(crate) data: Vec<f64>,
}

impl DistanceMatrix {
    /// Distance between distinct vertices `i` and `j`.
    #[inline]
    pub(crate) fn get(&self, i: usize, j: usize) -> f64 {
        let (a, b) = if i > j { (i, j) } else { (j, i) };
        if a == b {
            return 0.0;
        }
        self.data[a * (a - 1) / 2 + b]
    }

    /// `min_i max_j d(i, j)`: past this radius the Rips complex is a cone.
    pub(crate) fn enclosing_radius(&self) -> f64 {
        (0..self.n)
            .map(|i| (0..self.n).map(|j| self.get(i, j)).fold(0.0, f64::max))
            .fold(f64::INFINITY, f64::min)
    }

    /// Validates and copies a lower-triangular array (normalising `-0.0` to `0.0`).
    pub(crate) fn from_lower(n: usize, lower: &[f64]) -> Result<Self> {
        if n == 0 {
            return Err(Error::Empty { what: "points" });
        }
        let expected = n * (n - 1) / 2;
        if lower.len() != expected {
            return Err(Error::SizeMismatch {
                what: "lower-triangular distances, n(n-1)/2",
                expected,
                found: lower.len(),
            });
        }
        check_finite(lower)?;
        if let Some((index, &value)) = lower.iter().enumerate().find(|(_, &x)| x < 0.0) {
            return Err(Error::NegativeDistance { index, value });
        }
        Ok(Self {
            n,
            data: lower.iter().map(|&x| x + 0.0).collect(),
        })
    }

    /// Euclidean distances between the rows of a point cloud.
    pub(crate) fn euclidean<P: AsRef<[f64]> + Sync>(points: &[P]) -> Result<Self> {
        if points.is_empty() {
            return Err(Error::Empty { what: "points" });
        }
        let dim = points[0].as_ref().len();
        let mut count = 0;
        let mut first = None;
        for (i, p) in points.iter().enumerate() {
            let p = p.as_ref();
            if p.len() != dim {
                return Err(Error::SizeMismatch {
                    what: "coordinates of a point",
                    expected: dim,
                    found: p.len(),
                });
            }
            for (k, x) in p.iter().enumerate() {
                if !x.is_finite() {
                    count += 1;
                    first.get_or_insert(i * dim + k);
                }
            }
        }
        if let Some(index) = first {
            return Err(Error::NonFinite { index, count });
        }
        let row = |i: usize| {
            let pi = points[i].as_ref();
            (0..i).map(move |j| {
                let pj = points[j].as_ref();
                pi.iter()
                    .zip(pj)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt()
                    + 0.0 // -0.0 (no coordinates) becomes +0.0: diameters compare by bits
            })
        };
        #[cfg(feature = "rayon")]
        let data: Vec<f64> = {
            use rayon::prelude::*;
            (0..points.len())
                .into_par_iter()
                .flat_map_iter(row)
                .collect()
        };
        #[cfg(not(feature = "rayon"))]
        let data: Vec<f64> = (0..points.len()).flat_map(row).collect();
        Ok(Self {
            n: points.len(),
            data,
        })
    }

    /// Distances from a metric closure, checked like a given matrix.
    pub(crate) fn from_metric<F: Fn(usize, usize) -> f64 + Sync>(
        n: usize,
        metric: F,
    ) -> Result<Self> {
        let data: Vec<f64> = (0..n)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .map(|(i, j)| metric(i, j))
            .collect();
        Self::from_lower(n, &data)
    }
}

/// `Err(NonFinite)` when any value is NaN or infinite.
pub(crate) fn check_finite(xs: &[f64]) -> Result<()> {
    let count = xs.iter().filter(|x| !x.is_finite()).count();
    if count > 0 {
        let index = xs.iter().position(|x| !x.is_finite()).unwrap_or(0);
        return Err(Error::NonFinite { index, count });
    }
    Ok(())
}
