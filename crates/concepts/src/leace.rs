//! LEACE: least-squares concept erasure in closed form.

use faer::{Mat, MatRef};

use crate::check::{finite_matrix, matrix_and_labels};
use crate::error::{Error, Result};
use crate::tol::{CONCEPT_RANK_TOL, RANK_TOL};

/// A fitted LEACE eraser, the affine map
///
/// ```text
/// r(x) = x − E Fᵀ (x − μ)  =  A x + b,   A = I − E Fᵀ,   b = E Fᵀ μ
/// E = W⁺ Q,  F = W Q,  W = (Σ_XX^{1/2})⁺,  Q an orthonormal basis of the column space of W Σ_XZ
/// ```
///
/// so that `W⁺ Q Qᵀ W` is the paper's `W⁺ P_{WΣ_XZ} W`. `E` and `F` are `d × q` with `q` the rank
/// of the concept's cross-covariance (1 for a binary label), so the eraser costs O(d·q) per row.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LeaceEraser {
    /// Training mean `μ` of the activations.
    pub mean: Vec<f64>,
    /// `E = W⁺ Q`, `d × q`.
    pub e: Mat<f64>,
    /// `F = W Q`, `d × q`.
    pub f: Mat<f64>,
    /// Rank of the covariance kept by the whitening (eigenvalues above `1e−10 · λ_max`).
    pub covariance_rank: usize,
}

impl LeaceEraser {
    /// Width `d` of the activations.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Rank `q` of the erased subspace (0: nothing to erase, the eraser is the identity).
    #[must_use]
    pub fn concept_rank(&self) -> usize {
        self.e.ncols()
    }

    fn check_width(&self, got: usize, what: &'static str) -> Result<()> {
        if got != self.dim() {
            return Err(Error::DimensionMismatch {
                what,
                expected: self.dim(),
                got,
            });
        }
        Ok(())
    }

    /// Applies the eraser to every row of `x`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] when `x` is not `· × d`; [`Error::NonFinite`], [`Error::Empty`].
    ///
    /// # Complexity
    /// O(n·d·q).
    pub fn erase(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        finite_matrix(x)?;
        self.check_width(x.ncols(), "columns of x")?;
        let xc = Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] - self.mean[j]);
        let coef = &xc * &self.f; // n × q
        let shift = &coef * self.e.transpose(); // n × d
        Ok(Mat::from_fn(x.nrows(), x.ncols(), |i, j| {
            x[(i, j)] - shift[(i, j)]
        }))
    }

    /// The linear part `A = I − E Fᵀ` (`d × d`) of `r(x) = A x + b`.
    #[must_use]
    pub fn matrix(&self) -> Mat<f64> {
        let ef = &self.e * self.f.transpose();
        Mat::from_fn(self.dim(), self.dim(), |i, j| {
            f64::from(u8::from(i == j)) - ef[(i, j)]
        })
    }

    /// The offset `b = E Fᵀ μ` of `r(x) = A x + b`.
    #[must_use]
    pub fn offset(&self) -> Vec<f64> {
        let ftm: Vec<f64> = (0..self.concept_rank())
            .map(|c| (0..self.dim()).map(|j| self.f[(j, c)] * self.mean[j]).sum())
            .collect();
        (0..self.dim())
            .map(|i| (0..ftm.len()).map(|c| self.e[(i, c)] * ftm[c]).sum())
            .collect()
    }

    /// Folds the eraser into a following linear layer `y = W x + c` (`W` is `out × d`, PyTorch
    /// order): returns `(W', c')` with `W' x + c' = W r(x) + c` for every `x`,
    ///
    /// ```text
    /// W' = W − (W E) Fᵀ,   c' = c + (W E)(Fᵀ μ)
    /// ```
    ///
    /// A layer without bias (llama's projections) takes `bias = None`; then `c' = W b` is the
    /// bias that an exact edit would need, and `W'` alone still erases the concept (a constant
    /// shift does not change class-conditional mean differences) but moves the output further.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] when `W` has not `d` columns or `bias` not `out` entries;
    /// [`Error::NonFinite`], [`Error::Empty`].
    ///
    /// # Complexity
    /// O(out·d·q).
    pub fn fold_into_linear(
        &self,
        w: MatRef<'_, f64>,
        bias: Option<&[f64]>,
    ) -> Result<(Mat<f64>, Vec<f64>)> {
        finite_matrix(w)?;
        self.check_width(w.ncols(), "columns of the weight")?;
        if let Some(b) = bias {
            if b.len() != w.nrows() {
                return Err(Error::DimensionMismatch {
                    what: "bias entries",
                    expected: w.nrows(),
                    got: b.len(),
                });
            }
        }
        let we = w * &self.e; // out × q
        let w2 = {
            let wef = &we * self.f.transpose();
            Mat::from_fn(w.nrows(), w.ncols(), |i, j| w[(i, j)] - wef[(i, j)])
        };
        let off = self.offset();
        let wb: Vec<f64> = (0..w.nrows())
            .map(|i| (0..w.ncols()).map(|j| w[(i, j)] * off[j]).sum())
            .collect();
        let c2 = match bias {
            Some(b) => b.iter().zip(&wb).map(|(a, c)| a + c).collect(),
            None => wb,
        };
        Ok((w2, c2))
    }
}

/// Multiplies every entry of `m` by `s`.
fn scale(m: &mut Mat<f64>, s: f64) {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            m[(i, j)] *= s;
        }
    }
}

/// Fits the LEACE eraser of a concept `z` (`n × k`: one-hot classes, or any numeric concept
/// matrix) from activations `x` (`n × d`, rows are examples).
///
/// After erasure the cross-covariance of `r(X)` with `Z` is zero on the fitting data (so every
/// class-conditional mean is the same and no linear predictor of `Z` beats a constant), and among
/// all affine maps with that property `r` moves the data least in mean squared distance (for every
/// norm `‖·‖_M` at once).
///
/// # Arguments
/// * `x` — activations `n × d`, finite.
/// * `z` — concept `n × k`, finite. Covariances use the population normalisation (the eraser does
///   not depend on it).
///
/// # Returns
/// The eraser; its `concept_rank` is 0 when `x` and `z` are uncorrelated (nothing to erase).
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::DimensionMismatch`] (rows of `z`);
/// [`Error::Degenerate`] when all rows of `x` are equal; [`Error::Decomposition`] when the
/// eigendecomposition or SVD fails.
///
/// # Complexity
/// O(n·d·min(n, d)) time (thin SVD of the centred activations), O(n·d) memory.
///
/// # References
/// N. Belrose, D. Schneider-Joseph, S. Ravfogel, R. Cotterell, E. Raff, S. Biderman, "LEACE:
/// Perfect linear concept erasure in closed form", NeurIPS 2023, Theorem 4.3 (arXiv:2306.03819).
///
/// # Example
/// ```
/// use claimlab_concepts::{leace_binary, class_means, faer::Mat};
/// let labels: Vec<bool> = (0..8).map(|i| i % 2 == 0).collect();
/// let x = Mat::from_fn(8, 2, |i, j| if j == 0 { f64::from(u8::from(labels[i])) + i as f64 * 0.1 } else { (i * i) as f64 * 0.05 });
/// let eraser = leace_binary(x.as_ref(), &labels).unwrap();
/// let (m0, m1) = class_means(eraser.erase(x.as_ref()).unwrap().as_ref(), &labels).unwrap();
/// assert!((m0[0] - m1[0]).abs() < 1e-9 && (m0[1] - m1[1]).abs() < 1e-9);
/// ```
pub fn leace(x: MatRef<'_, f64>, z: MatRef<'_, f64>) -> Result<LeaceEraser> {
    finite_matrix(x)?;
    finite_matrix(z)?;
    if z.nrows() != x.nrows() {
        return Err(Error::DimensionMismatch {
            what: "rows of z",
            expected: x.nrows(),
            got: z.nrows(),
        });
    }
    let (n, d) = (x.nrows(), x.ncols());
    let nf = n as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| x[(i, j)]).sum::<f64>() / nf)
        .collect();
    let zmean: Vec<f64> = (0..z.ncols())
        .map(|j| (0..n).map(|i| z[(i, j)]).sum::<f64>() / nf)
        .collect();
    let xc = Mat::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
    let zc = Mat::from_fn(n, z.ncols(), |i, j| z[(i, j)] - zmean[j]);
    let mut sxz = xc.transpose() * &zc;
    scale(&mut sxz, 1.0 / nf);
    // Σ_XX = Xcᵀ Xc / n = V diag(s²/n) Vᵀ from the thin SVD of the centred data: O(n·d·min(n, d)),
    // so a wide matrix (fewer rows than features) costs O(n²·d), not O(d³).
    let svd_x = xc
        .thin_svd()
        .map_err(|_| Error::Decomposition("SVD of the centred activations"))?;
    drop(xc);
    let sx = svd_x.S().column_vector();
    let r_all = sx.nrows();
    let lam: Vec<f64> = (0..r_all).map(|i| sx[i] * sx[i] / nf).collect();
    let lmax = lam.iter().copied().fold(0.0f64, f64::max);
    if lmax.is_nan() || lmax <= 0.0 {
        return Err(Error::Degenerate("all rows of x are equal"));
    }
    let keep: Vec<usize> = (0..r_all).filter(|&i| lam[i] > RANK_TOL * lmax).collect();
    let v = svd_x.V();
    let vr = Mat::from_fn(d, keep.len(), |i, c| v[(i, keep[c])]);
    let inv_sqrt: Vec<f64> = keep.iter().map(|&i| 1.0 / lam[i].sqrt()).collect();
    let sqrt: Vec<f64> = keep.iter().map(|&i| lam[i].sqrt()).collect();
    // W v = V_r diag(λ^{-1/2}) V_rᵀ v, W⁺ v = V_r diag(λ^{1/2}) V_rᵀ v.
    let apply = |m: &Mat<f64>, s: &[f64]| -> Mat<f64> {
        let mut t = vr.transpose() * m;
        for (r, &sr) in s.iter().enumerate() {
            for c in 0..t.ncols() {
                t[(r, c)] *= sr;
            }
        }
        &vr * &t
    };
    let m = apply(&sxz, &inv_sqrt); // d × k
    let mnorm = m.as_ref().norm_max();
    let empty = || LeaceEraser {
        mean: mean.clone(),
        e: Mat::zeros(d, 0),
        f: Mat::zeros(d, 0),
        covariance_rank: keep.len(),
    };
    if mnorm.is_nan() || mnorm <= 0.0 {
        return Ok(empty());
    }
    let svd = m
        .thin_svd()
        .map_err(|_| Error::Decomposition("SVD of the whitened cross-covariance"))?;
    let s = svd.S().column_vector();
    let smax = s[0];
    let q_rank = (0..s.nrows())
        .filter(|&i| s[i] > CONCEPT_RANK_TOL * smax)
        .count();
    if q_rank == 0 {
        return Ok(empty());
    }
    let q = Mat::from_fn(d, q_rank, |i, c| svd.U()[(i, c)]);
    let f = apply(&q, &inv_sqrt);
    let e = apply(&q, &sqrt);
    Ok(LeaceEraser {
        mean,
        e,
        f,
        covariance_rank: keep.len(),
    })
}

/// [`leace`] for a binary concept (`z` is the 0/1 label column).
///
/// # Errors
/// As [`leace`]; [`Error::DimensionMismatch`] when `labels` has not one entry per row.
pub fn leace_binary(x: MatRef<'_, f64>, labels: &[bool]) -> Result<LeaceEraser> {
    matrix_and_labels(x, labels)?;
    let z = Mat::from_fn(labels.len(), 1, |i, _| f64::from(u8::from(labels[i])));
    leace(x, z.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::means::class_means;
    use crate::probe::{probe_accuracy_split, ProbeConfig};
    use claimlab_testkit::rng;
    use faer::Side;
    use rand::RngExt;

    fn gaussian(r: &mut impl rand::Rng) -> f64 {
        let u: f64 = r.random::<f64>().max(1e-300);
        let v: f64 = r.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Correlated Gaussian features with a class shift along a random direction.
    fn data(n: usize, d: usize, shift: f64, seed: u64) -> (Mat<f64>, Vec<bool>) {
        let mut r = rng(seed);
        let mix = Mat::from_fn(
            d,
            d,
            |i, j| if i == j { 1.0 } else { 0.4 * gaussian(&mut r) },
        );
        let dir: Vec<f64> = (0..d).map(|_| gaussian(&mut r)).collect();
        let labels: Vec<bool> = (0..n).map(|_| r.random::<bool>()).collect();
        let g = Mat::from_fn(n, d, |_, _| gaussian(&mut r));
        let x0 = &g * &mix;
        let x = Mat::from_fn(n, d, |i, j| {
            x0[(i, j)] + if labels[i] { shift * dir[j] } else { 0.0 } + 3.0
        });
        (x, labels)
    }

    fn covariance(x: MatRef<'_, f64>) -> Mat<f64> {
        let n = x.nrows() as f64;
        let mean: Vec<f64> = (0..x.ncols())
            .map(|j| (0..x.nrows()).map(|i| x[(i, j)]).sum::<f64>() / n)
            .collect();
        let xc = Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] - mean[j]);
        let mut s = xc.transpose() * &xc;
        scale(&mut s, 1.0 / n);
        s
    }

    /// tr(M (A − I) Σ (A − I)ᵀ): the mean squared displacement of x ↦ A x + (I − A) μ in ‖·‖_M.
    fn cost(a: &Mat<f64>, sigma: &Mat<f64>, m: &Mat<f64>) -> f64 {
        let d = a.nrows();
        let ami = Mat::from_fn(d, d, |i, j| a[(i, j)] - f64::from(u8::from(i == j)));
        let t = &(m * &ami) * &(sigma * ami.transpose());
        (0..d).map(|i| t[(i, i)]).sum()
    }

    #[test]
    fn class_means_become_equal_and_cross_covariance_vanishes() {
        let (x, labels) = data(500, 6, 2.0, 10);
        let er = leace_binary(x.as_ref(), &labels).unwrap();
        assert_eq!(er.concept_rank(), 1);
        assert_eq!(er.covariance_rank, 6);
        let y = er.erase(x.as_ref()).unwrap();
        let (m0, m1) = class_means(y.as_ref(), &labels).unwrap();
        for j in 0..6 {
            assert!((m0[j] - m1[j]).abs() < 1e-10, "{j}: {} {}", m0[j], m1[j]);
        }
        // Affine form agrees with erase().
        let a = er.matrix();
        let b = er.offset();
        for i in [0, 17, 499] {
            for j in 0..6 {
                let v: f64 = (0..6).map(|k| a[(j, k)] * x[(i, k)]).sum::<f64>() + b[j];
                assert!((v - y[(i, j)]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn held_out_probe_falls_to_chance() {
        // Eraser and probe fitted on the training rows only, probe scored on held-out rows.
        let (x, labels) = data(3000, 8, 3.0, 11);
        let (tr, te) = (2400, 600);
        let xtr = Mat::from_fn(tr, 8, |i, j| x[(i, j)]);
        let xte = Mat::from_fn(te, 8, |i, j| x[(tr + i, j)]);
        let (ytr, yte) = (&labels[..tr], &labels[tr..]);
        let cfg = ProbeConfig::default();
        let before = probe_accuracy_split(xtr.as_ref(), ytr, xte.as_ref(), yte, &cfg).unwrap();
        assert!(before.test_accuracy > 0.9, "{}", before.test_accuracy);
        let er = leace_binary(xtr.as_ref(), ytr).unwrap();
        let etr = er.erase(xtr.as_ref()).unwrap();
        let ete = er.erase(xte.as_ref()).unwrap();
        let after = probe_accuracy_split(etr.as_ref(), ytr, ete.as_ref(), yte, &cfg).unwrap();
        // Chance is the majority rate; the Wilson interval of the accuracy must reach it
        // (false-alarm rate ≈ 5%; seed fixed, so the test is deterministic).
        let (lo, hi) = after.test_ci95;
        assert!(
            lo <= after.majority_rate + 0.02 && after.test_accuracy < 0.56,
            "{after:?} {lo} {hi}"
        );
    }

    #[test]
    fn leace_is_the_least_squares_minimal_eraser() {
        let (x, labels) = data(400, 5, 1.5, 12);
        let d = 5;
        let er = leace_binary(x.as_ref(), &labels).unwrap();
        let sigma = covariance(x.as_ref());
        let ident = Mat::<f64>::identity(d, d);
        let a = er.matrix();
        let c_leace = cost(&a, &sigma, &ident);
        // Cross-covariance σ and the projector P onto its orthogonal complement.
        let z = Mat::from_fn(400, 1, |i, _| f64::from(u8::from(labels[i])));
        let zm = (0..400).map(|i| z[(i, 0)]).sum::<f64>() / 400.0;
        let mean: Vec<f64> = (0..d)
            .map(|j| (0..400).map(|i| x[(i, j)]).sum::<f64>() / 400.0)
            .collect();
        let s: Vec<f64> = (0..d)
            .map(|j| {
                (0..400)
                    .map(|i| (x[(i, j)] - mean[j]) * (z[(i, 0)] - zm))
                    .sum::<f64>()
                    / 400.0
            })
            .collect();
        let ss: f64 = s.iter().map(|v| v * v).sum();
        let p = Mat::from_fn(d, d, |i, j| f64::from(u8::from(i == j)) - s[i] * s[j] / ss);
        // Feasible: A σ = 0.
        for i in 0..d {
            let v: f64 = (0..d).map(|k| a[(i, k)] * s[k]).sum();
            assert!(v.abs() < 1e-10);
        }
        // 1. The orthogonal projection along σ is feasible and moves the data at least as much.
        let c_orth = cost(&p, &sigma, &ident);
        assert!(c_orth >= c_leace - 1e-12, "{c_orth} < {c_leace}");
        // 2. Independent closed form of min tr((BP − I) Σ (BP − I)ᵀ): B = Σ P (P Σ P)⁺.
        let psp = &(&p * &sigma) * &p;
        let eig = psp.self_adjoint_eigen(Side::Lower).unwrap();
        let lam = eig.S().column_vector();
        let lmax = (0..d).map(|i| lam[i]).fold(0.0f64, f64::max);
        let pinv = {
            let u = eig.U();
            Mat::from_fn(d, d, |i, j| {
                (0..d)
                    .filter(|&k| lam[k] > 1e-10 * lmax)
                    .map(|k| u[(i, k)] * u[(j, k)] / lam[k])
                    .sum::<f64>()
            })
        };
        let a_star = &(&(&sigma * &p) * &pinv) * &p;
        let c_star = cost(&a_star, &sigma, &ident);
        assert!(
            (c_star - c_leace).abs() < 1e-9 * c_leace,
            "{c_star} vs {c_leace}"
        );
        for i in 0..d {
            for j in 0..d {
                assert!(
                    (a_star[(i, j)] - a[(i, j)]).abs() < 1e-8,
                    "A differs at {i},{j}"
                );
            }
        }
        // 3. Random feasible perturbations A + ε C P, in the Euclidean norm and a random M norm.
        let mut r = rng(13);
        let g = Mat::from_fn(d, d, |_, _| gaussian(&mut r));
        let m_norm = &g * g.transpose();
        let c_leace_m = cost(&a, &sigma, &m_norm);
        for _ in 0..50 {
            let c = Mat::from_fn(d, d, |_, _| 0.1 * gaussian(&mut r));
            let cp = &c * &p;
            let a2 = Mat::from_fn(d, d, |i, j| a[(i, j)] + cp[(i, j)]);
            assert!(cost(&a2, &sigma, &ident) > c_leace);
            assert!(cost(&a2, &sigma, &m_norm) > c_leace_m);
        }
    }

    #[test]
    fn multiclass_means_become_equal() {
        let mut r = rng(14);
        let (n, d, k) = (600, 7, 3);
        let class: Vec<usize> = (0..n).map(|_| r.random_range(0..k)).collect();
        let x = Mat::from_fn(n, d, |i, j| {
            gaussian(&mut r) + if j == class[i] { 2.0 } else { 0.0 }
        });
        let z = Mat::from_fn(n, k, |i, c| f64::from(u8::from(class[i] == c)));
        let er = leace(x.as_ref(), z.as_ref()).unwrap();
        // One-hot columns sum to 1, so the centred cross-covariance has rank k − 1.
        assert_eq!(er.concept_rank(), k - 1);
        let y = er.erase(x.as_ref()).unwrap();
        let means: Vec<Vec<f64>> = (0..k)
            .map(|c| {
                let rows: Vec<usize> = (0..n).filter(|&i| class[i] == c).collect();
                (0..d)
                    .map(|j| rows.iter().map(|&i| y[(i, j)]).sum::<f64>() / rows.len() as f64)
                    .collect()
            })
            .collect();
        for c in 1..k {
            for (a, b) in means[c].iter().zip(&means[0]) {
                assert!((a - b).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn folding_into_a_linear_layer_is_exact() {
        let (x, labels) = data(200, 4, 1.0, 15);
        let er = leace_binary(x.as_ref(), &labels).unwrap();
        let mut r = rng(16);
        let w = Mat::from_fn(3, 4, |_, _| gaussian(&mut r));
        let c = [0.5, -1.0, 2.0];
        let (w2, c2) = er.fold_into_linear(w.as_ref(), Some(&c)).unwrap();
        let y = er.erase(x.as_ref()).unwrap();
        for i in [0, 5, 199] {
            for o in 0..3 {
                let lhs: f64 = (0..4).map(|j| w[(o, j)] * y[(i, j)]).sum::<f64>() + c[o];
                let rhs: f64 = (0..4).map(|j| w2[(o, j)] * x[(i, j)]).sum::<f64>() + c2[o];
                assert!((lhs - rhs).abs() < 1e-10);
            }
        }
        assert!(matches!(
            er.fold_into_linear(w.as_ref(), Some(&[1.0])),
            Err(Error::DimensionMismatch { .. })
        ));
        let wrong = Mat::<f64>::zeros(3, 5);
        assert!(matches!(
            er.fold_into_linear(wrong.as_ref(), None),
            Err(Error::DimensionMismatch { .. })
        ));
    }

    #[test]
    fn singular_covariance_and_degenerate_inputs() {
        // A duplicated column and a constant column: Σ has rank d − 2.
        let (x0, labels) = data(300, 4, 2.0, 17);
        let x = Mat::from_fn(300, 6, |i, j| match j {
            4 => x0[(i, 0)],
            5 => 7.0,
            _ => x0[(i, j)],
        });
        let er = leace_binary(x.as_ref(), &labels).unwrap();
        assert_eq!(er.covariance_rank, 4);
        let y = er.erase(x.as_ref()).unwrap();
        let (m0, m1) = class_means(y.as_ref(), &labels).unwrap();
        for j in 0..6 {
            assert!((m0[j] - m1[j]).abs() < 1e-9);
        }
        // Constant concept: nothing to erase, identity.
        let z = Mat::from_fn(300, 1, |_, _| 1.0);
        let id = leace(x.as_ref(), z.as_ref()).unwrap();
        assert_eq!(id.concept_rank(), 0);
        let y2 = id.erase(x.as_ref()).unwrap();
        assert!((0..300).all(|i| (0..6).all(|j| (y2[(i, j)] - x[(i, j)]).abs() < 1e-12)));
        // Errors.
        let same = Mat::from_fn(5, 2, |_, _| 1.0);
        assert!(matches!(
            leace_binary(same.as_ref(), &[true, false, true, false, true]),
            Err(Error::Degenerate(_))
        ));
        assert!(matches!(
            leace(x.as_ref(), Mat::<f64>::zeros(3, 1).as_ref()),
            Err(Error::DimensionMismatch { .. })
        ));
        let mut bad = x.clone();
        bad[(0, 0)] = f64::INFINITY;
        assert!(matches!(
            leace_binary(bad.as_ref(), &labels),
            Err(Error::NonFinite { index: 0, count: 1 })
        ));
        assert!(matches!(
            leace_binary(Mat::<f64>::zeros(0, 3).as_ref(), &[]),
            Err(Error::Empty)
        ));
        assert!(matches!(
            er.erase(Mat::<f64>::zeros(2, 3).as_ref()),
            Err(Error::DimensionMismatch { .. })
        ));
    }
}
