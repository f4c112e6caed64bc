//! Truncated SVD options for the compression menu: `W ≈ A B` with `A` `[rows, r]` and `B`
//! `[r, cols]`, both factors stored in a 32-element GGUF block type (Q8_0 or Q4_0).
//!
//! The factorisation is activation-aware in the same sense as the menu's damage proxy: the SVD
//! is taken of `W D` with `D = diag(√h)` (h the mean squared input per column), which minimises
//! `Σ_rj ΔW_rj² h_j` over rank-r matrices (Eckart–Young in the weighted norm); `B = B' D⁻¹`.
//! Columns that never fire (`h_j = 0`) get a tiny floor so `D` stays invertible.
//!
//! Stored bytes: `A` as `rows` GGUF rows of `r` elements, `B` as `r` rows of `cols` elements,
//! so `r` must be a multiple of 32; no other bytes (the rank is in the shapes). No GGUF reader
//! (llama.cpp included) knows to multiply the two tensors back: these options are loadable only
//! by a runtime that applies them as a dense override, as ours does for the measurement.

use anyhow::{bail, Result};
use claimlab_weights::{dequantize, quantize, DType};
use faer::Mat;

/// Factor storage types tried.
pub const FACTOR_TYPES: [DType; 2] = [DType::Q4_0, DType::Q8_0];

/// Ranks tried: multiples of this.
pub const RANK_STEP: usize = 32;

/// Stored bytes of a rank-`rank` factorisation of a `[rows, cols]` matrix with factors in `dt`.
#[must_use]
pub fn svd_bytes(rows: usize, cols: usize, rank: usize, dt: DType) -> usize {
    (rows * rank + rank * cols) / dt.block_elems() * dt.block_bytes()
}

/// A weighted truncated SVD, kept to rebuild any rank up to the full one.
#[derive(Debug)]
pub struct WeightedSvd {
    rows: usize,
    cols: usize,
    /// `U Σ`, `[rows, k]`.
    us: Mat<f64>,
    /// `Vᵀ D⁻¹`, `[k, cols]`.
    vt: Mat<f64>,
}

impl WeightedSvd {
    /// The SVD of `W D` for row-major `w` `[rows, cols]` and column weights `hdiag`.
    ///
    /// # Errors
    /// Shapes that disagree, non-finite values, or an SVD that does not converge.
    pub fn new(w: &[f32], rows: usize, cols: usize, hdiag: &[f64]) -> Result<Self> {
        if w.len() != rows * cols || hdiag.len() != cols || rows == 0 || cols == 0 {
            bail!(
                "SVD shapes: {} values for {rows}x{cols}, {} column weights",
                w.len(),
                hdiag.len()
            );
        }
        if w.iter().any(|v| !v.is_finite()) || hdiag.iter().any(|v| !v.is_finite()) {
            bail!("SVD: non-finite weight or column weight");
        }
        let top = hdiag.iter().copied().fold(0.0f64, f64::max);
        let floor = (top * 1e-12).max(f64::MIN_POSITIVE);
        let dsq: Vec<f64> = hdiag.iter().map(|&h| h.max(floor).sqrt()).collect();
        let wd = Mat::<f64>::from_fn(rows, cols, |r, c| f64::from(w[r * cols + c]) * dsq[c]);
        let svd = wd
            .thin_svd()
            .map_err(|e| anyhow::anyhow!("SVD did not converge: {e:?}"))?;
        let k = rows.min(cols);
        let s = svd.S().column_vector();
        let us = Mat::<f64>::from_fn(rows, k, |r, i| svd.U()[(r, i)] * s[i]);
        let vt = Mat::<f64>::from_fn(k, cols, |i, c| svd.V()[(c, i)] / dsq[c]);
        Ok(Self { rows, cols, us, vt })
    }

    /// Largest rank available.
    #[must_use]
    pub fn max_rank(&self) -> usize {
        self.us.ncols()
    }

    /// The rank-`rank` reconstruction with both factors rounded to `dt` (what a reader of the
    /// stored factors would multiply back), row-major `[rows, cols]`.
    ///
    /// # Errors
    /// `rank` above the largest rank or not a multiple of the block, or a failing quantiser.
    pub fn rebuild(&self, rank: usize, dt: DType) -> Result<Vec<f32>> {
        if rank == 0 || rank > self.max_rank() || !rank.is_multiple_of(dt.block_elems()) {
            bail!(
                "SVD rank {rank}: must be a positive multiple of {} up to {}",
                dt.block_elems(),
                self.max_rank()
            );
        }
        if !self.cols.is_multiple_of(dt.block_elems()) {
            bail!("SVD factor rows of {} do not fit {dt} blocks", self.cols);
        }
        #[allow(clippy::cast_possible_truncation)]
        let a: Vec<f32> = (0..self.rows * rank)
            .map(|i| self.us[(i / rank, i % rank)] as f32)
            .collect();
        #[allow(clippy::cast_possible_truncation)]
        let b: Vec<f32> = (0..rank * self.cols)
            .map(|i| self.vt[(i / self.cols, i % self.cols)] as f32)
            .collect();
        let aq = dequantize(dt, &quantize(dt, &a)?, a.len())?;
        let bq = dequantize(dt, &quantize(dt, &b)?, b.len())?;
        let am = Mat::<f64>::from_fn(self.rows, rank, |r, i| f64::from(aq[r * rank + i]));
        let bm = Mat::<f64>::from_fn(rank, self.cols, |i, c| f64::from(bq[i * self.cols + c]));
        let p = am * bm;
        #[allow(clippy::cast_possible_truncation)]
        Ok((0..self.rows * self.cols)
            .map(|i| p[(i / self.cols, i % self.cols)] as f32)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn wsse(w: &[f32], b: &[f32], cols: usize, h: &[f64]) -> f64 {
        w.iter()
            .zip(b)
            .enumerate()
            .map(|(i, (&x, &y))| (f64::from(x) - f64::from(y)).powi(2) * h[i % cols])
            .sum()
    }

    #[test]
    fn low_rank_matrix_is_rebuilt_and_bytes_count_both_factors() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let (rows, cols, r) = (48, 64, 32);
        let a: Vec<f64> = (0..rows * r).map(|_| rng.random::<f64>() - 0.5).collect();
        let b: Vec<f64> = (0..r * cols).map(|_| rng.random::<f64>() - 0.5).collect();
        #[allow(clippy::cast_possible_truncation)]
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| {
                (0..r)
                    .map(|k| a[(i / cols) * r + k] * b[k * cols + i % cols])
                    .sum::<f64>() as f32
            })
            .collect();
        let h: Vec<f64> = (0..cols).map(|j| 0.5 + (j % 5) as f64).collect();
        let s = WeightedSvd::new(&w, rows, cols, &h).unwrap();
        let back = s.rebuild(r, DType::Q8_0).unwrap();
        let rel = wsse(&w, &back, cols, &h) / wsse(&w, &vec![0.0; w.len()], cols, &h);
        // Exact rank r: only the Q8_0 rounding of the factors remains.
        assert!(rel < 1e-3, "{rel}");
        assert_eq!(svd_bytes(rows, cols, r, DType::Q8_0), (rows + cols) * 34);
        assert!(s.rebuild(16, DType::Q8_0).is_err());
    }

    #[test]
    fn weighted_svd_beats_plain_svd_in_the_weighted_norm() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let (rows, cols) = (64, 64);
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let h: Vec<f64> = (0..cols).map(|j| if j < 8 { 100.0 } else { 1.0 }).collect();
        let weighted = WeightedSvd::new(&w, rows, cols, &h).unwrap();
        let plain = WeightedSvd::new(&w, rows, cols, &[1.0; 64]).unwrap();
        let ew = wsse(&w, &weighted.rebuild(32, DType::Q8_0).unwrap(), cols, &h);
        let ep = wsse(&w, &plain.rebuild(32, DType::Q8_0).unwrap(), cols, &h);
        assert!(ew < 0.9 * ep, "{ew} {ep}");
    }
}
