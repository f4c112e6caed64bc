//! Criterion benches of claimlab-spectral: the Clauset-Shalizi-Newman fit with a full xmin scan
//! (every distinct value a candidate) at n = 1e3 to 1e6, the semiparametric bootstrap, and the
//! singular values of a 768 × 3072 matrix. `benches/peers/spectral_peers.py` times `powerlaw` and
//! NumPy on the identical inputs.
//!
//! Inputs: the reference samples of `shared/reference/spectral` (Pareto alpha 2.5, n = 1000 and
//! 10000) and seeded Pareto samples (alpha 2.5, xmin 1) from SplitMix64, a generator the peer script
//! reproduces bit for bit, so both sides fit the same numbers.
//!
//! Run: `cargo bench -p claimlab-benches --bench spectral`. Single-threaded figures: set
//! `RAYON_NUM_THREADS=1`.

use std::hint::black_box;
use std::time::Duration;

use claimlab_spectral::{
    bootstrap_p_value, faer, fit_power_law, singular_values, BootstrapConfig, PowerLawConfig,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Seed of the synthetic Pareto samples (the peer script uses the same).
const PARETO_SEED: u64 = 2024;
/// Pdf exponent of the synthetic samples.
const PARETO_ALPHA: f64 = 2.5;
/// Replicates of the bootstrap bench (the target: 1000 in a few seconds).
const BOOT_REPLICATES: usize = 1000;
/// The matrix of the SVD bench: BERT-base's MLP shape.
const SVD_SHAPE: (usize, usize) = (768, 3072);

/// SplitMix64 (Steele, Lea, Flood 2014): tiny and exactly reproducible in Python.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `n` draws of a continuous Pareto law with pdf exponent alpha above 1, by inversion.
fn pareto(n: usize, seed: u64) -> Vec<f64> {
    let mut g = SplitMix64(seed);
    (0..n)
        .map(|_| (1.0 - g.next_f64()).powf(-1.0 / (PARETO_ALPHA - 1.0)))
        .collect()
}

fn reference(name: &str) -> Vec<f64> {
    claimlab_testkit::read_column(
        claimlab_testkit::reference_dir()
            .join("spectral")
            .join(name),
    )
}

fn csn_fit(c: &mut Criterion) {
    let inputs = [
        (
            "ref_pareto",
            reference("pareto_alpha2.5_xmin1_n1000_seed5.txt"),
        ),
        (
            "ref_pareto",
            reference("pareto_alpha2.5_xmin1_n10000_seed1.txt"),
        ),
        ("splitmix_pareto", pareto(1_000, PARETO_SEED)),
        ("splitmix_pareto", pareto(3_000, PARETO_SEED)),
        ("splitmix_pareto", pareto(10_000, PARETO_SEED)),
        ("splitmix_pareto", pareto(30_000, PARETO_SEED)),
        ("splitmix_pareto", pareto(100_000, PARETO_SEED)),
        ("splitmix_pareto", pareto(1_000_000, PARETO_SEED)),
    ];
    let cfg = PowerLawConfig::continuous();
    let mut g = c.benchmark_group("csn_fit_full_xmin_scan");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, data) in &inputs {
        let fit = fit_power_law(data, &cfg).expect("fit");
        // quality beside the time (STYLE.md, Speed)
        eprintln!(
            "{name} n={}: alpha {:.6} xmin {:.6} D {:.6} n_tail {} candidates {}",
            data.len(),
            fit.alpha,
            fit.xmin,
            fit.ks_distance,
            fit.n_tail,
            fit.n_candidates
        );
        g.throughput(Throughput::Elements(data.len() as u64));
        g.bench_with_input(BenchmarkId::new(*name, data.len()), data, |b, d| {
            b.iter(|| fit_power_law(black_box(d), &cfg).expect("fit"));
        });
    }
    g.finish();
}

fn bootstrap(c: &mut Criterion) {
    let data = reference("pareto_alpha2.5_xmin1_n1000_seed5.txt");
    let cfg = PowerLawConfig::continuous();
    let fit = fit_power_law(&data, &cfg).expect("fit");
    let boot = BootstrapConfig::new(BOOT_REPLICATES, 1);
    let r = bootstrap_p_value(&data, &cfg, &fit, &boot).expect("bootstrap");
    eprintln!(
        "bootstrap n=1000, {BOOT_REPLICATES} replicates: p {:.4} ± {:.4}",
        r.p_value, r.mc_stderr
    );
    let mut g = c.benchmark_group("bootstrap_p_value");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function(BenchmarkId::new("ref_pareto_n1000", BOOT_REPLICATES), |b| {
        b.iter(|| bootstrap_p_value(black_box(&data), &cfg, &fit, &boot).expect("bootstrap"));
    });
    g.finish();
}

fn svd(c: &mut Criterion) {
    let (rows, cols) = SVD_SHAPE;
    let mut g = SplitMix64(7);
    // standard-normal-ish entries (sum of 4 uniforms, centred): the spectrum shape does not matter
    let v: Vec<f64> = (0..rows * cols)
        .map(|_| (0..4).map(|_| g.next_f64()).sum::<f64>() - 2.0)
        .collect();
    // row-major, as the peer script's reshape
    let w = faer::Mat::<f64>::from_fn(rows, cols, |i, j| v[i * cols + j]);
    let sv = singular_values(w.as_ref()).expect("svd");
    eprintln!(
        "svd {rows}x{cols}: sigma_max {:.4} sigma_min {:.4}",
        sv[0],
        sv[sv.len() - 1]
    );
    let mut grp = c.benchmark_group("singular_values");
    grp.sample_size(10)
        .measurement_time(Duration::from_secs(10));
    grp.bench_function(format!("{rows}x{cols}_f64"), |b| {
        b.iter(|| singular_values(black_box(w.as_ref())).expect("svd"));
    });
    grp.finish();
}

criterion_group!(benches, csn_fit, bootstrap, svd);
criterion_main!(benches);
