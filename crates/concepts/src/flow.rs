//! Information flow of a concept direction from layer to layer, as a petgraph graph.

use faer::MatRef;
use petgraph::graph::DiGraph;

use crate::check::{both_classes, matrix_and_labels};
use crate::error::{Error, Result};
use crate::means::{class_means, mean_difference};

/// Activations of one layer, split the same way in every layer (row `i` is the same example).
#[derive(Clone, Copy, Debug)]
pub struct LayerActivations<'a> {
    /// Training rows (`n_train × d`).
    pub train: MatRef<'a, f64>,
    /// Held-out rows (`n_test × d`).
    pub test: MatRef<'a, f64>,
}

/// A node of the flow graph: one layer.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FlowNode {
    /// Layer index (position in the input slice).
    pub layer: usize,
    /// Held-out accuracy of the layer's own difference-of-means direction ([`direction_accuracy`]).
    pub direction_accuracy: f64,
    /// Euclidean norm of `μ₁ − μ₀` at this layer.
    pub direction_norm: f64,
    /// A causal effect measured by the caller (activation patching, ablation); `None` until set.
    pub effect: Option<f64>,
}

/// An edge `l → l+1` of the flow graph.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FlowEdge {
    /// Cosine between the two layers' difference-of-means directions.
    pub cosine: f64,
    /// Held-out accuracy at layer `l+1` of layer `l`'s direction (threshold and sign refitted on
    /// layer `l+1`'s training rows).
    pub transfer_accuracy: f64,
    /// Squared correlation, over the held-out rows, between the projections of layer `l` onto its
    /// direction and of layer `l+1` onto its own (how much of the concept coordinate is carried).
    pub projection_r2: f64,
}

/// The flow graph and its summaries.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FlowGraph {
    /// A chain `0 → 1 → … → L−1`; node `i` is layer `i`.
    pub graph: DiGraph<FlowNode, FlowEdge>,
    /// Mean of the edges' transfer accuracies (NaN with a single layer).
    pub mean_transfer_accuracy: f64,
    /// Mean of the edges' cosines (NaN with a single layer).
    pub mean_cosine: f64,
}

fn project(x: MatRef<'_, f64>, dir: &[f64]) -> Vec<f64> {
    (0..x.nrows())
        .map(|i| (0..x.ncols()).map(|j| x[(i, j)] * dir[j]).sum())
        .collect()
}

/// Held-out accuracy of a fixed direction used as a one-dimensional classifier: project every row
/// on `dir`, put the threshold midway between the two classes' mean projections on the training
/// rows, and call the side of the positive class's mean positive.
///
/// # Errors
/// Bad input as in [`crate::class_means`] (on either part); [`Error::DimensionMismatch`] when
/// `dir` or the test part has another width.
///
/// # Complexity
/// O((n_train + n_test)·d).
///
/// # Example
/// ```
/// use claimlab_concepts::{direction_accuracy, faer::Mat};
/// let y = [false, true, false, true];
/// let x = Mat::from_fn(4, 2, |i, j| if j == 0 && y[i] { 1.0 } else { 0.0 });
/// let acc = direction_accuracy(x.as_ref(), &y, x.as_ref(), &y, &[1.0, 0.0]).unwrap();
/// assert!((acc - 1.0).abs() < 1e-15);
/// ```
pub fn direction_accuracy(
    train: MatRef<'_, f64>,
    labels_train: &[bool],
    test: MatRef<'_, f64>,
    labels_test: &[bool],
    dir: &[f64],
) -> Result<f64> {
    matrix_and_labels(train, labels_train)?;
    matrix_and_labels(test, labels_test)?;
    both_classes(labels_train, "the training labels")?;
    for (got, what) in [
        (dir.len(), "direction entries"),
        (test.ncols(), "test columns"),
    ] {
        if got != train.ncols() {
            return Err(Error::DimensionMismatch {
                what,
                expected: train.ncols(),
                got,
            });
        }
    }
    let p = project(train, dir);
    let (mut s0, mut s1, mut n0, mut n1) = (0.0, 0.0, 0usize, 0usize);
    for (v, &l) in p.iter().zip(labels_train) {
        if l {
            s1 += v;
            n1 += 1;
        } else {
            s0 += v;
            n0 += 1;
        }
    }
    let (m0, m1) = (s0 / n0 as f64, s1 / n1 as f64);
    let thr = 0.5 * (m0 + m1);
    let sign = if m1 >= m0 { 1.0 } else { -1.0 };
    let pt = project(test, dir);
    let correct = pt
        .iter()
        .zip(labels_test)
        .filter(|(v, &l)| (sign * (**v - thr) > 0.0) == l)
        .count();
    Ok(correct as f64 / labels_test.len() as f64)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let aa: f64 = a.iter().map(|x| x * x).sum();
    let bb: f64 = b.iter().map(|x| x * x).sum();
    if aa > 0.0 && bb > 0.0 {
        ab / (aa * bb).sqrt()
    } else {
        0.0
    }
}

fn r_squared(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa > 0.0 && sbb > 0.0 {
        sab * sab / (saa * sbb)
    } else {
        0.0
    }
}

/// Builds the information-flow chain of a concept through consecutive layers: nodes carry each
/// layer's own direction accuracy, edges `l → l+1` the cosine of consecutive difference-of-means
/// directions, the transfer accuracy of layer `l`'s direction at layer `l+1`, and the squared
/// correlation of the two layers' concept coordinates on held-out rows.
///
/// # Arguments
/// * `layers` — one entry per layer, all of the same width, rows aligned across layers.
/// * `labels_train`, `labels_test` — labels of the two parts.
///
/// # Errors
/// [`Error::Empty`] without layers; [`Error::DimensionMismatch`] when layers differ in width or
/// rows; the errors of [`crate::class_means`] and [`direction_accuracy`].
///
/// # Complexity
/// O(L·n·d).
///
/// # Example
/// ```
/// use claimlab_concepts::{information_flow, LayerActivations, faer::Mat};
/// let y: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
/// let a = Mat::from_fn(20, 3, |i, j| if j == 0 && y[i] { 1.0 } else { (i * j) as f64 * 0.01 });
/// let l = LayerActivations { train: a.as_ref(), test: a.as_ref() };
/// let g = information_flow(&[l, l], &y, &y).unwrap();
/// assert!((g.mean_cosine - 1.0).abs() < 1e-12);
/// assert_eq!(g.graph.edge_count(), 1);
/// ```
pub fn information_flow(
    layers: &[LayerActivations<'_>],
    labels_train: &[bool],
    labels_test: &[bool],
) -> Result<FlowGraph> {
    let first = layers.first().ok_or(Error::Empty)?;
    let d = first.train.ncols();
    for l in layers {
        for (got, what, expected) in [
            (l.train.ncols(), "layer width (train)", d),
            (l.test.ncols(), "layer width (test)", d),
            (l.train.nrows(), "training rows", first.train.nrows()),
            (l.test.nrows(), "held-out rows", first.test.nrows()),
        ] {
            if got != expected {
                return Err(Error::DimensionMismatch {
                    what,
                    expected,
                    got,
                });
            }
        }
    }
    let dirs: Vec<Vec<f64>> = layers
        .iter()
        .map(|l| mean_difference(l.train, labels_train))
        .collect::<Result<_>>()?;
    let mut graph = DiGraph::new();
    let mut coords = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let acc = direction_accuracy(l.train, labels_train, l.test, labels_test, &dirs[i])?;
        graph.add_node(FlowNode {
            layer: i,
            direction_accuracy: acc,
            direction_norm: dirs[i].iter().map(|v| v * v).sum::<f64>().sqrt(),
            effect: None,
        });
        coords.push(project(l.test, &dirs[i]));
    }
    // Class means on the held-out part are only needed for validation of its labels.
    class_means(first.test, labels_test)?;
    let (mut sum_t, mut sum_c) = (0.0, 0.0);
    for i in 0..layers.len().saturating_sub(1) {
        let next = &layers[i + 1];
        let transfer =
            direction_accuracy(next.train, labels_train, next.test, labels_test, &dirs[i])?;
        let edge = FlowEdge {
            cosine: cosine(&dirs[i], &dirs[i + 1]),
            transfer_accuracy: transfer,
            projection_r2: r_squared(&coords[i], &coords[i + 1]),
        };
        sum_t += edge.transfer_accuracy;
        sum_c += edge.cosine;
        graph.add_edge(
            petgraph::graph::NodeIndex::new(i),
            petgraph::graph::NodeIndex::new(i + 1),
            edge,
        );
    }
    let ne = layers.len().saturating_sub(1) as f64;
    Ok(FlowGraph {
        graph,
        mean_transfer_accuracy: if ne > 0.0 { sum_t / ne } else { f64::NAN },
        mean_cosine: if ne > 0.0 { sum_c / ne } else { f64::NAN },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rng;
    use faer::Mat;
    use rand::RngExt;

    fn gaussian(r: &mut impl rand::Rng) -> f64 {
        let u: f64 = r.random::<f64>().max(1e-300);
        let v: f64 = r.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    #[test]
    fn carried_direction_transfers_and_a_rotated_one_does_not() {
        let mut r = rng(21);
        let (n, d) = (600, 6);
        let y: Vec<bool> = (0..n).map(|_| r.random::<bool>()).collect();
        // Layer 0: concept on axis 0. Layer 1: same plus noise (carried). Layer 2: concept moved
        // to axis 3, axis 0 now pure noise (not carried).
        let l0 = Mat::from_fn(n, d, |i, j| {
            gaussian(&mut r) + if j == 0 && y[i] { 3.0 } else { 0.0 }
        });
        let l1 = Mat::from_fn(n, d, |i, j| l0[(i, j)] + 0.3 * gaussian(&mut r));
        let l2 = Mat::from_fn(n, d, |i, j| {
            gaussian(&mut r) + if j == 3 && y[i] { 3.0 } else { 0.0 }
        });
        let (tr, te) = (400, 200);
        let part = |m: &Mat<f64>, a: usize, b: usize| Mat::from_fn(b - a, d, |i, j| m[(a + i, j)]);
        let mats: Vec<(Mat<f64>, Mat<f64>)> = [&l0, &l1, &l2]
            .iter()
            .map(|m| (part(m, 0, tr), part(m, tr, tr + te)))
            .collect();
        let layers: Vec<LayerActivations<'_>> = mats
            .iter()
            .map(|(a, b)| LayerActivations {
                train: a.as_ref(),
                test: b.as_ref(),
            })
            .collect();
        let g = information_flow(&layers, &y[..tr], &y[tr..]).unwrap();
        let e: Vec<&FlowEdge> = g.graph.edge_weights().collect();
        assert_eq!(e.len(), 2);
        assert!(
            e[0].cosine > 0.9 && e[0].transfer_accuracy > 0.9 && e[0].projection_r2 > 0.8,
            "{:?}",
            e[0]
        );
        assert!(
            e[1].cosine.abs() < 0.3 && (e[1].transfer_accuracy - 0.5).abs() < 0.12,
            "{:?}",
            e[1]
        );
        assert!(g.graph.node_weights().all(|n| n.direction_accuracy > 0.9));
    }

    #[test]
    fn flow_errors() {
        assert!(matches!(information_flow(&[], &[], &[]), Err(Error::Empty)));
        let a = Mat::from_fn(4, 2, |i, j| (i + j) as f64);
        let b = Mat::from_fn(4, 3, |i, j| (i * j) as f64);
        let y = [true, false, true, false];
        let la = LayerActivations {
            train: a.as_ref(),
            test: a.as_ref(),
        };
        let lb = LayerActivations {
            train: b.as_ref(),
            test: b.as_ref(),
        };
        assert!(matches!(
            information_flow(&[la, lb], &y, &y),
            Err(Error::DimensionMismatch { .. })
        ));
        assert!(matches!(
            direction_accuracy(a.as_ref(), &y, a.as_ref(), &y, &[1.0]),
            Err(Error::DimensionMismatch { .. })
        ));
        let g = information_flow(&[la], &y, &y).unwrap();
        assert!(g.mean_cosine.is_nan() && g.graph.edge_count() == 0);
    }
}
