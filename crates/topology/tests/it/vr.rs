//! The fast Vietoris-Rips path against the brute-force oracle, and degenerate inputs.

use claimlab_testkit::rand::RngExt;
use claimlab_topology::{
    vr_barcodes, vr_barcodes_brute_force, vr_barcodes_from_distances, vr_barcodes_with_metric,
    Error, VrConfig,
};
use proptest::prelude::*;

use crate::common::{assert_diagrams_equal, lower_distances};

fn check_same(n: usize, lower: &[f64], config: &VrConfig) {
    let fast = vr_barcodes_from_distances(n, lower, config).unwrap();
    let slow = vr_barcodes_brute_force(n, lower, config).unwrap();
    assert_eq!(fast.diagrams.len(), config.max_dim + 1);
    for (k, (a, b)) in fast.diagrams.iter().zip(&slow.diagrams).enumerate() {
        assert_diagrams_equal(
            a,
            b,
            &format!("H{k}, n = {n}, {config:?}, lower = {lower:?}"),
        );
    }
}

fn config(max_dim: usize, modulus: u32, threshold: Option<f64>) -> VrConfig {
    VrConfig {
        max_dim,
        threshold,
        modulus,
        cocycles: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random Euclidean clouds (generic distances).
    #[test]
    fn fast_matches_brute_force_on_clouds(
        pts in prop::collection::vec(prop::collection::vec(-1.0f64..1.0, 2), 1..10),
        max_dim in 0usize..=2,
        modulus in prop::sample::select(vec![2u32, 3, 5]),
    ) {
        let lower = lower_distances(&pts);
        check_same(pts.len(), &lower, &config(max_dim, modulus, None));
    }

    /// Integer distances in a small range: many ties, so apparent and emergent pairs and
    /// zero-length intervals all occur. Not a metric in general; Rips is defined anyway.
    #[test]
    fn fast_matches_brute_force_with_ties(
        n in 1usize..9,
        seed in any::<u64>(),
        max_dim in 1usize..=3,
        modulus in prop::sample::select(vec![2u32, 3]),
        threshold in prop::option::of(0.0f64..5.0),
    ) {
        let mut rng = claimlab_testkit::rng(seed);
        let lower: Vec<f64> = (0..n * (n - 1) / 2).map(|_| f64::from(rng.random_range(0..4u32))).collect();
        check_same(n, &lower, &config(max_dim, modulus, threshold));
    }
}

#[test]
fn fast_matches_brute_force_in_3d_up_to_h3() {
    let mut rng = claimlab_testkit::rng(11);
    for trial in 0..20 {
        let n = 6 + trial % 5;
        let pts: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..3).map(|_| rng.random::<f64>()).collect())
            .collect();
        let lower = lower_distances(&pts);
        check_same(n, &lower, &config(3, 2, None));
        check_same(n, &lower, &config(2, 3, Some(0.6)));
    }
}

/// The octahedron: its Rips complex between √2 and 2 is a 2-sphere, over every field.
#[test]
fn octahedron_is_a_sphere_over_every_field() {
    let oct: [[f64; 3]; 6] = [
        [1.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, -1.0],
    ];
    for p in [2, 3, 5] {
        let bars = vr_barcodes(&oct, &config(2, p, None)).unwrap();
        let h2 = &bars.diagrams[2].intervals;
        assert_eq!(h2.len(), 1, "modulus {p}");
        assert!((h2[0].birth - 2f64.sqrt()).abs() < 1e-12 && (h2[0].death - 2.0).abs() < 1e-12);
        assert!(bars.diagrams[1].is_empty());
    }
}

#[test]
fn degenerate_inputs() {
    let cfg = VrConfig::with_max_dim(2);
    // No points.
    let empty: Vec<Vec<f64>> = Vec::new();
    assert!(matches!(
        vr_barcodes(&empty, &cfg),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        vr_barcodes_from_distances(0, &[], &cfg),
        Err(Error::Empty { .. })
    ));
    // One point: one essential H0 class.
    let one = vr_barcodes(&[[0.5, 0.5]], &cfg).unwrap();
    assert_eq!(one.diagrams[0].to_pairs(), vec![(0.0, f64::INFINITY)]);
    assert!(one.diagrams[1].is_empty() && one.diagrams[2].is_empty());
    // All points equal: zero-length intervals dropped, one class survives.
    let same = vr_barcodes(&[[1.0, 2.0]; 5], &cfg).unwrap();
    assert_eq!(same.diagrams[0].to_pairs(), vec![(0.0, f64::INFINITY)]);
    assert!(same.diagrams[1].is_empty());
    // Duplicates among distinct points.
    let dup = vr_barcodes(&[[0.0], [0.0], [1.0]], &cfg).unwrap();
    assert_eq!(
        dup.diagrams[0].to_pairs(),
        vec![(0.0, 1.0), (0.0, f64::INFINITY)]
    );
    // Threshold zero: every distinct point is its own essential class.
    let zero = vr_barcodes(&[[0.0], [0.0], [1.0], [3.0]], &config(1, 2, Some(0.0))).unwrap();
    assert_eq!(zero.diagrams[0].to_pairs(), vec![(0.0, f64::INFINITY); 3]);
    // NaN and infinite coordinates.
    let e = vr_barcodes(&[[0.0, 1.0], [f64::NAN, 0.0], [f64::INFINITY, 1.0]], &cfg).unwrap_err();
    assert_eq!(e, Error::NonFinite { index: 2, count: 2 });
    // Ragged points.
    let ragged = vec![vec![0.0, 1.0], vec![0.0]];
    assert!(matches!(
        vr_barcodes(&ragged, &cfg),
        Err(Error::SizeMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    // Distances: wrong length, negative, NaN.
    assert!(matches!(
        vr_barcodes_from_distances(3, &[1.0, 2.0], &cfg),
        Err(Error::SizeMismatch {
            expected: 3,
            found: 2,
            ..
        })
    ));
    assert!(matches!(
        vr_barcodes_from_distances(3, &[1.0, -2.0, 1.0], &cfg),
        Err(Error::NegativeDistance { index: 1, .. })
    ));
    assert!(matches!(
        vr_barcodes_from_distances(2, &[f64::NAN], &cfg),
        Err(Error::NonFinite { index: 0, count: 1 })
    ));
    assert!(matches!(
        vr_barcodes_with_metric(2, |_, _| -1.0, &cfg),
        Err(Error::NegativeDistance { .. })
    ));
}

#[test]
fn invalid_config() {
    let pts = [[0.0], [1.0]];
    for (cfg, name) in [
        (config(7, 2, None), "max_dim"),
        (config(1, 4, None), "modulus"),
        (config(1, 1, None), "modulus"),
        (config(1, 65_537, None), "modulus"),
        (config(1, 257, None), "modulus"),
        (config(1, 2, Some(-1.0)), "threshold"),
        (config(1, 2, Some(f64::NAN)), "threshold"),
    ] {
        match vr_barcodes(&pts, &cfg) {
            Err(Error::InvalidParam { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{cfg:?}: {other:?}"),
        }
    }
    assert!(vr_barcodes(&pts, &config(1, 251, Some(f64::INFINITY))).is_ok());
}

#[test]
fn overflow_is_an_error() {
    // C(10^5, 8) ~ 2.5e35 does not fit in 55 bits: refused before the metric is ever called.
    let e = vr_barcodes_with_metric(100_000, |_, _| unreachable!(), &VrConfig::with_max_dim(6));
    assert!(matches!(e, Err(Error::Overflow { .. })), "{e:?}");
    // C(3000, 5) ~ 2e15 fits.
    assert!(vr_barcodes_with_metric(3, |_, _| 1.0, &VrConfig::with_max_dim(3)).is_ok());
}

#[test]
fn threshold_makes_classes_essential() {
    // Square with side 1: with threshold 1.2 the loop never dies.
    let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    let bars = vr_barcodes(&square, &config(1, 2, Some(1.2))).unwrap();
    assert_eq!(bars.diagrams[1].to_pairs(), vec![(1.0, f64::INFINITY)]);
    let full = vr_barcodes(&square, &config(1, 2, Some(f64::INFINITY))).unwrap();
    assert_eq!(full.diagrams[1].len(), 1);
    assert!(full.diagrams[1].intervals[0].death.is_finite());
}

#[test]
fn shortcuts_are_used() {
    let mut rng = claimlab_testkit::rng(3);
    let pts: Vec<[f64; 3]> = (0..60)
        .map(|_| [rng.random(), rng.random(), rng.random()])
        .collect();
    let bars = vr_barcodes(&pts, &VrConfig::with_max_dim(2)).unwrap();
    let s = bars.stats[2];
    assert!(
        s.apparent_pairs > 0 && s.cleared > 0 && s.emergent_pairs > 0,
        "{s:?}"
    );
    assert!(s.simplices > s.columns_reduced);
}
