//! Goodness of fit by the semiparametric bootstrap of Clauset, Shalizi and Newman (§4.1).

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::csn::{fit_prepared, prepare, PowerLawConfig, PowerLawFit, Prepared};
use crate::error::{Error, Result};
use crate::specfun::hurwitz_zeta;

/// Options of [`bootstrap_p_value`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct BootstrapConfig {
    /// Number of synthetic data sets. CSN suggest 2500 for a p-value good to ±0.01; the default is
    /// 1000 (Monte Carlo standard error ≤ 0.016).
    pub replicates: usize,
    /// Seed of the random stream. Replicates are drawn in fixed batches of [`BOOTSTRAP_BATCH`],
    /// batch `b` from `Xoshiro256PlusPlus::seed_from_u64(seed + b·0x9E3779B97F4A7C15)`, so results
    /// do not depend on the number of threads.
    pub seed: u64,
}

impl BootstrapConfig {
    /// A configuration with `replicates` data sets drawn from `seed`.
    #[must_use]
    pub fn new(replicates: usize, seed: u64) -> Self {
        Self { replicates, seed }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            replicates: 1000,
            seed: 0,
        }
    }
}

/// Replicates per independently seeded batch.
pub const BOOTSTRAP_BATCH: usize = 8;

/// Result of [`bootstrap_p_value`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct BootstrapResult {
    /// Fraction of synthetic KS distances at least as large as the observed one.
    pub p_value: f64,
    /// Monte Carlo standard error `sqrt(p (1 − p) / replicates)`.
    pub mc_stderr: f64,
    /// Number of replicates.
    pub replicates: usize,
    /// Number with synthetic D ≥ observed D.
    pub n_at_least: usize,
    /// The observed KS distance.
    pub ks_observed: f64,
    /// The synthetic KS distances, in replicate order.
    pub ks_synthetic: Vec<f64>,
}

fn batch_rng(seed: u64, batch: usize) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(
        seed.wrapping_add((batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    )
}

/// One discrete power-law draw by exact inversion of the survival function
/// `S(x) = ζ(α, x + 1)/ζ(α, xmin)`, starting from the continuous approximation.
fn discrete_draw(u: f64, xmin: f64, alpha: f64, zmin: f64) -> f64 {
    let v = 1.0 - u; // in (0, 1]
    let mut x = ((xmin - 0.5) * v.powf(-1.0 / (alpha - 1.0)) + 0.5)
        .floor()
        .max(xmin);
    if !x.is_finite() || x > 1e15 {
        return x.min(1e15);
    }
    let surv = |x: f64| {
        if x < xmin {
            1.0
        } else {
            hurwitz_zeta(alpha, x + 1.0) / zmin
        }
    };
    // find the smallest x with S(x) < v
    for _ in 0..1000 {
        if surv(x) >= v {
            x += 1.0;
        } else if surv(x - 1.0) < v {
            x -= 1.0;
        } else {
            break;
        }
    }
    x
}

/// Semiparametric bootstrap p-value of a power-law fit (CSN §4.1).
///
/// Each synthetic data set has the size of the data: with probability `n_tail/n` a value is drawn
/// from the fitted power law above xmin, otherwise uniformly from the data below xmin. Each is
/// refitted with the same configuration (a full xmin scan unless xmin is fixed), and
///
/// ```text
/// p = #{replicates with D_syn ≥ D_obs} / replicates
/// ```
///
/// # Arguments
/// - `data`, `config`: as given to [`fit_power_law`](crate::fit_power_law).
/// - `fit`: that fit.
/// - `boot`: number of replicates and seed.
///
/// # Errors
/// - The input errors of [`fit_power_law`](crate::fit_power_law).
/// - [`Error::InvalidParam`] for zero replicates.
/// - [`Error::Degenerate`] if a synthetic data set cannot be fitted (e.g. all values equal).
///
/// # Complexity
/// `replicates` times the cost of the fit; batches run in parallel with the `rayon` feature and
/// give bit-identical results at any thread count.
///
/// # References
/// Clauset, Shalizi, Newman (2009), §4.1 and Appendix D, doi:10.1137/070710111.
///
/// # Example
/// ```
/// use claimlab_spectral::{bootstrap_p_value, fit_power_law, BootstrapConfig, PowerLawConfig};
/// let data: Vec<f64> = (0..500).map(|i| (1.0 - (i as f64 + 0.5) / 500.0).powf(-1.0 / 1.5)).collect();
/// let cfg = PowerLawConfig::continuous().with_xmin(data[0]);
/// let fit = fit_power_law(&data, &cfg).unwrap();
/// let boot = bootstrap_p_value(&data, &cfg, &fit, &BootstrapConfig::new(50, 1)).unwrap();
/// assert!(boot.p_value > 0.5); // an exact quantile sample fits better than random draws
/// ```
pub fn bootstrap_p_value(
    data: &[f64],
    config: &PowerLawConfig,
    fit: &PowerLawFit,
    boot: &BootstrapConfig,
) -> Result<BootstrapResult> {
    bootstrap_p_value_with_progress(data, config, fit, boot, &|_| {})
}

/// [`bootstrap_p_value`] with a progress callback, called with the number of replicates finished
/// so far after each batch (from worker threads, in completion order; the result itself does not
/// depend on that order).
///
/// # Errors
/// As [`bootstrap_p_value`].
pub fn bootstrap_p_value_with_progress(
    data: &[f64],
    config: &PowerLawConfig,
    fit: &PowerLawFit,
    boot: &BootstrapConfig,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<BootstrapResult> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    if boot.replicates == 0 {
        return Err(Error::InvalidParam {
            name: "replicates",
            value: 0.0,
            reason: "must be at least 1",
        });
    }
    let p = prepare(data, config)?;
    let n = p.x.len();
    let start = p.x.partition_point(|v| *v < fit.xmin);
    let below = &p.x[..start];
    let n_tail = n - start;
    let p_tail = n_tail as f64 / n as f64;
    let (alpha, xmin) = (fit.alpha, fit.xmin);
    let zmin = if config.discrete {
        hurwitz_zeta(alpha, xmin)
    } else {
        f64::NAN
    };
    let n_batches = boot.replicates.div_ceil(BOOTSTRAP_BATCH);
    let run_batch = |b: usize| -> Result<Vec<f64>> {
        let mut rng = batch_rng(boot.seed, b);
        let count = BOOTSTRAP_BATCH.min(boot.replicates - b * BOOTSTRAP_BATCH);
        let mut out = Vec::with_capacity(count);
        let mut x = Vec::with_capacity(n);
        for _ in 0..count {
            x.clear();
            for _ in 0..n {
                let u: f64 = rng.random();
                if below.is_empty() || u < p_tail {
                    let w: f64 = rng.random();
                    let v = if config.discrete {
                        discrete_draw(w, xmin, alpha, zmin)
                    } else {
                        xmin * (1.0 - w).powf(-1.0 / (alpha - 1.0))
                    };
                    x.push(v);
                } else {
                    x.push(below[rng.random_range(0..below.len())]);
                }
            }
            x.sort_by(f64::total_cmp);
            let prep = Prepared::from_sorted(x.clone(), 0);
            out.push(fit_prepared(&prep, config, false)?.ks_distance);
        }
        progress(done.fetch_add(count, std::sync::atomic::Ordering::Relaxed) + count);
        Ok(out)
    };
    let batches: Vec<Result<Vec<f64>>> = map_batches(n_batches, run_batch);
    let mut ks_synthetic = Vec::with_capacity(boot.replicates);
    for b in batches {
        ks_synthetic.extend(b?);
    }
    let n_at_least = ks_synthetic
        .iter()
        .filter(|&&d| d >= fit.ks_distance)
        .count();
    let p_value = n_at_least as f64 / boot.replicates as f64;
    Ok(BootstrapResult {
        p_value,
        mc_stderr: (p_value * (1.0 - p_value) / boot.replicates as f64).sqrt(),
        replicates: boot.replicates,
        n_at_least,
        ks_observed: fit.ks_distance,
        ks_synthetic,
    })
}

#[cfg(feature = "rayon")]
fn map_batches<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    (0..n).into_par_iter().map(f).collect()
}

#[cfg(not(feature = "rayon"))]
fn map_batches<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    (0..n).map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit_power_law;

    #[test]
    fn discrete_draws_follow_the_pmf() {
        let (alpha, xmin) = (2.5, 2.0);
        let zmin = hurwitz_zeta(alpha, xmin);
        let mut rng = batch_rng(9, 0);
        let m = 200_000;
        let mut counts = [0usize; 4];
        for _ in 0..m {
            let x = discrete_draw(rng.random(), xmin, alpha, zmin);
            assert!(x >= xmin && x.fract() == 0.0);
            if x < 6.0 {
                counts[(x - 2.0) as usize] += 1;
            }
        }
        for (k, &c) in counts.iter().enumerate() {
            let pk = (xmin + k as f64).powf(-alpha) / zmin;
            let se = (pk * (1.0 - pk) / m as f64).sqrt();
            // 5 standard errors: false alarm about 6e-7 per cell
            assert!(
                (c as f64 / m as f64 - pk).abs() < 5.0 * se,
                "x = {}: {} vs {pk}",
                k + 2,
                c as f64 / m as f64
            );
        }
    }

    #[test]
    fn errors() {
        let data: Vec<f64> = (1..=30).map(f64::from).collect();
        let cfg = PowerLawConfig::continuous();
        let fit = fit_power_law(&data, &cfg).unwrap();
        let zero = BootstrapConfig {
            replicates: 0,
            seed: 0,
        };
        assert!(matches!(
            bootstrap_p_value(&data, &cfg, &fit, &zero),
            Err(Error::InvalidParam {
                name: "replicates",
                ..
            })
        ));
        assert_eq!(
            bootstrap_p_value(&[], &cfg, &fit, &BootstrapConfig::default()),
            Err(Error::Empty)
        );
    }

    #[test]
    fn discrete_bootstrap_runs_and_is_seeded() {
        let data: Vec<f64> = (0..300)
            .map(|i| ((1.0 - (i as f64 + 0.5) / 300.0).powf(-1.0 / 1.5)).floor())
            .collect();
        let cfg = PowerLawConfig::discrete();
        let fit = fit_power_law(&data, &cfg).unwrap();
        let b = BootstrapConfig {
            replicates: 20,
            seed: 5,
        };
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let last = std::sync::atomic::AtomicUsize::new(0);
        let r1 = bootstrap_p_value_with_progress(&data, &cfg, &fit, &b, &|k| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            last.fetch_max(k, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(calls.into_inner(), 20usize.div_ceil(BOOTSTRAP_BATCH));
        assert_eq!(last.into_inner(), 20);
        let r2 = bootstrap_p_value(&data, &cfg, &fit, &b).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(r1.ks_synthetic.len(), 20);
        assert!(r1.ks_synthetic.iter().all(|d| *d > 0.0 && *d < 1.0));
    }
}
