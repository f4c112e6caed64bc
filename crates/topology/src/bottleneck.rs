//! Exact bottleneck distance between persistence diagrams.

use crate::diagram::{Diagram, Interval};
use crate::error::Result;

/// The exact bottleneck distance between two persistence diagrams (L∞ ground metric).
///
/// ```text
/// d_B(A, B) = min over matchings γ of max( max_{(a,b) ∈ γ} ‖a − b‖∞ , max_{x unmatched} (d − b)/2 )
/// ```
/// where every point may be matched to the diagonal at cost half its persistence. Points at infinity
/// (essential classes) are matched only among themselves, by birth: when the two diagrams hold
/// different numbers of them the distance is `f64::INFINITY`. Zero-length intervals cost nothing.
///
/// # Arguments
/// - `a`, `b`: diagrams; the order of intervals does not matter.
///
/// # Returns
/// The distance (exact: one of the candidate values `‖a − b‖∞`, `(d − b)/2` or an essential birth
/// difference), or `f64::INFINITY`.
///
/// # Errors
/// [`crate::Error::InvalidInterval`] when an interval has a non-finite birth, a NaN death or
/// `death < birth`.
///
/// # Complexity
/// A search over the `O(n m)` candidate values that gallops up from the smallest (probes at small
/// radii are cheap) and then bisects; only pair distances inside the bracket left by the
/// diagonal values are generated. Each probe is two Hopcroft-Karp matchings, `O(E √V)`, on a
/// graph whose edges are found through a uniform grid of cell side ≈ the probed radius (each
/// point looks at 3 × 3 cells, not the whole other diagram). Memory `O(n + m + E)`; candidate
/// batches are capped at 16 384 values.
///
/// # References
/// A. Efrat, A. Itai, M. J. Katz, *Geometry helps in bottleneck matching and related problems*,
/// Algorithmica 31 (2001) 1–28, doi:10.1007/s00453-001-0016-8; M. Kerber, D. Morozov, A. Nigmetov,
/// *Geometry helps to compare persistence diagrams*, ACM J. Exp. Algorithmics 22 (2017),
/// doi:10.1145/3064175 (Hera); N. S. Mendelsohn, A. L. Dulmage, *Some generalizations of the problem
/// of distinct representatives*, Canad. J. Math. 10 (1958) 230–241 (the matching test used here).
///
/// # Example
/// ```
/// use claimlab_topology::{bottleneck_distance, Diagram};
/// let a = Diagram::from_pairs(&[(0.0, 4.0), (1.0, 2.0)]).unwrap();
/// let b = Diagram::from_pairs(&[(0.5, 4.5)]).unwrap();
/// // (0,4) ↔ (0.5,4.5) costs 0.5; (1,2) goes to the diagonal at 0.5.
/// assert!((bottleneck_distance(&a, &b).unwrap() - 0.5).abs() < 1e-15);
/// ```
pub fn bottleneck_distance(a: &Diagram, b: &Diagram) -> Result<f64> {
    a.validate()?;
    b.validate()?;
    let Some(essential) = essential_cost(a, b, |x| x, f64::max) else {
        return Ok(f64::INFINITY);
    };
    let fa = finite_off_diagonal(a);
    let fb = finite_off_diagonal(b);
    Ok(essential.max(finite_bottleneck(&fa, &fb)))
}

/// Pairs the essential births of `a` and `b` in sorted order and folds `cost(|Δ|)` with `combine`
/// (starting at 0). `None` when the counts differ.
pub(crate) fn essential_cost(
    a: &Diagram,
    b: &Diagram,
    cost: impl Fn(f64) -> f64,
    combine: impl Fn(f64, f64) -> f64,
) -> Option<f64> {
    let sorted = |d: &Diagram| {
        let mut v: Vec<f64> = d.essential().map(|iv| iv.birth).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (ea, eb) = (sorted(a), sorted(b));
    (ea.len() == eb.len()).then(|| {
        ea.iter()
            .zip(&eb)
            .fold(0.0, |acc, (x, y)| combine(acc, cost((x - y).abs())))
    })
}

/// The finite intervals of positive persistence.
pub(crate) fn finite_off_diagonal(d: &Diagram) -> Vec<Interval> {
    d.finite()
        .filter(|iv| iv.death > iv.birth)
        .copied()
        .collect()
}

/// L∞ distance between two diagram points.
#[inline]
pub(crate) fn linf(a: &Interval, b: &Interval) -> f64 {
    (a.birth - b.birth).abs().max((a.death - b.death).abs())
}

/// L∞ distance to the diagonal.
#[inline]
pub(crate) fn to_diagonal(a: &Interval) -> f64 {
    (a.death - a.birth) / 2.0
}

/// At most this many pair distances are held at once while searching for the optimal value.
const CANDIDATE_BATCH: usize = 1 << 14;

/// Bottleneck distance between finite, off-diagonal point sets.
///
/// The optimum is one of the values `(d − b)/2` or `‖a − b‖∞`. The diagonal values are searched
/// first; the pair distances inside the remaining bracket `(lo, hi)` are then counted, and either
/// all kept (few) or subsampled at an even stride to shrink the bracket, so memory stays
/// `O(CANDIDATE_BATCH)` whatever the diagram sizes.
fn finite_bottleneck(a: &[Interval], b: &[Interval]) -> f64 {
    finite_bottleneck_batched(a, b, CANDIDATE_BATCH)
}

fn finite_bottleneck_batched(a: &[Interval], b: &[Interval], batch: usize) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    let is_feasible = |eps: f64| feasible(a, b, eps);
    // Smallest feasible value in a sorted list, with the largest infeasible one before it. The
    // probes gallop up from the small end (indices 0, 1, 3, 7, …) before bisecting: probes at
    // small radii are cheap (sparse graphs, early exits), so the work stays near the answer.
    let search = |vals: &[f64]| -> (Option<f64>, Option<f64>) {
        let (mut lo, mut hi) = (0usize, vals.len());
        let mut step = 1usize;
        while lo < hi {
            let probe = (lo + step - 1).min(hi - 1);
            if is_feasible(vals[probe]) {
                hi = probe;
                break;
            }
            lo = probe + 1;
            step *= 2;
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if is_feasible(vals[mid]) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        (lo.checked_sub(1).map(|k| vals[k]), vals.get(lo).copied())
    };
    let mut diag: Vec<f64> = a.iter().chain(b).map(to_diagonal).collect();
    diag.sort_unstable_by(f64::total_cmp);
    diag.dedup();
    // Everything to the diagonal is always possible: the largest diagonal value is feasible.
    let (below, best) = search(&diag);
    let mut hi = best.unwrap_or(diag[diag.len() - 1]);
    let mut lo = below.unwrap_or(-1.0);
    loop {
        // Pair distances strictly inside (lo, hi): count, then keep all or an even subsample.
        let b_grid = Grid::new(b, hi);
        let mut count = 0usize;
        for x in a {
            b_grid.for_each_within(x, hi, |_, d| count += usize::from(d > lo && d < hi));
        }
        if count == 0 {
            return hi;
        }
        let stride = count.div_ceil(batch);
        let mut vals = Vec::with_capacity(count.min(batch) + 1);
        let mut k = 0usize;
        for x in a {
            b_grid.for_each_within(x, hi, |_, d| {
                if d > lo && d < hi {
                    if k.is_multiple_of(stride) {
                        vals.push(d);
                    }
                    k += 1;
                }
            });
        }
        vals.sort_unstable_by(f64::total_cmp);
        vals.dedup();
        let (below, best) = search(&vals);
        if let Some(h) = best {
            hi = h;
        }
        if let Some(l) = below {
            lo = l;
        }
        if stride == 1 {
            // Every candidate in the bracket was tried.
            return hi;
        }
    }
}

/// Most grid cells per point (the cell side grows past the query radius to respect it).
const GRID_CELLS_PER_POINT: usize = 2;

/// A uniform grid over the (birth, death) plane for L∞ range queries: bucket sort in CSR form.
/// With a cell side of about the query radius, a query visits at most 3 × 3 cells, so each
/// point's neighbours within the radius are found without scanning the whole diagram (the
/// geometric pruning of Efrat, Itai and Katz, and of Hera).
pub(crate) struct Grid<'a> {
    points: &'a [Interval],
    x0: f64,
    y0: f64,
    inv_cell: f64,
    nx: usize,
    ny: usize,
    /// Bucket c holds `items[start[c]..start[c + 1]]`.
    start: Vec<usize>,
    items: Vec<usize>,
}

impl<'a> Grid<'a> {
    /// A grid whose cell side is `radius`, enlarged where needed so that there are at most
    /// [`GRID_CELLS_PER_POINT`] cells per point.
    pub(crate) fn new(points: &'a [Interval], radius: f64) -> Self {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for p in points {
            x0 = x0.min(p.birth);
            x1 = x1.max(p.birth);
            y0 = y0.min(p.death);
            y1 = y1.max(p.death);
        }
        if points.is_empty() {
            (x0, x1, y0, y1) = (0.0, 0.0, 0.0, 0.0);
        }
        let (w, h) = (x1 - x0, y1 - y0);
        let max_cells = (GRID_CELLS_PER_POINT * points.len()).max(1) as f64;
        let mut cell = radius.max(0.0);
        // Enlarge the cells until their number is bounded (also covers radius 0).
        let floor = (w * h / max_cells)
            .sqrt()
            .max(w / max_cells)
            .max(h / max_cells);
        if cell.is_nan() || cell < floor {
            cell = floor;
        }
        let (nx, ny, inv_cell) = if cell > 0.0 && cell.is_finite() {
            let nx = ((w / cell).floor() as usize + 1).min(max_cells as usize);
            let ny = ((h / cell).floor() as usize + 1).min(max_cells as usize);
            (nx, ny, 1.0 / cell)
        } else {
            (1, 1, 0.0)
        };
        let mut grid = Self {
            points,
            x0,
            y0,
            inv_cell,
            nx,
            ny,
            start: vec![0; nx * ny + 1],
            items: vec![0; points.len()],
        };
        for p in points {
            let c = grid.cell_of(p);
            grid.start[c + 1] += 1;
        }
        for c in 0..nx * ny {
            grid.start[c + 1] += grid.start[c];
        }
        let mut fill = grid.start.clone();
        for (j, p) in points.iter().enumerate() {
            let c = grid.cell_of(p);
            grid.items[fill[c]] = j;
            fill[c] += 1;
        }
        grid
    }

    fn axis(&self, v: f64, origin: f64, n: usize) -> usize {
        let t = ((v - origin) * self.inv_cell).floor();
        if t >= 0.0 {
            (t as usize).min(n - 1)
        } else {
            0
        }
    }

    fn cell_of(&self, p: &Interval) -> usize {
        self.axis(p.death, self.y0, self.ny) * self.nx + self.axis(p.birth, self.x0, self.nx)
    }

    /// Calls `f(j, ‖x − p_j‖∞)` for every point `p_j` within `eps` of `x` (L∞), each once.
    #[inline]
    pub(crate) fn for_each_within(&self, x: &Interval, eps: f64, mut f: impl FnMut(usize, f64)) {
        if self.points.is_empty() {
            return;
        }
        let (cx0, cx1) = (
            self.axis(x.birth - eps, self.x0, self.nx),
            self.axis(x.birth + eps, self.x0, self.nx),
        );
        let (cy0, cy1) = (
            self.axis(x.death - eps, self.y0, self.ny),
            self.axis(x.death + eps, self.y0, self.ny),
        );
        for cy in cy0..=cy1 {
            let row = cy * self.nx;
            for &j in &self.items[self.start[row + cx0]..self.start[row + cx1 + 1]] {
                let d = linf(x, &self.points[j]);
                if d <= eps {
                    f(j, d);
                }
            }
        }
    }
}

/// Is there a matching of cost at most `eps`? Points farther than `eps` from the diagonal must be
/// matched to the other side; by Mendelsohn-Dulmage a matching covering all of them exists iff one
/// covers those of `a` and one covers those of `b`.
fn feasible(a: &[Interval], b: &[Interval], eps: f64) -> bool {
    // Cheap necessary counts first: the must points of one side need as many partners.
    let must_a = a.iter().filter(|x| to_diagonal(x) > eps).count();
    let must_b = b.iter().filter(|x| to_diagonal(x) > eps).count();
    if must_a > b.len() || must_b > a.len() {
        return false;
    }
    covers_must_points(a, &Grid::new(b, eps), b.len(), eps)
        && covers_must_points(b, &Grid::new(a, eps), a.len(), eps)
}

/// Whether every point of `left` farther than `eps` from the diagonal can be matched to a distinct
/// point of the other side within `eps` (Hopcroft-Karp on the graph found through the grid).
fn covers_must_points(left: &[Interval], right: &Grid<'_>, n_right: usize, eps: f64) -> bool {
    let must: Vec<&Interval> = left.iter().filter(|x| to_diagonal(x) > eps).collect();
    if must.len() > n_right {
        return false;
    }
    // Adjacency in CSR form.
    let mut offsets = Vec::with_capacity(must.len() + 1);
    let mut adj = Vec::new();
    offsets.push(0);
    for x in &must {
        right.for_each_within(x, eps, |j, _| adj.push(j));
        if adj.len() == offsets[offsets.len() - 1] {
            return false; // an isolated must point
        }
        offsets.push(adj.len());
    }
    hopcroft_karp(must.len(), n_right, &offsets, &adj) == must.len()
}

const UNMATCHED: usize = usize::MAX;

/// Maximum bipartite matching size (Hopcroft-Karp), left vertices `0..nl` with neighbours
/// `adj[offsets[u]..offsets[u+1]]` in `0..nr`.
pub(crate) fn hopcroft_karp(nl: usize, nr: usize, offsets: &[usize], adj: &[usize]) -> usize {
    let mut match_l = vec![UNMATCHED; nl];
    let mut match_r = vec![UNMATCHED; nr];
    let mut size = 0;
    // Greedy start.
    for u in 0..nl {
        if let Some(&v) = adj[offsets[u]..offsets[u + 1]]
            .iter()
            .find(|&&v| match_r[v] == UNMATCHED)
        {
            match_l[u] = v;
            match_r[v] = u;
            size += 1;
        }
    }
    let mut dist = vec![0usize; nl];
    let mut queue = Vec::with_capacity(nl);
    let mut next_edge = vec![0usize; nl];
    let mut stack: Vec<usize> = Vec::new();
    loop {
        // BFS layers from free left vertices.
        queue.clear();
        for u in 0..nl {
            if match_l[u] == UNMATCHED {
                dist[u] = 0;
                queue.push(u);
            } else {
                dist[u] = usize::MAX;
            }
        }
        let mut found = false;
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head];
            head += 1;
            for &v in &adj[offsets[u]..offsets[u + 1]] {
                let w = match_r[v];
                if w == UNMATCHED {
                    found = true;
                } else if dist[w] == usize::MAX {
                    dist[w] = dist[u] + 1;
                    queue.push(w);
                }
            }
        }
        if !found {
            return size;
        }
        // Iterative DFS along the layers from each free left vertex.
        next_edge.copy_from_slice(&offsets[..nl]);
        for root in 0..nl {
            if match_l[root] != UNMATCHED {
                continue;
            }
            stack.clear();
            stack.push(root);
            while let Some(&u) = stack.last() {
                if next_edge[u] == offsets[u + 1] {
                    dist[u] = usize::MAX; // dead end
                    stack.pop();
                    continue;
                }
                let v = adj[next_edge[u]];
                next_edge[u] += 1;
                let w = match_r[v];
                if w == UNMATCHED {
                    // Augment along the stack.
                    let mut v_cur = v;
                    while let Some(x) = stack.pop() {
                        let prev = match_l[x];
                        match_l[x] = v_cur;
                        match_r[v_cur] = x;
                        v_cur = prev;
                    }
                    size += 1;
                    break;
                } else if dist[w] != usize::MAX && dist[w] == dist[u] + 1 {
                    stack.push(w);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopcroft_karp_small() {
        // Left 0 -> {0,1}, 1 -> {0}, 2 -> {1}: max matching 2.
        assert_eq!(hopcroft_karp(3, 2, &[0, 2, 3, 4], &[0, 1, 0, 1]), 2);
        // Perfect matching needing an augmenting path: 0 -> {0,1}, 1 -> {0}.
        assert_eq!(hopcroft_karp(2, 2, &[0, 2, 3], &[0, 1, 0]), 2);
        assert_eq!(hopcroft_karp(0, 0, &[0], &[]), 0);
    }

    /// The subsampling search (tiny batches) gives exactly the all-candidates answer.
    #[test]
    fn batched_search_is_exact() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for trial in 0..50 {
            let mut mk = |n: usize| -> Vec<Interval> {
                (0..n)
                    .map(|_| {
                        let b = (next() * 8.0).round() / 8.0;
                        Interval::new(b, b + 0.125 + (next() * 8.0).round() / 8.0)
                    })
                    .collect()
            };
            let (a, b) = (mk(20 + trial), mk(25));
            let full = finite_bottleneck_batched(&a, &b, usize::MAX);
            for batch in [1, 2, 3, 7] {
                let got = finite_bottleneck_batched(&a, &b, batch);
                assert!(
                    got.to_bits() == full.to_bits(),
                    "batch {batch}: {got} vs {full}"
                );
            }
        }
    }

    fn xorshift(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// The textbook method: every candidate value sorted, bisection, adjacency by scanning all
    /// pairs.
    fn naive_bottleneck(a: &[Interval], b: &[Interval]) -> f64 {
        let mut vals: Vec<f64> = a.iter().chain(b).map(to_diagonal).collect();
        for x in a {
            for y in b {
                vals.push(linf(x, y));
            }
        }
        vals.sort_unstable_by(f64::total_cmp);
        vals.dedup();
        let ok = |eps: f64| {
            let side = |l: &[Interval], r: &[Interval]| {
                let must: Vec<&Interval> = l.iter().filter(|x| to_diagonal(x) > eps).collect();
                let mut off = vec![0];
                let mut adj = Vec::new();
                for x in &must {
                    adj.extend((0..r.len()).filter(|&j| linf(x, &r[j]) <= eps));
                    off.push(adj.len());
                }
                hopcroft_karp(must.len(), r.len(), &off, &adj) == must.len()
            };
            side(a, b) && side(b, a)
        };
        let (mut lo, mut hi) = (0, vals.len() - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if ok(vals[mid]) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        vals[lo]
    }

    #[test]
    fn grid_queries_match_a_scan() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for n in [0usize, 1, 2, 17, 300] {
            let pts: Vec<Interval> = (0..n)
                .map(|_| {
                    let b = (next() * 16.0).round() / 16.0;
                    Interval::new(b, b + next())
                })
                .collect();
            for eps in [0.0, 1e-3, 0.0625, 0.2, 0.5, 3.0] {
                let grid = Grid::new(&pts, eps);
                for q in 0..20 {
                    let x = if q < pts.len() {
                        pts[q]
                    } else {
                        Interval::new(next() * 2.0 - 0.5, next() * 2.0)
                    };
                    let mut got = Vec::new();
                    grid.for_each_within(&x, eps, |j, d| got.push((j, d.to_bits())));
                    got.sort_unstable();
                    let want: Vec<(usize, u64)> = (0..pts.len())
                        .filter(|&j| linf(&x, &pts[j]) <= eps)
                        .map(|j| (j, linf(&x, &pts[j]).to_bits()))
                        .collect();
                    assert_eq!(got, want, "n {n} eps {eps}");
                }
            }
        }
    }

    /// The galloping search with grid-pruned matchings gives the textbook answer bit for bit, on
    /// continuous and on tie-heavy (grid-valued) diagrams of unequal sizes.
    #[test]
    fn pruned_search_matches_naive_oracle() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        for trial in 0..40 {
            let ties = trial % 2 == 0;
            let mut mk = |n: usize| -> Vec<Interval> {
                (0..n)
                    .map(|_| {
                        let (b, l) = (next(), 0.5 * next());
                        if ties {
                            let b = (b * 8.0).round() / 8.0;
                            Interval::new(b, b + 0.125 + (l * 8.0).round() / 8.0)
                        } else {
                            Interval::new(b, b + l + 1e-9)
                        }
                    })
                    .collect()
            };
            let (a, b) = (mk(30 + 3 * trial), mk(40 + trial));
            let want = naive_bottleneck(&a, &b);
            let got = finite_bottleneck(&a, &b);
            assert!(
                got.to_bits() == want.to_bits(),
                "trial {trial}: {got} vs {want}"
            );
            let back = finite_bottleneck(&b, &a);
            assert!(back.to_bits() == want.to_bits(), "trial {trial} swapped");
        }
    }
}
