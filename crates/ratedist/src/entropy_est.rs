//! Differential entropy estimators from samples: Kozachenko-Leonenko k-nearest-neighbour (1-D and
//! d-D) and the equal-width histogram.

use crate::error::{check_finite, check_nonempty, invalid, Error, Result};
use crate::special::{digamma, ln_unit_ball_volume};
use crate::tol::LN_2;

/// Kozachenko-Leonenko k-nearest-neighbour estimate of the differential entropy of 1-D samples,
/// in **bits**.
///
/// ```text
/// ĥ = ψ(n) − ψ(k) + ln V_d + (d/n) Σᵢ ln εᵢ   [nats; divided by ln 2 for bits]
/// ```
/// with d = 1, V₁ = 2 and εᵢ the distance from sample i to its k-th nearest neighbour.
///
/// # Bias
/// Asymptotically unbiased and consistent for densities with finite entropy (Kozachenko &
/// Leonenko 1987). At finite n the bias comes from the density varying inside the k-NN ball: for
/// smooth densities it is O((k/n)^(2/d)) (about 1e-4 nats for a Gaussian at n = 10⁴, k = 3), but
/// it is larger and positive near discontinuities (e.g. the edges of a uniform, O(k/n) per edge)
/// and heavy tails. The standard deviation is about sqrt(Var ln f(X) / n).
///
/// # Arguments
/// * `samples` — at least k + 1 finite values; exact repeats at the k-th neighbour are rejected.
/// * `k` — neighbour order, k ≥ 1 (k = 3 to 5 is usual).
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` (k = 0 or k ≥ n) and `Degenerate` when some sample has its
/// k-th neighbour at distance 0 (ties: quantised data, where a histogram estimate is apt).
///
/// # Complexity
/// O(n log n + n k) time, O(n) memory.
///
/// # References
/// Kozachenko & Leonenko (1987), Probl. Inf. Transm. 23(2); Kraskov, Stögbauer & Grassberger
/// (2004), Phys. Rev. E 69, 066138, eq. (20).
///
/// # Example
/// ```
/// // A lattice on [0, 1] is not a random sample: every ε equals 1/n, so the estimate is
/// // (ψ(n) − ψ(1) + ln 2 − ln n) / ln 2 ≈ (γ + ln 2) / ln 2 = 1.832 bits, not the uniform's 0.
/// let xs: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
/// let h = claimlab_ratedist::kl_entropy_1d_bits(&xs, 1).unwrap();
/// assert!((h - 1.832).abs() < 1e-3);
/// ```
pub fn kl_entropy_1d_bits(samples: &[f64], k: usize) -> Result<f64> {
    check_nonempty("samples", samples)?;
    check_finite("samples", samples)?;
    let n = samples.len();
    if k == 0 || k >= n {
        return Err(invalid("k", k, "need 1 <= k < number of samples"));
    }
    let mut x = samples.to_vec();
    x.sort_by(f64::total_cmp);
    let mut sum_ln = 0.0;
    let mut comp = 0.0; // Kahan compensation
    for i in 0..n {
        // Merge the left and right neighbour lists, k steps.
        let (mut l, mut r) = (i, i + 1); // next left candidate is l - 1
        let mut eps = 0.0;
        for _ in 0..k {
            let dl = if l > 0 {
                x[i] - x[l - 1]
            } else {
                f64::INFINITY
            };
            let dr = if r < n { x[r] - x[i] } else { f64::INFINITY };
            if dl <= dr {
                eps = dl;
                l -= 1;
            } else {
                eps = dr;
                r += 1;
            }
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(Error::Degenerate {
                reason: format!(
                    "sample {} has its {k}-th neighbour at distance 0 (ties)",
                    x[i]
                ),
            });
        }
        let y = eps.ln() - comp;
        let t = sum_ln + y;
        comp = (t - sum_ln) - y;
        sum_ln = t;
    }
    let nf = n as f64;
    let h_nats = digamma(nf) - digamma(k as f64) + ln_unit_ball_volume(1) + sum_ln / nf;
    Ok(h_nats / LN_2)
}

/// Kozachenko-Leonenko estimate of the differential entropy of d-dimensional samples (Euclidean
/// norm), in **bits** (the joint entropy of the vector, not per coordinate).
///
/// Same formula and bias notes as [`kl_entropy_1d_bits`] with Vd = π^(d/2) / Γ(d/2 + 1); the
/// finite-sample bias grows with d (O((k/n)^(2/d)) for smooth densities).
///
/// # Arguments
/// * `points` — n × d values, row-major (point i is `points[i*d..(i+1)*d]`).
/// * `dim` — d ≥ 1.
/// * `k` — neighbour order, 1 ≤ k < n.
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` (d = 0, length not a multiple of d, bad k) and
/// `Degenerate` for repeated points.
///
/// # Complexity
/// O(n² d) time by brute force (parallel over points with the `rayon` feature), O(n) memory per
/// thread. Meant for n up to a few 10⁴.
///
/// # References
/// As [`kl_entropy_1d_bits`].
///
/// # Example
/// ```
/// let pts: Vec<f64> = (0..400).map(|i| ((i * 7919) % 400) as f64 / 400.0 + (i as f64) * 1e-6).collect();
/// let h = claimlab_ratedist::kl_entropy_bits(&pts, 2, 3).unwrap();
/// assert!(h.is_finite());
/// ```
pub fn kl_entropy_bits(points: &[f64], dim: usize, k: usize) -> Result<f64> {
    check_nonempty("points", points)?;
    check_finite("points", points)?;
    if dim == 0 || !points.len().is_multiple_of(dim) {
        return Err(invalid(
            "dim",
            dim,
            "must be >= 1 and divide the number of values",
        ));
    }
    let n = points.len() / dim;
    if k == 0 || k >= n {
        return Err(invalid("k", k, "need 1 <= k < number of points"));
    }
    let kth = |i: usize, buf: &mut Vec<f64>| -> f64 {
        buf.clear();
        let pi = &points[i * dim..(i + 1) * dim];
        for j in 0..n {
            if j != i {
                let pj = &points[j * dim..(j + 1) * dim];
                buf.push(pi.iter().zip(pj).map(|(a, b)| (a - b) * (a - b)).sum());
            }
        }
        let (_, v, _) = buf.select_nth_unstable_by(k - 1, f64::total_cmp);
        v.sqrt()
    };
    #[cfg(feature = "rayon")]
    let eps: Vec<f64> = {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .map_init(|| Vec::with_capacity(n), |buf, i| kth(i, buf))
            .collect()
    };
    #[cfg(not(feature = "rayon"))]
    let eps: Vec<f64> = {
        let mut buf = Vec::with_capacity(n);
        (0..n).map(|i| kth(i, &mut buf)).collect()
    };
    if let Some(i) = eps.iter().position(|e| e.is_nan() || *e <= 0.0) {
        return Err(Error::Degenerate {
            reason: format!("point {i} has its {k}-th neighbour at distance 0 (repeated points)"),
        });
    }
    let sum_ln: f64 = eps.iter().map(|e| e.ln()).sum();
    let nf = n as f64;
    let d = dim as f64;
    let h_nats = digamma(nf) - digamma(k as f64) + ln_unit_ball_volume(dim) + d * sum_ln / nf;
    Ok(h_nats / LN_2)
}

/// Result of [`histogram_entropy_bits`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistogramEntropy {
    /// Plug-in estimate −Σ pᵢ log₂ pᵢ + log₂ Δ, in bits.
    pub plugin_bits: f64,
    /// Plug-in plus the Miller-Madow correction (B₊ − 1) / (2n ln 2), in bits, where B₊ counts
    /// the occupied bins.
    pub miller_madow_bits: f64,
    /// Bin width Δ.
    pub bin_width: f64,
    /// Number of occupied bins B₊.
    pub occupied_bins: usize,
}

/// Equal-width histogram estimate of the differential entropy of 1-D samples, in **bits**.
///
/// ```text
/// ĥ = −Σᵢ pᵢ log₂ pᵢ + log₂ Δ,   Δ = (max − min) / bins
/// ```
///
/// # Bias
/// Two sources. The plug-in entropy of the bin counts is biased low by about (B₊ − 1)/(2n) nats
/// (Miller 1955; the `miller_madow_bits` field removes this first-order term). Binning a smooth
/// density adds a bias of order Δ² ∫ f′²/f / 24 (positive), and the range set by the sample
/// extremes leaves thin tail bins. For a unit Gaussian at n = 10⁴ and ~50 bins both are ≲ 0.005
/// bits. Use the kNN estimator for continuous data; the histogram suits quantised data.
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` for bins = 0, `Degenerate` when all samples are equal.
///
/// # Complexity
/// O(n + bins) time and memory.
///
/// # References
/// Beirlant, Dudewicz, Györfi & van der Meulen (1997), Int. J. Math. Stat. Sci. 6(1), §3.1.
///
/// # Example
/// ```
/// let xs: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
/// let h = claimlab_ratedist::histogram_entropy_bits(&xs, 10).unwrap();
/// assert!(h.plugin_bits.abs() < 0.01); // uniform on [0, 1): h = 0
/// ```
pub fn histogram_entropy_bits(samples: &[f64], bins: usize) -> Result<HistogramEntropy> {
    check_nonempty("samples", samples)?;
    check_finite("samples", samples)?;
    if bins == 0 {
        return Err(invalid("bins", bins, "must be >= 1"));
    }
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        return Err(Error::Degenerate {
            reason: "all samples are equal: the differential entropy is −∞".into(),
        });
    }
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &x in samples {
        let b = (((x - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let n = samples.len() as f64;
    let mut h = 0.0;
    let mut occupied = 0usize;
    for &c in &counts {
        if c > 0 {
            occupied += 1;
            let p = c as f64 / n;
            h -= p * p.log2();
        }
    }
    let plugin = h + width.log2();
    Ok(HistogramEntropy {
        plugin_bits: plugin,
        miller_madow_bits: plugin + (occupied as f64 - 1.0) / (2.0 * n * LN_2),
        bin_width: width,
        occupied_bins: occupied,
    })
}

/// An equal-width histogram of samples as a discrete source (see [`histogram_pmf`]).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistogramPmf {
    /// Bin centres, ascending.
    pub centers: Vec<f64>,
    /// Fraction of the samples in each bin (sums to 1; empty bins are 0).
    pub probs: Vec<f64>,
    /// Bin width.
    pub bin_width: f64,
}

/// Equal-width histogram of samples on [min, max] as a probability mass function, e.g. to run
/// [`blahut_arimoto`](crate::blahut_arimoto) on a fine histogram of real weights with
/// `DistortionMatrix::squared_error(&h.centers, &h.centers)`.
///
/// The last bin is closed on the right. Discretising adds at most Δ²/4 to any squared-error
/// distortion (each sample moves to its bin centre by at most Δ/2).
///
/// # Errors
/// `Empty`, `NonFinite`, `InvalidParam` for bins = 0, `Degenerate` when all samples are equal.
///
/// # Complexity
/// O(n + bins).
///
/// # Example
/// ```
/// let h = claimlab_ratedist::histogram_pmf(&[0.0, 0.1, 0.9, 1.0], 2).unwrap();
/// assert!((h.probs[0] - 0.5).abs() < 1e-15 && (h.probs[1] - 0.5).abs() < 1e-15);
/// assert!((h.centers[1] - 0.75).abs() < 1e-15);
/// ```
pub fn histogram_pmf(samples: &[f64], bins: usize) -> Result<HistogramPmf> {
    check_nonempty("samples", samples)?;
    check_finite("samples", samples)?;
    if bins == 0 {
        return Err(invalid("bins", bins, "must be >= 1"));
    }
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        return Err(Error::Degenerate {
            reason: "all samples are equal: a single-symbol source".into(),
        });
    }
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &x in samples {
        counts[(((x - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let n = samples.len() as f64;
    Ok(HistogramPmf {
        centers: (0..bins).map(|i| lo + (i as f64 + 0.5) * width).collect(),
        probs: counts.iter().map(|&c| c as f64 / n).collect(),
        bin_width: width,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;
    use claimlab_testkit::{read_column, reference_dir, rng};

    const H_GAUSS_BITS: f64 = 2.047_095_585_180_641; // ½ log₂(2πe)

    fn normals(n: usize, seed: u64) -> Vec<f64> {
        // Box-Muller from the seeded testkit RNG.
        let mut r = rng(seed);
        (0..n)
            .map(|_| {
                let u: f64 = 1.0 - r.random::<f64>();
                let v: f64 = r.random();
                (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
            .collect()
    }

    #[test]
    fn kl_1d_gaussian_reference_sample() {
        // n = 10⁴ standard normal draws; sd of the estimate ≈ 0.01 bits, the sample variance is
        // 0.9807 (true h of N(0, 0.9807) is 2.033 bits). Tolerance 0.04 bits ≈ 4 sd.
        let xs = read_column(reference_dir().join("rd/gauss_n10000_seed8.txt"));
        let h = kl_entropy_1d_bits(&xs, 3).unwrap();
        let h_fit = H_GAUSS_BITS + 0.5 * 0.980_666_705_972_866_4_f64.log2();
        assert!((h - h_fit).abs() < 0.04, "h = {h}");
        let hh = histogram_entropy_bits(&xs, 60).unwrap();
        assert!((hh.miller_madow_bits - h_fit).abs() < 0.04, "{hh:?}");
        assert!(hh.miller_madow_bits > hh.plugin_bits);
    }

    #[test]
    fn kl_1d_matches_brute_force_knn() {
        // The two-pointer kNN equals a brute-force sort of all distances.
        let xs = normals(60, 5);
        for k in [1, 2, 5] {
            let fast = kl_entropy_1d_bits(&xs, k).unwrap();
            let brute = kl_entropy_bits(&xs, 1, k).unwrap();
            assert!((fast - brute).abs() < 1e-12, "k = {k}: {fast} vs {brute}");
        }
    }

    #[test]
    fn kl_dd_gaussian_and_uniform() {
        // 2-D standard normal, n = 2000: h = log₂(2πe) = 4.094 bits; sd ≈ 0.03 bits, tol 0.15.
        let xs = normals(4000, 11);
        let h = kl_entropy_bits(&xs, 2, 4).unwrap();
        assert!((h - 2.0 * H_GAUSS_BITS).abs() < 0.15, "h = {h}");
        // Scaling by a: h increases by d log₂ a exactly (the estimator is scale-equivariant).
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 * x).collect();
        let hy = kl_entropy_bits(&ys, 2, 4).unwrap();
        assert!((hy - h - 2.0 * 3f64.log2()).abs() < 1e-10);
        // Uniform on [0, 1]: h = 0; edge bias positive and O(k/n).
        let mut r = rng(2);
        let us: Vec<f64> = (0..20_000).map(|_| r.random::<f64>()).collect();
        let hu = kl_entropy_1d_bits(&us, 3).unwrap();
        assert!(hu.abs() < 0.03, "hu = {hu}");
    }

    #[test]
    fn histogram_pmf_feeds_blahut() {
        // The BA rate of a fine histogram of Gaussian samples lies between the SLB (with the
        // KL entropy estimate) and the Gaussian bound at the same distortion, within the
        // estimator's noise (0.05 bits).
        let xs = read_column(reference_dir().join("rd/gauss_n10000_seed8.txt"));
        let h = histogram_pmf(&xs, 200).unwrap();
        assert!((h.probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let d = crate::DistortionMatrix::squared_error(&h.centers, &h.centers).unwrap();
        let cfg = crate::BlahutConfig {
            tol_gap_nats: 1e-5,
            max_iter: 3000,
            ..crate::BlahutConfig::default()
        };
        let pt = crate::blahut_arimoto(&h.probs, &d, 4.0, &cfg).unwrap();
        let var = 0.980_666_705_972_866_4;
        let hb = kl_entropy_1d_bits(&xs, 3).unwrap();
        let slb = crate::shannon_lower_bound_bits(hb, pt.distortion).unwrap();
        let rg = crate::gaussian_rate_bits(var, pt.distortion).unwrap();
        assert!(pt.rate_bits >= slb - 0.05, "{pt:?} slb {slb}");
        assert!(pt.rate_lower_bits <= rg + 0.05, "{pt:?} rg {rg}");
        assert!(matches!(
            histogram_pmf(&[1.0; 3], 4),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(
            histogram_pmf(&[1.0, 2.0], 0),
            Err(Error::InvalidParam { name: "bins", .. })
        ));
    }

    #[test]
    fn estimators_reject_degenerate_inputs() {
        assert!(matches!(
            kl_entropy_1d_bits(&[], 1),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            kl_entropy_1d_bits(&[1.0, f64::NAN, 2.0], 1),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            kl_entropy_1d_bits(&[1.0, 2.0], 2),
            Err(Error::InvalidParam { name: "k", .. })
        ));
        assert!(matches!(
            kl_entropy_1d_bits(&[1.0, 1.0, 2.0, 3.0], 1),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(
            kl_entropy_bits(&[1.0, 2.0, 3.0], 2, 1),
            Err(Error::InvalidParam { name: "dim", .. })
        ));
        assert!(matches!(
            kl_entropy_bits(&[0.0, 0.0, 0.0, 0.0, 1.0, 1.0], 2, 1),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&[2.0; 5], 4),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&[1.0, 2.0], 0),
            Err(Error::InvalidParam { name: "bins", .. })
        ));
    }
}
