//! Lloyd-Max quantizers: for a density (numerical integration) and for samples (1-D k-means).

use crate::error::{check_finite, check_finite_f32, check_nonempty, invalid, Result};
use crate::quant::{assemble, nearest_sorted, Quantized, CODEBOOK_VALUE_BITS};
use crate::tol;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// How the sample-based Lloyd iteration is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LloydInit {
    /// Means of `levels` equal-count chunks of the sorted samples (the first `n mod levels`
    /// chunks one longer, as `numpy.array_split`). Deterministic.
    Quantiles,
    /// k-means++ seeding (Arthur & Vassilvitskii 2007) with a `Xoshiro256PlusPlus` seeded by
    /// `seed`.
    KMeansPlusPlus {
        /// Seed of the generator.
        seed: u64,
    },
}

/// Settings of the Lloyd iterations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LloydConfig {
    /// Iteration cap (default 10 000).
    pub max_iter: usize,
    /// Start (default [`LloydInit::Quantiles`]).
    pub init: LloydInit,
    /// Density version only: stop when no level moves by more than this (default
    /// [`tol::LLOYD_STEP`]). The sample version stops when the assignment stops changing.
    pub tol_step: f64,
}

impl Default for LloydConfig {
    fn default() -> Self {
        Self {
            max_iter: 10_000,
            init: LloydInit::Quantiles,
            tol_step: tol::LLOYD_STEP,
        }
    }
}

/// A trained scalar codebook.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LloydFit {
    /// Reconstruction levels, ascending.
    pub levels: Vec<f64>,
    /// Decision thresholds (midpoints of adjacent levels), ascending; `levels.len() − 1` of them.
    pub thresholds: Vec<f64>,
    /// Mean squared error (per sample, or E(X − Q(X))² for a density).
    pub mse: f64,
    /// Probability (or sample fraction) of each cell.
    pub cell_probs: Vec<f64>,
    /// Entropy of the cell probabilities in bits (the ideal entropy-coded rate).
    pub output_entropy_bits: f64,
    /// Iterations used.
    pub iterations: usize,
    /// Whether the stopping rule was met before `max_iter`.
    pub converged: bool,
}

fn check_levels(levels: usize) -> Result<()> {
    if levels == 0 || levels > 1 << 16 {
        return Err(invalid("levels", levels, "must be in 1..=65536"));
    }
    Ok(())
}

fn midpoints(levels: &[f64]) -> Vec<f64> {
    levels.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
}

fn entropy_bits(probs: &[f64]) -> f64 {
    probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| -p * p.log2())
        .sum()
}

/// Sample-based Lloyd (1-D k-means) on f64 samples.
///
/// Repeats: thresholds = midpoints of adjacent levels; each sample goes to the cell of its
/// interval (a sample equal to a threshold goes up); levels = cell means (an empty cell keeps its
/// level); until the assignment no longer changes.
///
/// # Arguments
/// * `samples` — finite values, at least one.
/// * `levels` — number of levels N, 1 ≤ N ≤ 65 536 (N > n leaves some cells empty).
/// * `cfg` — initialisation and iteration cap.
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` for a bad `levels` or `max_iter = 0`.
///
/// # Complexity
/// O(n log n) to sort once, then O(N log n) per iteration (prefix sums and binary searches; the
/// samples are never rescanned), plus O(n) for the final MSE.
///
/// # References
/// S. P. Lloyd, "Least squares quantization in PCM", IEEE Trans. IT 28(2), 1982.
///
/// # Example
/// ```
/// use claimlab_ratedist::{lloyd_fit_samples, LloydConfig};
/// let fit = lloyd_fit_samples(&[0.0, 0.1, 0.9, 1.0], 2, &LloydConfig::default()).unwrap();
/// assert!((fit.levels[0] - 0.05).abs() < 1e-12 && (fit.mse - 0.0025).abs() < 1e-12);
/// ```
pub fn lloyd_fit_samples(samples: &[f64], levels: usize, cfg: &LloydConfig) -> Result<LloydFit> {
    check_nonempty("samples", samples)?;
    check_finite("samples", samples)?;
    check_levels(levels)?;
    if cfg.max_iter == 0 {
        return Err(invalid("max_iter", cfg.max_iter, "must be >= 1"));
    }
    let mut x = samples.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    let mut pre = Vec::with_capacity(n + 1);
    pre.push(0.0);
    let mut acc = 0.0;
    for &v in &x {
        acc += v;
        pre.push(acc);
    }
    let mean_of = |a: usize, b: usize| (pre[b] - pre[a]) / (b - a) as f64;
    let mut lv: Vec<f64> = match cfg.init {
        LloydInit::Quantiles => {
            let (q, r) = (n / levels, n % levels);
            let mut start = 0;
            (0..levels)
                .map(|j| {
                    let len = q + usize::from(j < r);
                    let m = if len > 0 {
                        mean_of(start, start + len)
                    } else {
                        x[start.min(n - 1)]
                    };
                    start += len;
                    m
                })
                .collect()
        }
        LloydInit::KMeansPlusPlus { seed } => kmeanspp(&x, levels, seed),
    };
    lv.sort_by(f64::total_cmp);
    let mut bounds = vec![usize::MAX; levels + 1];
    let mut iterations = 0;
    let mut converged = false;
    // An iteration is one assignment; the one that finds no change counts (as the reference).
    while iterations < cfg.max_iter {
        iterations += 1;
        let th = midpoints(&lv);
        let mut nb = Vec::with_capacity(levels + 1);
        nb.push(0);
        nb.extend(th.iter().map(|&t| x.partition_point(|&v| v < t)));
        nb.push(n);
        if nb == bounds {
            converged = true;
            break;
        }
        bounds = nb;
        for j in 0..levels {
            if bounds[j + 1] > bounds[j] {
                lv[j] = mean_of(bounds[j], bounds[j + 1]);
            }
        }
    }
    if !converged {
        // Re-derive the cells of the final levels so that the reported fit is consistent.
        let th = midpoints(&lv);
        bounds = std::iter::once(0)
            .chain(th.iter().map(|&t| x.partition_point(|&v| v < t)))
            .chain(std::iter::once(n))
            .collect();
    }
    let mut err = 0.0;
    let mut cell_probs = Vec::with_capacity(levels);
    for j in 0..levels {
        for &v in &x[bounds[j]..bounds[j + 1]] {
            err += (v - lv[j]) * (v - lv[j]);
        }
        cell_probs.push((bounds[j + 1] - bounds[j]) as f64 / n as f64);
    }
    Ok(LloydFit {
        thresholds: midpoints(&lv),
        levels: lv,
        mse: err / n as f64,
        output_entropy_bits: entropy_bits(&cell_probs),
        cell_probs,
        iterations,
        converged,
    })
}

/// k-means++ seeding on sorted samples (1-D): first centre uniform, the rest proportional to
/// the squared distance to the nearest chosen centre.
fn kmeanspp(x: &[f64], k: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n = x.len();
    let mut centres = vec![x[rng.random_range(0..n)]];
    let mut d2: Vec<f64> = x.iter().map(|v| (v - centres[0]).powi(2)).collect();
    while centres.len() < k {
        let tot: f64 = d2.iter().sum();
        let c = if tot > 0.0 {
            let mut u = rng.random::<f64>() * tot;
            let mut pick = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                if u < d {
                    pick = i;
                    break;
                }
                u -= d;
            }
            x[pick]
        } else {
            x[rng.random_range(0..n)]
        };
        centres.push(c);
        for (d, v) in d2.iter_mut().zip(x) {
            *d = d.min((v - c).powi(2));
        }
    }
    centres
}

/// Sample-based Lloyd / k-means codebook quantizer for `f32` data.
///
/// Trains [`lloyd_fit_samples`] on the values (converted to f64), stores the levels as f32 and
/// maps each value to its nearest stored level.
///
/// # Bits
/// Index payload n·⌈log₂ N⌉; side information N · [`CODEBOOK_VALUE_BITS`] for the codebook.
///
/// # Errors
/// As [`lloyd_fit_samples`].
///
/// # Complexity
/// As [`lloyd_fit_samples`], plus O(n log N) to assign.
///
/// # Example
/// ```
/// use claimlab_ratedist::{lloyd_quantize, LloydConfig};
/// let q = lloyd_quantize(&[0.0, 0.1, 0.9, 1.0], 2, &LloydConfig::default()).unwrap();
/// assert_eq!(q.total_bits, 4 + 2 * 32);
/// ```
pub fn lloyd_quantize(x: &[f32], levels: usize, cfg: &LloydConfig) -> Result<Quantized> {
    check_nonempty("x", x)?;
    check_finite_f32("x", x)?;
    let xs: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let fit = lloyd_fit_samples(&xs, levels, cfg)?;
    Ok(codebook_assign(
        x,
        &fit.levels,
        fit.iterations,
        fit.converged,
    ))
}

/// Maps values to the nearest of `levels` (rounded to f32) and charges the codebook as side
/// information.
pub(crate) fn codebook_assign(
    x: &[f32],
    levels: &[f64],
    iterations: usize,
    converged: bool,
) -> Quantized {
    let stored: Vec<f64> = levels.iter().map(|&l| f64::from(l as f32)).collect();
    let mut idx = Vec::with_capacity(x.len());
    let mut rec = Vec::with_capacity(x.len());
    for &v in x {
        let j = nearest_sorted(&stored, f64::from(v));
        idx.push(j as u32);
        rec.push(stored[j] as f32);
    }
    let side = stored.len() as u64 * CODEBOOK_VALUE_BITS;
    assemble(
        x,
        rec,
        idx,
        stored.len(),
        side,
        stored,
        iterations,
        converged,
    )
}

/// Adaptive Simpson integration of (f, x f, x² f) over [a, b] at once.
struct Moments<'a, F: Fn(f64) -> f64> {
    pdf: &'a F,
    tol: f64,
}

impl<F: Fn(f64) -> f64> Moments<'_, F> {
    fn triple(&self, x: f64) -> [f64; 3] {
        let f = (self.pdf)(x);
        [f, x * f, x * x * f]
    }

    fn integrate(&self, a: f64, b: f64) -> [f64; 3] {
        if b <= a {
            return [0.0; 3];
        }
        let fa = self.triple(a);
        let fb = self.triple(b);
        let m = 0.5 * (a + b);
        let fm = self.triple(m);
        let whole = simpson(a, b, fa, fm, fb);
        self.rec(a, b, fa, fm, fb, whole, self.tol, 50)
    }

    #[allow(clippy::too_many_arguments)]
    fn rec(
        &self,
        a: f64,
        b: f64,
        fa: [f64; 3],
        fm: [f64; 3],
        fb: [f64; 3],
        whole: [f64; 3],
        tol: f64,
        depth: u32,
    ) -> [f64; 3] {
        let m = 0.5 * (a + b);
        let lm = 0.5 * (a + m);
        let rm = 0.5 * (m + b);
        let flm = self.triple(lm);
        let frm = self.triple(rm);
        let left = simpson(a, m, fa, flm, fm);
        let right = simpson(m, b, fm, frm, fb);
        let err = (0..3)
            .map(|k| (left[k] + right[k] - whole[k]).abs())
            .fold(0.0, f64::max);
        if depth == 0 || err <= 15.0 * tol {
            let mut out = [0.0; 3];
            for k in 0..3 {
                out[k] = left[k] + right[k] + (left[k] + right[k] - whole[k]) / 15.0;
            }
            return out;
        }
        let l = self.rec(a, m, fa, flm, fm, left, tol / 2.0, depth - 1);
        let r = self.rec(m, b, fm, frm, fb, right, tol / 2.0, depth - 1);
        [l[0] + r[0], l[1] + r[1], l[2] + r[2]]
    }
}

fn simpson(a: f64, b: f64, fa: [f64; 3], fm: [f64; 3], fb: [f64; 3]) -> [f64; 3] {
    let h = (b - a) / 6.0;
    [
        h * (fa[0] + 4.0 * fm[0] + fb[0]),
        h * (fa[1] + 4.0 * fm[1] + fb[1]),
        h * (fa[2] + 4.0 * fm[2] + fb[2]),
    ]
}

/// Lloyd-Max quantizer for a density on [lo, hi], by the Lloyd iteration with adaptive Simpson
/// quadrature.
///
/// ```text
/// thresholds tⱼ = (yⱼ + yⱼ₊₁)/2,   levels yⱼ = ∫ x f / ∫ f over [tⱼ₋₁, tⱼ]   (t₀ = lo, t_N = hi)
/// MSE = Σⱼ ∫ (x − yⱼ)² f(x) dx
/// ```
/// The density need not be normalised (it is divided by its integral). Start: the conditional
/// means of N equal-mass cells of a 4 097-point trapezoid CDF. Stops when no level moves by more
/// than `cfg.tol_step`.
///
/// # Arguments
/// * `pdf` — a nonnegative function; truncate infinite supports far enough (±10 for a unit
///   Gaussian leaves 1e-23 of the mass).
/// * `lo`, `hi` — the support, lo < hi.
/// * `levels` — N ≥ 1.
///
/// # Accuracy
/// Each cell integral to absolute error ≈ [`tol::QUAD_ABS`]; for a unit Gaussian the MSE agrees
/// with a closed-form (erf-based) computation to about 1e-12.
///
/// # Errors
/// `NonFinite` for bad bounds, `InvalidParam` for lo ≥ hi, bad levels or a density with zero or
/// non-finite mass.
///
/// # Complexity
/// O(N · quadrature points) per iteration; iterations grow roughly like N² (700 for N = 16 at
/// 1e-13).
///
/// # References
/// J. Max, "Quantizing for minimum distortion", IRE Trans. IT 6(1), 1960; Lloyd (1982).
///
/// # Example
/// ```
/// use claimlab_ratedist::{lloyd_max_density, LloydConfig};
/// let pdf = |x: f64| (-0.5 * x * x).exp();
/// let fit = lloyd_max_density(pdf, -10.0, 10.0, 2, &LloydConfig::default()).unwrap();
/// assert!((fit.mse - (1.0 - 2.0 / std::f64::consts::PI)).abs() < 1e-10);
/// ```
pub fn lloyd_max_density<F: Fn(f64) -> f64>(
    pdf: F,
    lo: f64,
    hi: f64,
    levels: usize,
    cfg: &LloydConfig,
) -> Result<LloydFit> {
    check_finite("bounds", &[lo, hi])?;
    if lo >= hi {
        return Err(invalid("hi", hi, "must exceed lo"));
    }
    check_levels(levels)?;
    if cfg.max_iter == 0 {
        return Err(invalid("max_iter", cfg.max_iter, "must be >= 1"));
    }
    let mo = Moments {
        pdf: &pdf,
        tol: tol::QUAD_ABS,
    };
    let total = mo.integrate(lo, hi)[0];
    if !total.is_finite() || total <= 0.0 {
        return Err(invalid(
            "pdf",
            total,
            "density must have finite positive mass",
        ));
    }
    // Equal-mass start from a trapezoid CDF.
    let g = 4096;
    let xs: Vec<f64> = (0..=g)
        .map(|i| lo + (hi - lo) * i as f64 / g as f64)
        .collect();
    let mut cdf = vec![0.0; g + 1];
    for i in 1..=g {
        cdf[i] = cdf[i - 1] + 0.5 * (pdf(xs[i - 1]) + pdf(xs[i])) * (xs[i] - xs[i - 1]);
    }
    let tot_grid = cdf[g];
    let mut cuts = vec![lo];
    for j in 1..levels {
        let target = tot_grid * j as f64 / levels as f64;
        let i = cdf.partition_point(|&c| c < target).clamp(1, g);
        let frac = (target - cdf[i - 1]) / (cdf[i] - cdf[i - 1]).max(f64::MIN_POSITIVE);
        cuts.push(xs[i - 1] + frac.clamp(0.0, 1.0) * (xs[i] - xs[i - 1]));
    }
    cuts.push(hi);
    let centroid = |a: f64, b: f64, fallback: f64| {
        let m = mo.integrate(a, b);
        if m[0] > 0.0 {
            m[1] / m[0]
        } else {
            fallback
        }
    };
    let mut lv: Vec<f64> = cuts
        .windows(2)
        .map(|w| centroid(w[0], w[1], 0.5 * (w[0] + w[1])))
        .collect();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < cfg.max_iter {
        let th = midpoints(&lv);
        let mut moved = 0.0_f64;
        for j in 0..levels {
            let a = if j == 0 { lo } else { th[j - 1] };
            let b = if j + 1 == levels { hi } else { th[j] };
            let c = centroid(a, b, lv[j]);
            moved = moved.max((c - lv[j]).abs());
            lv[j] = c;
        }
        iterations += 1;
        if moved <= cfg.tol_step {
            converged = true;
            break;
        }
    }
    let th = midpoints(&lv);
    let mut mse = 0.0;
    let mut cell_probs = Vec::with_capacity(levels);
    for j in 0..levels {
        let a = if j == 0 { lo } else { th[j - 1] };
        let b = if j + 1 == levels { hi } else { th[j] };
        let m = mo.integrate(a, b);
        mse += m[2] - 2.0 * lv[j] * m[1] + lv[j] * lv[j] * m[0];
        cell_probs.push(m[0] / total);
    }
    Ok(LloydFit {
        thresholds: th,
        levels: lv,
        mse: mse / total,
        output_entropy_bits: entropy_bits(&cell_probs),
        cell_probs,
        iterations,
        converged,
    })
}

/// Integrates (f, x f, x² f) of a density over [a, b] (shared with the ECSQ module).
pub(crate) fn density_moments<F: Fn(f64) -> f64>(pdf: &F, a: f64, b: f64) -> [f64; 3] {
    Moments {
        pdf,
        tol: tol::QUAD_ABS,
    }
    .integrate(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use claimlab_testkit::{read_column, read_json, reference_dir};

    fn gauss(x: f64) -> f64 {
        (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }

    #[test]
    fn lloyd_max_gaussian_matches_reference() {
        // Reference: erf-based Lloyd-Max to a fixed-point residual < 1e-13; the MSE is stationary
        // at the optimum, so 1e-10 absolute is safe; levels to 1e-9.
        let r = read_json(reference_dir().join("rd/quant_reference.json"));
        for pt in r["lloyd_max"].as_array().unwrap().iter().take(4) {
            let n = pt["levels"].as_u64().unwrap() as usize;
            let cfg = LloydConfig {
                tol_step: 1e-13,
                ..LloydConfig::default()
            };
            let fit = lloyd_max_density(gauss, -10.0, 10.0, n, &cfg).unwrap();
            assert!(fit.converged);
            assert!(
                (fit.mse - pt["mse"].as_f64().unwrap()).abs() < 1e-10,
                "{n}: {}",
                fit.mse
            );
            let pos: Vec<f64> = pt["reconstruction_pos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let mine = &fit.levels[n / 2..];
            for (a, b) in mine.iter().zip(&pos) {
                assert!((a - b).abs() < 1e-9, "{n}: {a} vs {b}");
            }
            let h = pt["output_entropy_bits"].as_f64().unwrap();
            assert!((fit.output_entropy_bits - h).abs() < 1e-9);
            // Published values (Max 1960) agree to their printed precision (≤ 6e-4 relative).
            let published = r["lloyd_max_published"][(n.trailing_zeros()).to_string()]
                .as_f64()
                .unwrap();
            assert!((fit.mse / published - 1.0).abs() < 6e-4);
        }
    }

    #[test]
    fn sample_lloyd_matches_reference() {
        // Reference: numpy implementation of the same algorithm and start; identical arithmetic
        // up to summation order, so levels and MSE agree to 1e-12 and iterations exactly.
        let r = read_json(reference_dir().join("rd/quant_reference.json"));
        let xs = read_column(reference_dir().join("rd/gauss_n10000_seed8.txt"));
        for pt in r["empirical"]["lloyd"].as_array().unwrap() {
            let n = pt["levels"].as_u64().unwrap() as usize;
            let fit = lloyd_fit_samples(&xs, n, &LloydConfig::default()).unwrap();
            assert!(fit.converged);
            assert!((fit.mse - pt["mse"].as_f64().unwrap()).abs() < 1e-12, "{n}");
            let want: Vec<f64> = pt["levels_values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            claimlab_testkit::assert_slice_close(&fit.levels, &want, 1e-12, 1e-12);
            assert_eq!(
                fit.iterations,
                pt["iterations"].as_u64().unwrap() as usize,
                "{n}"
            );
            let h = pt["empirical_entropy_bits"].as_f64().unwrap();
            assert!((fit.output_entropy_bits - h).abs() < 1e-12);
        }
    }

    #[test]
    fn sample_lloyd_brute_force_and_kmeanspp() {
        // Tiny case: the converged fit is a local optimum, so no single level shift improves it,
        // and k-means++ gives the same optimum on well separated clusters.
        let xs = [0.0, 0.1, 0.2, 5.0, 5.1, 9.0, 9.2, 9.4];
        let a = lloyd_fit_samples(&xs, 3, &LloydConfig::default()).unwrap();
        let b = lloyd_fit_samples(
            &xs,
            3,
            &LloydConfig {
                init: LloydInit::KMeansPlusPlus { seed: 1 },
                ..LloydConfig::default()
            },
        )
        .unwrap();
        claimlab_testkit::assert_slice_close(&a.levels, &[0.1, 5.05, 9.2], 1e-12, 1e-12);
        claimlab_testkit::assert_slice_close(&a.levels, &b.levels, 1e-12, 1e-12);
        let brute: f64 = xs
            .iter()
            .map(|&v| {
                a.levels
                    .iter()
                    .map(|l| (v - l) * (v - l))
                    .fold(f64::INFINITY, f64::min)
            })
            .sum::<f64>()
            / xs.len() as f64;
        assert!((brute - a.mse).abs() < 1e-14);
        // The f32 wrapper charges the codebook and agrees with the fit.
        let x32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
        let q = lloyd_quantize(&x32, 3, &LloydConfig::default()).unwrap();
        assert_eq!(q.side_bits, 3 * 32);
        assert_eq!(q.index_bits, 8 * 2);
        assert!((q.mse - a.mse).abs() < 1e-6);
    }

    #[test]
    fn degenerate_inputs() {
        // All equal: one level at the value, MSE 0, even with more levels than distinct values.
        let fit = lloyd_fit_samples(&[2.0; 5], 3, &LloydConfig::default()).unwrap();
        assert!(fit.mse.abs() < 1e-300);
        let fit = lloyd_fit_samples(&[1.0], 1, &LloydConfig::default()).unwrap();
        assert!((fit.levels[0] - 1.0).abs() < 1e-300);
        assert!(matches!(
            lloyd_fit_samples(&[], 2, &LloydConfig::default()),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            lloyd_fit_samples(&[1.0, f64::INFINITY], 2, &LloydConfig::default()),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            lloyd_fit_samples(&[1.0], 0, &LloydConfig::default()),
            Err(Error::InvalidParam { name: "levels", .. })
        ));
        assert!(matches!(
            lloyd_max_density(gauss, 1.0, 1.0, 2, &LloydConfig::default()),
            Err(Error::InvalidParam { name: "hi", .. })
        ));
        assert!(matches!(
            lloyd_max_density(|_| 0.0, 0.0, 1.0, 2, &LloydConfig::default()),
            Err(Error::InvalidParam { name: "pdf", .. })
        ));
        assert!(matches!(
            lloyd_quantize(&[f32::NAN], 2, &LloydConfig::default()),
            Err(Error::NonFinite { .. })
        ));
    }
}
