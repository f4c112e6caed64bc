//! Vietoris-Rips persistence the way Ripser computes it: cohomology with clearing, implicit
//! coboundaries in the combinatorial number system, apparent and emergent pairs, union-find for H0.
//!
//! Orders used throughout (any refinement of the filtration gives the same diagrams):
//! the filtration order on simplices of one dimension is diameter ascending, ties broken by
//! combinatorial index *descending*. Columns of the coboundary matrix are processed in the reverse
//! of that order; the pivot of a working column is its entry earliest in the filtration order.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::brute::inverse;
use crate::diagram::{Barcodes, Cocycle, Diagram, DimStats, Interval};
use crate::error::{Error, Result};
use crate::input::{DistanceMatrix, VrConfig};

/// Vietoris-Rips barcodes of a point cloud under the Euclidean distance (Ripser's algorithm).
///
/// The filtration value of a simplex is its diameter (largest pairwise distance): Ripser's
/// convention, not the radius (half of it) that some tools use.
///
/// # Arguments
/// - `points`: one slice of coordinates per point, all of the same length.
/// - `config`: dimensions, threshold and coefficient field; [`VrConfig::default`] is Ripser's.
///
/// # Returns
/// [`Barcodes`] with one diagram per dimension `0..=max_dim`, each sorted by birth then death.
/// Intervals of zero length are dropped (as Ripser does); classes alive at the threshold get
/// `death = f64::INFINITY`.
///
/// # Errors
/// - [`Error::Empty`] for no points;
/// - [`Error::SizeMismatch`] when points have different numbers of coordinates;
/// - [`Error::NonFinite`] for a NaN or infinite coordinate (flat index `point * dim + coord`);
/// - [`Error::InvalidParam`] for a bad `config`;
/// - [`Error::Overflow`] when `C(n, max_dim + 2)` does not fit in 64 bits.
///
/// # Complexity
/// `O(n² d)` for the distances plus the reduction, which is output sensitive; memory is dominated
/// by the list of `max_dim`-simplices under the threshold (up to `C(n, max_dim + 1)`).
///
/// # References
/// U. Bauer, *Ripser: efficient computation of Vietoris-Rips persistence barcodes*, J. Appl. Comput.
/// Topol. 5 (2021) 391–423, doi:10.1007/s41468-021-00071-5 (§3 clearing and cohomology, §4 implicit
/// matrices and the combinatorial number system, §3.5 apparent and emergent pairs).
///
/// # Example
/// ```
/// use claimlab_topology::{vr_barcodes, VrConfig};
/// // The four corners of a unit square: one loop, born at side 1, filled at diagonal √2.
/// let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
/// let bars = vr_barcodes(&square, &VrConfig::default()).unwrap();
/// let h1 = &bars.diagrams[1].intervals;
/// assert_eq!(h1.len(), 1);
/// assert!((h1[0].birth - 1.0).abs() < 1e-12 && (h1[0].death - 2f64.sqrt()).abs() < 1e-12);
/// ```
pub fn vr_barcodes<P: AsRef<[f64]> + Sync>(points: &[P], config: &VrConfig) -> Result<Barcodes> {
    config.validate()?;
    check_index_range(points.len(), config.max_dim)?;
    let dist = DistanceMatrix::euclidean(points)?;
    rips(&dist, config)
}

/// Vietoris-Rips barcodes from a distance matrix given as its strict lower triangle.
///
/// `lower` holds `d(1,0), d(2,0), d(2,1), d(3,0), …` (`n(n-1)/2` values, Ripser's
/// `lower-distance` format). Conventions and output as [`vr_barcodes`].
///
/// # Errors
/// [`Error::Empty`] for `n = 0`; [`Error::SizeMismatch`] when `lower.len() != n(n-1)/2`;
/// [`Error::NonFinite`]; [`Error::NegativeDistance`]; [`Error::InvalidParam`]; [`Error::Overflow`].
///
/// # Complexity
/// As [`vr_barcodes`] without the distance computation.
///
/// # Example
/// ```
/// use claimlab_topology::{vr_barcodes_from_distances, VrConfig};
/// // Three points at distances 1, 2, 3: H0 dies at 1 and 2, one class lives forever.
/// let bars = vr_barcodes_from_distances(3, &[1.0, 2.0, 3.0], &VrConfig::default()).unwrap();
/// let deaths: Vec<f64> = bars.diagrams[0].intervals.iter().map(|iv| iv.death).collect();
/// assert_eq!(deaths, vec![1.0, 2.0, f64::INFINITY]);
/// ```
pub fn vr_barcodes_from_distances(n: usize, lower: &[f64], config: &VrConfig) -> Result<Barcodes> {
    config.validate()?;
    check_index_range(n, config.max_dim)?;
    let dist = DistanceMatrix::from_lower(n, lower)?;
    rips(&dist, config)
}

/// Vietoris-Rips barcodes for `n` points under any metric given as a closure `metric(i, j)`
/// (called once for each `i > j`; it must be symmetric, non-negative and finite).
///
/// # Errors
/// As [`vr_barcodes_from_distances`] (indices in errors refer to the lower-triangular order).
///
/// # Example
/// ```
/// use claimlab_topology::{vr_barcodes_with_metric, VrConfig};
/// // Six points on a cycle graph with the hop metric: a loop born at 1, filled at 2.
/// let n = 6;
/// let hop = |i: usize, j: usize| {
///     let d = i.abs_diff(j);
///     d.min(n - d) as f64
/// };
/// let bars = vr_barcodes_with_metric(n, hop, &VrConfig::default()).unwrap();
/// let h1 = &bars.diagrams[1].intervals;
/// assert_eq!(h1.len(), 1);
/// assert_eq!((h1[0].birth, h1[0].death), (1.0, 2.0));
/// ```
pub fn vr_barcodes_with_metric<F: Fn(usize, usize) -> f64 + Sync>(
    n: usize,
    metric: F,
    config: &VrConfig,
) -> Result<Barcodes> {
    config.validate()?;
    check_index_range(n, config.max_dim)?;
    let dist = DistanceMatrix::from_metric(n, metric)?;
    rips(&dist, config)
}

/// `Err(Overflow)` unless every simplex index up to dimension `max_dim + 1` on `n` vertices fits
/// in 55 bits, leaving room for the coefficient bits (checked before any distance is computed).
fn check_index_range(n: usize, max_dim: usize) -> Result<()> {
    let k = max_dim as u128 + 2;
    let mut c: u128 = 1;
    for i in 0..k {
        // C(n, i + 1) = C(n, i) * (n - i) / (i + 1), exact at every step.
        let Some(next) = c.checked_mul((n as u128).saturating_sub(i)) else {
            return Err(Error::Overflow {
                what: "simplex index C(n, max_dim + 2) exceeds 55 bits",
            });
        };
        c = next / (i + 1);
    }
    if c > u128::from(MAX_INDEX) {
        return Err(Error::Overflow {
            what: "simplex index C(n, max_dim + 2) exceeds 55 bits",
        });
    }
    Ok(())
}

/// Binomial coefficients `C(v, k)` for `v <= n`, `k <= kmax`, checked to fit in 64 bits.
struct Binomial {
    table: Vec<u64>,
    stride: usize,
}

impl Binomial {
    fn new(n: usize, kmax: usize) -> Result<Self> {
        let stride = kmax + 1;
        let mut table = vec![0u64; (n + 1) * stride];
        for v in 0..=n {
            table[v * stride] = 1;
            for k in 1..=kmax.min(v) {
                let a = table[(v - 1) * stride + k - 1];
                let b = if k < v {
                    table[(v - 1) * stride + k]
                } else {
                    0
                };
                table[v * stride + k] = a.checked_add(b).ok_or(Error::Overflow {
                    what: "simplex index C(n, max_dim + 2) exceeds 64 bits",
                })?;
            }
        }
        // Indices are sums of such terms; keep headroom so those sums cannot wrap either.
        if table[n * stride + kmax] > MAX_INDEX {
            return Err(Error::Overflow {
                what: "simplex index C(n, max_dim + 2) exceeds 55 bits",
            });
        }
        Ok(Self { table, stride })
    }

    #[inline]
    fn get(&self, v: usize, k: usize) -> u64 {
        self.table[v * self.stride + k]
    }
}

/// An entry of a working column: a simplex (diameter, index) with a coefficient.
#[derive(Debug, Clone, Copy)]
struct Entry {
    diam: f64,
    /// `index << COEF_BITS | coefficient`: one word, so heap entries are 16 bytes (as Ripser).
    key: u64,
}

/// Bits of [`Entry::key`] that hold the coefficient (moduli below 2^8).
const COEF_BITS: u32 = 8;

/// Simplex indices (and their partial sums) stay below this, so `index << COEF_BITS` fits.
const MAX_INDEX: u64 = 1 << 55;

impl Entry {
    #[inline]
    fn new(diam: f64, index: u64, coef: u64) -> Self {
        Self {
            diam,
            key: (index << COEF_BITS) | coef,
        }
    }

    #[inline]
    fn index(&self) -> u64 {
        self.key >> COEF_BITS
    }

    #[inline]
    fn coef(&self) -> u64 {
        self.key & ((1 << COEF_BITS) - 1)
    }

    #[inline]
    fn with_coef(self, coef: u64) -> Self {
        Self::new(self.diam, self.index(), coef)
    }
}

// Heap order: the greatest entry is the earliest in the filtration (smallest diameter, then
// largest index). Coefficients do not take part. Diameters are finite and >= +0.0 (inputs are
// normalised), and for such floats the order of the bit patterns is the numeric order.
impl Ord for Entry {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (other.diam.to_bits(), self.key).cmp(&(self.diam.to_bits(), other.key))
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}

/// A cheap multiplicative hasher for simplex indices (keys are already well spread integers).
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }
    fn write_u64(&mut self, x: u64) {
        let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type IndexMap<V> = HashMap<u64, V, BuildHasherDefault<IndexHasher>>;

/// A reduced column: its simplex, the coefficient of its pivot, and its reduction-matrix entries.
struct Column {
    simplex: Entry,
    pivot_coef: u64,
    v_start: usize,
    v_end: usize,
}

/// Read access to distances between distinct vertices.
trait Dist: Sync {
    fn d(&self, v: usize, u: usize) -> f64;
}

impl Dist for DistanceMatrix {
    #[inline]
    fn d(&self, v: usize, u: usize) -> f64 {
        self.get(v, u)
    }
}

/// The full square matrix, row-major: scanning all `v` against one `u` reads memory in order.
struct FullMatrix {
    n: usize,
    data: Vec<f64>,
}

impl Dist for FullMatrix {
    #[inline]
    fn d(&self, v: usize, u: usize) -> f64 {
        self.data[u * self.n + v]
    }
}

/// Up to this many points the full square matrix is kept beside the triangle (8 n² bytes, 128 MiB).
const FULL_MATRIX_MAX_POINTS: usize = 4096;

struct Rips<'a, D: Dist> {
    dist: &'a D,
    n: usize,
    threshold: f64,
    p: u64,
    inv: Vec<u64>,
    binom: Binomial,
}

impl<D: Dist> Rips<'_, D> {
    /// Vertices of simplex `index` of dimension `dim`, largest first.
    fn vertices(&self, mut index: u64, dim: usize, out: &mut Vec<usize>) {
        out.clear();
        let mut top = self.n;
        if dim == 1 {
            // Edge {i > j} has index i(i-1)/2 + j: invert the triangular number directly.
            let mut i = ((1.0 + (1.0 + 8.0 * index as f64).sqrt()) / 2.0) as u64;
            while i * (i - 1) / 2 > index {
                i -= 1;
            }
            while (i + 1) * i / 2 <= index {
                i += 1;
            }
            out.push(i as usize);
            out.push((index - i * (i - 1) / 2) as usize);
            return;
        }
        for k in (1..=dim + 1).rev() {
            // Largest v < top with C(v, k) <= index (binary search; C(·, k) is increasing).
            let (mut lo, mut hi) = (k - 1, top - 1);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if self.binom.get(mid, k) <= index {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            out.push(lo);
            index -= self.binom.get(lo, k);
            top = lo;
        }
    }

    /// Calls `f(diam, index, coef)` for each coface within the threshold, in descending index order,
    /// until it returns false. With `all == false` only cofaces whose new vertex exceeds every vertex
    /// of the simplex (each simplex is then produced from exactly one facet).
    #[inline]
    fn cofaces(
        &self,
        s: Entry,
        dim: usize,
        verts: &[usize],
        all: bool,
        mut f: impl FnMut(Entry, usize) -> bool,
    ) {
        let mut idx_below = s.index();
        let mut idx_above = 0u64;
        let mut k = dim + 1;
        let mut v = self.n;
        while v > 0 {
            v -= 1;
            if k > 0 && verts[dim + 1 - k] == v {
                idx_below -= self.binom.get(v, k);
                idx_above += self.binom.get(v, k + 1);
                k -= 1;
                continue;
            }
            if !all && k <= dim {
                break;
            }
            let mut d = s.diam;
            for &u in verts {
                d = d.max(self.dist.d(v, u));
            }
            if d > self.threshold {
                continue;
            }
            let coef = if k % 2 == 1 {
                (self.p - s.coef()) % self.p
            } else {
                s.coef()
            };
            let e = Entry::new(d, idx_above + self.binom.get(v, k + 1) + idx_below, coef);
            if !f(e, v) {
                return;
            }
        }
    }

    /// The largest vertex `v > v_floor` (or `>= 0` when `v_floor` is `None`) outside `verts`
    /// within `diam` of every vertex of `verts`: the new vertex of the coface of largest index
    /// among those with diameter `diam`.
    #[inline]
    fn first_zero_coface_vertex(
        &self,
        verts: &[usize],
        diam: f64,
        v_floor: Option<usize>,
    ) -> Option<usize> {
        let lo = v_floor.map_or(0, |f| f + 1);
        (lo..self.n)
            .rev()
            .find(|&v| verts.iter().all(|&u| self.dist.d(v, u) <= diam) && !verts.contains(&v))
    }

    /// Index of the simplex `verts ∪ {v}` and the coefficient of it in `δ(verts)` (times `coef`).
    fn coface_with(&self, verts: &[usize], v: usize, coef: u64) -> (u64, u64) {
        let len = verts.len() + 1;
        let mut index = 0;
        let mut below = 0;
        let mut pos = 0;
        let mut placed = false;
        for &u in verts {
            if !placed && v > u {
                index += self.binom.get(v, len - pos);
                pos += 1;
                placed = true;
            }
            if u < v {
                below += 1;
            }
            index += self.binom.get(u, len - pos);
            pos += 1;
        }
        if !placed {
            index += self.binom.get(v, 1);
        }
        let c = if below % 2 == 1 {
            (self.p - coef) % self.p
        } else {
            coef
        };
        (index, c)
    }

    /// The coface of `s` with the same diameter and the largest index (the pivot of its unreduced
    /// coboundary when it has zero persistence), if any, with its new vertex.
    fn zero_apparent_cofacet(&self, s: Entry, verts: &[usize]) -> Option<(Entry, usize)> {
        let v = self.first_zero_coface_vertex(verts, s.diam, None)?;
        let (index, coef) = self.coface_with(verts, v, s.coef());
        Some((Entry::new(s.diam, index, coef), v))
    }

    /// The facet of `t` (dimension `dim`, vertices `verts`) with the same diameter and the smallest
    /// index, with the coefficient of `t` in that facet's coboundary, and the position (in `verts`)
    /// of the vertex removed.
    fn zero_apparent_facet(&self, t: Entry, dim: usize, verts: &[usize]) -> Option<(Entry, usize)> {
        // Removing the largest vertex first gives facets in ascending index order.
        for j in 0..=dim {
            let mut d = 0.0f64;
            for (a, &x) in verts.iter().enumerate() {
                if a == j {
                    continue;
                }
                for (b, &y) in verts.iter().enumerate().skip(a + 1) {
                    if b != j {
                        d = d.max(self.dist.d(x, y));
                    }
                }
            }
            if d >= t.diam {
                let mut index = 0;
                let mut k = dim;
                for (a, &v) in verts.iter().enumerate() {
                    if a != j {
                        index += self.binom.get(v, k);
                        k -= 1;
                    }
                }
                // The removed vertex sits at ascending position dim - j of t.
                let coef = if (dim - j) % 2 == 1 { self.p - 1 } else { 1 };
                return Some((Entry::new(d, index, coef), j));
            }
        }
        None
    }

    /// When `t` (vertices `tverts`) forms a zero-persistence apparent pair with one of its facets,
    /// that facet (its coefficient is that of `t` in the facet's coboundary).
    fn apparent_facet_of_verts(
        &self,
        t: Entry,
        dim: usize,
        tverts: &[usize],
        fverts: &mut Vec<usize>,
    ) -> Option<Entry> {
        let (f, j) = self.zero_apparent_facet(t, dim, tverts)?;
        fverts.clear();
        fverts.extend(
            tverts
                .iter()
                .enumerate()
                .filter(|&(a, _)| a != j)
                .map(|(_, &v)| v),
        );
        // `t` itself is a coface of `f` of that diameter; it is the one of largest index unless
        // some vertex above the removed one also qualifies.
        self.first_zero_coface_vertex(fverts, f.diam, Some(tverts[j]))
            .is_none()
            .then_some(f)
    }

    /// As [`Self::apparent_facet_of_verts`], decoding the vertices of `t` first.
    fn apparent_facet_of(
        &self,
        t: Entry,
        dim: usize,
        buf: &mut Vec<usize>,
        buf2: &mut Vec<usize>,
    ) -> Option<Entry> {
        self.vertices(t.index(), dim, buf);
        self.apparent_facet_of_verts(t, dim, buf, buf2)
    }

    /// True when `s` (vertices `sverts`, dimension `dim`) forms a zero-persistence apparent pair
    /// with one of its cofaces.
    fn has_apparent_cofacet_verts(
        &self,
        s: Entry,
        dim: usize,
        sverts: &[usize],
        cverts: &mut Vec<usize>,
    ) -> bool {
        let Some((c, v)) = self.zero_apparent_cofacet(s, sverts) else {
            return false;
        };
        cverts.clear();
        cverts.extend(sverts.iter().copied().filter(|&u| u > v));
        cverts.push(v);
        cverts.extend(sverts.iter().copied().filter(|&u| u < v));
        self.zero_apparent_facet(c, dim + 1, cverts)
            .is_some_and(|(f, _)| f.index() == s.index())
    }

    /// As [`Self::has_apparent_cofacet_verts`], decoding the vertices of `s` first.
    fn has_apparent_cofacet(
        &self,
        s: Entry,
        dim: usize,
        buf: &mut Vec<usize>,
        buf2: &mut Vec<usize>,
    ) -> bool {
        self.vertices(s.index(), dim, buf);
        self.has_apparent_cofacet_verts(s, dim, buf, buf2)
    }

    /// Pushes `coef * δ(s)` onto the heap.
    fn push_coboundary(
        &self,
        s: Entry,
        dim: usize,
        heap: &mut BinaryHeap<Entry>,
        buf: &mut Vec<usize>,
    ) {
        self.vertices(s.index(), dim, buf);
        self.cofaces(s, dim, buf, true, |e, _| {
            heap.push(e);
            true
        });
    }

    /// Pops the pivot (earliest entry with a non-zero summed coefficient).
    fn pop_pivot(&self, heap: &mut BinaryHeap<Entry>) -> Option<Entry> {
        loop {
            let mut top = heap.pop()?;
            while let Some(next) = heap.peek() {
                if next.index() != top.index() {
                    break;
                }
                top = top.with_coef((top.coef() + next.coef()) % self.p);
                heap.pop();
            }
            if top.coef() != 0 {
                return Some(top);
            }
        }
    }

    fn get_pivot(&self, heap: &mut BinaryHeap<Entry>) -> Option<Entry> {
        let p = self.pop_pivot(heap);
        if let Some(e) = p {
            heap.push(e);
        }
        p
    }

    /// The 1-cocycle `col + Σ entries` as `(i, j, coefficient)` with `i > j`, sorted.
    fn cocycle(&self, col: Entry, entries: &[Entry]) -> Cocycle {
        let mut buf = Vec::with_capacity(2);
        let mut edges: Vec<(usize, usize, u32)> = std::iter::once(&col)
            .chain(entries)
            .map(|e| {
                self.vertices(e.index(), 1, &mut buf);
                (buf[0], buf[1], e.coef() as u32)
            })
            .collect();
        edges.sort_unstable();
        Cocycle { edges }
    }

    /// Reduces the coboundary columns of the `dim`-simplices `columns` (sorted in reverse
    /// filtration order). Returns the pivots (the `(dim+1)`-simplices paired here) for clearing.
    fn reduce(
        &self,
        dim: usize,
        columns: &[Entry],
        diagram: &mut Diagram,
        stats: &mut DimStats,
        mut cocycles: Option<&mut Vec<Cocycle>>,
    ) -> IndexMap<u32> {
        let mut pivots: IndexMap<u32> = IndexMap::default();
        let mut cols: Vec<Column> = Vec::new();
        let mut v_entries: Vec<Entry> = Vec::new();
        let mut working = BinaryHeap::new();
        let mut reduction = BinaryHeap::new();
        let (mut buf, mut buf2, mut buf3) = (Vec::new(), Vec::new(), Vec::new());

        for &col in columns {
            stats.columns_reduced += 1;
            working.clear();
            reduction.clear();
            // Build δ(col); stop at once on an emergent pair.
            self.vertices(col.index(), dim, &mut buf);
            let mut check_emergent = true;
            let mut emergent = None;
            self.cofaces(col, dim, &buf, true, |e, _| {
                if check_emergent && e.diam <= col.diam {
                    if !pivots.contains_key(&e.index())
                        && self
                            .apparent_facet_of(e, dim + 1, &mut buf2, &mut buf3)
                            .is_none()
                    {
                        emergent = Some(e);
                        return false;
                    }
                    check_emergent = false;
                }
                working.push(e);
                true
            });
            let mut pivot = if let Some(e) = emergent {
                stats.emergent_pairs += 1;
                working.clear();
                Some(e)
            } else {
                self.get_pivot(&mut working)
            };
            loop {
                let Some(piv) = pivot else {
                    diagram
                        .intervals
                        .push(Interval::new(col.diam, f64::INFINITY));
                    if let Some(out) = cocycles.as_deref_mut() {
                        let mut entries = Vec::new();
                        while let Some(e) = self.pop_pivot(&mut reduction) {
                            entries.push(e);
                        }
                        out.push(self.cocycle(col, &entries));
                    }
                    break;
                };
                if let Some(&j) = pivots.get(&piv.index()) {
                    let c = &cols[j as usize];
                    let factor =
                        (self.p - piv.coef() * self.inv[c.pivot_coef as usize] % self.p) % self.p;
                    stats.additions += 1;
                    let s = c.simplex.with_coef(factor);
                    reduction.push(s);
                    self.push_coboundary(s, dim, &mut working, &mut buf2);
                    for e in &v_entries[c.v_start..c.v_end] {
                        let s = e.with_coef(e.coef() * factor % self.p);
                        reduction.push(s);
                        self.push_coboundary(s, dim, &mut working, &mut buf2);
                    }
                    pivot = self.get_pivot(&mut working);
                } else if let Some(f) = self.apparent_facet_of(piv, dim + 1, &mut buf2, &mut buf3) {
                    // The facet's column was skipped: its coboundary is already reduced.
                    let factor =
                        (self.p - piv.coef() * self.inv[f.coef() as usize] % self.p) % self.p;
                    stats.additions += 1;
                    let s = f.with_coef(factor);
                    reduction.push(s);
                    self.push_coboundary(s, dim, &mut working, &mut buf2);
                    pivot = self.get_pivot(&mut working);
                } else {
                    let v_start = v_entries.len();
                    while let Some(e) = self.pop_pivot(&mut reduction) {
                        v_entries.push(e);
                    }
                    if piv.diam > col.diam {
                        diagram.intervals.push(Interval::new(col.diam, piv.diam));
                        if let Some(out) = cocycles.as_deref_mut() {
                            out.push(self.cocycle(col, &v_entries[v_start..]));
                        }
                    }
                    pivots.insert(
                        piv.index(),
                        u32::try_from(cols.len()).expect("fewer than 2^32 columns"),
                    );
                    cols.push(Column {
                        simplex: col,
                        pivot_coef: piv.coef(),
                        v_start,
                        v_end: v_entries.len(),
                    });
                    break;
                }
            }
        }
        pivots
    }
}

/// Sorts columns in reverse filtration order: diameter descending, index ascending.
fn sort_reverse_filtration(cols: &mut [Entry]) {
    cols.sort_unstable_by(|a, b| b.diam.total_cmp(&a.diam).then(a.index().cmp(&b.index())));
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

pub(crate) fn rips(dist: &DistanceMatrix, config: &VrConfig) -> Result<Barcodes> {
    let n = dist.n;
    let threshold = config.threshold.unwrap_or_else(|| dist.enclosing_radius());
    if n <= FULL_MATRIX_MAX_POINTS {
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..i {
                let d = dist.get(i, j);
                data[i * n + j] = d;
                data[j * n + i] = d;
            }
        }
        rips_with(dist, &FullMatrix { n, data }, threshold, config)
    } else {
        rips_with(dist, dist, threshold, config)
    }
}

fn rips_with<D: Dist>(
    dist: &DistanceMatrix,
    access: &D,
    threshold: f64,
    config: &VrConfig,
) -> Result<Barcodes> {
    let n = dist.n;
    let max_dim = config.max_dim;
    let p = u64::from(config.modulus);
    let inv = (0..p)
        .map(|a| if a == 0 { 0 } else { inverse(a, p) })
        .collect();
    let r = Rips {
        dist: access,
        n,
        threshold,
        p,
        inv,
        binom: Binomial::new(n, max_dim + 2)?,
    };
    let mut diagrams = vec![Diagram::new(); max_dim + 1];
    let mut stats = vec![DimStats::default(); max_dim + 1];
    let mut cocycles: Vec<Cocycle> = Vec::new();

    // Dimension 0 by union-find over the edges in filtration order.
    let mut edges: Vec<Entry> = Vec::new();
    for i in 1..n {
        for j in 0..i {
            let d = dist.get(i, j);
            if d <= threshold {
                edges.push(Entry::new(d, (i * (i - 1) / 2 + j) as u64, 1));
            }
        }
    }
    edges.sort_unstable_by(|a, b| a.diam.total_cmp(&b.diam).then(b.index().cmp(&a.index())));
    stats[0].simplices = n;
    let mut parent: Vec<usize> = (0..n).collect();
    let mut columns = Vec::new();
    let mut buf = Vec::new();
    for &e in &edges {
        r.vertices(e.index(), 1, &mut buf);
        let (a, b) = (find(&mut parent, buf[0]), find(&mut parent, buf[1]));
        if a == b {
            if max_dim >= 1 {
                columns.push(e);
            }
        } else {
            parent[a.max(b)] = a.min(b);
            if e.diam > 0.0 {
                diagrams[0].intervals.push(Interval::new(0.0, e.diam));
            }
        }
    }
    for v in 0..n {
        if find(&mut parent, v) == v {
            diagrams[0]
                .intervals
                .push(Interval::new(0.0, f64::INFINITY));
        }
    }
    if max_dim >= 1 {
        stats[1].simplices = edges.len();
        stats[1].cleared = edges.len() - columns.len();
        let before = columns.len();
        let keep = |e: &Entry| {
            let (mut b1, mut b2) = (Vec::new(), Vec::new());
            !r.has_apparent_cofacet(*e, 1, &mut b1, &mut b2)
        };
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            columns = columns.into_par_iter().filter(keep).collect();
        }
        #[cfg(not(feature = "rayon"))]
        columns.retain(keep);
        stats[1].apparent_pairs = before - columns.len();
        sort_reverse_filtration(&mut columns);
        let mut simplices = edges;
        let mut pivots = IndexMap::default();
        for dim in 1..=max_dim {
            if dim > 1 {
                let (next, cols) = assemble(&r, dim, &simplices, &pivots, &mut stats[dim]);
                simplices = if dim < max_dim { next } else { Vec::new() };
                columns = cols;
            }
            let want = (dim == 1 && config.cocycles).then_some(&mut cocycles);
            pivots = r.reduce(dim, &columns, &mut diagrams[dim], &mut stats[dim], want);
        }
    }
    if config.cocycles && max_dim >= 1 {
        // Sort H1 and its cocycles together, as `Diagram::sort` orders intervals.
        let h1 = &mut diagrams[1].intervals;
        let mut order: Vec<usize> = (0..h1.len()).collect();
        order.sort_by(|&x, &y| {
            h1[x]
                .birth
                .total_cmp(&h1[y].birth)
                .then(h1[x].death.total_cmp(&h1[y].death))
        });
        *h1 = order.iter().map(|&k| h1[k]).collect();
        let mut taken: Vec<Option<Cocycle>> = cocycles.into_iter().map(Some).collect();
        cocycles = order.iter().filter_map(|&k| taken[k].take()).collect();
    }
    diagrams.iter_mut().for_each(Diagram::sort);
    Ok(Barcodes {
        diagrams,
        threshold,
        n_points: n,
        stats,
        cocycles,
    })
}

/// The `dim`-simplices under the threshold (cofaces of the `(dim-1)`-simplices `faces`) and, sorted
/// in reverse filtration order, those that need a column: not cleared (paired one dimension down,
/// explicitly or as the coface of an apparent pair) and not the face of an apparent pair.
fn assemble<D: Dist>(
    r: &Rips<'_, D>,
    dim: usize,
    faces: &[Entry],
    pivots: &IndexMap<u32>,
    stats: &mut DimStats,
) -> (Vec<Entry>, Vec<Entry>) {
    // For each face: its cofaces with a larger top vertex, tagged 0 (column), 1 (cleared) or
    // 2 (apparent pair face).
    let per_face = |s: &Entry| {
        let (mut buf, mut buf2, mut buf3) = (Vec::new(), Vec::new(), Vec::new());
        let mut out = Vec::new();
        r.vertices(s.index(), dim - 1, &mut buf);
        r.cofaces(s.with_coef(1), dim - 1, &buf, false, |t, v| {
            out.push((t.with_coef(1), v));
            true
        });
        out.into_iter().map(move |(t, v)| {
            // The new vertex exceeds every vertex of the face.
            buf2.clear();
            buf2.push(v);
            buf2.extend_from_slice(&buf);
            let tag = if pivots.contains_key(&t.index())
                || r.apparent_facet_of_verts(t, dim, &buf2, &mut buf3)
                    .is_some()
            {
                1u8
            } else if r.has_apparent_cofacet_verts(t, dim, &buf2, &mut buf3) {
                2
            } else {
                0
            };
            (t, tag)
        })
    };
    #[cfg(feature = "rayon")]
    let tagged: Vec<(Entry, u8)> = {
        use rayon::prelude::*;
        faces.par_iter().flat_map_iter(per_face).collect()
    };
    #[cfg(not(feature = "rayon"))]
    let tagged: Vec<(Entry, u8)> = faces.iter().flat_map(per_face).collect();
    let mut columns = Vec::new();
    let mut next = Vec::with_capacity(tagged.len());
    for (t, tag) in tagged {
        match tag {
            0 => columns.push(t),
            1 => stats.cleared += 1,
            _ => stats.apparent_pairs += 1,
        }
        next.push(t);
    }
    stats.simplices = next.len();
    sort_reverse_filtration(&mut columns);
    (next, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Above `FULL_MATRIX_MAX_POINTS` the compressed triangle is read directly: same diagrams.
    #[test]
    fn compressed_and_full_access_agree() {
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for trial in 0..20 {
            let n = 10 + trial * 3;
            let pts: Vec<[f64; 3]> = (0..n).map(|_| [next(), next(), next()]).collect();
            let dist = DistanceMatrix::euclidean(&pts).unwrap();
            let cfg = VrConfig {
                cocycles: true,
                modulus: if trial % 2 == 0 { 2 } else { 3 },
                ..VrConfig::with_max_dim(2)
            };
            let full = rips(&dist, &cfg).unwrap();
            let t = dist.enclosing_radius();
            let compressed = rips_with(&dist, &dist, t, &cfg).unwrap();
            assert_eq!(full, compressed, "trial {trial}");
        }
    }
}
