//! Spectra of weight matrices: singular values, the empirical spectral density (ESD) of `WᵀW`,
//! effective ranks, energy curves and a WeightWatcher-style layer report.

use faer::MatRef;

use crate::csn::{fit_power_law, PowerLawConfig, PowerLawFit};
use crate::error::{check_finite, Error, Result};

/// Singular values of `w` in non-increasing order (faer's SVD, no vectors).
///
/// # Errors
/// [`Error::Empty`] for a matrix with no entries, [`Error::NonFinite`] (index in column-major
/// order) for NaN/∞ entries, [`Error::Svd`] if the SVD does not converge.
///
/// # Complexity
/// O(m n min(m, n)) time, O(m n) extra memory.
///
/// # Example
/// ```
/// use claimlab_spectral::{faer::mat, singular_values};
/// let w = mat![[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]];
/// let s = singular_values(w.as_ref()).unwrap();
/// assert!((s[0] - 3.0).abs() < 1e-14 && (s[1] - 2.0).abs() < 1e-14);
/// ```
pub fn singular_values(w: MatRef<'_, f64>) -> Result<Vec<f64>> {
    if w.nrows() == 0 || w.ncols() == 0 {
        return Err(Error::Empty);
    }
    let mut first = None;
    let mut count = 0;
    for j in 0..w.ncols() {
        for i in 0..w.nrows() {
            if !w[(i, j)].is_finite() {
                count += 1;
                first.get_or_insert(j * w.nrows() + i);
            }
        }
    }
    if let Some(index) = first {
        return Err(Error::NonFinite { index, count });
    }
    let mut s = w.singular_values().map_err(|_| Error::Svd)?;
    s.sort_by(|a, b| b.total_cmp(a));
    Ok(s)
}

/// Singular values of an `f32` matrix, computed in f64 (the matrix is converted first).
///
/// # Errors
/// As [`singular_values`].
pub fn singular_values_f32(w: MatRef<'_, f32>) -> Result<Vec<f64>> {
    let w64 = faer::Mat::<f64>::from_fn(w.nrows(), w.ncols(), |i, j| f64::from(w[(i, j)]));
    singular_values(w64.as_ref())
}

/// Scaling of the ESD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EsdScale {
    /// Eigenvalues of `WᵀW` as they are (WeightWatcher 0.7.x, whose 1/N is commented out).
    #[default]
    Unnormalized,
    /// Eigenvalues of `WᵀW / N` with N the number of rows (the Marchenko-Pastur convention).
    ByRows,
}

/// Empirical spectral density: the `min(N, M)` eigenvalues of `WᵀW` (optionally `/ N`) for an
/// `N × M` matrix, in ascending order, computed as squared singular values.
///
/// # Errors
/// As [`singular_values`].
pub fn esd(w: MatRef<'_, f64>, scale: EsdScale) -> Result<Vec<f64>> {
    let s = singular_values(w)?;
    let div = match scale {
        EsdScale::Unnormalized => 1.0,
        EsdScale::ByRows => w.nrows() as f64,
    };
    let mut ev: Vec<f64> = s.iter().map(|v| v * v / div).collect();
    ev.reverse();
    Ok(ev)
}

/// Validates a spectrum of singular values: non-empty, finite, ≥ 0, not all zero.
fn check_spectrum(sv: &[f64]) -> Result<()> {
    check_finite(sv)?;
    if let Some((index, &value)) = sv.iter().enumerate().find(|(_, v)| !(**v >= 0.0)) {
        return Err(Error::OutOfDomain {
            index,
            value,
            reason: "singular values must be ≥ 0",
        });
    }
    if !sv.iter().any(|v| *v > 0.0) {
        return Err(Error::Degenerate("all singular values are zero"));
    }
    Ok(())
}

/// Entropy effective rank of Roy and Vetterli: `exp(−Σ p_k ln p_k)` with `p_k = σ_k / Σ σ`
/// (singular values normalised in L1; terms with `p_k = 0` contribute 0).
///
/// It lies in `[1, number of nonzero σ]`, with equality for rank one and for a flat spectrum.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::OutOfDomain`] (a negative value),
/// [`Error::Degenerate`] (all zero).
///
/// # References
/// O. Roy, M. Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007,
/// eq. (3)–(4).
///
/// # Example
/// ```
/// let r = claimlab_spectral::entropy_effective_rank(&[2.0, 2.0, 2.0, 0.0]).unwrap();
/// assert!((r - 3.0).abs() < 1e-14);
/// ```
pub fn entropy_effective_rank(sv: &[f64]) -> Result<f64> {
    check_spectrum(sv)?;
    let total: f64 = sv.iter().sum();
    let h: f64 = sv
        .iter()
        .filter(|v| **v > 0.0)
        .map(|v| {
            let p = v / total;
            -p * p.ln()
        })
        .sum();
    Ok(h.exp())
}

/// Stable rank `‖W‖_F² / ‖W‖_2² = Σ σ_k² / σ_max²`.
///
/// # Errors
/// As [`entropy_effective_rank`].
///
/// # Example
/// ```
/// let r = claimlab_spectral::stable_rank(&[2.0, 1.0]).unwrap();
/// assert!((r - 1.25).abs() < 1e-15);
/// ```
pub fn stable_rank(sv: &[f64]) -> Result<f64> {
    check_spectrum(sv)?;
    let max = sv.iter().copied().fold(0.0, f64::max);
    Ok(sv.iter().map(|v| (v / max).powi(2)).sum())
}

/// Participation ratio of the eigenvalues `λ_k = σ_k²`: `(Σ λ)² / Σ λ²`.
///
/// # Errors
/// As [`entropy_effective_rank`].
///
/// # Example
/// ```
/// let r = claimlab_spectral::participation_ratio(&[1.0, 1.0, 1.0]).unwrap();
/// assert!((r - 3.0).abs() < 1e-15);
/// ```
pub fn participation_ratio(sv: &[f64]) -> Result<f64> {
    check_spectrum(sv)?;
    let max = sv.iter().copied().fold(0.0, f64::max);
    let (s1, s2) = sv.iter().fold((0.0, 0.0), |(a, b), v| {
        let l = (v / max).powi(2);
        (a + l, b + l * l)
    });
    Ok(s1 * s1 / s2)
}

/// Cumulative energy `E_k = Σ_{i ≤ k} σ_i² / Σ σ²` with the singular values sorted in
/// non-increasing order; `E` has one entry per value and ends at 1.
///
/// # Errors
/// As [`entropy_effective_rank`].
///
/// # Example
/// ```
/// let e = claimlab_spectral::cumulative_energy(&[1.0, 3.0]).unwrap();
/// assert!((e[0] - 0.9).abs() < 1e-15 && (e[1] - 1.0).abs() < 1e-15);
/// ```
pub fn cumulative_energy(sv: &[f64]) -> Result<Vec<f64>> {
    check_spectrum(sv)?;
    let mut s = sv.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = s.iter().map(|v| v * v).sum();
    let mut acc = 0.0;
    let mut out: Vec<f64> = s
        .iter()
        .map(|v| {
            acc += v * v;
            acc / total
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = 1.0;
    }
    Ok(out)
}

/// Smallest number of leading components whose energy share reaches `fraction` (in (0, 1]).
///
/// # Errors
/// As [`entropy_effective_rank`]; [`Error::InvalidParam`] for `fraction` outside (0, 1].
///
/// # Example
/// ```
/// let k = claimlab_spectral::components_for_energy(&[3.0, 1.0, 1.0], 0.9).unwrap();
/// assert_eq!(k, 2); // 9/11 < 0.9 ≤ 10/11
/// ```
pub fn components_for_energy(sv: &[f64], fraction: f64) -> Result<usize> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::InvalidParam {
            name: "fraction",
            value: fraction,
            reason: "must lie in (0, 1]",
        });
    }
    let e = cumulative_energy(sv)?;
    Ok(e.iter()
        .position(|v| *v >= fraction)
        .map_or(e.len(), |k| k + 1))
}

/// A WeightWatcher-style report on one weight matrix.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LayerReport {
    /// Rows N.
    pub n_rows: usize,
    /// Columns M.
    pub n_cols: usize,
    /// Aspect ratio `Q = max(N, M) / min(N, M)`.
    pub q: f64,
    /// The ESD: eigenvalues of `WᵀW` (unnormalised, as WeightWatcher 0.7), ascending.
    pub eigenvalues: Vec<f64>,
    /// The power-law fit of the ESD (continuous, all unique values as xmin candidates).
    pub fit: PowerLawFit,
    /// Largest eigenvalue λ_max (= spectral norm squared).
    pub lambda_max: f64,
    /// `log10 λ_max`.
    pub log_spectral_norm: f64,
    /// `alpha · log10 λ_max` (WeightWatcher's `alpha_weighted`, "alpha-hat").
    pub alpha_weighted: f64,
    /// `log10 Σ λ^alpha`.
    pub log_alpha_norm: f64,
    /// `log10 Σ λ = log10 ‖W‖_F²`.
    pub log_norm: f64,
    /// `Σ λ / λ_max`.
    pub stable_rank: f64,
    /// WeightWatcher's spectral entropy: `−Σ p ln p / ln(rank)`, `p = λ/Σλ + 1e-10`.
    pub entropy: f64,
    /// Numerical rank: singular values above `σ_max · max(N, M) · ε`.
    pub matrix_rank: usize,
    /// Marchenko-Pastur bulk edge `σ² (√N + √M)²` for the unnormalised ESD, with `σ²` the mean
    /// square of the entries (a plain estimate, not a fit).
    pub mp_edge: f64,
    /// Eigenvalues above `mp_edge`.
    pub n_spikes: usize,
    /// Roy-Vetterli entropy effective rank of the singular values.
    pub entropy_effective_rank: f64,
}

/// Builds a [`LayerReport`] for an `N × M` weight matrix: ESD of `WᵀW`, power-law fit of the ESD
/// (as WeightWatcher 0.7.7 with `powerlaw` 1.5: continuous, xmin over all unique eigenvalues),
/// norms, ranks, entropy and Marchenko-Pastur spikes.
///
/// # Errors
/// As [`singular_values`] and [`fit_power_law`]; [`Error::Degenerate`] for a zero matrix.
///
/// # Complexity
/// One SVD without vectors plus an O(M²) xmin scan over M = min(N, M) eigenvalues.
///
/// # References
/// C. H. Martin, M. W. Mahoney, "Implicit self-regularization in deep neural networks", JMLR 22
/// (2021); C. H. Martin, T. S. Peng, M. W. Mahoney, Nature Communications 12, 4122 (2021).
pub fn layer_report(w: MatRef<'_, f64>) -> Result<LayerReport> {
    let sv = singular_values(w)?;
    check_spectrum(&sv)?;
    let (n, m) = (w.nrows(), w.ncols());
    let eigenvalues: Vec<f64> = sv.iter().rev().map(|v| v * v).collect();
    let positive: Vec<f64> = eigenvalues.iter().copied().filter(|v| *v > 0.0).collect();
    let fit = fit_power_law(&positive, &PowerLawConfig::continuous())?;
    let lambda_max = sv[0] * sv[0];
    let total: f64 = eigenvalues.iter().sum();
    let tol = sv[0] * n.max(m) as f64 * f64::EPSILON;
    let matrix_rank = sv.iter().filter(|v| **v > tol).count();
    let h: f64 = eigenvalues
        .iter()
        .map(|l| {
            let p = l / total + crate::tol::WW_ENTROPY_EPS;
            -p * p.ln()
        })
        .sum();
    let entropy = h / (matrix_rank as f64).ln();
    let mut sum_sq = 0.0;
    for j in 0..m {
        for i in 0..n {
            sum_sq += w[(i, j)] * w[(i, j)];
        }
    }
    let sigma2 = sum_sq / (n * m) as f64;
    let mp_edge = sigma2 * ((n as f64).sqrt() + (m as f64).sqrt()).powi(2);
    let log_alpha_norm = eigenvalues
        .iter()
        .map(|l| l.powf(fit.alpha))
        .sum::<f64>()
        .log10();
    Ok(LayerReport {
        n_rows: n,
        n_cols: m,
        q: n.max(m) as f64 / n.min(m) as f64,
        lambda_max,
        log_spectral_norm: lambda_max.log10(),
        alpha_weighted: fit.alpha * lambda_max.log10(),
        log_alpha_norm,
        log_norm: total.log10(),
        stable_rank: total / lambda_max,
        entropy,
        matrix_rank,
        mp_edge,
        n_spikes: eigenvalues.iter().filter(|l| **l > mp_edge).count(),
        entropy_effective_rank: entropy_effective_rank(&sv)?,
        eigenvalues,
        fit,
    })
}

/// [`layer_report`] for an `f32` matrix (converted to f64 first).
///
/// # Errors
/// As [`layer_report`].
pub fn layer_report_f32(w: MatRef<'_, f32>) -> Result<LayerReport> {
    let w64 = faer::Mat::<f64>::from_fn(w.nrows(), w.ncols(), |i, j| f64::from(w[(i, j)]));
    layer_report(w64.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;
    use claimlab_testkit::rng;

    #[test]
    fn singular_values_against_eigenvalues_of_gram() {
        // brute force: power iteration with deflation on WᵀW for a small random matrix
        let mut r = rng(4);
        let w = faer::Mat::<f64>::from_fn(7, 4, |_, _| r.random::<f64>() - 0.5);
        let s = singular_values(w.as_ref()).unwrap();
        let g = w.transpose() * &w;
        let tr: f64 = (0..4).map(|i| g[(i, i)]).sum();
        let sum_sq: f64 = s.iter().map(|v| v * v).sum();
        assert!((tr - sum_sq).abs() < 1e-12 * tr);
        // determinant of the Gram = product of squared singular values
        let det = g.as_ref().determinant();
        let prod: f64 = s.iter().map(|v| v * v).product();
        assert!((det - prod).abs() < 1e-10 * det.abs());
        assert!(s.windows(2).all(|p| p[0] >= p[1]));
        let w32 = faer::Mat::<f32>::from_fn(7, 4, |i, j| w[(i, j)] as f32);
        let s32 = singular_values_f32(w32.as_ref()).unwrap();
        for (a, b) in s.iter().zip(&s32) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn ranks_and_energy() {
        let sv = [4.0, 2.0, 1.0, 1.0];
        // brute-force definitions
        let l1: f64 = sv.iter().sum();
        let h: f64 = sv.iter().map(|v| -(v / l1) * (v / l1).ln()).sum();
        assert!((entropy_effective_rank(&sv).unwrap() - h.exp()).abs() < 1e-14);
        assert!((stable_rank(&sv).unwrap() - 22.0 / 16.0).abs() < 1e-15);
        assert!(
            (participation_ratio(&sv).unwrap() - 22.0 * 22.0 / (256.0 + 16.0 + 1.0 + 1.0)).abs()
                < 1e-13
        );
        let e = cumulative_energy(&[1.0, 4.0, 1.0, 2.0]).unwrap();
        assert!((e[0] - 16.0 / 22.0).abs() < 1e-15 && (e[1] - 20.0 / 22.0).abs() < 1e-15);
        assert_eq!(components_for_energy(&sv, 16.0 / 22.0).unwrap(), 1);
        assert_eq!(components_for_energy(&sv, 0.75).unwrap(), 2);
        assert_eq!(components_for_energy(&sv, 1.0).unwrap(), 4);
        // rank one and flat spectra
        assert!((entropy_effective_rank(&[5.0, 0.0, 0.0]).unwrap() - 1.0).abs() < 1e-15);
        assert!((participation_ratio(&[5.0, 0.0]).unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn marchenko_pastur_spikes() {
        // Gaussian noise (σ = 1) plus a rank-2 signal far above the bulk edge (√N + √M)² ≈ 1166
        let (n, m) = (600, 200);
        let mut r = rng(12);
        let gauss = |r: &mut claimlab_testkit::Xoshiro256PlusPlus| {
            // Box-Muller
            let (u, v): (f64, f64) = (r.random(), r.random());
            (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let noise = faer::Mat::<f64>::from_fn(n, m, |_, _| gauss(&mut r));
        let report = layer_report(noise.as_ref()).unwrap();
        // no spike in pure noise (the largest eigenvalue fluctuates O(N^(-2/3)) around the edge)
        assert!(report.n_spikes <= 1, "{}", report.n_spikes);
        let mut signal = noise.clone();
        for i in 0..n {
            signal[(i, 0)] += 4.0;
            signal[(i, 1)] -= 3.0 * (i % 2) as f64;
        }
        let report = layer_report(signal.as_ref()).unwrap();
        assert_eq!(report.n_spikes, 2);
        assert_eq!(report.matrix_rank, m);
        // the f32 path agrees with the f64 one on f32-representable entries
        let w32 = faer::Mat::<f32>::from_fn(n, m, |i, j| signal[(i, j)] as f32);
        let w64 = faer::Mat::<f64>::from_fn(n, m, |i, j| f64::from(w32[(i, j)]));
        let a = layer_report_f32(w32.as_ref()).unwrap();
        let b = layer_report(w64.as_ref()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn error_paths() {
        assert_eq!(entropy_effective_rank(&[]), Err(Error::Empty));
        assert_eq!(
            stable_rank(&[1.0, f64::NAN]),
            Err(Error::NonFinite { index: 1, count: 1 })
        );
        assert!(matches!(
            participation_ratio(&[1.0, -1.0]),
            Err(Error::OutOfDomain { index: 1, .. })
        ));
        assert!(matches!(
            cumulative_energy(&[0.0, 0.0]),
            Err(Error::Degenerate(_))
        ));
        assert!(matches!(
            components_for_energy(&[1.0], 0.0),
            Err(Error::InvalidParam {
                name: "fraction",
                ..
            })
        ));
        assert!(matches!(
            components_for_energy(&[1.0], f64::NAN),
            Err(Error::InvalidParam { .. })
        ));
        let empty = faer::Mat::<f64>::zeros(0, 3);
        assert_eq!(singular_values(empty.as_ref()), Err(Error::Empty));
        let mut w = faer::Mat::<f64>::zeros(2, 2);
        w[(1, 0)] = f64::INFINITY;
        assert_eq!(
            singular_values(w.as_ref()),
            Err(Error::NonFinite { index: 1, count: 1 })
        );
        let zero = faer::Mat::<f64>::zeros(3, 2);
        assert!(matches!(
            layer_report(zero.as_ref()),
            Err(Error::Degenerate(_))
        ));
        // an identity: all eigenvalues equal, no power-law tail
        let id = faer::Mat::<f64>::identity(4, 4);
        assert!(matches!(
            layer_report(id.as_ref()),
            Err(Error::Degenerate(_))
        ));
    }
}
