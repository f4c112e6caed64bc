//! Difference-of-means directions and point-biserial neuron ranking.

use faer::MatRef;

use crate::check::{both_classes, matrix_and_labels};
use crate::error::Result;

/// Column means of the negative and positive rows, `(μ₀, μ₁)`.
///
/// # Errors
/// [`crate::Error::Empty`], [`crate::Error::NonFinite`], [`crate::Error::DimensionMismatch`] for
/// bad input; [`crate::Error::OneClass`] when a class is missing.
///
/// # Complexity
/// O(n·d) time, O(d) memory.
pub fn class_means(x: MatRef<'_, f64>, labels: &[bool]) -> Result<(Vec<f64>, Vec<f64>)> {
    matrix_and_labels(x, labels)?;
    let (n0, n1) = both_classes(labels, "the labels")?;
    let d = x.ncols();
    let (mut m0, mut m1) = (vec![0.0; d], vec![0.0; d]);
    for (i, &l) in labels.iter().enumerate() {
        let m = if l { &mut m1 } else { &mut m0 };
        for (j, mj) in m.iter_mut().enumerate() {
            *mj += x[(i, j)];
        }
    }
    m0.iter_mut().for_each(|v| *v /= n0 as f64);
    m1.iter_mut().for_each(|v| *v /= n1 as f64);
    Ok((m0, m1))
}

/// The difference-of-means direction `μ₁ − μ₀` (positive minus negative class), unnormalised.
///
/// # Errors
/// As [`class_means`].
///
/// # Example
/// ```
/// use claimlab_concepts::{mean_difference, faer::Mat};
/// let x = Mat::from_fn(4, 2, |i, j| if i < 2 { j as f64 } else { 1.0 + j as f64 });
/// let d = mean_difference(x.as_ref(), &[false, false, true, true]).unwrap();
/// assert!((d[0] - 1.0).abs() < 1e-15 && (d[1] - 1.0).abs() < 1e-15);
/// ```
pub fn mean_difference(x: MatRef<'_, f64>, labels: &[bool]) -> Result<Vec<f64>> {
    let (m0, m1) = class_means(x, labels)?;
    Ok(m1.iter().zip(&m0).map(|(a, b)| a - b).collect())
}

/// Point-biserial correlation of every column with the label (the Pearson correlation of the
/// column with the 0/1 label):
///
/// ```text
/// r_j = (m₁ⱼ − m₀ⱼ) / s_j · √(p (1 − p)),   s_j the population standard deviation of column j,
/// p the positive share
/// ```
///
/// Constant columns get `r = 0` (no linear association can be measured).
///
/// # Errors
/// As [`class_means`].
///
/// # Complexity
/// O(n·d) time, O(d) memory.
///
/// # References
/// R. F. Tate, "Correlation between a discrete and a continuous variable. Point-biserial
/// correlation", Ann. Math. Statist. 25 (1954) 603–607.
pub fn point_biserial(x: MatRef<'_, f64>, labels: &[bool]) -> Result<Vec<f64>> {
    let (m0, m1) = class_means(x, labels)?;
    let n = x.nrows() as f64;
    let p = labels.iter().filter(|&&b| b).count() as f64 / n;
    let out = (0..x.ncols())
        .map(|j| {
            let m = p * m1[j] + (1.0 - p) * m0[j];
            let v = (0..x.nrows()).map(|i| (x[(i, j)] - m).powi(2)).sum::<f64>() / n;
            if v > 0.0 {
                (m1[j] - m0[j]) / v.sqrt() * (p * (1.0 - p)).sqrt()
            } else {
                0.0
            }
        })
        .collect();
    Ok(out)
}

/// One ranked column (neuron).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RankedNeuron {
    /// Column index.
    pub index: usize,
    /// Its point-biserial correlation with the label (signed).
    pub r: f64,
}

/// The `k` columns with the largest `|r|` ([`point_biserial`]), largest first; ties go to the
/// lower index. Fewer than `k` when there are fewer columns.
///
/// # Errors
/// As [`class_means`].
///
/// # Example
/// ```
/// use claimlab_concepts::{top_neurons, faer::Mat};
/// let labels = [false, true, false, true, false, true];
/// let x = Mat::from_fn(6, 3, |i, j| if j == 2 && labels[i] { 1.0 } else { (i * j % 3) as f64 * 0.1 });
/// assert_eq!(top_neurons(x.as_ref(), &labels, 1).unwrap()[0].index, 2);
/// ```
pub fn top_neurons(x: MatRef<'_, f64>, labels: &[bool], k: usize) -> Result<Vec<RankedNeuron>> {
    let r = point_biserial(x, labels)?;
    let mut idx: Vec<usize> = (0..r.len()).collect();
    idx.sort_by(|&a, &b| r[b].abs().total_cmp(&r[a].abs()).then(a.cmp(&b)));
    Ok(idx
        .into_iter()
        .take(k)
        .map(|index| RankedNeuron { index, r: r[index] })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use claimlab_testkit::rng;
    use faer::Mat;
    use rand::RngExt;

    #[test]
    fn point_biserial_is_pearson_with_the_label() {
        let mut r = rng(5);
        let (n, d) = (57, 6);
        let x = Mat::from_fn(n, d, |_, _| r.random::<f64>());
        let labels: Vec<bool> = (0..n)
            .map(|i| r.random::<f64>() < 0.3 + 0.01 * i as f64)
            .collect();
        let pb = point_biserial(x.as_ref(), &labels).unwrap();
        let y: Vec<f64> = labels.iter().map(|&b| f64::from(u8::from(b))).collect();
        let my = y.iter().sum::<f64>() / n as f64;
        for (j, &pbj) in pb.iter().enumerate() {
            let col: Vec<f64> = (0..n).map(|i| x[(i, j)]).collect();
            let mx = col.iter().sum::<f64>() / n as f64;
            let sxy: f64 = col.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
            let sxx: f64 = col.iter().map(|a| (a - mx).powi(2)).sum();
            let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
            let pearson = sxy / (sxx * syy).sqrt();
            assert!((pearson - pbj).abs() < 1e-12, "{j}: {pearson} vs {pbj}");
        }
        let top = top_neurons(x.as_ref(), &labels, 3).unwrap();
        assert_eq!(top.len(), 3);
        assert!(top[0].r.abs() >= top[1].r.abs() && top[1].r.abs() >= top[2].r.abs());
        assert_eq!(top_neurons(x.as_ref(), &labels, 100).unwrap().len(), d);
    }

    #[test]
    fn constant_column_and_errors() {
        let x = Mat::from_fn(4, 2, |i, j| if j == 0 { 1.0 } else { i as f64 });
        let pb = point_biserial(x.as_ref(), &[false, false, true, true]).unwrap();
        assert!(pb[0].abs() < 1e-300 && pb[1] > 0.8);
        assert!(matches!(
            mean_difference(x.as_ref(), &[true, true, true, true]),
            Err(Error::OneClass(_))
        ));
        assert!(matches!(
            class_means(x.as_ref(), &[true]),
            Err(Error::DimensionMismatch { .. })
        ));
    }
}
