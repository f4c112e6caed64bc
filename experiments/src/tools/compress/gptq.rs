//! Second-order error feedback (GPTQ, Frantar et al. 2023, Algorithm 1) onto GGUF's 32-element
//! block grids, and the packing of chosen codes into GGML block bytes.
//!
//! ```text
//! layer loss   ‖X (W − Q)ᵀ‖²_F = Σ_r (w_r − q_r) H (w_r − q_r)ᵀ,   H = XᵀX + λ·I
//! U            upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU)
//! column j     q_j = grid(w_j);  e = (w_j − q_j) / U_jj;  w_k −= e · U_jk  for k > j
//! ```
//!
//! Columns are processed in blocks of 32 (one GGML block along the row): inside a block the
//! feedback is applied column by column, the rest of the row is updated once per block with one
//! matrix product (GPTQ's lazy batch update). Each row's block grid (the f16 scale, and minimum
//! for Q4_1/Q5_1) is fixed when the block is reached, by GGML's reference rule applied to the
//! row's current (already corrected) values; codes are then nearest on that stored grid.

use anyhow::{bail, Result};
use claimlab_weights::{dequantize, quantize, DType};
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::DenseSolveCore as _;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

/// Elements per block of the types GPTQ writes.
pub const GROUP: usize = 32;

/// Relative damping of the Hessian: λ = `DAMP` · mean(diag H) (GPTQ's default 0.01).
pub const DAMP: f64 = 0.01;

/// Whether [`gptq_quantize`] writes `dt` column by column (the 32-element types, whose block
/// grid is one scale and minimum).
#[must_use]
pub fn columnwise(dt: DType) -> bool {
    matches!(
        dt,
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0
    )
}

/// Whether [`gptq_quantize`] can write `dt`: the 32-element types column by column, the
/// K-quants (Q2_K..Q6_K) one 256-element super-block at a time (see [`gptq_quantize`]).
#[must_use]
pub fn supports(dt: DType) -> bool {
    columnwise(dt)
        || matches!(
            dt,
            DType::Q2_K | DType::Q3_K | DType::Q4_K | DType::Q5_K | DType::Q6_K
        )
}

/// One block's grid: value of code q is `d·(q − off) + m` (computed in f32, as the dequantiser).
#[derive(Clone, Copy, Debug)]
struct Grid {
    d: f32,
    m: f32,
    off: f32,
    qmax: i32,
    signed: bool,
    affine: bool,
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

impl Grid {
    /// GGML's grid for these 32 values (the scale rule of the reference quantiser, f16-stored).
    fn of(dt: DType, x: &[f32]) -> Result<Grid> {
        let b = quantize(dt, x)?;
        Ok(match dt {
            DType::Q4_0 => Grid::sym(f16_at(&b, 0), 8.0, 15, false),
            DType::Q5_0 => Grid::sym(f16_at(&b, 0), 16.0, 31, false),
            DType::Q8_0 => Grid::sym(f16_at(&b, 0), 0.0, 127, true),
            DType::Q4_1 => Grid::aff(f16_at(&b, 0), f16_at(&b, 2), 15),
            DType::Q5_1 => Grid::aff(f16_at(&b, 0), f16_at(&b, 2), 31),
            _ => bail!("GPTQ writes only Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, not {dt}"),
        })
    }

    fn sym(d: f32, off: f32, qmax: i32, signed: bool) -> Grid {
        Grid {
            d,
            m: 0.0,
            off,
            qmax,
            signed,
            affine: false,
        }
    }

    fn aff(d: f32, m: f32, qmax: i32) -> Grid {
        Grid {
            d,
            m,
            off: 0.0,
            qmax,
            signed: false,
            affine: true,
        }
    }

    /// The decoded value of code `q`, computed exactly as the dequantiser does.
    fn value(&self, q: i32) -> f32 {
        #[allow(clippy::cast_precision_loss)]
        let qf = q as f32;
        if self.affine {
            self.d * qf + self.m
        } else if self.signed {
            self.d * qf
        } else {
            self.d * (qf - self.off)
        }
    }

    /// Nearest code (checked against its neighbours on the f32 grid).
    fn code(&self, x: f32) -> i32 {
        let (lo, hi) = if self.signed {
            (-128, self.qmax)
        } else {
            (0, self.qmax)
        };
        if self.d == 0.0 {
            #[allow(clippy::cast_possible_truncation)]
            return if self.affine || self.signed {
                0
            } else {
                self.off as i32
            };
        }
        #[allow(clippy::cast_possible_truncation)]
        let q0 = (((x - self.m) / self.d) + self.off).round() as i32;
        let mut best = q0.clamp(lo, hi);
        let mut err = (self.value(best) - x).abs();
        for q in [best - 1, best + 1] {
            if (lo..=hi).contains(&q) {
                let e = (self.value(q) - x).abs();
                if e < err {
                    best = q;
                    err = e;
                }
            }
        }
        best
    }
}

/// Writes one block of `dt` with scale `g` and `codes` (GGML layouts, as the dequantiser reads).
fn pack(dt: DType, g: &Grid, codes: &[i32; GROUP], out: &mut [u8]) {
    let f16b = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    let u = |q: i32| q as u8;
    let nibbles = |qs: &mut [u8]| {
        for j in 0..16 {
            qs[j] = (u(codes[j]) & 0x0F) | ((u(codes[j + 16]) & 0x0F) << 4);
        }
    };
    let high = || {
        let mut qh = 0u32;
        for (j, &q) in codes.iter().enumerate() {
            qh |= u32::from((u(q) >> 4) & 1) << j;
        }
        qh.to_le_bytes()
    };
    match dt {
        DType::Q4_0 => {
            out[0..2].copy_from_slice(&f16b(g.d));
            nibbles(&mut out[2..18]);
        }
        DType::Q4_1 => {
            out[0..2].copy_from_slice(&f16b(g.d));
            out[2..4].copy_from_slice(&f16b(g.m));
            nibbles(&mut out[4..20]);
        }
        DType::Q5_0 => {
            out[0..2].copy_from_slice(&f16b(g.d));
            out[2..6].copy_from_slice(&high());
            nibbles(&mut out[6..22]);
        }
        DType::Q5_1 => {
            out[0..2].copy_from_slice(&f16b(g.d));
            out[2..4].copy_from_slice(&f16b(g.m));
            out[4..8].copy_from_slice(&high());
            nibbles(&mut out[8..24]);
        }
        DType::Q8_0 => {
            out[0..2].copy_from_slice(&f16b(g.d));
            for (o, &q) in out[2..34].iter_mut().zip(codes) {
                #[allow(clippy::cast_possible_truncation)]
                let b = (q as i8).to_le_bytes()[0];
                *o = b;
            }
        }
        _ => unreachable!("checked by Grid::of"),
    }
}

/// Upper Cholesky factor U of (H + λI)⁻¹ with λ = [`DAMP`]·mean(diag H); zero diagonal entries
/// (inputs that never fire) are set to 1 first, as GPTQ does.
///
/// # Errors
/// When H is not square or not positive definite after damping, or has non-finite entries.
pub fn inverse_cholesky_upper(h: MatRef<'_, f64>) -> Result<Mat<f64>> {
    inverse_cholesky_upper_damped(h, DAMP)
}

/// [`inverse_cholesky_upper`] with relative damping `damp` instead of [`DAMP`].
///
/// # Errors
/// As [`inverse_cholesky_upper`], and a negative or non-finite `damp`.
pub fn inverse_cholesky_upper_damped(h: MatRef<'_, f64>, damp: f64) -> Result<Mat<f64>> {
    if !(damp.is_finite() && damp >= 0.0) {
        bail!("GPTQ damping must be a finite non-negative number, got {damp}");
    }
    let n = h.nrows();
    if h.ncols() != n || n == 0 {
        bail!(
            "Hessian must be square and non-empty, got {}x{}",
            n,
            h.ncols()
        );
    }
    let mut hd = h.to_owned();
    let mut mean = 0.0;
    for j in 0..n {
        if !hd[(j, j)].is_finite() {
            bail!("Hessian has a non-finite diagonal entry at {j}");
        }
        if hd[(j, j)] <= 0.0 {
            hd[(j, j)] = 1.0;
        }
        mean += hd[(j, j)];
    }
    #[allow(clippy::cast_precision_loss)]
    let lambda = damp * mean / n as f64;
    for j in 0..n {
        hd[(j, j)] += lambda;
    }
    let llt = hd
        .llt(Side::Lower)
        .map_err(|e| anyhow::anyhow!("Hessian not positive definite after damping: {e:?}"))?;
    let hinv = llt.inverse();
    let l2 = hinv
        .llt(Side::Lower)
        .map_err(|e| anyhow::anyhow!("inverse Hessian not positive definite: {e:?}"))?;
    Ok(l2.L().transpose().to_owned())
}

/// GPTQ quantisation of a `[rows, cols]` row-major matrix `w` into block type `dt` (rows are
/// GGML rows: blocks run along them), given the upper factor `u` of the damped inverse Hessian
/// of its inputs ([`inverse_cholesky_upper`] of `XᵀX`).
///
/// The 32-element types are written column by column (module doc). A K-quant's grid (sub-block
/// scales and minima quantised jointly over 256 elements) is not separable per column, so each
/// super-block is quantised by GGML's reference rule (its scale search sees the row's current,
/// already corrected values) and its whole error is fed forward at once, the block form of the
/// same update: `E = (W_B − Q_B) U_BB⁻¹`, `W_R −= E U_BR` for the columns R after block B.
///
/// # Returns
/// The GGML bytes (decodable by `dequantize`).
///
/// # Errors
/// An unsupported type, `cols` not a multiple of the type's block, shapes that disagree,
/// non-finite weights.
///
/// # Complexity
/// `O(rows·cols²)` flops, most in one matrix product per block; memory one f64 copy of `w`.
pub fn gptq_quantize(
    dt: DType,
    w: &[f32],
    rows: usize,
    cols: usize,
    u: MatRef<'_, f64>,
) -> Result<Vec<u8>> {
    if !supports(dt) {
        bail!("GPTQ writes only Q2_K..Q6_K, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, not {dt}");
    }
    let be = dt.block_elems();
    if !cols.is_multiple_of(be) || w.len() != rows * cols || u.nrows() != cols || u.ncols() != cols
    {
        bail!(
            "GPTQ shapes: {} values for {rows}x{cols}, factor {}x{} (cols must be a multiple of {be})",
            w.len(),
            u.nrows(),
            u.ncols()
        );
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        bail!("GPTQ: non-finite weight at index {i}");
    }
    let out = if columnwise(dt) {
        columnwise_quantize(dt, w, rows, cols, u)?
    } else {
        blockwise_quantize(dt, w, rows, cols, u)?
    };
    // Self-check: the bytes decode to finite values.
    let back = dequantize(dt, &out, rows * cols)?;
    if back.iter().any(|v| !v.is_finite()) {
        bail!("GPTQ produced non-finite values");
    }
    Ok(out)
}

/// The super-block form for the K-quants (see [`gptq_quantize`]).
fn blockwise_quantize(
    dt: DType,
    w: &[f32],
    rows: usize,
    cols: usize,
    u: MatRef<'_, f64>,
) -> Result<Vec<u8>> {
    let (be, bb) = (dt.block_elems(), dt.block_bytes());
    let blocks_per_row = cols / be;
    let mut out = vec![0u8; rows * blocks_per_row * bb];
    let mut wm = Mat::<f64>::from_fn(rows, cols, |r, c| f64::from(w[r * cols + c]));
    // Transposed error of one block, `[be, rows]`, so the triangular solve runs in place.
    let mut et = Mat::<f64>::zeros(be, rows);
    let mut xs = vec![0f32; be];
    for b in 0..blocks_per_row {
        let c0 = b * be;
        for r in 0..rows {
            for (k, x) in xs.iter_mut().enumerate() {
                #[allow(clippy::cast_possible_truncation)]
                let v = wm[(r, c0 + k)] as f32;
                *x = v;
            }
            let q = quantize(dt, &xs)?;
            let back = dequantize(dt, &q, be)?;
            for k in 0..be {
                et[(k, r)] = wm[(r, c0 + k)] - f64::from(back[k]);
            }
            let at = (r * blocks_per_row + b) * bb;
            out[at..at + bb].copy_from_slice(&q);
        }
        let c1 = c0 + be;
        if c1 < cols {
            // E U_BB = D  <=>  U_BBᵀ Eᵀ = Dᵀ.
            solve_lower_triangular_in_place(
                u.submatrix(c0, c0, be, be).transpose(),
                et.as_mut(),
                Par::Seq,
            );
            matmul(
                wm.as_mut().submatrix_mut(0, c1, rows, cols - c1),
                Accum::Add,
                et.as_ref().transpose(),
                u.submatrix(c0, c1, be, cols - c1),
                -1.0,
                Par::Seq,
            );
        }
    }
    Ok(out)
}

/// The column-by-column form for the 32-element types (module doc).
fn columnwise_quantize(
    dt: DType,
    w: &[f32],
    rows: usize,
    cols: usize,
    u: MatRef<'_, f64>,
) -> Result<Vec<u8>> {
    let bb = dt.block_bytes();
    let blocks_per_row = cols / GROUP;
    let mut out = vec![0u8; rows * blocks_per_row * bb];
    let mut wm = Mat::<f64>::from_fn(rows, cols, |r, c| f64::from(w[r * cols + c]));
    let mut err = Mat::<f64>::zeros(rows, GROUP);
    let mut x32 = [0f32; GROUP];
    let mut codes = [0i32; GROUP];
    for b in 0..blocks_per_row {
        let c0 = b * GROUP;
        for r in 0..rows {
            for (k, x) in x32.iter_mut().enumerate() {
                #[allow(clippy::cast_possible_truncation)]
                let v = wm[(r, c0 + k)] as f32;
                *x = v;
            }
            let g = Grid::of(dt, &x32)?;
            for k in 0..GROUP {
                let j = c0 + k;
                #[allow(clippy::cast_possible_truncation)]
                let x = wm[(r, j)] as f32;
                let q = g.code(x);
                codes[k] = q;
                let e = (wm[(r, j)] - f64::from(g.value(q))) / u[(j, j)];
                err[(r, k)] = e;
                for k2 in k + 1..GROUP {
                    wm[(r, c0 + k2)] -= e * u[(j, c0 + k2)];
                }
            }
            let at = (r * blocks_per_row + b) * bb;
            pack(dt, &g, &codes, &mut out[at..at + bb]);
        }
        let c1 = c0 + GROUP;
        if c1 < cols {
            let rest: MatMut<'_, f64> = wm.as_mut().submatrix_mut(0, c1, rows, cols - c1);
            matmul(
                rest,
                Accum::Add,
                err.as_ref(),
                u.submatrix(c0, c1, GROUP, cols - c1),
                -1.0,
                Par::Seq,
            );
        }
    }
    Ok(out)
}

/// GPTQ beside plain rounding on one matrix, in the calibration objective and plain error.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct GptqReport {
    /// `tr(ΔW H ΔWᵀ)` of plain rounding (H the undamped calibration `XᵀX/n`).
    pub rtn_hessian_error: f64,
    /// The same for GPTQ.
    pub gptq_hessian_error: f64,
    /// Plain squared error of rounding.
    pub rtn_sq_error: f64,
    /// Plain squared error of GPTQ.
    pub gptq_sq_error: f64,
}

/// [`gptq_quantize`] with the factor of `h` (`XᵀX/n`) damped by `damp`, and its errors beside
/// plain rounding's.
///
/// # Errors
/// As [`gptq_quantize`] and [`inverse_cholesky_upper_damped`].
pub fn gptq_with_report(
    dt: DType,
    w: &[f32],
    rows: usize,
    cols: usize,
    h: MatRef<'_, f64>,
    damp: f64,
) -> Result<(Vec<u8>, GptqReport)> {
    let u = inverse_cholesky_upper_damped(h, damp)?;
    let g = gptq_quantize(dt, w, rows, cols, u.as_ref())?;
    drop(u);
    let gq = dequantize(dt, &g, w.len())?;
    let rq = dequantize(dt, &quantize(dt, w)?, w.len())?;
    let d = |q: &[f32]| -> Vec<f64> {
        w.iter()
            .zip(q)
            .map(|(&a, &b)| f64::from(a) - f64::from(b))
            .collect()
    };
    let (dg, dr) = (d(&gq), d(&rq));
    let rep = GptqReport {
        rtn_hessian_error: hessian_error(&dr, rows, cols, h),
        gptq_hessian_error: hessian_error(&dg, rows, cols, h),
        rtn_sq_error: dr.iter().map(|v| v * v).sum(),
        gptq_sq_error: dg.iter().map(|v| v * v).sum(),
    };
    Ok((g, rep))
}

/// `Σ_r (w_r − q_r) H (w_r − q_r)ᵀ` for a `[rows, cols]` difference `dw` and `H` (`cols × cols`):
/// the squared output error `‖X ΔWᵀ‖²` when `H = XᵀX`.
#[must_use]
pub fn hessian_error(dw: &[f64], rows: usize, cols: usize, h: MatRef<'_, f64>) -> f64 {
    let d = MatRef::from_row_major_slice(dw, rows, cols);
    let mut dh = Mat::<f64>::zeros(rows, cols);
    matmul(dh.as_mut(), Accum::Replace, d, h, 1.0, Par::Seq);
    let mut s = 0.0;
    for r in 0..rows {
        for c in 0..cols {
            s += dh[(r, c)] * d[(r, c)];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn gram(x: &[f64], n: usize, d: usize) -> Mat<f64> {
        let xm = MatRef::from_row_major_slice(x, n, d);
        xm.transpose() * xm
    }

    fn diff(w: &[f32], q: &[f32]) -> Vec<f64> {
        w.iter()
            .zip(q)
            .map(|(&a, &b)| f64::from(a) - f64::from(b))
            .collect()
    }

    #[test]
    fn packed_blocks_decode_to_the_grid_values() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for dt in [
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_0,
            DType::Q5_1,
            DType::Q8_0,
        ] {
            for _ in 0..50 {
                let x: Vec<f32> = (0..GROUP)
                    .map(|_| rng.random::<f32>() * 2.0 - 0.7)
                    .collect();
                let g = Grid::of(dt, &x).unwrap();
                let mut codes = [0i32; GROUP];
                for (c, &v) in codes.iter_mut().zip(&x) {
                    *c = g.code(v);
                }
                let mut b = vec![0u8; dt.block_bytes()];
                pack(dt, &g, &codes, &mut b);
                let back = dequantize(dt, &b, GROUP).unwrap();
                for k in 0..GROUP {
                    assert_eq!(back[k].to_bits(), g.value(codes[k]).to_bits(), "{dt} {k}");
                }
                // Nearest-on-grid rounding is never worse than GGML's own codes (same grid).
                let ggml = dequantize(dt, &quantize(dt, &x).unwrap(), GROUP).unwrap();
                let e_ours: f64 = diff(&x, &back).iter().map(|v| v * v).sum();
                let e_ggml: f64 = diff(&x, &ggml).iter().map(|v| v * v).sum();
                assert!(
                    e_ours <= e_ggml * (1.0 + 1e-9) + 1e-18,
                    "{dt}: {e_ours} > {e_ggml}"
                );
            }
        }
    }

    #[test]
    fn gptq_beats_rounding_on_correlated_inputs() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let (n, d, rows) = (256, 64, 16);
        // Correlated inputs: x = z A with a random mixing matrix.
        let a: Vec<f64> = (0..d * d).map(|_| rng.random::<f64>() - 0.5).collect();
        let z: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>() - 0.5).collect();
        let x = MatRef::from_row_major_slice(&z, n, d) * MatRef::from_row_major_slice(&a, d, d);
        let xs: Vec<f64> = (0..n * d).map(|i| x[(i / d, i % d)]).collect();
        let h = gram(&xs, n, d);
        let u = inverse_cholesky_upper(h.as_ref()).unwrap();
        let w: Vec<f32> = (0..rows * d).map(|_| rng.random::<f32>() - 0.5).collect();
        for dt in [DType::Q4_0, DType::Q4_1, DType::Q5_1, DType::Q8_0] {
            let g = gptq_quantize(dt, &w, rows, d, u.as_ref()).unwrap();
            let gq = dequantize(dt, &g, w.len()).unwrap();
            let rq = dequantize(dt, &quantize(dt, &w).unwrap(), w.len()).unwrap();
            let eg = hessian_error(&diff(&w, &gq), rows, d, h.as_ref());
            let er = hessian_error(&diff(&w, &rq), rows, d, h.as_ref());
            assert!(eg < 0.8 * er, "{dt}: GPTQ {eg} vs rounding {er}");
        }
    }

    /// Correlated inputs `x = z A` (`n` tokens of `d` columns) and their population Gram
    /// `n·AᵀE[zzᵀ]A` (z uniform on [-1/2, 1/2): E[zzᵀ] = I/12).
    fn correlated(rng: &mut Xoshiro256PlusPlus, n: usize, d: usize) -> (Mat<f64>, Mat<f64>) {
        let a: Vec<f64> = (0..d * d).map(|_| rng.random::<f64>() - 0.5).collect();
        let am = MatRef::from_row_major_slice(&a, d, d);
        let z: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>() - 0.5).collect();
        let x = MatRef::from_row_major_slice(&z, n, d) * am;
        #[allow(clippy::cast_precision_loss)]
        let pop = (am.transpose() * am) * faer::Scale(n as f64 / 12.0);
        (x.transpose() * &x, pop)
    }

    /// The calibration-weighted error `tr((W−Q) H (W−Q)ᵀ)` of GPTQ must be below plain
    /// rounding's for every type of the menu, on the calibration Gram and on the population
    /// Gram of the same input distribution (no gain from over-fitting the sample).
    #[test]
    fn gptq_beats_rounding_for_every_type() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let (rows, d) = (8, 1024);
        let (h, pop) = correlated(&mut rng, 4 * d, d);
        let u = inverse_cholesky_upper(h.as_ref()).unwrap();
        let w: Vec<f32> = (0..rows * d).map(|_| rng.random::<f32>() - 0.5).collect();
        for dt in crate::tools::compress::MENU {
            assert!(supports(dt), "{dt}");
            let g = gptq_quantize(dt, &w, rows, d, u.as_ref()).unwrap();
            let gq = dequantize(dt, &g, w.len()).unwrap();
            let rq = dequantize(dt, &quantize(dt, &w).unwrap(), w.len()).unwrap();
            for (what, hm) in [("calibration", &h), ("population", &pop)] {
                let eg = hessian_error(&diff(&w, &gq), rows, d, hm.as_ref());
                let er = hessian_error(&diff(&w, &rq), rows, d, hm.as_ref());
                // Column-wise feedback gains much more than the 4 super-blocks of a K-quant.
                let need = if columnwise(dt) { 0.8 } else { 0.97 };
                assert!(
                    eg < need * er,
                    "{dt} {what}: GPTQ {eg:.4e} vs rounding {er:.4e} (ratio {:.3})",
                    eg / er
                );
            }
        }
    }

    #[test]
    fn identity_hessian_gives_plain_nearest_rounding() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let (rows, d) = (8, 64);
        let h = Mat::<f64>::identity(d, d);
        let u = inverse_cholesky_upper(h.as_ref()).unwrap();
        let w: Vec<f32> = (0..rows * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let g = gptq_quantize(DType::Q4_0, &w, rows, d, u.as_ref()).unwrap();
        let gq = dequantize(DType::Q4_0, &g, w.len()).unwrap();
        let rq = dequantize(DType::Q4_0, &quantize(DType::Q4_0, &w).unwrap(), w.len()).unwrap();
        let eg: f64 = diff(&w, &gq).iter().map(|v| v * v).sum();
        let er: f64 = diff(&w, &rq).iter().map(|v| v * v).sum();
        assert!(eg <= er * (1.0 + 1e-9), "{eg} {er}");
        assert!(eg >= er * 0.99, "{eg} {er}");
    }

    #[test]
    fn hessian_error_matches_brute_force() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (n, d, rows) = (10, 6, 3);
        let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
        let dw: Vec<f64> = (0..rows * d).map(|_| rng.random::<f64>() - 0.5).collect();
        let h = gram(&x, n, d);
        let mut brute = 0.0;
        for t in 0..n {
            for r in 0..rows {
                let y: f64 = (0..d).map(|j| x[t * d + j] * dw[r * d + j]).sum();
                brute += y * y;
            }
        }
        let got = hessian_error(&dw, rows, d, h.as_ref());
        assert!((got - brute).abs() <= 1e-10 * brute, "{got} {brute}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let u = Mat::<f64>::identity(32, 32);
        assert!(gptq_quantize(DType::Q4_K, &[0.0; 32], 1, 32, u.as_ref()).is_err());
        assert!(gptq_quantize(DType::Q4_0, &[0.0; 31], 1, 31, u.as_ref()).is_err());
        assert!(gptq_quantize(DType::Q4_0, &[f32::NAN; 32], 1, 32, u.as_ref()).is_err());
        let h = Mat::<f64>::from_fn(2, 2, |_, _| f64::NAN);
        assert!(inverse_cholesky_upper(h.as_ref()).is_err());
    }
}
