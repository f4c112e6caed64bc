//! Closed-form bounds: Gaussian R(D) and D(R), reverse water-filling, the Shannon lower bound and
//! the binary source with Hamming distortion.

use crate::error::{check_finite, check_nonempty, invalid, Result};
use crate::special::binary_entropy_bits;
use crate::tol;

/// Rate-distortion function of a Gaussian source under mean squared error, in **bits** per sample.
///
/// ```text
/// R(D) = max(0, ½ log₂(σ² / D))
/// ```
///
/// # Arguments
/// * `variance` — σ² ≥ 0 (σ² = 0 gives R = 0 for every D > 0).
/// * `distortion_mse` — D > 0, mean squared error per sample.
///
/// # Errors
/// [`Error::NonFinite`](crate::Error::NonFinite) for NaN or ∞, and
/// [`Error::InvalidParam`](crate::Error::InvalidParam) for σ² < 0 or D ≤ 0.
///
/// # References
/// Cover & Thomas, *Elements of Information Theory*, 2nd ed., Theorem 10.3.2.
///
/// # Example
/// ```
/// let r = claimlab_ratedist::gaussian_rate_bits(1.0, 0.25).unwrap();
/// assert!((r - 1.0).abs() < 1e-15);
/// ```
pub fn gaussian_rate_bits(variance: f64, distortion_mse: f64) -> Result<f64> {
    check_finite("variance", &[variance])?;
    check_finite("distortion_mse", &[distortion_mse])?;
    if variance < 0.0 {
        return Err(invalid("variance", variance, "must be >= 0"));
    }
    if distortion_mse <= 0.0 {
        return Err(invalid("distortion_mse", distortion_mse, "must be > 0"));
    }
    Ok((0.5 * (variance / distortion_mse).log2()).max(0.0))
}

/// Distortion-rate function of a Gaussian source: the least mean squared error at `rate_bits`
/// bits per sample.
///
/// ```text
/// D(R) = σ² 2^(−2R)
/// ```
///
/// # Errors
/// [`Error::NonFinite`](crate::Error::NonFinite) for NaN or ∞;
/// [`Error::InvalidParam`](crate::Error::InvalidParam) for σ² < 0 or R < 0.
///
/// # Example
/// ```
/// let d = claimlab_ratedist::gaussian_distortion_mse(1.0, 1.0).unwrap();
/// assert!((d - 0.25).abs() < 1e-15);
/// ```
pub fn gaussian_distortion_mse(variance: f64, rate_bits: f64) -> Result<f64> {
    check_finite("variance", &[variance])?;
    check_finite("rate_bits", &[rate_bits])?;
    if variance < 0.0 {
        return Err(invalid("variance", variance, "must be >= 0"));
    }
    if rate_bits < 0.0 {
        return Err(invalid("rate_bits", rate_bits, "must be >= 0"));
    }
    Ok(variance * (-2.0 * rate_bits).exp2())
}

/// Result of [`reverse_water_filling`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WaterFilling {
    /// The water level θ (units of variance).
    pub water_level: f64,
    /// Per-component distortions Dᵢ = min(θ, σᵢ²); they sum to the requested total.
    pub distortions: Vec<f64>,
    /// Per-component rates Rᵢ = max(0, ½ log₂(σᵢ² / θ)), in bits.
    pub rates_bits: Vec<f64>,
    /// Σ Rᵢ in bits.
    pub rate_total_bits: f64,
    /// Whether component i receives a positive rate (σᵢ² > θ).
    pub active: Vec<bool>,
    /// Bisection iterations used.
    pub iterations: usize,
}

/// Reverse water-filling over independent Gaussian components under a total squared-error budget.
///
/// ```text
/// Dᵢ = min(θ, σᵢ²),  Σᵢ Dᵢ = D_total,  R = Σᵢ max(0, ½ log₂(σᵢ² / θ))  [bits]
/// ```
/// θ is found by bisection on [0, max σᵢ²] to relative precision [`tol::WATER_LEVEL_REL`]. If
/// `d_total ≥ Σ σᵢ²` every component is switched off (θ = max σᵢ², R = 0).
///
/// # Arguments
/// * `variances` — σᵢ² ≥ 0, one per component.
/// * `d_total` — total distortion Σ Dᵢ > 0 (a sum, not a mean).
///
/// # Errors
/// `Empty`, `NonFinite`, and `InvalidParam` for a negative variance or `d_total ≤ 0`.
///
/// # Complexity
/// O(n · 60) time (bisection to double precision), O(n) memory.
///
/// # References
/// Cover & Thomas, 2nd ed., Theorem 10.3.3.
///
/// # Example
/// ```
/// let wf = claimlab_ratedist::reverse_water_filling(&[4.0, 2.0, 1.0, 0.5, 0.25], 1.0).unwrap();
/// assert!((wf.water_level - 0.2).abs() < 1e-12);
/// assert!((wf.rate_total_bits - 5.8048202372).abs() < 1e-9);
/// ```
pub fn reverse_water_filling(variances: &[f64], d_total: f64) -> Result<WaterFilling> {
    check_nonempty("variances", variances)?;
    check_finite("variances", variances)?;
    check_finite("d_total", &[d_total])?;
    if let Some(v) = variances.iter().find(|v| **v < 0.0) {
        return Err(invalid("variances", v, "variances must be >= 0"));
    }
    if d_total <= 0.0 {
        return Err(invalid("d_total", d_total, "must be > 0"));
    }
    let total_var: f64 = variances.iter().sum();
    let max_var = variances.iter().copied().fold(0.0, f64::max);
    let used = |theta: f64| variances.iter().map(|&v| v.min(theta)).sum::<f64>();
    let (theta, iterations) = if d_total >= total_var {
        (max_var, 0)
    } else {
        let (mut lo, mut hi) = (0.0_f64, max_var);
        let mut it = 0;
        while hi - lo > tol::WATER_LEVEL_REL * hi && it < 200 {
            let mid = 0.5 * (lo + hi);
            if used(mid) < d_total {
                lo = mid;
            } else {
                hi = mid;
            }
            it += 1;
        }
        (0.5 * (lo + hi), it)
    };
    let distortions: Vec<f64> = variances.iter().map(|&v| v.min(theta)).collect();
    let active: Vec<bool> = variances.iter().map(|&v| v > theta).collect();
    let rates_bits: Vec<f64> = variances
        .iter()
        .map(|&v| {
            if v > theta {
                0.5 * (v / theta).log2()
            } else {
                0.0
            }
        })
        .collect();
    let rate_total_bits = rates_bits.iter().sum();
    Ok(WaterFilling {
        water_level: theta,
        distortions,
        rates_bits,
        rate_total_bits,
        active,
        iterations,
    })
}

/// Shannon lower bound on R(D) under mean squared error, in **bits**, from a differential entropy
/// `h_bits` (bits).
///
/// ```text
/// SLB(D) = h(X) − ½ log₂(2πe D)
/// ```
/// The value is returned as is (it may be negative at large D; R(D) ≥ max(0, SLB)). It equals the
/// Gaussian R(D) when X is Gaussian; for any other source of the same variance it is lower, by
/// exactly the gap between h(X) and the Gaussian entropy.
///
/// # Errors
/// `NonFinite`, and `InvalidParam` for D ≤ 0.
///
/// # References
/// Cover & Thomas, 2nd ed., Problem 10.6; Berger (1971), §4.3.
///
/// # Example
/// ```
/// // Unit Gaussian: h = ½ log₂(2πe) bits, so SLB(D) = ½ log₂(1/D).
/// let h = 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).log2();
/// let slb = claimlab_ratedist::shannon_lower_bound_bits(h, 0.25).unwrap();
/// assert!((slb - 1.0).abs() < 1e-14);
/// ```
pub fn shannon_lower_bound_bits(h_bits: f64, distortion_mse: f64) -> Result<f64> {
    check_finite("h_bits", &[h_bits])?;
    check_finite("distortion_mse", &[distortion_mse])?;
    if distortion_mse <= 0.0 {
        return Err(invalid("distortion_mse", distortion_mse, "must be > 0"));
    }
    let two_pi_e = 2.0 * std::f64::consts::PI * std::f64::consts::E;
    Ok(h_bits - 0.5 * (two_pi_e * distortion_mse).log2())
}

/// R(D) of a Bernoulli(p) source under Hamming distortion, in **bits**.
///
/// ```text
/// R(D) = h(p) − h(D) for 0 ≤ D < min(p, 1 − p), and 0 otherwise; h = binary entropy in bits
/// ```
///
/// # Errors
/// `NonFinite`, and `InvalidParam` for p ∉ [0, 1] or D < 0.
///
/// # References
/// Cover & Thomas, 2nd ed., Theorem 10.3.1.
///
/// # Example
/// ```
/// let r = claimlab_ratedist::binary_hamming_rate_bits(0.5, 0.11).unwrap();
/// assert!((r - 0.5000840418).abs() < 1e-9);
/// ```
pub fn binary_hamming_rate_bits(p: f64, distortion: f64) -> Result<f64> {
    check_finite("p", &[p])?;
    check_finite("distortion", &[distortion])?;
    if !(0.0..=1.0).contains(&p) {
        return Err(invalid("p", p, "must lie in [0, 1]"));
    }
    if distortion < 0.0 {
        return Err(invalid("distortion", distortion, "must be >= 0"));
    }
    if distortion >= p.min(1.0 - p) {
        return Ok(0.0);
    }
    Ok(binary_entropy_bits(p) - binary_entropy_bits(distortion))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use claimlab_testkit::{assert_slice_close, read_json, reference_dir};

    fn rd_ref() -> serde_json::Value {
        read_json(reference_dir().join("rd/rd_reference.json"))
    }

    fn f(v: &serde_json::Value) -> f64 {
        v.as_f64().expect("number")
    }

    fn fv(v: &serde_json::Value) -> Vec<f64> {
        v.as_array().expect("array").iter().map(f).collect()
    }

    #[test]
    fn gaussian_matches_reference() {
        // Reference: closed forms evaluated in numpy; we agree to rounding (1e-13).
        let r = rd_ref();
        for pt in r["gaussian"]["R_of_D"].as_array().unwrap() {
            let got = gaussian_rate_bits(1.0, f(&pt["D"])).unwrap();
            assert!((got - f(&pt["R"])).abs() < 1e-13, "{pt}");
        }
        for pt in r["gaussian"]["D_of_R"].as_array().unwrap() {
            let got = gaussian_distortion_mse(1.0, f(&pt["R"])).unwrap();
            assert!((got - f(&pt["D"])).abs() < 1e-13, "{pt}");
        }
    }

    #[test]
    fn gaussian_invariants_and_errors() {
        // Convex, non-increasing, zero beyond the variance; D(R(D)) = D.
        let ds: Vec<f64> = (1..200).map(|i| i as f64 * 0.01).collect();
        let rs: Vec<f64> = ds
            .iter()
            .map(|&d| gaussian_rate_bits(1.3, d).unwrap())
            .collect();
        for w in rs.windows(3) {
            assert!(w[1] <= w[0] + 1e-15);
            assert!(w[0] + w[2] - 2.0 * w[1] >= -1e-12);
        }
        assert!(gaussian_rate_bits(1.3, 1.5).unwrap().abs() < 1e-300);
        let d = gaussian_distortion_mse(1.3, gaussian_rate_bits(1.3, 0.2).unwrap()).unwrap();
        assert!((d - 0.2).abs() < 1e-14);
        assert!(gaussian_rate_bits(0.0, 0.1).unwrap().abs() < 1e-300);
        assert!(matches!(
            gaussian_rate_bits(1.0, 0.0),
            Err(Error::InvalidParam {
                name: "distortion_mse",
                ..
            })
        ));
        assert!(matches!(
            gaussian_rate_bits(-1.0, 0.5),
            Err(Error::InvalidParam {
                name: "variance",
                ..
            })
        ));
        assert!(matches!(
            gaussian_rate_bits(f64::NAN, 0.5),
            Err(Error::NonFinite {
                name: "variance",
                ..
            })
        ));
        assert!(matches!(
            gaussian_distortion_mse(1.0, -0.1),
            Err(Error::InvalidParam {
                name: "rate_bits",
                ..
            })
        ));
    }

    #[test]
    fn water_filling_matches_reference() {
        // Reference: exact water levels; bisection is accurate to ~1e-15 relative.
        let r = rd_ref();
        let vars = fv(&r["reverse_water_filling"]["variances"]);
        for case in r["reverse_water_filling"]["cases"].as_array().unwrap() {
            let d = f(&case["D_total"]);
            let wf = reverse_water_filling(&vars, d).unwrap();
            assert!((wf.water_level - f(&case["theta"])).abs() < 1e-12, "{case}");
            assert_slice_close(&wf.distortions, &fv(&case["D_i"]), 1e-12, 1e-12);
            assert_slice_close(&wf.rates_bits, &fv(&case["R_i"]), 1e-12, 1e-12);
            assert!((wf.rate_total_bits - f(&case["R_total"])).abs() < 1e-11);
            let act: Vec<bool> = case["active"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            assert_eq!(wf.active, act);
            // Invariant: the distortions sum to the budget (or to Σσ² when it is exceeded).
            let sum: f64 = wf.distortions.iter().sum();
            assert!((sum - d.min(vars.iter().sum())).abs() < 1e-12);
        }
    }

    #[test]
    fn water_filling_degenerate() {
        // One component reduces to the scalar Gaussian.
        let wf = reverse_water_filling(&[2.0], 0.5).unwrap();
        assert!((wf.rate_total_bits - gaussian_rate_bits(2.0, 0.5).unwrap()).abs() < 1e-13);
        // Zero-variance components take no rate and no distortion.
        let wf = reverse_water_filling(&[0.0, 1.0], 0.25).unwrap();
        assert!(wf.distortions[0].abs() < 1e-300 && !wf.active[0]);
        assert!((wf.rate_total_bits - 1.0).abs() < 1e-12);
        assert!(matches!(
            reverse_water_filling(&[], 1.0),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            reverse_water_filling(&[1.0, f64::NAN], 1.0),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            reverse_water_filling(&[1.0], 0.0),
            Err(Error::InvalidParam {
                name: "d_total",
                ..
            })
        ));
        // Brute force on a small case: the water-filling allocation beats random feasible ones.
        let vars = [3.0, 1.0, 0.2];
        let wf = reverse_water_filling(&vars, 1.2).unwrap();
        let mut rng = claimlab_testkit::rng(3);
        use claimlab_testkit::rand::RngExt;
        for _ in 0..2000 {
            let a: f64 = rng.random();
            let b: f64 = rng.random::<f64>() * (1.0 - a);
            let di = [1.2 * a, 1.2 * b, 1.2 * (1.0 - a - b)];
            let r: f64 = vars
                .iter()
                .zip(di)
                .map(|(&v, d)| {
                    if d > 0.0 {
                        gaussian_rate_bits(v, d).unwrap()
                    } else {
                        1e9
                    }
                })
                .sum();
            assert!(r >= wf.rate_total_bits - 1e-12);
        }
    }

    #[test]
    fn slb_matches_reference() {
        // Reference: closed-form entropies of unit-variance sources; 1e-12.
        let r = rd_ref();
        for (name, src) in r["shannon_lower_bound"]["sources"].as_object().unwrap() {
            let h = f(&src["h_bits"]);
            for pt in src["points"].as_array().unwrap() {
                let d = f(&pt["D"]);
                let slb = shannon_lower_bound_bits(h, d).unwrap();
                assert!((slb - f(&pt["SLB"])).abs() < 1e-12, "{name} {pt}");
                assert!(slb <= gaussian_rate_bits(1.0, d).unwrap() + 1e-12);
            }
        }
        assert!(matches!(
            shannon_lower_bound_bits(1.0, -1.0),
            Err(Error::InvalidParam { .. })
        ));
    }

    #[test]
    fn binary_matches_reference() {
        let r = rd_ref();
        for pt in r["binary"]["points"].as_array().unwrap() {
            let got = binary_hamming_rate_bits(0.11, f(&pt["D"])).unwrap();
            assert!((got - f(&pt["R_exact"])).abs() < 1e-13, "{pt}");
        }
        assert!(binary_hamming_rate_bits(0.11, 0.2).unwrap().abs() < 1e-300);
        assert!((binary_hamming_rate_bits(0.11, 0.0).unwrap() - 0.499915958164528).abs() < 1e-12);
        assert!(matches!(
            binary_hamming_rate_bits(1.5, 0.1),
            Err(Error::InvalidParam { name: "p", .. })
        ));
    }
}
