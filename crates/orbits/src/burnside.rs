//! Burnside's lemma: the number of orbits of a finite group action is the average number of fixed
//! points,
//!
//! ```text
//! |X / G| = (1/|G|) · Σ_{g ∈ G} |Fix(g)|
//! ```
//!
//! (Burnside 1897; the lemma is Cauchy–Frobenius). Here the action is given only through its
//! fixed-point function, so the set `X` itself is never built. A brute-force orbit counter for
//! colourings is included to check the counts on small cases.

use std::collections::HashSet;

use num_bigint::BigUint;
use num_traits::Zero;

use crate::cycle_index::exact_div;
use crate::error::{Error, Result};
use crate::perm::Perm;

/// The number of orbits, from every group element and the number of points each one fixes.
///
/// # Arguments
/// * `elements` – every element of the group, each once (of any type).
/// * `fixed_points` – `|Fix(g)|` for an element `g`.
///
/// # Errors
/// [`Error::InvalidParam`] if `elements` is empty; [`Error::NotDivisible`] if the sum is not a
/// multiple of the number of elements (the list is not a group, or the fixed-point function is not
/// that of an action).
///
/// # Complexity
/// `|G|` calls of `fixed_points` and big-integer additions.
///
/// # Example
/// ```
/// use claimlab_orbits::{burnside_count, cyclic_group};
/// // Binary necklaces of length 4: a rotation with c cycles fixes 2^c strings.
/// let c4 = cyclic_group(4)?.elements(100)?;
/// let n = burnside_count(&c4, |g| (1u32 << g.cycles_with_fixed_points()).into())?;
/// assert_eq!(n, 6u32.into());
/// # Ok::<(), claimlab_orbits::Error>(())
/// ```
pub fn burnside_count<T, I, F>(elements: I, mut fixed_points: F) -> Result<BigUint>
where
    I: IntoIterator<Item = T>,
    F: FnMut(&T) -> BigUint,
{
    let mut sum = BigUint::zero();
    let mut count = 0u64;
    for g in elements {
        sum += fixed_points(&g);
        count += 1;
    }
    if count == 0 {
        return Err(Error::InvalidParam {
            name: "elements",
            value: "[]".into(),
            reason: "a group has at least the identity",
        });
    }
    exact_div(&sum, &BigUint::from(count))
}

/// Burnside's lemma over conjugacy classes (or any partition of the group into sets whose elements
/// fix equally many points): pairs `(class size, fixed points of each element)`.
///
/// # Errors
/// [`Error::InvalidParam`] if `classes` is empty or a class size is zero;
/// [`Error::NotDivisible`] as in [`burnside_count`].
pub fn burnside_count_classes(classes: &[(BigUint, BigUint)]) -> Result<BigUint> {
    if classes.is_empty() {
        return Err(Error::InvalidParam {
            name: "classes",
            value: "[]".into(),
            reason: "a group has at least the identity class",
        });
    }
    let mut sum = BigUint::zero();
    let mut order = BigUint::zero();
    for (i, (size, fix)) in classes.iter().enumerate() {
        if size.is_zero() {
            return Err(Error::InvalidParam {
                name: "classes",
                value: format!("class {i} of size 0"),
                reason: "class sizes must be positive",
            });
        }
        sum += size * fix;
        order += size;
    }
    exact_div(&sum, &order)
}

/// Most colourings × group elements the brute-force counter will visit.
pub const BRUTE_FORCE_LIMIT: u64 = 200_000_000;

/// The number of orbits of `k`-colourings of `0..n` under the given group elements, by brute
/// force: every colouring is mapped to the least image under the group and the distinct least
/// images are counted. For checking [`burnside_count`] and the cycle index on small cases.
///
/// # Errors
/// [`Error::InvalidParam`] if `elements` is empty or `k == 0`; [`Error::DegreeMismatch`] if the
/// degrees differ; [`Error::TooLarge`] if `k^n · |G|` exceeds [`BRUTE_FORCE_LIMIT`].
///
/// # Complexity
/// `O(k^n · |G| · n)` time, `O(number of orbits)` memory.
pub fn brute_force_colouring_orbits(elements: &[Perm], k: u32) -> Result<u64> {
    let Some(first) = elements.first() else {
        return Err(Error::InvalidParam {
            name: "elements",
            value: "[]".into(),
            reason: "a group has at least the identity",
        });
    };
    if k == 0 {
        return Err(Error::InvalidParam {
            name: "k",
            value: "0".into(),
            reason: "need a colour",
        });
    }
    let n = first.degree();
    if let Some(g) = elements.iter().find(|g| g.degree() != n) {
        return Err(Error::DegreeMismatch {
            expected: n,
            found: g.degree(),
        });
    }
    let total = (k as u64)
        .checked_pow(n as u32)
        .and_then(|c| c.checked_mul(elements.len() as u64))
        .filter(|&w| w <= BRUTE_FORCE_LIMIT);
    let Some(_) = total else {
        return Err(Error::TooLarge {
            what: "brute-force colourings × group elements",
            size: format!("{k}^{n} · {}", elements.len()),
            limit: BRUTE_FORCE_LIMIT.to_string(),
        });
    };
    let count = (k as u64).pow(n as u32);
    let mut colour = vec![0u32; n];
    let mut image = vec![0u32; n];
    let mut reps: HashSet<Vec<u32>> = HashSet::new();
    for code in 0..count {
        let mut c = code;
        for x in colour.iter_mut() {
            *x = (c % k as u64) as u32;
            c /= k as u64;
        }
        let mut best = colour.clone();
        for g in elements {
            // (c·g)(g(x)) = c(x): the colouring moved along with the points.
            for x in 0..n {
                image[g.image(x)] = colour[x];
            }
            if image < best {
                best.copy_from_slice(&image);
            }
        }
        reps.insert(best);
    }
    Ok(reps.len() as u64)
}
