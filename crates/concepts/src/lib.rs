//! Locating and erasing concepts in a network's activations: linear probes, difference-of-means
//! directions, neuron ranking, concept erasure (LEACE) and the flow of a concept direction from
//! layer to layer.
//!
//! The crate works on plain activation matrices (rows are examples, columns are features or
//! neurons) and label vectors, so it is usable without the rest of claimlab.
//!
//! What it computes:
//! - **Linear probes** ([`fit_probe`], [`probe_accuracy`]): L2-regularised logistic regression
//!   (scikit-learn's `LogisticRegression(C)` objective on standardised columns) fitted by L-BFGS,
//!   scored on a seeded stratified held-out split ([`stratified_split`]) with a Wilson 95%
//!   interval ([`wilson_interval`]) and the majority-class rate; [`binomial_upper_tail`] for
//!   one-sided tests against chance.
//! - **Directions and neurons**: [`mean_difference`] (`μ₁ − μ₀`), [`point_biserial`] correlation of
//!   each column with the label and the [`top_neurons`] by `|r|`.
//! - **LEACE** ([`leace`], [`leace_binary`]): the least-squares concept eraser of Belrose et al.
//!   (2023) in closed form, as an affine map that can be applied to activations or folded into the
//!   next linear layer as a weight edit ([`LeaceEraser::fold_into_linear`]).
//! - **Information flow** ([`information_flow`]): a petgraph chain of layers whose edges carry the
//!   cosine of consecutive concept directions, the transfer accuracy of layer `l`'s direction at
//!   layer `l+1`, and the squared correlation of the concept coordinates.
//!
//! # Example
//! ```
//! use claimlab_concepts::{leace_binary, probe_accuracy, ProbeConfig, faer::Mat};
//! // Two classes separated along column 0.
//! let labels: Vec<bool> = (0..200).map(|i| i % 2 == 0).collect();
//! let x = Mat::from_fn(200, 3, |i, j| {
//!     let noise = ((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5;
//!     if j == 0 && labels[i] { 2.0 + noise } else { noise }
//! });
//! let before = probe_accuracy(x.as_ref(), &labels, &ProbeConfig::default()).unwrap();
//! assert!(before.test_accuracy > 0.99);
//! let erased = leace_binary(x.as_ref(), &labels).unwrap().erase(x.as_ref()).unwrap();
//! let after = probe_accuracy(erased.as_ref(), &labels, &ProbeConfig::default()).unwrap();
//! assert!(after.test_accuracy < 0.8);
//! ```
//!
//! # Conventions
//! - Rows are examples; labels are `bool` (`true` is the concept's positive class).
//! - Covariances use the population normalisation `1/n`; LEACE does not depend on it.
//! - Accuracy intervals are Wilson score 95% intervals.
//! - Everything is f64; randomness (the split) is seeded `Xoshiro256PlusPlus`.
//!
//! # Accuracy
//! LEACE's erasure is exact up to rounding on the fitting data (class means equal to ~1e−10 in the
//! tests), and its linear part matches an independent closed-form least-squares solution to 1e−8.
//! Probes stop at a gradient of 1e−6 by default (their stop reason is reported).
//!
//! # Features
//! `serde` derives `Serialize`/`Deserialize` on the result types (off by default).

mod check;
mod error;
mod flow;
mod leace;
mod means;
mod probe;
mod split;
mod stats;
mod tol;

pub use error::{Error, Result};
pub use faer;
pub use flow::{
    direction_accuracy, information_flow, FlowEdge, FlowGraph, FlowNode, LayerActivations,
};
pub use leace::{leace, leace_binary, LeaceEraser};
pub use means::{class_means, mean_difference, point_biserial, top_neurons, RankedNeuron};
pub use petgraph;
pub use probe::{
    fit_probe, probe_accuracy, probe_accuracy_split, LinearProbe, ProbeConfig, ProbeReport, Stop,
};
pub use split::{stratified_split, Split};
pub use stats::{binomial_upper_tail, wilson_interval};
