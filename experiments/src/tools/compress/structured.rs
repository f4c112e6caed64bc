//! Structured (row, i.e. output-channel) pruning options for the compression menu, combined
//! with quantisation of the kept rows.
//!
//! A `[rows, cols]` matrix keeps its `keep_rows` rows of largest activation-weighted energy
//! `Σ_j w_rj² h_j` (h the calibration column weights, the same as the menu's damage proxy, so
//! dropping those rows removes the least proxy damage; plain squared norm when all columns weigh
//! the same). Ties go to the lower row. The other rows are zero: the output channels they feed
//! are constant zero, which a runtime could skip entirely.
//!
//! Stored: a bitmap of the kept rows (`rows.div_ceil(8)` bytes) and the kept rows, in row order,
//! as GGUF rows of a 32-element block type (the same [`VALUE_TYPES`] as magnitude pruning), so
//! `cols` is a multiple of 32. Like magnitude pruning and SVD it is no GGUF tensor type and is
//! loadable only by a runtime that applies it as a dense override, as ours does.

use anyhow::{bail, Result};
use claimlab_weights::{dequantize, quantize, DType};

pub use super::prune::VALUE_TYPES;

/// Fractions of rows kept that are tried (rounded down to whole rows).
pub const ROW_KEEP_FRACTIONS: [f64; 2] = [0.5, 0.75];

/// Stored bytes of a `[rows, cols]` matrix keeping `keep_rows` rows in `dt`: the row bitmap
/// plus the kept rows (`cols` a multiple of `dt`'s block, as [`row_prune_rebuild`] requires).
#[must_use]
pub fn row_prune_bytes(rows: usize, cols: usize, keep_rows: usize, dt: DType) -> usize {
    rows.div_ceil(8) + keep_rows * (cols / dt.block_elems() * dt.block_bytes())
}

/// Checks shapes and values shared by [`kept_rows`] and [`row_prune_rebuild`].
fn check(w: &[f32], rows: usize, cols: usize, hdiag: &[f64], keep_rows: usize) -> Result<()> {
    if rows == 0 || cols == 0 || w.len() != rows * cols || hdiag.len() != cols {
        bail!(
            "row pruning shapes: {} values for {rows}x{cols}, {} column weights",
            w.len(),
            hdiag.len()
        );
    }
    if keep_rows == 0 || keep_rows > rows {
        bail!("row pruning keeps {keep_rows} of {rows} rows: must be between 1 and {rows}");
    }
    if w.iter().any(|v| !v.is_finite()) || hdiag.iter().any(|v| !v.is_finite()) {
        bail!("row pruning: non-finite weight or column weight");
    }
    Ok(())
}

/// The kept rows, ascending: the `keep_rows` rows of largest `Σ_j w_rj² max(h_j, 0)`, ties to
/// the lower row.
///
/// # Errors
/// Shapes that disagree, `keep_rows` not in `1..=rows` (keeping no row is refused: that option
/// is the all-zero matrix, not a compression choice), non-finite values.
pub fn kept_rows(
    w: &[f32],
    rows: usize,
    cols: usize,
    hdiag: &[f64],
    keep_rows: usize,
) -> Result<Vec<usize>> {
    check(w, rows, cols, hdiag, keep_rows)?;
    let energy: Vec<f64> = w
        .chunks_exact(cols)
        .map(|wr| {
            wr.iter()
                .zip(hdiag)
                .map(|(&v, &h)| f64::from(v) * f64::from(v) * h.max(0.0))
                .sum()
        })
        .collect();
    let mut idx: Vec<usize> = (0..rows).collect();
    idx.sort_by(|&a, &b| energy[b].total_cmp(&energy[a]).then(a.cmp(&b)));
    idx.truncate(keep_rows);
    idx.sort_unstable();
    Ok(idx)
}

/// The row-pruned and quantised matrix (row-major `[rows, cols]`): the [`kept_rows`] rounded
/// to `dt` (each row quantised and dequantised on its own, as stored), the other rows zero.
///
/// # Errors
/// As [`kept_rows`], and `cols` not a multiple of `dt`'s block.
pub fn row_prune_rebuild(
    w: &[f32],
    rows: usize,
    cols: usize,
    hdiag: &[f64],
    keep_rows: usize,
    dt: DType,
) -> Result<Vec<f32>> {
    if !cols.is_multiple_of(dt.block_elems()) {
        bail!(
            "row pruning: rows of {cols} are not whole blocks of {dt} ({} elements)",
            dt.block_elems()
        );
    }
    let kept = kept_rows(w, rows, cols, hdiag, keep_rows)?;
    let mut out = vec![0f32; w.len()];
    for r in kept {
        let row = &w[r * cols..(r + 1) * cols];
        let back = dequantize(dt, &quantize(dt, row)?, cols)?;
        out[r * cols..(r + 1) * cols].copy_from_slice(&back);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn random(seed: u64, rows: usize, cols: usize) -> (Vec<f32>, Vec<f64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let w = (0..rows * cols)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let h = (0..cols).map(|_| rng.random::<f64>() * 3.0).collect();
        (w, h)
    }

    #[test]
    fn bytes_are_the_bitmap_plus_the_kept_rows() {
        // Q8_0: 34 bytes per 32; Q4_0: 18 bytes per 32.
        assert_eq!(row_prune_bytes(8, 64, 4, DType::Q8_0), 1 + 4 * 2 * 34);
        assert_eq!(row_prune_bytes(9, 64, 4, DType::Q8_0), 2 + 4 * 2 * 34);
        assert_eq!(
            row_prune_bytes(576, 1536, 288, DType::Q4_0),
            72 + 288 * 48 * 18
        );
        // Keeping every row costs the block type plus the bitmap.
        let (rows, cols) = (100, 256);
        for dt in VALUE_TYPES {
            let full = rows * cols / dt.block_elems() * dt.block_bytes();
            assert_eq!(row_prune_bytes(rows, cols, rows, dt), full + 13);
        }
    }

    #[test]
    fn keeps_exactly_the_top_energy_rows_by_brute_force() {
        let (rows, cols, keep) = (9, 64, 4);
        for seed in 0..5 {
            let (w, h) = random(seed, rows, cols);
            let energy = |r: usize| -> f64 {
                (0..cols)
                    .map(|j| f64::from(w[r * cols + j]).powi(2) * h[j])
                    .sum()
            };
            // Every subset of `keep` rows: the kept set has the largest total energy.
            let mut best = (f64::NEG_INFINITY, Vec::new());
            for mask in 0u32..1 << rows {
                if mask.count_ones() as usize != keep {
                    continue;
                }
                let set: Vec<usize> = (0..rows).filter(|&r| mask >> r & 1 == 1).collect();
                let e: f64 = set.iter().map(|&r| energy(r)).sum();
                if e > best.0 {
                    best = (e, set);
                }
            }
            let kept = kept_rows(&w, rows, cols, &h, keep).unwrap();
            assert_eq!(kept, best.1, "seed {seed}");
            for dt in VALUE_TYPES {
                let p = row_prune_rebuild(&w, rows, cols, &h, keep, dt).unwrap();
                for r in 0..rows {
                    let got = &p[r * cols..(r + 1) * cols];
                    if kept.contains(&r) {
                        let row = &w[r * cols..(r + 1) * cols];
                        let want = dequantize(dt, &quantize(dt, row).unwrap(), cols).unwrap();
                        assert_eq!(got, &want[..], "seed {seed} row {r} {dt}");
                        assert!(got.iter().any(|&v| v != 0.0));
                    } else {
                        assert!(got.iter().all(|&v| v == 0.0), "seed {seed} row {r} {dt}");
                    }
                }
            }
        }
    }

    #[test]
    fn uniform_weights_keep_the_largest_norm_rows_and_h_can_change_that() {
        // Row r is a constant row: norm² = cols·c_r². Rows 5, 1, 3 have the largest norms.
        let (rows, cols) = (6, 32);
        let c = [0.1f32, 0.9, 0.2, 0.7, 0.3, 1.0];
        let mut w: Vec<f32> = (0..rows * cols).map(|i| c[i / cols]).collect();
        let ones = vec![1.0; cols];
        assert_eq!(kept_rows(&w, rows, cols, &ones, 3).unwrap(), vec![1, 3, 5]);
        // Row 0 gets one large value in column 0; with h weighting column 0 by 1e4 it becomes
        // the top row, while with uniform h (energy 4 + 31·0.01 < 32·0.49) it stays out.
        w[0] = 2.0;
        assert_eq!(kept_rows(&w, rows, cols, &ones, 3).unwrap(), vec![1, 3, 5]);
        let mut h = ones.clone();
        h[0] = 1e4;
        assert_eq!(kept_rows(&w, rows, cols, &h, 3).unwrap(), vec![0, 1, 5]);
        // Negative column weights count as zero.
        h[0] = -1e4;
        let mut h0 = ones;
        h0[0] = 0.0;
        assert_eq!(
            kept_rows(&w, rows, cols, &h, 3).unwrap(),
            kept_rows(&w, rows, cols, &h0, 3).unwrap()
        );
    }

    #[test]
    fn ties_keep_all_and_bad_inputs() {
        let (rows, cols) = (4, 32);
        // Equal rows: ties go to the lower rows.
        let w = vec![0.5f32; rows * cols];
        let ones = vec![1.0; cols];
        assert_eq!(kept_rows(&w, rows, cols, &ones, 2).unwrap(), vec![0, 1]);
        // Zero column weights: every energy is 0, the first rows are kept.
        let zeros = vec![0.0; cols];
        assert_eq!(kept_rows(&w, rows, cols, &zeros, 3).unwrap(), vec![0, 1, 2]);
        // Keeping all rows is plain per-row rounding of the whole matrix.
        let (w, h) = random(7, rows, cols);
        for dt in VALUE_TYPES {
            let all = row_prune_rebuild(&w, rows, cols, &h, rows, dt).unwrap();
            let want = dequantize(dt, &quantize(dt, &w).unwrap(), w.len()).unwrap();
            assert_eq!(all, want, "{dt}");
        }
        let dt = DType::Q8_0;
        // Keeping none, or more rows than exist, is refused.
        assert!(row_prune_rebuild(&w, rows, cols, &h, 0, dt).is_err());
        assert!(row_prune_rebuild(&w, rows, cols, &h, rows + 1, dt).is_err());
        // Shapes.
        assert!(row_prune_rebuild(&w[1..], rows, cols, &h, 2, dt).is_err());
        assert!(row_prune_rebuild(&w, rows, cols, &h[1..], 2, dt).is_err());
        assert!(row_prune_rebuild(&[], 0, 0, &[], 1, dt).is_err());
        // Rows that are not whole blocks.
        assert!(row_prune_rebuild(&w, rows * 2, cols / 2, &h[..16], 2, dt).is_err());
        // Non-finite weights or column weights.
        let mut bad = w.clone();
        bad[5] = f32::NAN;
        assert!(row_prune_rebuild(&bad, rows, cols, &h, 2, dt).is_err());
        let mut hb = h.clone();
        hb[3] = f64::INFINITY;
        assert!(row_prune_rebuild(&w, rows, cols, &hb, 2, dt).is_err());
    }
}
