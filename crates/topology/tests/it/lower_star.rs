//! Lower-star filtrations: grids against union-find on their 1-skeleton and the Euler
//! characteristic at every level; error paths.

use claimlab_topology::{lower_star_graph_barcodes, lower_star_grid_barcodes, Diagram, Error};
use proptest::prelude::*;

use crate::common::assert_diagrams_equal;

fn grid_edges(w: usize, h: usize) -> Vec<(usize, usize)> {
    let mut e = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = y * w + x;
            if x + 1 < w {
                e.push((v, v + 1));
            }
            if y + 1 < h {
                e.push((v, v + w));
            }
            if x + 1 < w && y + 1 < h {
                e.push((v, v + w + 1));
            }
        }
    }
    e
}

fn alive(d: &Diagram, t: f64) -> i64 {
    d.intervals
        .iter()
        .filter(|iv| iv.birth <= t && t < iv.death)
        .count() as i64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn grid_matches_union_find_and_euler(w in 1usize..7, h in 1usize..7, seed in any::<u64>()) {
        use claimlab_testkit::rand::RngExt;
        let mut rng = claimlab_testkit::rng(seed);
        // Few distinct levels: many ties.
        let img: Vec<f64> = (0..w * h).map(|_| f64::from(rng.random_range(0..5u32))).collect();
        let bars = lower_star_grid_barcodes(&img, w, h).unwrap();
        let edges = grid_edges(w, h);
        let uf = lower_star_graph_barcodes(&img, &edges).unwrap();
        assert_diagrams_equal(&bars.diagrams[0], &uf.diagrams[0], "H0 vs union-find");
        prop_assert_eq!(bars.diagrams[0].essential().count(), 1);
        prop_assert_eq!(bars.diagrams[1].essential().count(), 0);
        // χ(K_t) = β0(t) − β1(t) at every level (the complex is planar: no H2).
        for level in 0..5 {
            let t = f64::from(level);
            let v = img.iter().filter(|&&x| x <= t).count() as i64;
            let e = edges.iter().filter(|&&(a, b)| img[a].max(img[b]) <= t).count() as i64;
            let mut f = 0i64;
            for y in 0..h.saturating_sub(1) {
                for x in 0..w.saturating_sub(1) {
                    let (a, b, c, d) = (img[y * w + x], img[y * w + x + 1], img[(y + 1) * w + x], img[(y + 1) * w + x + 1]);
                    f += i64::from(a.max(b).max(d) <= t) + i64::from(a.max(c).max(d) <= t);
                }
            }
            prop_assert_eq!(v - e + f, alive(&bars.diagrams[0], t) - alive(&bars.diagrams[1], t), "level {}", t);
        }
    }
}

#[test]
fn graph_cycle_and_merges() {
    // A 4-cycle with values 0, 3, 1, 2: components born at 0 and 1 merge at 3 (edge 0-1 or 1-2);
    // the cycle closes at 3 too.
    let bars = lower_star_graph_barcodes(
        &[0.0, 3.0, 1.0, 2.0],
        &[(0, 1), (1, 2), (2, 3), (3, 0), (1, 0)],
    )
    .unwrap();
    assert_eq!(
        bars.diagrams[0].to_pairs(),
        vec![(0.0, f64::INFINITY), (1.0, 2.0)]
    );
    assert_eq!(bars.diagrams[1].to_pairs(), vec![(3.0, f64::INFINITY)]);
}

#[test]
fn lower_star_errors() {
    assert!(matches!(
        lower_star_graph_barcodes(&[], &[]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        lower_star_graph_barcodes(&[0.0, f64::NAN], &[]),
        Err(Error::NonFinite { index: 1, count: 1 })
    ));
    assert!(matches!(
        lower_star_graph_barcodes(&[0.0, 1.0], &[(0, 2)]),
        Err(Error::InvalidParam { name: "edges", .. })
    ));
    assert!(matches!(
        lower_star_graph_barcodes(&[0.0, 1.0], &[(1, 1)]),
        Err(Error::InvalidParam { name: "edges", .. })
    ));
    assert!(matches!(
        lower_star_grid_barcodes(&[], 0, 3),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        lower_star_grid_barcodes(&[0.0; 5], 2, 3),
        Err(Error::SizeMismatch {
            expected: 6,
            found: 5,
            ..
        })
    ));
    assert!(matches!(
        lower_star_grid_barcodes(&[0.0, f64::INFINITY], 2, 1),
        Err(Error::NonFinite { index: 1, .. })
    ));
    // One pixel; all-equal image.
    let one = lower_star_grid_barcodes(&[2.5], 1, 1).unwrap();
    assert_eq!(one.diagrams[0].to_pairs(), vec![(2.5, f64::INFINITY)]);
    let flat = lower_star_grid_barcodes(&[1.0; 12], 4, 3).unwrap();
    assert_eq!(flat.diagrams[0].to_pairs(), vec![(1.0, f64::INFINITY)]);
    assert!(flat.diagrams[1].is_empty());
}
