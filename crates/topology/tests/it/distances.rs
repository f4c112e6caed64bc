//! Bottleneck and Wasserstein distances: brute force over all matchings, the GUDHI/Hera reference
//! values, invariants and stability.

use claimlab_testkit::rand::RngExt;
use claimlab_testkit::{read_json, reference_dir};
use claimlab_topology::{
    bottleneck_distance, vr_barcodes, wasserstein_distance, wasserstein_distance_with, Diagram,
    Error, Interval, VrConfig, WassersteinConfig, WassersteinMethod,
};
use proptest::prelude::*;

use crate::reference::load_diagram;

fn linf(a: &Interval, b: &Interval) -> f64 {
    (a.birth - b.birth).abs().max((a.death - b.death).abs())
}

/// Every partial matching of the finite points (the rest go to the diagonal): returns
/// (bottleneck, Σ cost^q). Essential points are left to the caller.
fn brute_force(a: &[Interval], b: &[Interval], q: f64) -> (f64, f64) {
    struct Search<'a> {
        a: &'a [Interval],
        b: &'a [Interval],
        q: f64,
        used: Vec<bool>,
        best: (f64, f64),
    }
    impl Search<'_> {
        fn rec(&mut self, i: usize, mx: f64, sum: f64) {
            let q = self.q;
            if i == self.a.len() {
                let (mut m, mut s) = (mx, sum);
                for (j, y) in self.b.iter().enumerate() {
                    if !self.used[j] {
                        let d = (y.death - y.birth) / 2.0;
                        m = m.max(d);
                        s += d.powf(q);
                    }
                }
                self.best.0 = self.best.0.min(m);
                self.best.1 = self.best.1.min(s);
                return;
            }
            let x = self.a[i];
            let d = (x.death - x.birth) / 2.0;
            self.rec(i + 1, mx.max(d), sum + d.powf(q));
            for j in 0..self.b.len() {
                if !self.used[j] {
                    self.used[j] = true;
                    let d = linf(&x, &self.b[j]);
                    self.rec(i + 1, mx.max(d), sum + d.powf(q));
                    self.used[j] = false;
                }
            }
        }
    }
    let mut s = Search {
        a,
        b,
        q,
        used: vec![false; b.len()],
        best: (f64::INFINITY, f64::INFINITY),
    };
    s.rec(0, 0.0, 0.0);
    s.best
}

fn diagram_strategy(max_len: usize) -> impl Strategy<Value = Diagram> {
    prop::collection::vec((0.0f64..10.0, 0.0f64..5.0), 0..=max_len).prop_map(|v| {
        // Quantised values make ties (equal candidate distances) common.
        let pairs: Vec<(f64, f64)> = v
            .iter()
            .map(|&(b, l)| {
                (
                    (b * 4.0).round() / 4.0,
                    (b * 4.0).round() / 4.0 + (l * 4.0).round() / 4.0,
                )
            })
            .collect();
        Diagram::from_pairs(&pairs).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn distances_match_brute_force(a in diagram_strategy(5), b in diagram_strategy(5), q in prop::sample::select(vec![1.0, 2.0, 3.5])) {
        let (bn, wq) = brute_force(&a.intervals, &b.intervals, q);
        let got_b = bottleneck_distance(&a, &b).unwrap();
        prop_assert!((got_b - bn).abs() <= 1e-12 * (1.0 + bn), "bottleneck {got_b} vs {bn}");
        let got_w = wasserstein_distance(&a, &b, q).unwrap();
        let want_w = wq.powf(1.0 / q);
        prop_assert!((got_w - want_w).abs() <= 1e-10 * (1.0 + want_w), "W{q} {got_w} vs {want_w}");
    }

    /// Moving every point by at most eps (L∞) moves the diagram by at most eps.
    #[test]
    fn bottleneck_is_at_most_the_perturbation(a in diagram_strategy(30), seed in any::<u64>(), eps in 0.0f64..0.5) {
        let mut rng = claimlab_testkit::rng(seed);
        let moved: Vec<(f64, f64)> = a.intervals.iter().map(|iv| {
            let b = iv.birth + eps * (2.0 * rng.random::<f64>() - 1.0);
            let d = (iv.death + eps * (2.0 * rng.random::<f64>() - 1.0)).max(b);
            (b, d)
        }).collect();
        let b = Diagram::from_pairs(&moved).unwrap();
        let d = bottleneck_distance(&a, &b).unwrap();
        prop_assert!(d <= eps + 1e-12, "{d} > {eps}");
        let back = bottleneck_distance(&b, &a).unwrap();
        prop_assert!((d - back).abs() <= 1e-15, "not symmetric: {d} vs {back}");
        prop_assert!(bottleneck_distance(&a, &a).unwrap() <= 0.0);
        prop_assert!(wasserstein_distance(&a, &a, 2.0).unwrap() <= 1e-12);
        // W_q >= d_B (the max term is part of the sum).
        prop_assert!(wasserstein_distance(&a, &b, 1.0).unwrap() >= d - 1e-12);
    }
}

#[test]
fn reference_circle100_vs_torus400_h1() {
    let json = read_json(reference_dir().join("ph").join("reference.json"));
    let r = &json["distances"]["circle100_H1__torus400_H1"];
    let a = load_diagram("circle100", 1);
    let b = load_diagram("torus400", 1);
    // Hera ran with delta 1e-10 (relative error); ours are exact, so 1e-9 relative.
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "{what}: {got} vs GUDHI/Hera {want}"
        );
    };
    close(
        bottleneck_distance(&a, &b).unwrap(),
        r["bottleneck"].as_f64().unwrap(),
        "bottleneck",
    );
    close(
        wasserstein_distance(&a, &b, 1.0).unwrap(),
        r["wasserstein1"].as_f64().unwrap(),
        "W1",
    );
    close(
        wasserstein_distance(&a, &b, 2.0).unwrap(),
        r["wasserstein2"].as_f64().unwrap(),
        "W2",
    );
    // The auction path, forced, within its certified relative error.
    for (q, key) in [(1.0, "wasserstein1"), (2.0, "wasserstein2")] {
        let cfg = WassersteinConfig {
            q,
            exact_max_points: 0,
            relative_error: 1e-9,
        };
        let res = wasserstein_distance_with(&a, &b, &cfg).unwrap();
        assert_eq!(res.method, WassersteinMethod::Auction);
        let want = r[key].as_f64().unwrap();
        assert!(
            res.lower_bound <= want * (1.0 + 1e-9) && res.distance >= want * (1.0 - 1e-9),
            "{res:?} vs {want}"
        );
        close(res.distance, want, key);
    }
}

#[test]
fn auction_agrees_with_hungarian() {
    let mut rng = claimlab_testkit::rng(5);
    for trial in 0..6 {
        let mk = |rng: &mut claimlab_testkit::Xoshiro256PlusPlus, n: usize| {
            let pairs: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    let b = rng.random::<f64>();
                    (b, b + rng.random::<f64>() * 0.5)
                })
                .collect();
            Diagram::from_pairs(&pairs).unwrap()
        };
        let a = mk(&mut rng, 40 + trial * 7);
        let b = mk(&mut rng, 55);
        for q in [1.0, 2.0] {
            let exact = wasserstein_distance_with(
                &a,
                &b,
                &WassersteinConfig {
                    q,
                    ..WassersteinConfig::default()
                },
            )
            .unwrap();
            assert_eq!(exact.method, WassersteinMethod::Hungarian);
            let rel = 1e-4;
            let auc = wasserstein_distance_with(
                &a,
                &b,
                &WassersteinConfig {
                    q,
                    exact_max_points: 0,
                    relative_error: rel,
                },
            )
            .unwrap();
            assert!(
                auc.lower_bound <= exact.distance * (1.0 + 1e-12),
                "{auc:?} vs {exact:?}"
            );
            assert!(
                auc.distance >= exact.distance * (1.0 - 1e-12),
                "{auc:?} vs {exact:?}"
            );
            assert!(
                auc.distance <= exact.distance * (1.0 + rel),
                "{auc:?} vs {exact:?}"
            );
        }
    }
}

#[test]
fn essential_points() {
    let a = Diagram::from_pairs(&[(0.0, f64::INFINITY), (1.0, f64::INFINITY), (0.0, 1.0)]).unwrap();
    let b = Diagram::from_pairs(&[(0.5, f64::INFINITY), (1.25, f64::INFINITY)]).unwrap();
    // Essential births sorted: 0↔0.5, 1↔1.25; the finite (0,1) goes to the diagonal at 0.5.
    assert!((bottleneck_distance(&a, &b).unwrap() - 0.5).abs() < 1e-15);
    assert!((wasserstein_distance(&a, &b, 1.0).unwrap() - 1.25).abs() < 1e-12);
    let c = Diagram::from_pairs(&[(0.5, f64::INFINITY)]).unwrap();
    assert!(bottleneck_distance(&a, &c).unwrap().is_infinite());
    assert!(wasserstein_distance(&a, &c, 2.0).unwrap().is_infinite());
}

#[test]
fn degenerate_diagrams() {
    let empty = Diagram::new();
    assert!(bottleneck_distance(&empty, &empty).unwrap() <= 0.0);
    assert!(wasserstein_distance(&empty, &empty, 1.0).unwrap() <= 0.0);
    let one = Diagram::from_pairs(&[(1.0, 3.0)]).unwrap();
    assert!((bottleneck_distance(&one, &empty).unwrap() - 1.0).abs() < 1e-15);
    assert!((wasserstein_distance(&empty, &one, 2.0).unwrap() - 1.0).abs() < 1e-15);
    // Points on the diagonal cost nothing.
    let diag = Diagram::from_pairs(&[(2.0, 2.0), (5.0, 5.0)]).unwrap();
    assert!(bottleneck_distance(&diag, &empty).unwrap() <= 0.0);
    // Invalid input.
    let bad = Diagram {
        intervals: vec![Interval::new(1.0, f64::NAN)],
    };
    assert!(matches!(
        bottleneck_distance(&one, &bad),
        Err(Error::InvalidInterval { index: 0, .. })
    ));
    assert!(matches!(
        wasserstein_distance(&bad, &one, 1.0),
        Err(Error::InvalidInterval { index: 0, .. })
    ));
    for q in [0.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            wasserstein_distance(&one, &one, q),
            Err(Error::InvalidParam { name: "q", .. })
        ));
    }
    let cfg = WassersteinConfig {
        relative_error: 0.0,
        ..WassersteinConfig::default()
    };
    assert!(matches!(
        wasserstein_distance_with(&one, &one, &cfg),
        Err(Error::InvalidParam {
            name: "relative_error",
            ..
        })
    ));
}

/// Stability of Rips diagrams (diameter convention): moving each point by at most eps changes each
/// distance by at most 2 eps, so every diagram moves by at most 2 eps in bottleneck distance.
#[test]
fn rips_diagrams_are_stable() {
    let mut rng = claimlab_testkit::rng(21);
    for trial in 0..10 {
        let n = 30;
        let pts: Vec<[f64; 3]> = (0..n)
            .map(|_| [rng.random(), rng.random(), rng.random()])
            .collect();
        let eps = 0.002 * f64::from(trial + 1);
        let moved: Vec<[f64; 3]> = pts
            .iter()
            .map(|p| {
                // A random direction scaled to length <= eps.
                let v: [f64; 3] = [
                    rng.random::<f64>() - 0.5,
                    rng.random::<f64>() - 0.5,
                    rng.random::<f64>() - 0.5,
                ];
                let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-12);
                let s = eps * rng.random::<f64>() / norm;
                [p[0] + s * v[0], p[1] + s * v[1], p[2] + s * v[2]]
            })
            .collect();
        let cfg = VrConfig::with_max_dim(2);
        let a = vr_barcodes(&pts, &cfg).unwrap();
        let b = vr_barcodes(&moved, &cfg).unwrap();
        for k in 0..=2 {
            let d = bottleneck_distance(&a.diagrams[k], &b.diagrams[k]).unwrap();
            assert!(d <= 2.0 * eps + 1e-12, "H{k}: {d} > 2 * {eps}");
        }
    }
}
