//! Wall-clock timings of the main entry points (not a benchmark suite; criterion benches are a
//! follow-up):
//!
//! `cargo run --release -p claimlab-spectral --example time_fit FILE [BOOTSTRAP_REPLICATES]`
//!
//! Prints the continuous fit of FILE (one number per line) with its time, the bootstrap p-value
//! and its time when replicates are given, and the time of the singular values of a seeded
//! 768 × 3072 Gaussian matrix.
use claimlab_spectral::{
    bootstrap_p_value, fit_power_law, singular_values, BootstrapConfig, PowerLawConfig,
};
use rand::{RngExt, SeedableRng};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: time_fit FILE [REPLICATES]");
    let data: Vec<f64> = std::fs::read_to_string(path)
        .expect("readable file")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let cfg = PowerLawConfig::continuous();
    let t = std::time::Instant::now();
    let fit = fit_power_law(&data, &cfg).expect("fit");
    println!("{fit:?} in {:.4} s", t.elapsed().as_secs_f64());
    if let Some(b) = args.next() {
        let b: usize = b.parse().expect("replicates");
        let t = std::time::Instant::now();
        let r =
            bootstrap_p_value(&data, &cfg, &fit, &BootstrapConfig::new(b, 1)).expect("bootstrap");
        println!(
            "bootstrap p = {} ± {:.4} ({b} replicates) in {:.2} s",
            r.p_value,
            r.mc_stderr,
            t.elapsed().as_secs_f64()
        );
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    let w =
        claimlab_spectral::faer::Mat::<f64>::from_fn(768, 3072, |_, _| rng.random::<f64>() - 0.5);
    let t = std::time::Instant::now();
    let s = singular_values(w.as_ref()).expect("svd");
    println!(
        "singular values of 768 x 3072: max {:.4} in {:.3} s",
        s[0],
        t.elapsed().as_secs_f64()
    );
}
