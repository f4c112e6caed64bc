//! Random and adversarial inputs never panic: every public function returns `Ok` or `Err`.
use claimlab_spectral::{
    compare_all, components_for_energy, entropy_effective_rank, fit_power_law, fit_rank_decay,
    hill_series, moment_estimator, participation_ratio, pickands_estimator, stable_rank,
    PowerLawConfig,
};
use claimlab_testkit::rand::RngExt;

fn nasty(seed: u64) -> Vec<f64> {
    let mut r = claimlab_testkit::rng(seed);
    let n = r.random_range(0..40usize);
    (0..n)
        .map(|_| match r.random_range(0..10u32) {
            0 => 0.0,
            1 => -r.random::<f64>(),
            2 => 1e300 * r.random::<f64>(),
            3 => 1e-300 * r.random::<f64>(),
            4 => 7.0,
            5 => f64::from(r.random_range(1..5u32)),
            6 if seed.is_multiple_of(7) => f64::NAN,
            7 if seed.is_multiple_of(11) => f64::INFINITY,
            _ => (1.0 - r.random::<f64>()).powf(-0.7),
        })
        .collect()
}

#[test]
fn random_inputs_never_panic() {
    for seed in 0..400 {
        let x = nasty(seed);
        for cfg in [
            PowerLawConfig::continuous(),
            PowerLawConfig::continuous().dropping_non_positive(),
            PowerLawConfig::discrete().dropping_non_positive(),
            PowerLawConfig::continuous().with_xmin(1.0).with_xmax(50.0),
        ] {
            if let Ok(fit) = fit_power_law(&x, &cfg) {
                assert!(fit.alpha > 1.0 && fit.ks_distance >= 0.0 && fit.ks_distance <= 1.0);
                assert!(fit.n_tail >= 1 && fit.n_tail <= fit.n);
                let _ = compare_all(&x, &fit);
            }
        }
        let k = (seed % 9) as usize;
        let _ = hill_series(&x, &[k, 1]);
        let _ = moment_estimator(&x, k);
        let _ = pickands_estimator(&x, k);
        let _ = entropy_effective_rank(&x);
        let _ = stable_rank(&x);
        let _ = participation_ratio(&x);
        let _ = components_for_energy(&x, 0.9);
        let _ = fit_rank_decay(&x, 1 + k, 3 + 2 * k);
    }
}
