//! Seeded, stratified train/test split.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::check::both_classes;
use crate::error::{Error, Result};

/// Row indices of a train/test split.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Split {
    /// Training rows, ascending.
    pub train: Vec<usize>,
    /// Held-out rows, ascending.
    pub test: Vec<usize>,
}

/// A stratified split: in each class, `round(test_fraction · class size)` rows (at least one)
/// go to the test part, chosen by a seeded shuffle (`Xoshiro256PlusPlus`).
///
/// # Errors
/// [`Error::InvalidParam`] unless `0 < test_fraction < 1`; [`Error::OneClass`] when a class is
/// missing or has a single row (nothing could be left to train on).
///
/// # Complexity
/// O(n) time and memory.
///
/// # Example
/// ```
/// let labels = [true, false, true, false, true, false, true, false, true, false];
/// let s = claimlab_concepts::stratified_split(&labels, 0.2, 7).unwrap();
/// assert_eq!((s.train.len(), s.test.len()), (8, 2));
/// ```
pub fn stratified_split(labels: &[bool], test_fraction: f64, seed: u64) -> Result<Split> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::InvalidParam {
            name: "test_fraction",
            value: test_fraction,
            reason: "must lie strictly between 0 and 1",
        });
    }
    let (neg, pos) = both_classes(labels, "the labels")?;
    if neg < 2 || pos < 2 {
        return Err(Error::OneClass("a split part (a class has a single row)"));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let k = ((test_fraction * idx.len() as f64).round() as usize).clamp(1, idx.len() - 1);
        test.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let labels: Vec<bool> = (0..103).map(|i| i % 3 == 0).collect();
        let s = stratified_split(&labels, 0.2, 11).unwrap();
        let pos_test = s.test.iter().filter(|&&i| labels[i]).count();
        assert_eq!(pos_test, 7); // round(0.2 · 35)
        assert_eq!(s.test.len(), 7 + 14); // round(0.2 · 68) = 14
        let mut all = [s.train.clone(), s.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert_eq!(s, stratified_split(&labels, 0.2, 11).unwrap());
        assert_ne!(s, stratified_split(&labels, 0.2, 12).unwrap());
    }

    #[test]
    fn split_errors() {
        assert!(matches!(
            stratified_split(&[true, false], 0.0, 1),
            Err(Error::InvalidParam { .. })
        ));
        assert!(matches!(
            stratified_split(&[true, true, true], 0.5, 1),
            Err(Error::OneClass(_))
        ));
        assert!(matches!(
            stratified_split(&[true, false, false], 0.5, 1),
            Err(Error::OneClass(_))
        ));
    }
}
