//! Barcodes against ripser 0.6.15 (`/work/shared/reference/ph`).

use claimlab_testkit::{read_rows, reference_dir};
use claimlab_topology::{vr_barcodes, Diagram, VrConfig};

use crate::common::assert_diagrams_close;

/// ripser works in float32 (about 6e-8 relative per rounding); 1e-6 relative leaves room for one
/// rounding on each side of every distance.
const RIPSER_REL: f64 = 1e-6;

pub(crate) fn load_diagram(name: &str, dim: usize) -> Diagram {
    let path = reference_dir()
        .join("ph")
        .join(format!("{name}.H{dim}.txt"));
    let text = std::fs::read_to_string(&path).unwrap();
    let pairs: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace().map(|s| {
                if s == "inf" {
                    f64::INFINITY
                } else {
                    s.parse().unwrap()
                }
            });
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    Diagram::from_pairs(&pairs).unwrap()
}

fn check_cloud(name: &str, max_dim: usize) {
    let pts = read_rows(reference_dir().join("ph").join(format!("{name}.txt")));
    let bars = vr_barcodes(&pts, &VrConfig::with_max_dim(max_dim)).unwrap();
    for dim in 0..=max_dim {
        let theirs = load_diagram(name, dim);
        assert_diagrams_close(
            &bars.diagrams[dim],
            &theirs,
            RIPSER_REL,
            0.0,
            &format!("{name} H{dim}"),
        );
    }
}

#[test]
fn circle100_h0_h1_h2() {
    check_cloud("circle100", 2);
}

#[test]
fn sphere200_h0_h1_h2() {
    check_cloud("sphere200", 2);
}

#[test]
fn cube1000_h0_h1() {
    check_cloud("cube1000", 1);
}

/// Slower (seconds in release): `cargo test --release -p claimlab-topology -- --ignored torus400`.
#[test]
#[ignore = "slow: dimension 2 on 400 points"]
fn torus400_h0_h1_h2() {
    check_cloud("torus400", 2);
}
