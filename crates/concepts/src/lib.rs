//! Locating and erasing concepts in a network's activations: linear probes, difference-of-means
//! directions, concept erasure (LEACE) and the flow of a concept direction from layer to layer.
//!
//! The crate works on plain activation matrices (rows are examples, columns are features) and
//! label vectors, so it is usable without the rest of claimlab.
