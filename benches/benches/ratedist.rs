//! Criterion benches of claimlab-ratedist: Blahut-Arimoto to a certified 1e-9-nat gap on
//! discretised Gaussians of 1,000 and 10,000 symbols, Lloyd (1-D k-means, 16 levels) on 1M
//! weights, and rANS encode/decode throughput.
//!
//! Blahut-Arimoto is timed to convergence (gap ≤ 1e-9 nats, the default tolerance) with the
//! default active-set Newton phase; the squared-error matrix is implicit and the kernel a Toeplitz
//! band, so 10,000 symbols need O(m) memory. The gap, evaluations and Newton steps are printed
//! beside the time.
//!
//! Run: `cargo bench -p claimlab-benches --bench ratedist`. Inputs are seeded; no peer tool.

use std::hint::black_box;
use std::time::Duration;

use claimlab_ratedist::{
    blahut_arimoto, decode_symbols, encode_symbols, lloyd_quantize, BlahutConfig, DistortionMatrix,
    LloydConfig,
};
use claimlab_testkit::rand::RngExt as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Slope in nats per unit squared error: D ≈ 1/(2s) = 0.025 for a unit Gaussian.
const SLOPE: f64 = 20.0;
/// Weights in the Lloyd and rANS benches.
const WEIGHTS: usize = 1_000_000;

fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = claimlab_testkit::rng(seed);
    (0..n)
        .map(|_| {
            let u: f64 = rng.random::<f64>().max(1e-300);
            let v: f64 = rng.random::<f64>();
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

fn blahut(c: &mut Criterion) {
    let mut g = c.benchmark_group("ratedist/blahut");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    for n in [1000usize, 10_000] {
        let values: Vec<f64> = (0..n)
            .map(|i| -4.0 + 8.0 * i as f64 / (n - 1) as f64)
            .collect();
        let w: Vec<f64> = values.iter().map(|x| (-0.5 * x * x).exp()).collect();
        let z: f64 = w.iter().sum();
        let probs: Vec<f64> = w.iter().map(|x| x / z).collect();
        let d = DistortionMatrix::squared_error(&values, &values).unwrap();
        let cfg = BlahutConfig::default();
        let pt = blahut_arimoto(&probs, &d, SLOPE, &cfg).unwrap();
        eprintln!(
            "blahut {n} symbols, s {SLOPE}: D {:.9} R {:.9} bits, gap {:.2e} nats, {} evaluations, {} Newton steps ({:?})",
            pt.distortion, pt.rate_bits, pt.gap_nats, pt.iterations, pt.newton_steps, pt.stop
        );
        g.bench_function(format!("{n}_symbols_s{SLOPE}_gap_1e-9"), |b| {
            b.iter(|| blahut_arimoto(black_box(&probs), &d, SLOPE, &cfg).unwrap());
        });
    }
    g.finish();
}

fn lloyd(c: &mut Criterion) {
    let x = gaussian(WEIGHTS, 7);
    let mut g = c.benchmark_group("ratedist/lloyd");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("1M_weights_16_levels", |b| {
        b.iter(|| lloyd_quantize(black_box(&x), 16, &LloydConfig::default()).unwrap());
    });
    g.finish();
}

fn rans(c: &mut Criterion) {
    // 4-bit indices of a uniform quantizer on a Gaussian (entropy ≈ 3.1 bits per symbol).
    let x = gaussian(WEIGHTS, 11);
    let symbols: Vec<u32> = x
        .iter()
        .map(|&v| ((f64::from(v) / 0.5).round() + 8.0).clamp(0.0, 15.0) as u32)
        .collect();
    let bytes = encode_symbols(&symbols).unwrap();
    assert_eq!(decode_symbols(&bytes).unwrap(), symbols);
    let mut g = c.benchmark_group("ratedist/rans");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    // Throughput counted as one byte per input symbol.
    g.throughput(Throughput::Bytes(WEIGHTS as u64));
    g.bench_function("encode_1M_symbols", |b| {
        b.iter(|| encode_symbols(black_box(&symbols)).unwrap());
    });
    g.bench_function("decode_1M_symbols", |b| {
        b.iter(|| decode_symbols(black_box(&bytes)).unwrap());
    });
    g.finish();
}

criterion_group!(benches, blahut, lloyd, rans);
criterion_main!(benches);
