//! Representative H1 cocycles: cocycle condition, birth edge, and pairing with the circle.

use claimlab_testkit::rand::RngExt;
use claimlab_topology::{vr_barcodes, VrConfig};

use crate::common::lower_distances;

fn config(modulus: u32) -> VrConfig {
    VrConfig {
        max_dim: 1,
        threshold: None,
        modulus,
        cocycles: true,
    }
}

#[test]
fn cocycles_satisfy_the_cocycle_condition() {
    let mut rng = claimlab_testkit::rng(17);
    let mut checked = 0;
    for trial in 0..60 {
        let n = 6 + trial % 9;
        let pts: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.random::<f64>(), rng.random::<f64>()])
            .collect();
        let lower = lower_distances(&pts);
        let d = |i: usize, j: usize| {
            if i == j {
                0.0
            } else {
                let (a, b) = (i.max(j), i.min(j));
                lower[a * (a - 1) / 2 + b]
            }
        };
        for p in [2u32, 3, 5] {
            let bars = vr_barcodes(&pts, &config(p)).unwrap();
            let h1 = &bars.diagrams[1].intervals;
            assert_eq!(bars.cocycles.len(), h1.len());
            for (iv, z) in h1.iter().zip(&bars.cocycles) {
                checked += 1;
                let mut val = vec![0u32; n * n];
                for &(i, j, c) in &z.edges {
                    assert!(i > j && c > 0 && c < p, "{z:?}");
                    assert!(d(i, j) >= iv.birth, "edge below the birth");
                    val[i * n + j] = c;
                }
                assert!(
                    z.edges
                        .iter()
                        .any(|&(i, j, _)| d(i, j).to_bits() == iv.birth.to_bits()),
                    "no birth edge"
                );
                // δz(k<j<i) = z(i,j) − z(i,k) + z(j,k) must vanish below the death.
                for i in 0..n {
                    for j in 0..i {
                        for k in 0..j {
                            let diam = d(i, j).max(d(i, k)).max(d(j, k));
                            if diam < iv.death {
                                let s =
                                    (val[i * n + j] + (p - val[i * n + k]) + val[j * n + k]) % p;
                                assert_eq!(
                                    s, 0,
                                    "δz ≠ 0 on ({i},{j},{k}), p = {p}, interval {iv:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 20, "too few intervals checked: {checked}");
}

#[test]
fn circle_cocycle_pairs_with_the_loop() {
    let n = 24;
    let pts: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let t = i as f64 * std::f64::consts::TAU / n as f64;
            [t.cos(), t.sin()]
        })
        .collect();
    for p in [2u32, 3, 7] {
        let bars = vr_barcodes(&pts, &config(p)).unwrap();
        assert_eq!(bars.diagrams[1].len(), 1);
        let z = &bars.cocycles[0];
        // Walk 0 → 1 → … → n−1 → 0: edge (a, b) with a > b counts +z going from b to a.
        let mut sum = 0u64;
        for k in 0..n {
            let (from, to) = (k, (k + 1) % n);
            let (hi, lo) = (from.max(to), from.min(to));
            let c = z
                .edges
                .iter()
                .find(|&&(i, j, _)| i == hi && j == lo)
                .map_or(0, |e| u64::from(e.2));
            sum += if to > from {
                c
            } else {
                (u64::from(p) - c) % u64::from(p)
            };
        }
        assert_ne!(
            sum % u64::from(p),
            0,
            "the cocycle does not see the loop (p = {p})"
        );
    }
}

#[test]
fn no_cocycles_unless_asked() {
    let pts = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    assert!(vr_barcodes(&pts, &VrConfig::default())
        .unwrap()
        .cocycles
        .is_empty());
    assert_eq!(vr_barcodes(&pts, &config(2)).unwrap().cocycles.len(), 1);
}
