//! The oracle: an explicit Vietoris-Rips filtration reduced by the textbook column algorithm.

use std::collections::HashMap;

use crate::diagram::{Barcodes, Diagram, DimStats, Interval};
use crate::error::Result;
use crate::input::{DistanceMatrix, VrConfig};

/// Vietoris-Rips barcodes by brute force: every simplex up to dimension `max_dim + 1` is listed,
/// sorted, and the full boundary matrix is reduced column by column over Z/p.
///
/// This is the reference the fast path ([`crate::vr_barcodes_from_distances`]) is tested against.
/// Same conventions and output (zero-length intervals dropped); use it only on small inputs.
///
/// # Arguments
/// - `n`: number of points.
/// - `lower`: the strict lower triangle of the distance matrix, row by row (`n(n-1)/2` values).
/// - `config`: as for [`crate::vr_barcodes`].
///
/// # Errors
/// As [`crate::vr_barcodes_from_distances`].
///
/// # Complexity
/// `O(S³)` time and `O(S²)` memory in the worst case for `S = Σ_{k ≤ max_dim+2} C(n, k)` simplices.
///
/// # References
/// H. Edelsbrunner, J. Harer, *Computational Topology* (AMS, 2010), §VII.1, the standard reduction.
pub fn vr_barcodes_brute_force(n: usize, lower: &[f64], config: &VrConfig) -> Result<Barcodes> {
    config.validate()?;
    let dist = DistanceMatrix::from_lower(n, lower)?;
    let threshold = config.threshold.unwrap_or_else(|| dist.enclosing_radius());
    let p = u64::from(config.modulus);
    let top = config.max_dim + 1;

    // All simplices (ascending vertex lists) of dimension <= top with diameter <= threshold.
    let mut simplices: Vec<(f64, Vec<usize>)> = (0..n).map(|v| (0.0, vec![v])).collect();
    let mut layer: Vec<(f64, Vec<usize>)> = simplices.clone();
    for _ in 0..top {
        let mut next = Vec::new();
        for (d, s) in &layer {
            let last = s[s.len() - 1];
            for v in last + 1..n {
                let dv = s.iter().map(|&u| dist.get(u, v)).fold(*d, f64::max);
                if dv <= threshold {
                    let mut t = s.clone();
                    t.push(v);
                    next.push((dv, t));
                }
            }
        }
        simplices.extend(next.iter().cloned());
        layer = next;
    }
    simplices.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then_with(|| a.1.cmp(&b.1))
    });
    let position: HashMap<&[usize], usize> = simplices
        .iter()
        .enumerate()
        .map(|(i, (_, s))| (s.as_slice(), i))
        .collect();

    // Boundary columns, sorted by row.
    let mut cols: Vec<Vec<(usize, u64)>> = simplices
        .iter()
        .map(|(_, s)| {
            if s.len() == 1 {
                return Vec::new();
            }
            let mut col: Vec<(usize, u64)> = (0..s.len())
                .map(|j| {
                    let mut f = s.clone();
                    f.remove(j);
                    let sign = if j % 2 == 0 { 1 } else { p - 1 };
                    (position[f.as_slice()], sign)
                })
                .collect();
            col.sort_unstable();
            col
        })
        .collect();

    let mut low_owner: HashMap<usize, usize> = HashMap::new();
    for j in 0..cols.len() {
        while let Some(&(low, c)) = cols[j].last() {
            let Some(&k) = low_owner.get(&low) else {
                low_owner.insert(low, j);
                break;
            };
            let ck = cols[k][cols[k].len() - 1].1; // owner columns are non-zero
            let factor = (p - c * inverse(ck, p) % p) % p;
            let other = cols[k].clone();
            cols[j] = add_scaled(&cols[j], &other, factor, p);
        }
    }

    let mut diagrams = vec![Diagram::new(); config.max_dim + 1];
    let mut is_low = vec![false; simplices.len()];
    for (&low, &j) in &low_owner {
        is_low[low] = true;
        let dim = simplices[low].1.len() - 1;
        let (birth, death) = (simplices[low].0, simplices[j].0);
        if dim <= config.max_dim && death > birth {
            diagrams[dim].intervals.push(Interval::new(birth, death));
        }
    }
    for (i, (d, s)) in simplices.iter().enumerate() {
        let dim = s.len() - 1;
        if dim <= config.max_dim && cols[i].is_empty() && !is_low[i] {
            diagrams[dim]
                .intervals
                .push(Interval::new(*d, f64::INFINITY));
        }
    }
    diagrams.iter_mut().for_each(Diagram::sort);
    Ok(Barcodes {
        diagrams,
        threshold,
        n_points: n,
        stats: vec![DimStats::default(); config.max_dim + 1],
        cocycles: Vec::new(),
    })
}

/// `a + factor * b` over Z/p for sparse columns sorted by row.
fn add_scaled(a: &[(usize, u64)], b: &[(usize, u64)], factor: u64, p: u64) -> Vec<(usize, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let take_a = j == b.len() || (i < a.len() && a[i].0 < b[j].0);
        let take_b = i == a.len() || (j < b.len() && b[j].0 < a[i].0);
        if take_a {
            out.push(a[i]);
            i += 1;
        } else if take_b {
            out.push((b[j].0, factor * b[j].1 % p));
            j += 1;
        } else {
            let c = (a[i].1 + factor * b[j].1) % p;
            if c != 0 {
                out.push((a[i].0, c));
            }
            i += 1;
            j += 1;
        }
    }
    out.retain(|&(_, c)| c != 0);
    out
}

/// Multiplicative inverse modulo a prime `p` (Fermat).
pub(crate) fn inverse(a: u64, p: u64) -> u64 {
    let (mut base, mut e, mut r) = (a % p, p - 2, 1u64);
    while e > 0 {
        if e & 1 == 1 {
            r = r * base % p;
        }
        base = base * base % p;
        e >>= 1;
    }
    r
}
