//! Pólya's cycle index and the number of orbits of colourings.
//!
//! The cycle index of a permutation group `G` of degree `n` is
//!
//! ```text
//! Z(G) = (1/|G|) · Σ_{g ∈ G} a_1^{j_1(g)} a_2^{j_2(g)} … a_n^{j_n(g)}
//! ```
//!
//! where `j_k(g)` is the number of `k`-cycles of `g`. It is stored exactly: for each cycle type
//! the integer number of elements with that type, and the group order beside them. The number of
//! orbits of colourings of the `n` points with `k` colours is `Z(G)` at `a_i = k` for all `i`
//! (Pólya 1937; de Bruijn, "Pólya's theory of counting", 1964, eq. 5.10).

use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

use crate::error::{Error, Result};
use crate::group::{factorial, PermGroup};
use crate::perm::Perm;

/// A monomial `∏ a_k^{j_k}` as `(k, j_k)` pairs, ascending in `k`, all `j_k > 0`.
pub type Monomial = Vec<(usize, usize)>;

/// Most terms a cycle index may hold before an operation gives [`Error::TooLarge`].
pub const MAX_TERMS: usize = 2_000_000;

/// The cycle index of a permutation group, with exact integer coefficients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleIndex {
    degree: usize,
    order: BigUint,
    /// Cycle type -> number of group elements with that type.
    terms: BTreeMap<Monomial, BigUint>,
}

fn mono_mul(a: &Monomial, b: &Monomial) -> Monomial {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j == b.len() || (i < a.len() && a[i].0 < b[j].0) {
            out.push(a[i]);
            i += 1;
        } else if i == a.len() || b[j].0 < a[i].0 {
            out.push(b[j]);
            j += 1;
        } else {
            out.push((a[i].0, a[i].1 + b[j].1));
            i += 1;
            j += 1;
        }
    }
    out
}

type Poly = BTreeMap<Monomial, BigUint>;

fn poly_mul(a: &Poly, b: &Poly) -> Result<Poly> {
    let mut out = Poly::new();
    for (ma, ca) in a {
        for (mb, cb) in b {
            *out.entry(mono_mul(ma, mb)).or_insert_with(BigUint::zero) += ca * cb;
        }
        if out.len() > MAX_TERMS {
            return Err(too_many(out.len()));
        }
    }
    Ok(out)
}

fn too_many(n: usize) -> Error {
    Error::TooLarge {
        what: "cycle index terms",
        size: n.to_string(),
        limit: MAX_TERMS.to_string(),
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn euler_phi(n: usize) -> usize {
    (1..=n).filter(|&k| gcd(k, n) == 1).count()
}

/// Calls `f` with the multiplicities `(k, j_k)` of every partition of `n`.
fn for_each_partition(n: usize, f: &mut dyn FnMut(&Monomial)) {
    fn rec(rem: usize, max_part: usize, cur: &mut Monomial, f: &mut dyn FnMut(&Monomial)) {
        if rem == 0 {
            let mut m = cur.clone();
            m.reverse();
            f(&m);
            return;
        }
        for k in (1..=max_part.min(rem)).rev() {
            for j in (1..=rem / k).rev() {
                cur.push((k, j));
                rec(rem - k * j, k - 1, cur, f);
                cur.pop();
            }
        }
    }
    rec(n, n, &mut Vec::new(), f);
}

/// Number of partitions of `n`, saturating at `u64::MAX`.
fn partition_count(n: usize) -> u64 {
    let mut p = vec![0u64; n + 1];
    p[0] = 1;
    for k in 1..=n {
        for m in k..=n {
            p[m] = p[m].saturating_add(p[m - k]);
        }
    }
    p[n]
}

impl CycleIndex {
    /// The degree `n` (number of points, number of variables).
    #[must_use]
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The group order `|G|`, the common denominator.
    #[must_use]
    pub fn order(&self) -> &BigUint {
        &self.order
    }

    /// The terms: cycle type (as `(k, j_k)` pairs) and the number of elements of that type.
    #[must_use]
    pub fn terms(&self) -> &BTreeMap<Monomial, BigUint> {
        &self.terms
    }

    /// The cycle index of the symmetric group `S_n`: one term per partition of `n`, with
    /// `n! / ∏_k (k^{j_k} j_k!)` elements (Cauchy's formula).
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `n == 0`; [`Error::TooLarge`] if `n` has more than
    /// [`MAX_TERMS`] partitions (n > 61).
    ///
    /// # Complexity
    /// `O(p(n) · n)` big-integer operations, `p(n)` the number of partitions.
    pub fn symmetric(n: usize) -> Result<Self> {
        Self::check_n(n)?;
        let pc = partition_count(n);
        if pc > MAX_TERMS as u64 {
            return Err(too_many(pc as usize));
        }
        let nf = factorial(n);
        let mut terms = Poly::new();
        for_each_partition(n, &mut |m| {
            let mut denom = BigUint::one();
            for &(k, j) in m {
                denom *= BigUint::from(k).pow(j as u32) * factorial(j);
            }
            terms.insert(m.clone(), &nf / denom);
        });
        Ok(Self {
            degree: n,
            order: nf,
            terms,
        })
    }

    /// The cycle index of the alternating group `A_n` (the even cycle types of `S_n`, doubled;
    /// equal to `Z(S_n)` for `n < 2`).
    ///
    /// # Errors
    /// As [`CycleIndex::symmetric`].
    pub fn alternating(n: usize) -> Result<Self> {
        let s = Self::symmetric(n)?;
        if n < 2 {
            return Ok(s);
        }
        let terms = s
            .terms
            .into_iter()
            .filter(|(m, _)| {
                m.iter()
                    .filter(|(k, _)| k % 2 == 0)
                    .map(|(_, j)| j)
                    .sum::<usize>()
                    % 2
                    == 0
            })
            .collect();
        Ok(Self {
            degree: n,
            order: s.order / BigUint::from(2u32),
            terms,
        })
    }

    /// The cycle index of the cyclic group `C_n` of rotations: `(1/n) Σ_{d | n} φ(d) a_d^{n/d}`.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `n == 0`.
    pub fn cyclic(n: usize) -> Result<Self> {
        Self::check_n(n)?;
        let mut terms = Poly::new();
        for d in (1..=n).filter(|d| n.is_multiple_of(*d)) {
            terms.insert(vec![(d, n / d)], BigUint::from(euler_phi(d)));
        }
        Ok(Self {
            degree: n,
            order: BigUint::from(n),
            terms,
        })
    }

    /// The cycle index of the dihedral group `D_n` of order `2n` on the vertices of an n-gon:
    /// `Z(C_n)/2` plus, for odd `n`, `(1/2) a_1 a_2^{(n-1)/2}`, and for even `n`,
    /// `(1/4)(a_2^{n/2} + a_1^2 a_2^{(n-2)/2})`. For `n = 1, 2` this is the (unfaithful) action
    /// of a group of order `2n`, which still counts orbits correctly.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if `n == 0`.
    pub fn dihedral(n: usize) -> Result<Self> {
        let c = Self::cyclic(n)?;
        let mut terms = c.terms;
        let mut add = |m: Monomial, c: usize| {
            let m: Monomial = m.into_iter().filter(|&(_, j)| j > 0).collect();
            *terms.entry(m).or_insert_with(BigUint::zero) += BigUint::from(c);
        };
        if n % 2 == 1 {
            add(vec![(1, 1), (2, (n - 1) / 2)], n);
        } else {
            add(vec![(2, n / 2)], n / 2);
            add(vec![(1, 2), (2, (n - 2) / 2)], n / 2);
        }
        Ok(Self {
            degree: n,
            order: BigUint::from(2 * n),
            terms,
        })
    }

    /// The cycle index of a group given by all of its elements (each listed once).
    ///
    /// # Errors
    /// [`Error::InvalidParam`] if the list is empty; [`Error::DegreeMismatch`] if degrees differ.
    pub fn from_elements(elements: &[Perm]) -> Result<Self> {
        let Some(first) = elements.first() else {
            return Err(Error::InvalidParam {
                name: "elements",
                value: "[]".into(),
                reason: "a group has at least the identity",
            });
        };
        let n = first.degree();
        let mut terms = Poly::new();
        for g in elements {
            if g.degree() != n {
                return Err(Error::DegreeMismatch {
                    expected: n,
                    found: g.degree(),
                });
            }
            *terms.entry(monomial_of(g)).or_insert_with(BigUint::zero) += 1u32;
        }
        Ok(Self {
            degree: n,
            order: BigUint::from(elements.len()),
            terms,
        })
    }

    /// The cycle index of a permutation group, by enumerating its elements.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the order exceeds `limit`.
    pub fn from_group(group: &PermGroup, limit: u64) -> Result<Self> {
        Self::from_elements(&group.elements(limit)?)
    }

    /// The direct product `G × H` acting on the disjoint union of the two point sets:
    /// `Z(G × H) = Z(G) · Z(H)`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the product has more than [`MAX_TERMS`] terms.
    pub fn direct_product(&self, other: &Self) -> Result<Self> {
        Ok(Self {
            degree: self.degree + other.degree,
            order: &self.order * &other.order,
            terms: poly_mul(&self.terms, &other.terms)?,
        })
    }

    /// The wreath product `G ≀ H` (`self` = `G` on `X`, `other` = `H` on `Y`) in its imprimitive
    /// action on `X × Y`: `|Y|` copies of `X`, each moved by its own copy of `G`, the copies
    /// permuted by `H` (GAP's `WreathProduct(G, H)`). Pólya's substitution
    /// `Z(G ≀ H) = Z(H)[a_k := Z(G)(a_k, a_2k, a_3k, …)]`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if an intermediate polynomial has more than [`MAX_TERMS`] terms.
    pub fn wreath_product(&self, other: &Self) -> Result<Self> {
        // P_k = Σ_s c_s ∏_i a_{ik}^{e_i}, integer coefficients; cache by k.
        let mut cache: BTreeMap<usize, Poly> = BTreeMap::new();
        let mut total = Poly::new();
        for (mh, ch) in &other.terms {
            // Each cycle of h contributes Z(G)'s 1/|G|; the common denominator |G|^|Y| |H| needs
            // the missing |G|^(|Y| - cycles(h)) in the numerator.
            let cycles: usize = mh.iter().map(|&(_, j)| j).sum();
            let scale = self.order.pow((other.degree - cycles) as u32);
            let mut acc: Poly = Poly::from([(Vec::new(), ch * scale)]);
            for &(k, j) in mh {
                let pk = cache.entry(k).or_insert_with(|| {
                    self.terms
                        .iter()
                        .map(|(m, c)| (m.iter().map(|&(i, e)| (i * k, e)).collect(), c.clone()))
                        .collect()
                });
                for _ in 0..j {
                    acc = poly_mul(&acc, pk)?;
                }
            }
            for (m, c) in acc {
                *total.entry(m).or_insert_with(BigUint::zero) += c;
            }
            if total.len() > MAX_TERMS {
                return Err(too_many(total.len()));
            }
        }
        Ok(Self {
            degree: self.degree * other.degree,
            order: self.order.pow(other.degree as u32) * &other.order,
            terms: total,
        })
    }

    /// The number of orbits of colourings of the points with `k` colours:
    /// `(1/|G|) Σ_types count · k^{number of cycles}`.
    ///
    /// # Errors
    /// [`Error::NotDivisible`] if the sum is not a multiple of the order (only possible for a
    /// cycle index that is not that of a group, e.g. built from a list that is not a group).
    ///
    /// # Example
    /// ```
    /// use claimlab_orbits::CycleIndex;
    /// // Binary necklaces of length 6 (OEIS A000031): 14.
    /// assert_eq!(CycleIndex::cyclic(6)?.colourings(2)?, 14u32.into());
    /// # Ok::<(), claimlab_orbits::Error>(())
    /// ```
    pub fn colourings(&self, k: u64) -> Result<num_bigint::BigUint> {
        let kb = BigUint::from(k);
        let mut sum = BigUint::zero();
        for (m, c) in &self.terms {
            let cycles: usize = m.iter().map(|&(_, j)| j).sum();
            sum += c * kb.pow(cycles as u32);
        }
        exact_div(&sum, &self.order)
    }

    /// [`CycleIndex::colourings`] as a `u128`.
    ///
    /// # Errors
    /// As [`CycleIndex::colourings`], and [`Error::Overflow`] if the count exceeds `u128::MAX`.
    pub fn colourings_u128(&self, k: u64) -> Result<u128> {
        self.colourings(k)?.to_u128().ok_or(Error::Overflow {
            context: "number of colourings",
            bits: 128,
        })
    }

    fn check_n(n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidParam {
                name: "n",
                value: "0".into(),
                reason: "degree must be positive",
            });
        }
        Ok(())
    }
}

/// `sum / order` when exact, else [`Error::NotDivisible`].
pub(crate) fn exact_div(sum: &BigUint, order: &BigUint) -> Result<BigUint> {
    let q = sum / order;
    if &(&q * order) != sum {
        return Err(Error::NotDivisible {
            sum: sum.to_string(),
            order: order.to_string(),
        });
    }
    Ok(q)
}

/// The cycle type of `g` as a monomial.
fn monomial_of(g: &Perm) -> Monomial {
    g.cycle_type()
        .into_iter()
        .enumerate()
        .filter(|&(_, j)| j > 0)
        .collect()
}

/// `(1/6)(a1^3 + 3 a1 a2 + 2 a3)`-style rendering, terms by ascending cycle type.
impl fmt::Display for CycleIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(1/{})(", self.order)?;
        for (t, (m, c)) in self.terms.iter().enumerate() {
            if t > 0 {
                f.write_str(" + ")?;
            }
            if !c.is_one() {
                write!(f, "{c} ")?;
            }
            for (v, &(k, j)) in m.iter().enumerate() {
                if v > 0 {
                    f.write_str(" ")?;
                }
                if j == 1 {
                    write!(f, "a{k}")?;
                } else {
                    write!(f, "a{k}^{j}")?;
                }
            }
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::burnside::{brute_force_colouring_orbits, burnside_count, burnside_count_classes};
    use crate::expr::GroupExpr;
    use crate::named::*;
    use claimlab_testkit::rand::RngExt;

    fn cube_rotations() -> PermGroup {
        // Faces U=1, D=2, F=3, B=4, L=5, R=6; quarter turns about the vertical and front axes.
        let a = Perm::parse_cycles("(3,6,4,5)", 6).unwrap();
        let b = Perm::parse_cycles("(1,6,2,5)", 6).unwrap();
        PermGroup::new(6, vec![a, b]).unwrap()
    }

    #[test]
    fn necklaces_and_bracelets_match_oeis() {
        // OEIS A000031 (binary necklaces), A000029 (binary bracelets), A001867 (ternary necklaces),
        // n = 1, 2, ...
        let a000031 = [2u32, 3, 4, 6, 8, 14, 20, 36, 60, 108, 188, 352];
        let a000029 = [2u32, 3, 4, 6, 8, 13, 18, 30, 46, 78, 126, 224];
        let a001867 = [3u32, 6, 11, 24, 51, 130, 315, 834];
        for (i, &v) in a000031.iter().enumerate() {
            assert_eq!(
                CycleIndex::cyclic(i + 1).unwrap().colourings(2).unwrap(),
                v.into()
            );
        }
        for (i, &v) in a000029.iter().enumerate() {
            assert_eq!(
                CycleIndex::dihedral(i + 1).unwrap().colourings(2).unwrap(),
                v.into()
            );
        }
        for (i, &v) in a001867.iter().enumerate() {
            assert_eq!(
                CycleIndex::cyclic(i + 1).unwrap().colourings(3).unwrap(),
                v.into()
            );
        }
        // And by brute force over the actual group elements.
        for n in 3..=8 {
            let c = cyclic_group(n).unwrap().elements(100).unwrap();
            let d = dihedral_group(n).unwrap().elements(100).unwrap();
            assert_eq!(
                u64::from(a000031[n - 1]),
                brute_force_colouring_orbits(&c, 2).unwrap()
            );
            assert_eq!(
                u64::from(a000029[n - 1]),
                brute_force_colouring_orbits(&d, 2).unwrap()
            );
        }
    }

    #[test]
    fn cube_faces_three_colours_is_57() {
        let g = cube_rotations();
        assert_eq!(g.order(), &BigUint::from(24u32));
        let elems = g.elements(100).unwrap();
        let z = CycleIndex::from_group(&g, 100).unwrap();
        assert_eq!(z.colourings(3).unwrap(), 57u32.into());
        assert_eq!(z.colourings(2).unwrap(), 10u32.into());
        assert_eq!(brute_force_colouring_orbits(&elems, 3).unwrap(), 57);
        let by_burnside = burnside_count(&elems, |g| {
            BigUint::from(3u32).pow(g.cycles_with_fixed_points() as u32)
        })
        .unwrap();
        assert_eq!(by_burnside, 57u32.into());
        // Conjugacy classes of the rotation group: identity, 6 quarter turns, 3 face half turns,
        // 8 vertex turns, 6 edge half turns, with 6, 3, 4, 2, 3 face cycles.
        let k = BigUint::from(3u32);
        let classes: Vec<(BigUint, BigUint)> = [(1u32, 6u32), (6, 3), (3, 4), (8, 2), (6, 3)]
            .iter()
            .map(|&(s, c)| (BigUint::from(s), k.pow(c)))
            .collect();
        assert_eq!(burnside_count_classes(&classes).unwrap(), 57u32.into());
    }

    #[test]
    fn closed_forms_equal_enumerated_cycle_indices() {
        for n in 1..=7 {
            let z = CycleIndex::from_group(&symmetric_group(n).unwrap(), 10_000).unwrap();
            assert_eq!(CycleIndex::symmetric(n).unwrap(), z, "S_{n}");
            let z = CycleIndex::from_group(&alternating_group(n).unwrap(), 10_000).unwrap();
            assert_eq!(CycleIndex::alternating(n).unwrap(), z, "A_{n}");
            let z = CycleIndex::from_group(&cyclic_group(n).unwrap(), 10_000).unwrap();
            assert_eq!(CycleIndex::cyclic(n).unwrap(), z, "C_{n}");
            if n >= 3 {
                let z = CycleIndex::from_group(&dihedral_group(n).unwrap(), 10_000).unwrap();
                assert_eq!(CycleIndex::dihedral(n).unwrap(), z, "D_{n}");
            }
        }
        for text in [
            "S2 wr S3",
            "S3 wr S2",
            "C3 x D4",
            "(S2 x C3) wr C2",
            "A4 wr S2",
            "C2 wr C2 wr C2",
        ] {
            let e = GroupExpr::parse(text).unwrap();
            let g = e.perm_group().unwrap();
            let z = e.cycle_index().unwrap();
            assert_eq!(z.order(), g.order(), "{text}");
            assert_eq!(z.degree(), g.degree(), "{text}");
            assert_eq!(CycleIndex::from_group(&g, 100_000).unwrap(), z, "{text}");
        }
        // S2 wr S3 is the hyperoctahedral group of order 2^3 · 3! = 48.
        assert_eq!(
            GroupExpr::parse("S2 wr S3")
                .unwrap()
                .cycle_index()
                .unwrap()
                .order(),
            &BigUint::from(48u32)
        );
    }

    #[test]
    fn symmetric_colourings_are_multisets() {
        // Orbits of k-colourings under S_n are multisets: C(n + k - 1, k - 1).
        let binom = |a: u64, b: u64| (0..b).fold(BigUint::one(), |acc, i| acc * (a - i) / (i + 1));
        for n in [1usize, 5, 12, 30] {
            let z = CycleIndex::symmetric(n).unwrap();
            for k in 1..5u64 {
                assert_eq!(
                    z.colourings(k).unwrap(),
                    binom(n as u64 + k - 1, k - 1),
                    "n={n} k={k}"
                );
            }
        }
    }

    #[test]
    fn random_small_groups_against_brute_force() {
        let mut rng = claimlab_testkit::rng(21);
        for _ in 0..25 {
            let n = rng.random_range(2..=6usize);
            let gens: Vec<Perm> = (0..2)
                .map(|_| {
                    let mut im: Vec<usize> = (0..n).collect();
                    for i in (1..n).rev() {
                        if rng.random_bool(0.5) {
                            im.swap(i, rng.random_range(0..=i));
                        }
                    }
                    Perm::from_images(im).unwrap()
                })
                .collect();
            let g = PermGroup::new(n, gens).unwrap();
            let elems = g.elements(1000).unwrap();
            let z = CycleIndex::from_elements(&elems).unwrap();
            for k in 1..=3u32 {
                let brute = brute_force_colouring_orbits(&elems, k).unwrap();
                assert_eq!(z.colourings(u64::from(k)).unwrap(), BigUint::from(brute));
            }
        }
    }

    #[test]
    fn display_and_error_paths() {
        assert_eq!(
            CycleIndex::symmetric(3).unwrap().to_string(),
            "(1/6)(3 a1 a2 + a1^3 + 2 a3)"
        );
        assert!(matches!(
            CycleIndex::symmetric(0),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        assert!(matches!(
            CycleIndex::cyclic(0),
            Err(Error::InvalidParam { name: "n", .. })
        ));
        assert!(matches!(
            CycleIndex::symmetric(100),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            CycleIndex::from_elements(&[]),
            Err(Error::InvalidParam {
                name: "elements",
                ..
            })
        ));
        assert_eq!(
            CycleIndex::from_elements(&[Perm::identity(2), Perm::identity(3)]),
            Err(Error::DegreeMismatch {
                expected: 2,
                found: 3
            })
        );
        // 2^200 / 200 binary necklaces do not fit in u128; the big-integer count is fine.
        let c = CycleIndex::cyclic(200).unwrap();
        assert_eq!(
            c.colourings_u128(2),
            Err(Error::Overflow {
                context: "number of colourings",
                bits: 128
            })
        );
        assert!(c.colourings(2).unwrap().bits() > 128);
        assert_eq!(
            CycleIndex::cyclic(20).unwrap().colourings_u128(2).unwrap(),
            52488
        );
        // A list of elements that is not a group gives a non-integer average.
        let not_group = [
            Perm::identity(3),
            Perm::parse_cycles("(1,2,3)", 3).unwrap(),
            Perm::parse_cycles("(1,2)", 3).unwrap(),
        ];
        assert!(matches!(
            CycleIndex::from_elements(&not_group).unwrap().colourings(2),
            Err(Error::NotDivisible { .. })
        ));
        assert!(matches!(
            burnside_count(&not_group, |g| BigUint::from(2u32)
                .pow(g.cycles_with_fixed_points() as u32)),
            Err(Error::NotDivisible { .. })
        ));
        assert!(matches!(
            burnside_count(Vec::<Perm>::new(), |_| BigUint::one()),
            Err(Error::InvalidParam {
                name: "elements",
                ..
            })
        ));
        assert!(matches!(
            burnside_count_classes(&[]),
            Err(Error::InvalidParam {
                name: "classes",
                ..
            })
        ));
        assert!(matches!(
            burnside_count_classes(&[(BigUint::zero(), BigUint::one())]),
            Err(Error::InvalidParam {
                name: "classes",
                ..
            })
        ));
        let s8 = symmetric_group(8).unwrap().elements(100_000).unwrap();
        assert!(matches!(
            brute_force_colouring_orbits(&s8, 20),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            brute_force_colouring_orbits(&[], 2),
            Err(Error::InvalidParam {
                name: "elements",
                ..
            })
        ));
        assert!(matches!(
            brute_force_colouring_orbits(&s8[..2], 0),
            Err(Error::InvalidParam { name: "k", .. })
        ));
        assert_eq!(
            brute_force_colouring_orbits(&[Perm::identity(2), Perm::identity(3)], 2),
            Err(Error::DegreeMismatch {
                expected: 2,
                found: 3
            })
        );
        for bad in ["", "S", "Q4", "S4 x", "(S4", "S4 S3", "S4 wr"] {
            assert!(
                matches!(GroupExpr::parse(bad), Err(Error::Parse { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            GroupExpr::parse("D2"),
            Err(Error::InvalidParam { .. })
        ));
        assert!(matches!(
            GroupExpr::parse("S0"),
            Err(Error::InvalidParam { .. })
        ));
        assert_eq!(
            GroupExpr::parse("S_4 × C3").unwrap(),
            GroupExpr::parse("S4 x C3").unwrap()
        );
    }
}
