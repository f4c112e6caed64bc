//! Input validation shared by every entry point.

use faer::MatRef;

use crate::error::{Error, Result};

/// Checks that `x` is non-empty and finite, and that `labels` has one entry per row.
pub(crate) fn matrix_and_labels(x: MatRef<'_, f64>, labels: &[bool]) -> Result<()> {
    finite_matrix(x)?;
    if labels.len() != x.nrows() {
        return Err(Error::DimensionMismatch {
            what: "labels (one per row)",
            expected: x.nrows(),
            got: labels.len(),
        });
    }
    Ok(())
}

/// Checks that `x` is non-empty and holds only finite values.
pub(crate) fn finite_matrix(x: MatRef<'_, f64>) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::Empty);
    }
    let d = x.ncols();
    let mut first = None;
    let mut count = 0usize;
    for i in 0..x.nrows() {
        for j in 0..d {
            if !x[(i, j)].is_finite() {
                count += 1;
                if first.is_none() {
                    first = Some(i * d + j);
                }
            }
        }
    }
    match first {
        Some(index) => Err(Error::NonFinite { index, count }),
        None => Ok(()),
    }
}

/// Counts of the two classes `(negatives, positives)`; an error when one of them is empty.
pub(crate) fn both_classes(labels: &[bool], part: &'static str) -> Result<(usize, usize)> {
    let pos = labels.iter().filter(|&&b| b).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(Error::OneClass(part));
    }
    Ok((neg, pos))
}
