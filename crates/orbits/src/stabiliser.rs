//! The stabiliser of concrete weights, orbit sizes, canonical forms and the bits they save.
//!
//! For hidden units permuted by `S_n`, a permutation fixes the weights `θ` exactly when it only
//! swaps units whose parameters (input row, bias, output column, …) are identical. So the
//! stabiliser is `∏ S_{c}` over the classes of identical units and
//!
//! ```text
//! |orbit(θ)| = |G| / |Stab(θ)|,   bits saved by a canonical form ≤ log2 |orbit(θ)|
//! ```
//!
//! (orbit-stabiliser theorem). With sign flips (`C2 ≀ S_n`), units equal up to sign form a class;
//! a class of all-zero units also absorbs every sign flip.

use std::cmp::Ordering;

use num_bigint::BigUint;
use num_traits::One;

use crate::error::{Error, Result};
use crate::group::factorial;
use crate::network::log2_big;
use crate::perm::Perm;

/// The stabiliser of concrete weights inside a unit-permutation group.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UnitStabiliser {
    /// Classes of interchangeable units (identical, or identical up to sign), each ascending,
    /// ordered by their first unit; singletons included.
    pub classes: Vec<Vec<usize>>,
    /// Exact order of the stabiliser.
    pub order: BigUint,
    /// `log2` of the order.
    pub log2_order: f64,
    /// Number of units that are interchangeable with at least one other.
    pub duplicated_units: usize,
}

fn finish(classes: Vec<Vec<usize>>, zero_class: Option<usize>) -> UnitStabiliser {
    let mut order = BigUint::one();
    for (i, c) in classes.iter().enumerate() {
        order *= factorial(c.len());
        if Some(i) == zero_class {
            order <<= c.len();
        }
    }
    let duplicated_units = classes.iter().filter(|c| c.len() > 1).map(Vec::len).sum();
    let log2_order = log2_big(&order);
    UnitStabiliser {
        classes,
        order,
        log2_order,
        duplicated_units,
    }
}

/// The stabiliser in `S_n` of `n` units, given an exact equality test on units' parameters.
///
/// # Arguments
/// * `n` – number of units.
/// * `same(i, j)` – whether units `i` and `j` have identical parameters (an equivalence relation).
///
/// # Errors
/// [`Error::InvalidParam`] if `n == 0`.
///
/// # Complexity
/// `O(n · classes)` calls of `same`.
pub fn unit_stabiliser(
    n: usize,
    mut same: impl FnMut(usize, usize) -> bool,
) -> Result<UnitStabiliser> {
    check_n(n)?;
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        match classes.iter_mut().find(|c| same(c[0], i)) {
            Some(c) => c.push(i),
            None => classes.push(vec![i]),
        }
    }
    Ok(finish(classes, None))
}

/// The stabiliser in `S_n` from one sortable key per unit (units with equal keys are identical):
/// `O(n log n)`, for many units.
///
/// # Errors
/// [`Error::InvalidParam`] if `keys` is empty.
pub fn unit_stabiliser_by_key<K: Ord>(keys: &[K]) -> Result<UnitStabiliser> {
    check_n(keys.len())?;
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| keys[a].cmp(&keys[b]).then(a.cmp(&b)));
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (k, &i) in idx.iter().enumerate() {
        match classes.last_mut() {
            Some(c) if k > 0 && keys[idx[k - 1]] == keys[i] => c.push(i),
            _ => classes.push(vec![i]),
        }
    }
    classes.sort_by_key(|c| c[0]);
    Ok(finish(classes, None))
}

/// The stabiliser in the signed-permutation group `C2 ≀ S_n` of `n` units of `f64` parameters
/// (`units[i]` = all parameters of unit `i`, in the layout sign flips negate).
///
/// Units equal or opposite form a class; a class of all-zero units contributes `2^c c!`, any other
/// class `c!`.
///
/// # Errors
/// [`Error::InvalidParam`] if there are no units or their lengths differ;
/// [`Error::NonFinite`] on NaN or ±∞.
pub fn signed_unit_stabiliser(units: &[&[f64]]) -> Result<UnitStabiliser> {
    check_units(units)?;
    let key = |u: &[f64]| -> Vec<u64> {
        // Canonical sign: first nonzero entry positive. `+ 0.0` maps -0.0 to +0.0.
        let s = u.iter().find(|x| **x != 0.0).map_or(1.0, |x| x.signum());
        u.iter().map(|x| (s * x + 0.0).to_bits()).collect()
    };
    let keys: Vec<Vec<u64>> = units.iter().map(|u| key(u)).collect();
    let st = unit_stabiliser_by_key(&keys)?;
    let zero = st
        .classes
        .iter()
        .position(|c| units[c[0]].iter().all(|x| *x == 0.0));
    Ok(finish(st.classes, zero))
}

/// The stabiliser in `S_n` of `n` units of `f64` parameters: units whose parameters are exactly
/// equal (`-0.0 == 0.0`) are interchangeable.
///
/// # Errors
/// As [`signed_unit_stabiliser`].
pub fn unit_stabiliser_of_rows(units: &[&[f64]]) -> Result<UnitStabiliser> {
    check_units(units)?;
    let keys: Vec<Vec<u64>> = units
        .iter()
        .map(|u| u.iter().map(|x| (x + 0.0).to_bits()).collect())
        .collect();
    unit_stabiliser_by_key(&keys)
}

fn check_n(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::InvalidParam {
            name: "n",
            value: "0".into(),
            reason: "no units",
        });
    }
    Ok(())
}

fn check_units(units: &[&[f64]]) -> Result<()> {
    check_n(units.len())?;
    let len = units[0].len();
    if let Some(u) = units.iter().find(|u| u.len() != len) {
        return Err(Error::InvalidParam {
            name: "units",
            value: format!("lengths {len} and {}", u.len()),
            reason: "all units need the same number of parameters",
        });
    }
    let mut first = None;
    let mut count = 0;
    for (i, x) in units.iter().flat_map(|u| u.iter()).enumerate() {
        if !x.is_finite() {
            first.get_or_insert(i);
            count += 1;
        }
    }
    if let Some(index) = first {
        return Err(Error::NonFinite { index, count });
    }
    Ok(())
}

/// `log2 |G| - log2 |Stab|`, the `log2` of the orbit size, from exact orders.
///
/// # Errors
/// [`Error::NotDivisible`] if the stabiliser order does not divide the group order (it is not a
/// subgroup of that group).
pub fn log2_orbit_size(group_order: &BigUint, stabiliser_order: &BigUint) -> Result<f64> {
    let q = crate::cycle_index::exact_div(group_order, stabiliser_order)?;
    Ok(log2_big(&q))
}

/// The information-theoretic saving of storing a canonical representative instead of the weights.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct CanonicalSavings {
    /// `log2 |orbit(θ)|`: the most bits a canonical form can save.
    pub bits_saved: f64,
    /// The model's total size in bits, as given.
    pub total_bits: f64,
    /// `bits_saved / total_bits`.
    pub fraction: f64,
}

/// The bound "a canonical form saves at most `log2 |G| − log2 |Stab(θ)|` bits", against the
/// model's total bits.
///
/// # Errors
/// [`Error::InvalidParam`] if `total_bits` is not positive and finite;
/// [`Error::NotDivisible`] as in [`log2_orbit_size`].
pub fn canonical_savings(
    group_order: &BigUint,
    stabiliser_order: &BigUint,
    total_bits: f64,
) -> Result<CanonicalSavings> {
    if !(total_bits > 0.0 && total_bits.is_finite()) {
        return Err(Error::InvalidParam {
            name: "total_bits",
            value: total_bits.to_string(),
            reason: "must be positive and finite",
        });
    }
    let bits_saved = log2_orbit_size(group_order, stabiliser_order)?;
    Ok(CanonicalSavings {
        bits_saved,
        total_bits,
        fraction: bits_saved / total_bits,
    })
}

/// The canonical relabelling of units: sorts them by key (ties by index). Returns the
/// permutation `p` with `p.image(old) = new position`, so that applying it to every incident
/// tensor (rows of the input matrix, entries of the bias, columns of the output matrix) gives a
/// representative that depends only on the orbit when the keys are invariant under relabelling.
///
/// # Errors
/// [`Error::InvalidParam`] if `keys` is empty.
pub fn canonical_permutation<K, F>(keys: &[K], mut cmp: F) -> Result<Perm>
where
    F: FnMut(&K, &K) -> Ordering,
{
    check_n(keys.len())?;
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| cmp(&keys[a], &keys[b]).then(a.cmp(&b)));
    // order[new] = old; invert.
    let mut images = vec![0usize; keys.len()];
    for (new, &old) in order.iter().enumerate() {
        images[old] = new;
    }
    Perm::from_images(images)
}

/// Applies a unit relabelling to the rows of a row-major `rows × cols` matrix: row `i` moves to
/// row `p.image(i)`.
///
/// # Errors
/// [`Error::DegreeMismatch`] if `p.degree() != rows`; [`Error::InvalidParam`] if
/// `data.len() != rows · cols`.
pub fn permute_rows(data: &[f64], rows: usize, cols: usize, p: &Perm) -> Result<Vec<f64>> {
    check_matrix(data, rows, cols)?;
    if p.degree() != rows {
        return Err(Error::DegreeMismatch {
            expected: rows,
            found: p.degree(),
        });
    }
    let mut out = vec![0.0; data.len()];
    for i in 0..rows {
        let j = p.image(i);
        out[j * cols..(j + 1) * cols].copy_from_slice(&data[i * cols..(i + 1) * cols]);
    }
    Ok(out)
}

/// Applies a unit relabelling to the columns of a row-major `rows × cols` matrix: column `i`
/// moves to column `p.image(i)`.
///
/// # Errors
/// [`Error::DegreeMismatch`] if `p.degree() != cols`; [`Error::InvalidParam`] if
/// `data.len() != rows · cols`.
pub fn permute_cols(data: &[f64], rows: usize, cols: usize, p: &Perm) -> Result<Vec<f64>> {
    check_matrix(data, rows, cols)?;
    if p.degree() != cols {
        return Err(Error::DegreeMismatch {
            expected: cols,
            found: p.degree(),
        });
    }
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for i in 0..cols {
            out[r * cols + p.image(i)] = data[r * cols + i];
        }
    }
    Ok(out)
}

/// Gathers the parameters of each MLP hidden unit: unit `j` is row `j` of `w_in` (`d_ff × d_model`,
/// row-major as PyTorch stores `[out, in]`), then `b_in[j]` if given, then column `j` of `w_out`
/// (`d_model × d_ff`). The result feeds [`unit_stabiliser_of_rows`] and
/// [`canonical_unit_permutation`]. For a gated MLP, call it with the gate and append the up rows.
///
/// # Errors
/// [`Error::InvalidParam`] if a length disagrees with `d_model`, `d_ff`.
pub fn mlp_units(
    w_in: &[f64],
    b_in: Option<&[f64]>,
    w_out: &[f64],
    d_model: usize,
    d_ff: usize,
) -> Result<Vec<Vec<f64>>> {
    check_matrix(w_in, d_ff, d_model)?;
    check_matrix(w_out, d_model, d_ff)?;
    if let Some(b) = b_in {
        if b.len() != d_ff {
            return Err(Error::InvalidParam {
                name: "b_in",
                value: b.len().to_string(),
                reason: "bias length must be d_ff",
            });
        }
    }
    Ok((0..d_ff)
        .map(|j| {
            let mut u = w_in[j * d_model..(j + 1) * d_model].to_vec();
            if let Some(b) = b_in {
                u.push(b[j]);
            }
            u.extend((0..d_model).map(|i| w_out[i * d_ff + j]));
            u
        })
        .collect())
}

/// The canonical relabelling of units by their full parameter vectors, compared
/// lexicographically with `f64::total_cmp` (ties, which are exact duplicates, by index). Two
/// relabellings of the same weights give the same canonical weights.
///
/// # Errors
/// As [`signed_unit_stabiliser`] (empty input, unequal lengths, NaN or ±∞).
pub fn canonical_unit_permutation(units: &[&[f64]]) -> Result<Perm> {
    check_units(units)?;
    canonical_permutation(units, |a, b| {
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    })
}

/// Expands a permutation of `k` blocks (heads) to the `k · block` rows they occupy: row
/// `b · block + r` goes to `p.image(b) · block + r`.
///
/// # Errors
/// [`Error::InvalidParam`] if `block == 0` or the result's degree overflows.
pub fn block_permutation(p: &Perm, block: usize) -> Result<Perm> {
    let n = p
        .degree()
        .checked_mul(block)
        .filter(|_| block > 0)
        .ok_or(Error::InvalidParam {
            name: "block",
            value: block.to_string(),
            reason: "block size must be positive and the expanded degree must fit",
        })?;
    Perm::from_images(
        (0..n)
            .map(|x| p.image(x / block) * block + x % block)
            .collect(),
    )
}

fn check_matrix(data: &[f64], rows: usize, cols: usize) -> Result<()> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(Error::InvalidParam {
            name: "data",
            value: format!("{} values for {rows} x {cols}", data.len()),
            reason: "length must be rows · cols",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    #[test]
    fn duplicates_and_dead_units() {
        // Units 0, 2, 5 identical; 1 and 4 identical; 3 alone.
        let rows: Vec<Vec<f64>> = vec![
            vec![1.0, 2.0],
            vec![0.0, -0.0],
            vec![1.0, 2.0],
            vec![3.0, 1.0],
            vec![-0.0, 0.0],
            vec![1.0, 2.0],
        ];
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let st = unit_stabiliser_of_rows(&refs).unwrap();
        assert_eq!(st.classes, vec![vec![0, 2, 5], vec![1, 4], vec![3]]);
        assert_eq!(st.order, BigUint::from(12u32));
        assert_eq!(st.duplicated_units, 5);
        let by_fn = unit_stabiliser(rows.len(), |i, j| rows[i] == rows[j]).unwrap();
        assert_eq!(by_fn, st);
        // Signed: add -[1,2] as unit 6: joins the class of 0; zeros get 2^2 · 2!.
        let mut rows2 = rows.clone();
        rows2.push(vec![-1.0, -2.0]);
        let refs2: Vec<&[f64]> = rows2.iter().map(Vec::as_slice).collect();
        let s2 = signed_unit_stabiliser(&refs2).unwrap();
        assert_eq!(s2.classes, vec![vec![0, 2, 5, 6], vec![1, 4], vec![3]]);
        assert_eq!(s2.order, BigUint::from(24u32 * 8));
        assert!((s2.log2_order - 192f64.log2()).abs() < 1e-12);
        // Brute force over C2 wr S_7 (2^7 · 7! = 645120 elements): count those fixing the rows.
        let n = rows2.len();
        let mut count = 0u64;
        let perms = crate::named::symmetric_group(n)
            .unwrap()
            .elements(10_000)
            .unwrap();
        for p in &perms {
            for mask in 0..(1u32 << n) {
                let ok = (0..n).all(|i| {
                    let s = if mask >> i & 1 == 1 { -1.0 } else { 1.0 };
                    rows2[i]
                        .iter()
                        .zip(&rows2[p.image(i)])
                        .all(|(a, b)| (s * a + 0.0).to_bits() == (b + 0.0).to_bits())
                });
                count += u64::from(ok);
            }
        }
        assert_eq!(BigUint::from(count), s2.order);
    }

    #[test]
    fn orbit_size_and_savings() {
        let g = factorial(6);
        let st = BigUint::from(12u32);
        let l = log2_orbit_size(&g, &st).unwrap();
        assert!((l - 60f64.log2()).abs() < 1e-12);
        let s = canonical_savings(&g, &st, 1000.0).unwrap();
        assert!((s.fraction - 60f64.log2() / 1000.0).abs() < 1e-15);
        assert!(matches!(
            log2_orbit_size(&g, &BigUint::from(7u32)),
            Err(Error::NotDivisible { .. })
        ));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                canonical_savings(&g, &st, bad),
                Err(Error::InvalidParam {
                    name: "total_bits",
                    ..
                })
            ));
        }
    }

    #[test]
    fn canonical_form_is_constant_on_orbits_and_keeps_the_function() {
        let mut rng = claimlab_testkit::rng(8);
        let (d, h) = (4, 9);
        let w1: Vec<f64> = (0..h * d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let w2: Vec<f64> = (0..d * h).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mlp = |w1: &[f64], w2: &[f64], x: &[f64]| -> Vec<f64> {
            let z: Vec<f64> = (0..h)
                .map(|j| (0..d).map(|i| w1[j * d + i] * x[i]).sum::<f64>().max(0.0))
                .collect();
            (0..d)
                .map(|i| (0..h).map(|j| w2[i * h + j] * z[j]).sum())
                .collect()
        };
        let canon = |w1: &[f64], w2: &[f64]| {
            let keys: Vec<&[f64]> = (0..h).map(|j| &w1[j * d..(j + 1) * d]).collect();
            let p = canonical_permutation(&keys, |a, b| {
                a.iter()
                    .zip(b.iter())
                    .map(|(x, y)| x.total_cmp(y))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
            .unwrap();
            (
                permute_rows(w1, h, d, &p).unwrap(),
                permute_cols(w2, d, h, &p).unwrap(),
            )
        };
        let (c1, c2) = canon(&w1, &w2);
        let x: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y0 = mlp(&w1, &w2, &x);
        let y1 = mlp(&c1, &c2, &x);
        claimlab_testkit::assert_slice_close(&y0, &y1, 1e-14, 1e-14);
        // Canonical rows are sorted.
        for j in 1..h {
            assert!(c1[(j - 1) * d].total_cmp(&c1[j * d]).is_le());
        }
        // A random relabelling of the same network has the same canonical form.
        let sym = crate::named::symmetric_group(h).unwrap();
        let q = sym.uniform_element(&mut rng);
        let (p1, p2) = (
            permute_rows(&w1, h, d, &q).unwrap(),
            permute_cols(&w2, d, h, &q).unwrap(),
        );
        assert_eq!(canon(&p1, &p2), (c1, c2));
    }

    #[test]
    fn mlp_units_canonical_and_blocks() {
        // d_model 2, d_ff 3; w_in 3x2, w_out 2x3.
        let w_in = [1.0, 2.0, 3.0, 4.0, 1.0, 2.0];
        let b = [0.5, 0.0, 0.5];
        let w_out = [7.0, 8.0, 7.0, 9.0, 6.0, 9.0];
        let units = mlp_units(&w_in, Some(&b), &w_out, 2, 3).unwrap();
        assert_eq!(units[1], vec![3.0, 4.0, 0.0, 8.0, 6.0]);
        let refs: Vec<&[f64]> = units.iter().map(Vec::as_slice).collect();
        let st = unit_stabiliser_of_rows(&refs).unwrap();
        assert_eq!(st.classes, vec![vec![0, 2], vec![1]]);
        let p = canonical_unit_permutation(&refs).unwrap();
        assert_eq!(p.image(1), 2);
        let bp = block_permutation(&p, 2).unwrap();
        assert_eq!(bp.images(), &[0, 1, 4, 5, 2, 3]);
        assert!(matches!(
            block_permutation(&p, 0),
            Err(Error::InvalidParam { name: "block", .. })
        ));
        assert!(matches!(
            mlp_units(&w_in, Some(&b[..2]), &w_out, 2, 3),
            Err(Error::InvalidParam { name: "b_in", .. })
        ));
        assert!(matches!(
            mlp_units(&w_in[..5], None, &w_out, 2, 3),
            Err(Error::InvalidParam { name: "data", .. })
        ));
        let nan = [f64::NAN];
        assert_eq!(
            canonical_unit_permutation(&[&nan]),
            Err(Error::NonFinite { index: 0, count: 1 })
        );
    }

    #[test]
    fn error_paths() {
        assert!(matches!(
            unit_stabiliser(0, |_, _| true),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        assert!(matches!(
            unit_stabiliser_by_key::<u8>(&[]),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        assert!(matches!(
            unit_stabiliser_of_rows(&[]),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        let a = [1.0, 2.0];
        let b = [1.0];
        assert!(matches!(
            unit_stabiliser_of_rows(&[&a, &b]),
            Err(Error::InvalidParam { name: "units", .. })
        ));
        let c = [f64::NAN, 1.0];
        let e = [f64::INFINITY, 1.0];
        assert_eq!(
            signed_unit_stabiliser(&[&a, &c, &e]),
            Err(Error::NonFinite { index: 2, count: 2 })
        );
        assert!(matches!(
            canonical_permutation::<u8, _>(&[], |a, b| a.cmp(b)),
            Err(Error::InvalidParam { .. })
        ));
        let p = Perm::identity(3);
        assert!(matches!(
            permute_rows(&[0.0; 5], 3, 2, &p),
            Err(Error::InvalidParam { name: "data", .. })
        ));
        assert_eq!(
            permute_rows(&[0.0; 8], 4, 2, &p),
            Err(Error::DegreeMismatch {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            permute_cols(&[0.0; 8], 2, 4, &p),
            Err(Error::DegreeMismatch {
                expected: 4,
                found: 3
            })
        );
        assert!(matches!(
            permute_cols(&[0.0; 7], 2, 4, &p),
            Err(Error::InvalidParam { name: "data", .. })
        ));
    }
}
