//! Permutations of `0..n`: composition, inverse, cycles, cycle type, parity, order.
//!
//! Convention (as GAP): points are acted on from the right, and the product `p.compose(q)` means
//! "first `p`, then `q`", so `i^(pq) = (i^p)^q`. Points are 0-based in the API; cycle notation
//! ([`Perm::parse_cycles`], `Display`) is 1-based, as GAP and the input files write it.

use std::fmt;

use num_bigint::BigUint;
use num_traits::One;

use crate::error::{Error, Result};

/// A permutation of the points `0..n`, stored as its list of images.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Perm {
    images: Vec<u32>,
}

impl fmt::Debug for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Perm[{}]{}", self.degree(), self)
    }
}

/// Cycle notation with 1-based points, `()` for the identity.
impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cycles = self.cycles();
        if cycles.is_empty() {
            return f.write_str("()");
        }
        for c in cycles {
            f.write_str("(")?;
            for (k, p) in c.iter().enumerate() {
                if k > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{}", p + 1)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn check_degree(n: usize) -> Result<()> {
    if n > u32::MAX as usize {
        return Err(Error::InvalidParam {
            name: "degree",
            value: n.to_string(),
            reason: "degree must fit in u32",
        });
    }
    Ok(())
}

impl Perm {
    /// The identity permutation on `n` points.
    ///
    /// # Panics
    /// If `n` does not fit in `u32` (a caller bug: such permutations would not fit in memory).
    #[must_use]
    #[track_caller]
    pub fn identity(n: usize) -> Self {
        assert!(u32::try_from(n).is_ok(), "degree {n} does not fit in u32");
        Self {
            images: (0..n as u32).collect(),
        }
    }

    /// The permutation with `i -> images[i]`.
    ///
    /// # Errors
    /// [`Error::NotAPermutation`] if `images` is not a bijection of `0..images.len()`;
    /// [`Error::InvalidParam`] if the degree does not fit in `u32`.
    pub fn from_images(images: Vec<usize>) -> Result<Self> {
        let n = images.len();
        check_degree(n)?;
        let mut seen = vec![false; n];
        for (i, &p) in images.iter().enumerate() {
            if p >= n || seen[p] {
                return Err(Error::NotAPermutation {
                    index: i,
                    point: p,
                    degree: n,
                });
            }
            seen[p] = true;
        }
        Ok(Self {
            images: images.into_iter().map(|p| p as u32).collect(),
        })
    }

    /// Internal constructor from a list already known to be a bijection.
    pub(crate) fn from_images_unchecked(images: Vec<u32>) -> Self {
        debug_assert!(Self::from_images(images.iter().map(|&p| p as usize).collect()).is_ok());
        Self { images }
    }

    /// The product of the given disjoint or overlapping cycles (0-based), applied left to right.
    ///
    /// # Errors
    /// [`Error::NotAPermutation`] if a point is `>= n` or repeats inside one cycle;
    /// [`Error::InvalidParam`] if `n` does not fit in `u32`.
    pub fn from_cycles(n: usize, cycles: &[Vec<usize>]) -> Result<Self> {
        check_degree(n)?;
        let mut p = Self::identity(n);
        for c in cycles {
            let mut seen = std::collections::HashSet::with_capacity(c.len());
            for (k, &x) in c.iter().enumerate() {
                if x >= n || !seen.insert(x) {
                    return Err(Error::NotAPermutation {
                        index: k,
                        point: x,
                        degree: n,
                    });
                }
            }
            if c.len() < 2 {
                continue;
            }
            let mut cyc = Self::identity(n);
            for k in 0..c.len() {
                cyc.images[c[k]] = c[(k + 1) % c.len()] as u32;
            }
            p = p.mul(&cyc);
        }
        Ok(p)
    }

    /// Parses 1-based cycle notation such as `(1,2,3)(4,5)` (spaces allowed, `()` is the identity)
    /// into a permutation of degree `n`.
    ///
    /// # Errors
    /// [`Error::Parse`] on malformed text or a point `0`; [`Error::NotAPermutation`] if a point
    /// exceeds `n` or repeats inside one cycle.
    pub fn parse_cycles(text: &str, n: usize) -> Result<Self> {
        let cycles = parse_cycle_list(text)?;
        let zero_based: Vec<Vec<usize>> = cycles
            .into_iter()
            .map(|c| c.into_iter().map(|x| x - 1).collect())
            .collect();
        Self::from_cycles(n, &zero_based)
    }

    /// Number of points acted on.
    #[must_use]
    pub fn degree(&self) -> usize {
        self.images.len()
    }

    /// The image `i^self`.
    ///
    /// # Panics
    /// If `i >= self.degree()`.
    #[must_use]
    #[track_caller]
    pub fn image(&self, i: usize) -> usize {
        self.images[i] as usize
    }

    /// The images as a slice (`images()[i]` is the image of `i`).
    #[must_use]
    pub fn images(&self) -> &[u32] {
        &self.images
    }

    /// Whether this is the identity.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.images
            .iter()
            .enumerate()
            .all(|(i, &p)| i == p as usize)
    }

    /// The product "first `self`, then `other`" (GAP's `self * other`).
    ///
    /// # Errors
    /// [`Error::DegreeMismatch`] if the degrees differ.
    pub fn compose(&self, other: &Self) -> Result<Self> {
        if self.degree() != other.degree() {
            return Err(Error::DegreeMismatch {
                expected: self.degree(),
                found: other.degree(),
            });
        }
        Ok(self.mul(other))
    }

    /// Unchecked product "first `self`, then `other`"; degrees must agree.
    pub(crate) fn mul(&self, other: &Self) -> Self {
        Self {
            images: self
                .images
                .iter()
                .map(|&p| other.images[p as usize])
                .collect(),
        }
    }

    /// In-place `self <- self * other`.
    pub(crate) fn mul_assign(&mut self, other: &Self) {
        for p in &mut self.images {
            *p = other.images[*p as usize];
        }
    }

    /// The inverse permutation.
    #[must_use]
    pub fn inverse(&self) -> Self {
        let mut inv = vec![0u32; self.degree()];
        for (i, &p) in self.images.iter().enumerate() {
            inv[p as usize] = i as u32;
        }
        Self { images: inv }
    }

    /// `self^k` for a signed exponent, by repeated squaring.
    #[must_use]
    pub fn pow(&self, k: i64) -> Self {
        let mut base = if k < 0 { self.inverse() } else { self.clone() };
        let mut e = k.unsigned_abs();
        let mut acc = Self::identity(self.degree());
        while e > 0 {
            if e & 1 == 1 {
                acc.mul_assign(&base);
            }
            base = base.mul(&base);
            e >>= 1;
        }
        acc
    }

    /// The nontrivial cycles, each starting at its smallest point, ordered by that point.
    #[must_use]
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let n = self.degree();
        let mut seen = vec![false; n];
        let mut out = Vec::new();
        for start in 0..n {
            if seen[start] || self.images[start] as usize == start {
                continue;
            }
            let mut c = Vec::new();
            let mut x = start;
            while !seen[x] {
                seen[x] = true;
                c.push(x);
                x = self.images[x] as usize;
            }
            out.push(c);
        }
        out
    }

    /// The cycle type as `counts[k]` = number of cycles of length `k` (fixed points count as
    /// cycles of length 1; `counts[0]` is always 0); `counts.len() == degree + 1`.
    #[must_use]
    pub fn cycle_type(&self) -> Vec<usize> {
        let n = self.degree();
        let mut counts = vec![0usize; n + 1];
        let mut seen = vec![false; n];
        for start in 0..n {
            if seen[start] {
                continue;
            }
            let mut len = 0;
            let mut x = start;
            while !seen[x] {
                seen[x] = true;
                len += 1;
                x = self.images[x] as usize;
            }
            counts[len] += 1;
        }
        counts
    }

    /// Whether the permutation is even (a product of an even number of transpositions).
    #[must_use]
    pub fn is_even(&self) -> bool {
        let ct = self.cycle_type();
        // A k-cycle is a product of k-1 transpositions.
        let odd_parts: usize = ct
            .iter()
            .enumerate()
            .skip(2)
            .step_by(2)
            .map(|(_, &c)| c)
            .sum();
        odd_parts.is_multiple_of(2)
    }

    /// The order of the permutation (lcm of its cycle lengths), exact.
    #[must_use]
    pub fn order(&self) -> BigUint {
        let ct = self.cycle_type();
        // lcm through prime factorisations: max exponent of each prime over the cycle lengths.
        let mut max_pow: std::collections::BTreeMap<usize, usize> = Default::default();
        for (len, &c) in ct.iter().enumerate().skip(2) {
            if c == 0 {
                continue;
            }
            let mut m = len;
            let mut p = 2;
            while p * p <= m {
                if m % p == 0 {
                    let mut q = 1;
                    while m % p == 0 {
                        m /= p;
                        q *= p;
                    }
                    let e = max_pow.entry(p).or_insert(1);
                    *e = (*e).max(q);
                }
                p += 1;
            }
            if m > 1 {
                let e = max_pow.entry(m).or_insert(1);
                *e = (*e).max(m);
            }
        }
        max_pow
            .values()
            .fold(BigUint::one(), |acc, &q| acc * BigUint::from(q))
    }

    /// The number of cycles, fixed points included (so the identity on `n` points has `n`).
    #[must_use]
    pub fn cycles_with_fixed_points(&self) -> usize {
        self.cycle_type().iter().sum()
    }

    /// The points moved by the permutation, ascending.
    #[must_use]
    pub fn support(&self) -> Vec<usize> {
        (0..self.degree())
            .filter(|&i| self.images[i] as usize != i)
            .collect()
    }
}

/// Parses `(1,2,3)(4,5)` into 1-based cycles, checking points are positive integers.
fn parse_cycle_list(text: &str) -> Result<Vec<Vec<usize>>> {
    let err = |offset: usize, reason: &str| Error::Parse {
        what: "cycle notation",
        offset,
        reason: reason.to_string(),
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut cycles = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i == bytes.len() {
        return Err(err(i, "empty input (write () for the identity)"));
    }
    while i < bytes.len() {
        if bytes[i] != b'(' {
            return Err(err(i, "expected '('"));
        }
        i += 1;
        let mut cyc = Vec::new();
        skip_ws(&mut i);
        if i < bytes.len() && bytes[i] == b')' {
            i += 1;
            skip_ws(&mut i);
            continue;
        }
        loop {
            skip_ws(&mut i);
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(err(i, "expected a point number"));
            }
            let v: usize = text[start..i]
                .parse()
                .map_err(|_| err(start, "number too large"))?;
            if v == 0 {
                return Err(err(start, "points are 1-based"));
            }
            cyc.push(v);
            skip_ws(&mut i);
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b')') => {
                    i += 1;
                    break;
                }
                _ => return Err(err(i, "expected ',' or ')'")),
            }
        }
        cycles.push(cyc);
        skip_ws(&mut i);
    }
    Ok(cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_is_left_to_right() {
        let p = Perm::parse_cycles("(1,2)", 3).unwrap();
        let q = Perm::parse_cycles("(2,3)", 3).unwrap();
        // 1 -> 2 -> 3 under "first p then q".
        let pq = p.compose(&q).unwrap();
        assert_eq!(pq.image(0), 2);
        assert_eq!(pq.to_string(), "(1,3,2)");
        assert!(pq.compose(&pq.inverse()).unwrap().is_identity());
    }

    #[test]
    fn cycle_type_parity_order() {
        let p = Perm::parse_cycles("(1,2,3)(4,5)", 7).unwrap();
        let ct = p.cycle_type();
        assert_eq!((ct[1], ct[2], ct[3]), (2, 1, 1));
        assert!(!p.is_even());
        assert_eq!(p.order(), BigUint::from(6u32));
        assert!(p.pow(6).is_identity());
        assert_eq!(p.pow(-1), p.inverse());
        assert_eq!(p.support(), vec![0, 1, 2, 3, 4]);
        assert_eq!(Perm::parse_cycles("()", 4).unwrap(), Perm::identity(4));
    }

    #[test]
    fn error_paths() {
        assert_eq!(
            Perm::from_images(vec![0, 0, 1]),
            Err(Error::NotAPermutation {
                index: 1,
                point: 0,
                degree: 3
            })
        );
        assert_eq!(
            Perm::from_images(vec![0, 3, 1]),
            Err(Error::NotAPermutation {
                index: 1,
                point: 3,
                degree: 3
            })
        );
        assert!(matches!(
            Perm::parse_cycles("(1,2", 3),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            Perm::parse_cycles("(0,2)", 3),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            Perm::parse_cycles("", 3),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            Perm::parse_cycles("(1,x)", 3),
            Err(Error::Parse { .. })
        ));
        assert_eq!(
            Perm::parse_cycles("(1,4)", 3),
            Err(Error::NotAPermutation {
                index: 1,
                point: 3,
                degree: 3
            })
        );
        assert_eq!(
            Perm::parse_cycles("(1,2,1)", 3),
            Err(Error::NotAPermutation {
                index: 2,
                point: 0,
                degree: 3
            })
        );
        let a = Perm::identity(3);
        let b = Perm::identity(4);
        assert_eq!(
            a.compose(&b),
            Err(Error::DegreeMismatch {
                expected: 3,
                found: 4
            })
        );
    }
}
