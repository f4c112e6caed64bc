//! House rules checked by tests: standalone crate, deterministic threading.

use claimlab_testkit::rand::RngExt;
use claimlab_topology::{vr_barcodes, VrConfig};

/// The area crates never depend on `weights`, `runtime` or `experiments`.
#[test]
fn standalone_manifest() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    for forbidden in [
        "claimlab-weights",
        "claimlab-runtime",
        "claimlab-experiments",
        "experiments",
    ] {
        assert!(
            !manifest.contains(forbidden),
            "topology must not depend on {forbidden}"
        );
    }
}

/// Results are bit-identical with one thread and many.
#[cfg(feature = "rayon")]
#[test]
fn identical_at_one_and_many_threads() {
    let mut rng = claimlab_testkit::rng(99);
    let pts: Vec<[f64; 3]> = (0..80)
        .map(|_| [rng.random(), rng.random(), rng.random()])
        .collect();
    let cfg = VrConfig {
        cocycles: true,
        ..VrConfig::with_max_dim(2)
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| vr_barcodes(&pts, &cfg).unwrap());
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(|| vr_barcodes(&pts, &cfg).unwrap());
    assert_eq!(one, many);
}
