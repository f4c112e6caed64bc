//! Unstructured magnitude pruning options for the compression menu, combined with
//! quantisation of the kept values.
//!
//! Each row keeps its `keep` largest weights by the activation-aware magnitude `|w_rj|·√h_j`
//! (plain magnitude when all columns weigh the same; Wanda's score, Sun et al. 2023, with
//! per-row comparison groups). Stored per row: a bitmap of the kept positions (`cols / 8`
//! bytes) and the kept values, in column order, as blocks of a 32-element GGUF type, so `keep`
//! is a multiple of 32. No GGUF reader knows this layout: like the SVD options it is loadable
//! only by a runtime that applies it as a dense override, as ours does for the measurement.

use anyhow::{bail, Result};
use claimlab_weights::{dequantize, quantize, DType};

/// Value storage types tried for the kept weights.
pub const VALUE_TYPES: [DType; 2] = [DType::Q4_0, DType::Q8_0];

/// Kept fractions tried (rounded down to a multiple of 32 per row).
pub const KEEP_FRACTIONS: [f64; 3] = [0.25, 0.5, 0.75];

/// Stored bytes of `rows` rows of `cols` keeping `keep` values each in `dt` (bitmap included).
#[must_use]
pub fn prune_bytes(rows: usize, cols: usize, keep: usize, dt: DType) -> usize {
    rows * (cols.div_ceil(8) + keep / dt.block_elems() * dt.block_bytes())
}

/// The pruned and quantised matrix (row-major `[rows, cols]`): per row the `keep` largest
/// `|w|·√h` kept (ties to the lower column), their values rounded to `dt` in column order, the
/// rest zero.
///
/// # Errors
/// Shapes that disagree, `keep` not a positive multiple of the block up to `cols`, non-finite
/// values.
pub fn prune_rebuild(
    w: &[f32],
    rows: usize,
    cols: usize,
    hdiag: &[f64],
    keep: usize,
    dt: DType,
) -> Result<Vec<f32>> {
    if w.len() != rows * cols || hdiag.len() != cols {
        bail!(
            "pruning shapes: {} values for {rows}x{cols}, {} column weights",
            w.len(),
            hdiag.len()
        );
    }
    if keep == 0 || keep > cols || !keep.is_multiple_of(dt.block_elems()) {
        bail!(
            "pruning keeps {keep} of {cols}: must be a positive multiple of {}",
            dt.block_elems()
        );
    }
    if w.iter().any(|v| !v.is_finite()) || hdiag.iter().any(|v| !v.is_finite()) {
        bail!("pruning: non-finite weight or column weight");
    }
    let sq: Vec<f64> = hdiag.iter().map(|&h| h.max(0.0).sqrt()).collect();
    let mut out = vec![0f32; w.len()];
    let mut idx: Vec<usize> = Vec::with_capacity(cols);
    let mut vals = vec![0f32; keep];
    for (wr, or) in w.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        idx.clear();
        idx.extend(0..cols);
        let score = |j: usize| f64::from(wr[j].abs()) * sq[j];
        idx.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
        idx.truncate(keep);
        idx.sort_unstable();
        for (v, &j) in vals.iter_mut().zip(&idx) {
            *v = wr[j];
        }
        let back = dequantize(dt, &quantize(dt, &vals)?, keep)?;
        for (&j, &v) in idx.iter().zip(&back) {
            or[j] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_largest_weighted_values_and_counts_the_bitmap() {
        // One row of 64: values j/64; column weights favour the first half 90:1.
        let w: Vec<f32> = (0..64).map(|j| j as f32 / 64.0).collect();
        let h: Vec<f64> = (0..64).map(|j| if j < 32 { 90.0 } else { 1.0 }).collect();
        let p = prune_rebuild(&w, 1, 64, &h, 32, DType::Q8_0).unwrap();
        // Score of column j < 32 is √90·j/64 (j = 7: 1.038, j = 6: 0.889), of j >= 32 it is
        // j/64 (0.984 .. 0.5): kept are 7..32 (25 columns) and 57..64 (57/64 = 0.891 > 0.889).
        let kept: Vec<usize> = (0..64).filter(|&j| p[j] != 0.0).collect();
        let want: Vec<usize> = (7..32).chain(57..64).collect();
        assert_eq!(kept, want);
        for &j in &kept {
            assert!((p[j] - w[j]).abs() <= 0.5 / 127.0 + 1e-6, "{j}");
        }
        assert_eq!(prune_bytes(1, 64, 32, DType::Q8_0), 8 + 34);
        assert_eq!(prune_bytes(10, 256, 64, DType::Q4_0), 10 * (32 + 2 * 18));
        assert!(prune_rebuild(&w, 1, 64, &h, 40, DType::Q8_0).is_err());
        assert!(prune_rebuild(&w, 1, 64, &h[..10], 32, DType::Q8_0).is_err());
    }
}
