//! Criterion benches of claimlab-topology on the reference clouds of `shared/reference/ph`
//! (the same files `benches/peers/ph_peers.py` times with ripser and GUDHI).
//!
//! Run: `cargo bench -p claimlab-benches --bench topology`. Single-threaded figures: set
//! `RAYON_NUM_THREADS=1`.

use std::hint::black_box;
use std::time::Duration;

use claimlab_topology::{bottleneck_distance, vr_barcodes, Diagram, VrConfig};
use criterion::{criterion_group, criterion_main, Criterion};

/// (cloud, highest dimension), as in the issue: H2 up to 400 points, H1 for the 1000-point cube.
const CLOUDS: [(&str, usize); 4] = [
    ("circle100", 2),
    ("sphere200", 2),
    ("torus400", 2),
    ("cube1000", 1),
];

/// Points in the diagrams of the bottleneck bench.
const DIAGRAM_POINTS: usize = 5000;

fn cloud(name: &str) -> Vec<Vec<f64>> {
    claimlab_testkit::read_rows(
        claimlab_testkit::reference_dir()
            .join("ph")
            .join(format!("{name}.txt")),
    )
}

/// A deterministic diagram of `n` points from low-discrepancy sequences; the peer script builds the
/// identical one (same IEEE operations) so both sides time the same input.
fn synthetic_diagram(n: usize, a: f64, b: f64) -> Diagram {
    let pairs: Vec<(f64, f64)> = (1..=n)
        .map(|i| {
            let x = i as f64;
            let birth = (x * a) % 1.0;
            let life = 0.5 * ((x * b) % 1.0);
            (birth, birth + life)
        })
        .collect();
    Diagram::from_pairs(&pairs).expect("finite pairs")
}

fn barcodes(c: &mut Criterion) {
    let mut g = c.benchmark_group("vr_barcodes");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, dim) in CLOUDS {
        let pts = cloud(name);
        let config = VrConfig::with_max_dim(dim);
        g.bench_function(format!("{name}_H{dim}"), |bch| {
            bch.iter(|| vr_barcodes(black_box(&pts), &config).expect("barcodes"));
        });
    }
    g.finish();
}

fn bottleneck(c: &mut Criterion) {
    let a = synthetic_diagram(
        DIAGRAM_POINTS,
        0.618_033_988_749_894_9,
        0.414_213_562_373_095_1,
    );
    let b = synthetic_diagram(
        DIAGRAM_POINTS,
        0.732_050_807_568_877_2,
        0.236_067_977_499_789_7,
    );
    let mut g = c.benchmark_group("bottleneck");
    g.sample_size(10);
    g.bench_function(format!("synthetic_{DIAGRAM_POINTS}"), |bch| {
        bch.iter(|| bottleneck_distance(black_box(&a), black_box(&b)).expect("bottleneck"));
    });
    g.finish();
}

criterion_group!(benches, barcodes, bottleneck);
criterion_main!(benches);
