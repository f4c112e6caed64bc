//! The weight-space symmetry of a transformer: which relabellings of hidden units, heads and
//! coordinates leave the network's function unchanged, and how big that group is.
//!
//! The model is a graph ([`weight_graph`]): nodes are index spaces (the residual stream, each MLP
//! hidden layer, each key/value group's query-key and value-output spaces, the vocabulary), edges
//! are weight matrices mapping one space into another. The symmetry group is read off the graph
//! ([`weight_space_symmetry`]), one component per node plus one per attention layer for the head
//! permutations:
//!
//! ```text
//! space                 discrete part (signed coordinate permutations)   continuous part (Lie dim)
//! MLP hidden, GELU/SiLU S_dff                                            0
//! MLP hidden, ReLU      S_dff                                            d_ff   (positive scaling)
//! MLP hidden, tanh      C2 ≀ S_dff  (sign flips: tanh is odd)            0
//! MLP hidden, identity  C2 ≀ S_dff                                       d_ff²  (GL(d_ff))
//! gated MLP (act(G x) ⊙ U x): the up row is linear, so ×2 signs and +d_ff dims on top of the above
//! heads of one layer    S_q ≀ S_g  (g key/value groups of q query heads) 0
//! query-key space       C2 ≀ S_dh without RoPE; C4^(dh/2) with RoPE      dh² (GL) or dh (C*^(dh/2))
//! value-output space    C2 ≀ S_dh                                        dh²    (GL(dh))
//! residual, LayerNorm   S_d                                              (d-1)(d-2)/2 without affine
//! residual, RMSNorm     C2 ≀ S_d                                         d(d-1)/2 without gain (O(d))
//! residual, no norm     C2 ≀ S_d                                         d²     (GL(d))
//! ```
//!
//! *Discrete part* means: the group of signed permutations of parameter coordinates that leave
//! the function unchanged. This is what a lossless canonical form can exploit, and its order is
//! exact. The continuous factors (scalings, orthogonal or general linear changes of basis) are
//! reported only by their dimension; they contain some of the discrete elements (a signed
//! permutation is orthogonal), which is why the two are kept apart rather than multiplied.
//!
//! When the residual stream is itself the model's output (an embedding model read out by pooling),
//! relabelling it changes the output, so the residual component is reported with order 1 and a
//! note. References: Hecht-Nielsen, "On the algebraic structure of feedforward network weight
//! spaces" (1990) for permutation and sign symmetries; Neyshabur et al. (2015) for ReLU scaling;
//! Ashkboos et al., "SliceGPT" (2024) for the orthogonal symmetry of RMSNorm residual streams.

use num_bigint::BigUint;
use num_traits::One;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::error::{Error, Result};
use crate::group::factorial;

/// The nonlinearity of the MLP (of its gate, for a gated MLP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activation {
    /// `max(0, x)`: positively homogeneous.
    Relu,
    /// `max(αx, x)`: positively homogeneous.
    LeakyRelu,
    /// GELU: no sign or scale symmetry.
    Gelu,
    /// SiLU / swish: no sign or scale symmetry.
    Silu,
    /// `tanh`: odd, so sign flips.
    Tanh,
    /// No nonlinearity: a linear layer, any change of basis.
    Identity,
}

/// The normalisation applied to the residual stream before each block (and at the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NormKind {
    /// LayerNorm; `affine`: with learned elementwise gain and bias.
    LayerNorm {
        /// Learned elementwise gain and bias.
        affine: bool,
    },
    /// RMSNorm; `gain`: with a learned elementwise gain.
    RmsNorm {
        /// Learned elementwise gain.
        gain: bool,
    },
    /// No normalisation.
    None,
}

/// A plain description of a transformer's shapes, filled in by the caller (the `experiments`
/// crate maps a model's configuration onto it). Defaults are all-MiniLM-L6-v2.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkShape {
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// MLP hidden width.
    pub d_ff: usize,
    /// Number of query heads per layer.
    pub n_heads: usize,
    /// Number of key/value heads per layer (`n_heads` for multi-head attention; a divisor of it
    /// for grouped-query attention).
    pub n_kv_heads: usize,
    /// Width of each head.
    pub head_dim: usize,
    /// MLP nonlinearity (the gate's, for a gated MLP).
    pub activation: Activation,
    /// Whether the MLP is gated: `down(act(gate x) ⊙ up x)` (SwiGLU, GeGLU).
    pub gated_mlp: bool,
    /// Normalisation of the residual stream.
    pub norm: NormKind,
    /// Rotary position embeddings inside attention (frequencies assumed distinct per plane).
    pub rope: bool,
    /// Vocabulary size (0: no embedding node).
    pub vocab_size: usize,
    /// Whether the model's output is the residual stream itself (an embedding model) rather than
    /// logits read out through an unembedding.
    pub residual_is_output: bool,
}

impl Default for NetworkShape {
    /// all-MiniLM-L6-v2: 6 layers, d_model 384, d_ff 1536, 12 heads of 32, GELU, LayerNorm,
    /// learned positions, vocabulary 30522, the output is the (pooled) residual stream.
    fn default() -> Self {
        Self {
            n_layers: 6,
            d_model: 384,
            d_ff: 1536,
            n_heads: 12,
            n_kv_heads: 12,
            head_dim: 32,
            activation: Activation::Gelu,
            gated_mlp: false,
            norm: NormKind::LayerNorm { affine: true },
            rope: false,
            vocab_size: 30522,
            residual_is_output: true,
        }
    }
}

impl NetworkShape {
    /// Checks the description.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] for a zero width, `n_kv_heads` not dividing `n_heads`, or RoPE with
    /// an odd `head_dim`.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: usize, reason: &'static str| {
            Err(Error::InvalidParam {
                name,
                value: value.to_string(),
                reason,
            })
        };
        for (name, v) in [
            ("d_model", self.d_model),
            ("d_ff", self.d_ff),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
        ] {
            if v == 0 {
                return bad(name, v, "must be positive");
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad("n_kv_heads", self.n_kv_heads, "must divide n_heads");
        }
        if self.rope && !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                self.head_dim,
                "RoPE needs an even head dimension",
            );
        }
        Ok(())
    }
}

/// What an index space is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpaceKind {
    /// Token indices (never relabelled: tokens are fixed by the tokenizer).
    Vocab,
    /// The residual stream.
    Residual,
    /// Hidden units of the MLP of a layer.
    MlpHidden {
        /// Layer index.
        layer: usize,
    },
    /// The query-key space of one key/value group (queries and keys meet here).
    QueryKey {
        /// Layer index.
        layer: usize,
        /// Key/value group index.
        group: usize,
    },
    /// The value-output space of one key/value group.
    ValueOutput {
        /// Layer index.
        layer: usize,
        /// Key/value group index.
        group: usize,
    },
}

/// A node of the weight graph: an index space and its dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexSpace {
    /// What it is.
    pub kind: SpaceKind,
    /// Its dimension.
    pub dim: usize,
}

/// What a weight matrix does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorRole {
    /// Token embedding (vocab → residual).
    Embedding,
    /// Query projection of one head.
    Query {
        /// Query head index within the layer.
        head: usize,
    },
    /// Key projection of one key/value group.
    Key,
    /// Value projection of one key/value group.
    Value,
    /// Output projection of one head.
    Output {
        /// Query head index within the layer.
        head: usize,
    },
    /// MLP input (up) projection.
    MlpUp,
    /// MLP gate projection.
    MlpGate,
    /// MLP output (down) projection.
    MlpDown,
    /// Unembedding (residual → vocab).
    Unembedding,
}

/// An edge of the weight graph: a matrix of `rows × cols` from the source space (columns) to the
/// target space (rows), as PyTorch stores `[out_features, in_features]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WeightTensor {
    /// A readable name, e.g. `layers.3.attn.q.head7`.
    pub name: String,
    /// What it does.
    pub role: TensorRole,
    /// Output dimension (target space).
    pub rows: usize,
    /// Input dimension (source space).
    pub cols: usize,
}

/// The weight graph of a network: nodes are index spaces, edges weight matrices between them.
pub type WeightGraph = DiGraph<IndexSpace, WeightTensor>;

/// Builds the weight graph of a network shape.
///
/// # Errors
/// As [`NetworkShape::validate`].
///
/// # Complexity
/// `O(n_layers · n_heads)` nodes and edges.
pub fn weight_graph(shape: &NetworkShape) -> Result<WeightGraph> {
    shape.validate()?;
    let mut g = WeightGraph::new();
    let res = g.add_node(IndexSpace {
        kind: SpaceKind::Residual,
        dim: shape.d_model,
    });
    let edge = |g: &mut WeightGraph, a: NodeIndex, b: NodeIndex, name: String, role: TensorRole| {
        let (rows, cols) = (g[b].dim, g[a].dim);
        g.add_edge(
            a,
            b,
            WeightTensor {
                name,
                role,
                rows,
                cols,
            },
        );
    };
    if shape.vocab_size > 0 {
        let voc = g.add_node(IndexSpace {
            kind: SpaceKind::Vocab,
            dim: shape.vocab_size,
        });
        edge(&mut g, voc, res, "embed".into(), TensorRole::Embedding);
        if !shape.residual_is_output {
            edge(&mut g, res, voc, "unembed".into(), TensorRole::Unembedding);
        }
    }
    let q_per_group = shape.n_heads / shape.n_kv_heads;
    for l in 0..shape.n_layers {
        for grp in 0..shape.n_kv_heads {
            let qk = g.add_node(IndexSpace {
                kind: SpaceKind::QueryKey {
                    layer: l,
                    group: grp,
                },
                dim: shape.head_dim,
            });
            let vo = g.add_node(IndexSpace {
                kind: SpaceKind::ValueOutput {
                    layer: l,
                    group: grp,
                },
                dim: shape.head_dim,
            });
            edge(
                &mut g,
                res,
                qk,
                format!("layers.{l}.attn.k.group{grp}"),
                TensorRole::Key,
            );
            edge(
                &mut g,
                res,
                vo,
                format!("layers.{l}.attn.v.group{grp}"),
                TensorRole::Value,
            );
            for h in grp * q_per_group..(grp + 1) * q_per_group {
                edge(
                    &mut g,
                    res,
                    qk,
                    format!("layers.{l}.attn.q.head{h}"),
                    TensorRole::Query { head: h },
                );
                edge(
                    &mut g,
                    vo,
                    res,
                    format!("layers.{l}.attn.o.head{h}"),
                    TensorRole::Output { head: h },
                );
            }
        }
        let hid = g.add_node(IndexSpace {
            kind: SpaceKind::MlpHidden { layer: l },
            dim: shape.d_ff,
        });
        edge(
            &mut g,
            res,
            hid,
            format!("layers.{l}.mlp.up"),
            TensorRole::MlpUp,
        );
        if shape.gated_mlp {
            edge(
                &mut g,
                res,
                hid,
                format!("layers.{l}.mlp.gate"),
                TensorRole::MlpGate,
            );
        }
        edge(
            &mut g,
            hid,
            res,
            format!("layers.{l}.mlp.down"),
            TensorRole::MlpDown,
        );
    }
    Ok(g)
}

/// One component of the symmetry group.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SymmetryComponent {
    /// A readable name, e.g. `layer 3 MLP hidden units`.
    pub name: String,
    /// The index space (for head permutations: the layer's first query-key space).
    pub space: SpaceKind,
    /// The discrete group in words, e.g. `S_1536` or `C2 wr S_32`.
    pub group: String,
    /// Exact order of the discrete part.
    pub order: BigUint,
    /// `log2` of the order (from the exact integer).
    pub log2_order: f64,
    /// Dimension of the continuous part (0 if none).
    pub lie_dim: u64,
    /// The continuous part in words (empty if none).
    pub continuous: String,
    /// Remarks (e.g. why a symmetry is excluded).
    pub note: String,
}

/// The symmetry group of a network shape, by component.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SymmetryReport {
    /// One entry per index space (and per attention layer for head permutations).
    pub components: Vec<SymmetryComponent>,
    /// Exact order of the whole discrete group (the product of the components').
    pub order: BigUint,
    /// `log2` of [`SymmetryReport::order`].
    pub log2_order: f64,
    /// Total dimension of the continuous symmetries.
    pub lie_dim: u64,
    /// Number of matrix entries in the weight graph (embeddings included, norms and biases not).
    pub matrix_params: u64,
}

/// The components of a [`SymmetryReport`] summed by kind of index space.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KindSummary {
    /// `residual stream`, `MLP hidden units`, `attention heads`, `query-key spaces` or
    /// `value-output spaces`.
    pub kind: &'static str,
    /// Number of components of this kind.
    pub count: usize,
    /// Sum of their `log2` orders (the `log2` of the order of their product).
    pub log2_order: f64,
    /// Sum of their continuous dimensions.
    pub lie_dim: u64,
}

impl SymmetryReport {
    /// The per-component table summed by kind, in a fixed order (kinds with no component left out).
    #[must_use]
    pub fn by_kind(&self) -> Vec<KindSummary> {
        let kinds = [
            "residual stream",
            "MLP hidden units",
            "attention heads",
            "query-key spaces",
            "value-output spaces",
        ];
        let kind_of = |c: &SymmetryComponent| match c.space {
            SpaceKind::Residual => 0,
            SpaceKind::MlpHidden { .. } => 1,
            SpaceKind::QueryKey { .. } if c.name.ends_with("attention heads") => 2,
            SpaceKind::QueryKey { .. } => 3,
            _ => 4,
        };
        let mut out: Vec<KindSummary> = kinds
            .iter()
            .map(|&kind| KindSummary {
                kind,
                count: 0,
                log2_order: 0.0,
                lie_dim: 0,
            })
            .collect();
        for c in &self.components {
            let s = &mut out[kind_of(c)];
            s.count += 1;
            s.log2_order += c.log2_order;
            s.lie_dim += c.lie_dim;
        }
        out.retain(|s| s.count > 0);
        out
    }
}

/// `log2(x)` for a positive big integer, from its top 64 bits (relative error below 1e-15).
///
/// # Panics
/// If `x` is zero.
#[must_use]
#[track_caller]
pub fn log2_big(x: &BigUint) -> f64 {
    assert!(x.bits() > 0, "log2 of zero");
    let bits = x.bits();
    if bits <= 64 {
        return (x.iter_u64_digits().next().unwrap_or(0) as f64).log2();
    }
    let shift = bits - 64;
    let top: BigUint = x >> shift;
    (top.iter_u64_digits().next().unwrap_or(0) as f64).log2() + shift as f64
}

/// The order of the hyperoctahedral group `C2 ≀ S_n` (signed permutations): `2^n n!`.
fn signed_perm_order(n: usize) -> BigUint {
    factorial(n) << n
}

/// Derives the function-preserving symmetry group of a network from its weight graph.
///
/// # Arguments
/// * `shape` – the network description; see the [crate documentation](crate#weight-space-symmetry-of-a-network) for the rules.
///
/// # Returns
/// A [`SymmetryReport`] with one component per index space and per attention layer.
///
/// # Errors
/// As [`NetworkShape::validate`].
///
/// # Complexity
/// `O(n_layers · n_heads)` components, each with an exact factorial of its dimension.
///
/// # Example
/// ```
/// use claimlab_orbits::{weight_space_symmetry, NetworkShape};
/// let r = weight_space_symmetry(&NetworkShape::default())?; // all-MiniLM-L6-v2
/// // Six MLP layers of 1536 GELU units, each contributing log2(1536!) ≈ 14049.14 bits.
/// let mlp: Vec<_> = r.components.iter().filter(|c| c.group == "S_1536").collect();
/// assert_eq!(mlp.len(), 6);
/// assert!((mlp[0].log2_order - 14049.141125888558).abs() < 1e-9);
/// # Ok::<(), claimlab_orbits::Error>(())
/// ```
pub fn weight_space_symmetry(shape: &NetworkShape) -> Result<SymmetryReport> {
    let g = weight_graph(shape)?;
    let mut components = Vec::new();
    let push = |components: &mut Vec<SymmetryComponent>,
                name: String,
                space: SpaceKind,
                group: String,
                order: BigUint,
                lie_dim: u64,
                continuous: &str,
                note: &str| {
        let log2_order = log2_big(&order);
        components.push(SymmetryComponent {
            name,
            space,
            group,
            order,
            log2_order,
            lie_dim,
            continuous: continuous.to_string(),
            note: note.to_string(),
        });
    };
    for n in g.node_indices() {
        let space = g[n];
        let d = space.dim;
        let du = d as u64;
        let incoming = |role: fn(&TensorRole) -> bool| {
            g.edges_directed(n, Direction::Incoming)
                .filter(|e| role(&e.weight().role))
                .count()
        };
        match space.kind {
            SpaceKind::Vocab => {}
            SpaceKind::Residual => {
                let (group, order, lie, cont) = match shape.norm {
                    NormKind::LayerNorm { affine } => (
                        format!("S_{d}"),
                        factorial(d),
                        if affine {
                            0
                        } else {
                            (du.saturating_sub(1)) * du.saturating_sub(2) / 2
                        },
                        if affine {
                            ""
                        } else {
                            "O(d-1) fixing the all-ones vector"
                        },
                    ),
                    NormKind::RmsNorm { gain } => (
                        format!("C2 wr S_{d}"),
                        signed_perm_order(d),
                        if gain { 0 } else { du * (du - 1) / 2 },
                        if gain {
                            ""
                        } else {
                            "O(d) (RMSNorm without gain)"
                        },
                    ),
                    NormKind::None => (
                        format!("C2 wr S_{d}"),
                        signed_perm_order(d),
                        du * du,
                        "GL(d)",
                    ),
                };
                if shape.residual_is_output {
                    push(
                        &mut components,
                        "residual stream".into(),
                        space.kind,
                        "1".into(),
                        BigUint::one(),
                        0,
                        "",
                        &if cont.is_empty() {
                            format!("{group} would relabel the output features: excluded")
                        } else {
                            format!(
                                "{group} (and {cont}) would relabel the output features: excluded"
                            )
                        },
                    );
                } else {
                    push(
                        &mut components,
                        "residual stream".into(),
                        space.kind,
                        group,
                        order,
                        lie,
                        cont,
                        "",
                    );
                }
            }
            SpaceKind::MlpHidden { layer } => {
                let gated = incoming(|r| matches!(r, TensorRole::MlpGate)) > 0;
                // Per-unit sign factor (1, 2 or 4) and continuous dimensions per unit.
                let (mut signs, mut dims, mut cont): (u32, u64, Vec<&str>) = match shape.activation
                {
                    Activation::Relu | Activation::LeakyRelu => (1, 1, vec!["positive scaling"]),
                    Activation::Gelu | Activation::Silu => (1, 0, vec![]),
                    Activation::Tanh => (2, 0, vec![]),
                    Activation::Identity if gated => (2, 1, vec!["gate scaling"]),
                    Activation::Identity => (2, du, vec!["GL(d_ff)"]),
                };
                if gated {
                    signs *= 2;
                    dims += 1;
                    cont.push("up-row scaling");
                }
                let group = match signs {
                    1 => format!("S_{d}"),
                    2 => format!("C2 wr S_{d}"),
                    _ => format!("(C2 x C2) wr S_{d}"),
                };
                let order = factorial(d) * BigUint::from(signs).pow(d as u32);
                push(
                    &mut components,
                    format!("layer {layer} MLP hidden units"),
                    space.kind,
                    group,
                    order,
                    dims * du,
                    &cont.join(", "),
                    "",
                );
            }
            SpaceKind::QueryKey { layer, group } => {
                let q = incoming(|r| matches!(r, TensorRole::Query { .. }));
                if group == 0 {
                    // Head permutations: the key/value groups of this layer and the query heads
                    // (parallel query edges) within each.
                    let groups = g
                        .node_indices()
                        .filter(|&m| matches!(g[m].kind, SpaceKind::QueryKey { layer: l2, .. } if l2 == layer))
                        .count();
                    let order = factorial(q).pow(groups as u32) * factorial(groups);
                    let name = if q == 1 {
                        format!("S_{groups}")
                    } else {
                        format!("S_{q} wr S_{groups}")
                    };
                    push(
                        &mut components,
                        format!("layer {layer} attention heads"),
                        space.kind,
                        name,
                        order,
                        0,
                        "",
                        "",
                    );
                }
                let (grp, order, lie, cont) = if shape.rope {
                    (
                        format!("C4^{}", d / 2),
                        BigUint::from(4u32).pow((d / 2) as u32),
                        du,
                        "C*^(dh/2) (RoPE commutant)",
                    )
                } else {
                    (
                        format!("C2 wr S_{d}"),
                        signed_perm_order(d),
                        du * du,
                        "GL(dh)",
                    )
                };
                push(
                    &mut components,
                    format!("layer {layer} group {group} query-key space"),
                    space.kind,
                    grp,
                    order,
                    lie,
                    cont,
                    "",
                );
            }
            SpaceKind::ValueOutput { layer, group } => {
                push(
                    &mut components,
                    format!("layer {layer} group {group} value-output space"),
                    space.kind,
                    format!("C2 wr S_{d}"),
                    signed_perm_order(d),
                    du * du,
                    "GL(dh)",
                    "",
                );
            }
        }
    }
    let order = components
        .iter()
        .fold(BigUint::one(), |acc, c| acc * &c.order);
    let log2_order = log2_big(&order);
    let lie_dim = components.iter().map(|c| c.lie_dim).sum();
    let matrix_params = g.edge_weights().map(|w| (w.rows * w.cols) as u64).sum();
    Ok(SymmetryReport {
        components,
        order,
        log2_order,
        lie_dim,
        matrix_params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    fn ln_factorial(n: usize) -> f64 {
        (1..=n).map(|k| (k as f64).ln()).sum()
    }

    #[test]
    fn minilm_report_matches_independent_float_sum() {
        let shape = NetworkShape::default();
        let r = weight_space_symmetry(&shape).unwrap();
        assert_eq!(r.components.len(), 1 + 6 * (2 + 2 * 12));
        let res = &r.components[0];
        assert_eq!(res.space, SpaceKind::Residual);
        assert_eq!(res.order, BigUint::one());
        assert!(res.note.contains("excluded"));
        // Independent: sum of ln-factorials in f64.
        let ln2 = std::f64::consts::LN_2;
        let head_space = 32.0 * ln2 + ln_factorial(32);
        let expect = 6.0 * (ln_factorial(1536) + ln_factorial(12) + 24.0 * head_space);
        let got = r.log2_order * ln2;
        assert!((got - expect).abs() < 1e-9 * expect, "{got} vs {expect}");
        assert_eq!(r.lie_dim, 6 * 24 * 32 * 32);
        assert_eq!(
            r.matrix_params,
            30522 * 384 + 6 * (4 * 384 * 384 + 2 * 384 * 1536)
        );
        let kinds = r.by_kind();
        assert_eq!(
            kinds.iter().map(|k| k.count).collect::<Vec<_>>(),
            vec![1, 6, 6, 72, 72]
        );
        let total: f64 = kinds.iter().map(|k| k.log2_order).sum();
        assert!((total - r.log2_order).abs() < 1e-9 * r.log2_order);
        assert_eq!(kinds.iter().map(|k| k.lie_dim).sum::<u64>(), r.lie_dim);
        // The exact order is the product of the component orders.
        let prod = r
            .components
            .iter()
            .fold(BigUint::one(), |a, c| a * &c.order);
        assert_eq!(prod, r.order);
    }

    #[test]
    fn llama_like_gqa_rope_rmsnorm() {
        let shape = NetworkShape {
            n_layers: 2,
            d_model: 64,
            d_ff: 128,
            n_heads: 8,
            n_kv_heads: 2,
            head_dim: 8,
            activation: Activation::Silu,
            gated_mlp: true,
            norm: NormKind::RmsNorm { gain: true },
            rope: true,
            vocab_size: 100,
            residual_is_output: false,
        };
        let r = weight_space_symmetry(&shape).unwrap();
        let find = |name: &str| r.components.iter().find(|c| c.name == name).unwrap();
        let res = find("residual stream");
        assert_eq!(res.group, "C2 wr S_64");
        assert_eq!(res.order, factorial(64) << 64);
        assert_eq!(res.lie_dim, 0);
        let heads = find("layer 1 attention heads");
        assert_eq!(heads.group, "S_4 wr S_2");
        assert_eq!(heads.order, BigUint::from(24u32 * 24 * 2));
        let mlp = find("layer 0 MLP hidden units");
        assert_eq!(mlp.group, "C2 wr S_128");
        assert_eq!(mlp.lie_dim, 128);
        let qk = find("layer 0 group 1 query-key space");
        assert_eq!(qk.group, "C4^4");
        assert_eq!(qk.order, BigUint::from(256u32));
        // Without gain, RMSNorm adds O(64).
        let r2 = weight_space_symmetry(&NetworkShape {
            norm: NormKind::RmsNorm { gain: false },
            ..shape.clone()
        })
        .unwrap();
        assert_eq!(r2.lie_dim - r.lie_dim, 64 * 63 / 2);
        // The graph: Q edges per query-key node equal the heads per group.
        let g = weight_graph(&shape).unwrap();
        let qk_nodes: Vec<_> = g
            .node_indices()
            .filter(|&n| matches!(g[n].kind, SpaceKind::QueryKey { .. }))
            .collect();
        assert_eq!(qk_nodes.len(), 4);
        for n in qk_nodes {
            let q = g
                .edges_directed(n, Direction::Incoming)
                .filter(|e| matches!(e.weight().role, TensorRole::Query { .. }))
                .count();
            assert_eq!(q, 4);
        }
    }

    #[test]
    fn validation_errors() {
        let ok = NetworkShape::default();
        for (bad, name) in [
            (
                NetworkShape {
                    d_model: 0,
                    ..ok.clone()
                },
                "d_model",
            ),
            (
                NetworkShape {
                    d_ff: 0,
                    ..ok.clone()
                },
                "d_ff",
            ),
            (
                NetworkShape {
                    n_kv_heads: 5,
                    ..ok.clone()
                },
                "n_kv_heads",
            ),
            (
                NetworkShape {
                    rope: true,
                    head_dim: 7,
                    ..ok.clone()
                },
                "head_dim",
            ),
            (
                NetworkShape {
                    n_heads: 0,
                    ..ok.clone()
                },
                "n_heads",
            ),
        ] {
            match weight_space_symmetry(&bad) {
                Err(Error::InvalidParam { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    // ---- The claimed symmetries really preserve the function of a small network. ----

    fn act(a: Activation, x: f64) -> f64 {
        match a {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    0.1 * x
                }
            }
            Activation::Gelu => {
                0.5 * x * (1.0 + (0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)).tanh())
            }
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Identity => x,
        }
    }

    /// y = W2 · act(W1 x + b1) (⊙ (U x) if gated), W1: h×d, W2: d×h.
    struct Mlp {
        d: usize,
        h: usize,
        w1: Vec<f64>,
        b1: Vec<f64>,
        u: Vec<f64>,
        w2: Vec<f64>,
    }

    impl Mlp {
        fn run(&self, a: Activation, gated: bool, x: &[f64]) -> Vec<f64> {
            let mut y = vec![0.0; self.d];
            for j in 0..self.h {
                let pre: f64 = (0..self.d)
                    .map(|i| self.w1[j * self.d + i] * x[i])
                    .sum::<f64>()
                    + self.b1[j];
                let mut z = act(a, pre);
                if gated {
                    z *= (0..self.d)
                        .map(|i| self.u[j * self.d + i] * x[i])
                        .sum::<f64>();
                }
                for (i, yi) in y.iter_mut().enumerate() {
                    *yi += self.w2[i * self.h + j] * z;
                }
            }
            y
        }
        /// Unit j moves to perm[j], with sign s[j] on the pre-activation (s1) and on the up row (s2).
        fn transform(&self, perm: &[usize], s1: &[f64], s2: &[f64]) -> Self {
            let (d, h) = (self.d, self.h);
            let mut m = Self {
                d,
                h,
                w1: vec![0.0; h * d],
                b1: vec![0.0; h],
                u: vec![0.0; h * d],
                w2: vec![0.0; d * h],
            };
            for j in 0..h {
                let k = perm[j];
                for i in 0..d {
                    m.w1[k * d + i] = s1[j] * self.w1[j * d + i];
                    m.u[k * d + i] = s2[j] * self.u[j * d + i];
                    m.w2[i * h + k] = s1[j] * s2[j] * self.w2[i * h + j];
                }
                m.b1[k] = s1[j] * self.b1[j];
            }
            m
        }
    }

    #[test]
    fn claimed_mlp_symmetries_preserve_outputs_and_others_do_not() {
        let mut rng = claimlab_testkit::rng(4);
        let (d, h) = (5, 7);
        let mut r = |n: usize| {
            (0..n)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect::<Vec<f64>>()
        };
        let m = Mlp {
            d,
            h,
            w1: r(h * d),
            b1: r(h),
            u: r(h * d),
            w2: r(d * h),
        };
        let xs: Vec<Vec<f64>> = (0..5).map(|_| r(d)).collect();
        let mut perm: Vec<usize> = (0..h).collect();
        perm.rotate_left(3);
        let signs: Vec<f64> = (0..h)
            .map(|j| if j % 2 == 0 { -1.0 } else { 1.0 })
            .collect();
        let ones = vec![1.0; h];
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        for a in [
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Gelu,
            Activation::Silu,
            Activation::Tanh,
            Activation::Identity,
        ] {
            for gated in [false, true] {
                let shape = NetworkShape {
                    activation: a,
                    gated_mlp: gated,
                    n_layers: 1,
                    ..NetworkShape::default()
                };
                let rep = weight_space_symmetry(&shape).unwrap();
                let group = &rep
                    .components
                    .iter()
                    .find(|c| c.name == "layer 0 MLP hidden units")
                    .unwrap()
                    .group;
                // Pre-activation sign flips are claimed iff the group has a C2 from the activation.
                let pre_sign_claimed = matches!(a, Activation::Tanh | Activation::Identity);
                let up_sign_claimed = gated;
                let same =
                    |t: &Mlp, g: bool| xs.iter().all(|x| close(&m.run(a, g, x), &t.run(a, g, x)));
                assert!(same(&m.transform(&perm, &ones, &ones), gated), "{a:?} perm");
                assert_eq!(
                    same(&m.transform(&perm, &signs, &ones), gated),
                    pre_sign_claimed,
                    "{a:?} {gated} pre-sign"
                );
                if gated {
                    assert_eq!(
                        same(&m.transform(&perm, &ones, &signs), true),
                        up_sign_claimed,
                        "{a:?} up-sign"
                    );
                }
                let n_c2 = group.matches("C2").count();
                assert_eq!(
                    n_c2,
                    usize::from(pre_sign_claimed) + usize::from(up_sign_claimed),
                    "{a:?} {gated}: {group}"
                );
            }
        }
    }

    /// One attention layer with GQA over a short sequence, no softmax scaling subtleties:
    /// out_t = Σ_h O_h Σ_s softmax_s(q_h(t)·k_g(s)) v_g(s).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        x: &[Vec<f64>],
        d: usize,
        dh: usize,
        nh: usize,
        nkv: usize,
        q: &[Vec<f64>],
        k: &[Vec<f64>],
        v: &[Vec<f64>],
        o: &[Vec<f64>],
    ) -> Vec<Vec<f64>> {
        let proj = |w: &[f64], xv: &[f64]| -> Vec<f64> {
            (0..dh)
                .map(|r| (0..d).map(|c| w[r * d + c] * xv[c]).sum())
                .collect()
        };
        let per = nh / nkv;
        let mut out = vec![vec![0.0; d]; x.len()];
        for h in 0..nh {
            let g = h / per;
            for (t, xt) in x.iter().enumerate() {
                let qt = proj(&q[h], xt);
                let scores: Vec<f64> = x
                    .iter()
                    .map(|xs| proj(&k[g], xs).iter().zip(&qt).map(|(a, b)| a * b).sum())
                    .collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                let mut mix = vec![0.0; dh];
                for (s, xs) in x.iter().enumerate() {
                    let w = (scores[s] - mx).exp() / z;
                    for (m, vv) in mix.iter_mut().zip(proj(&v[g], xs)) {
                        *m += w * vv;
                    }
                }
                for r in 0..d {
                    out[t][r] += (0..dh).map(|c| o[h][r * dh + c] * mix[c]).sum::<f64>();
                }
            }
        }
        out
    }

    #[test]
    fn claimed_head_permutations_preserve_attention() {
        let mut rng = claimlab_testkit::rng(9);
        let (d, dh, nh, nkv) = (6, 3, 4, 2);
        let mut r = |n: usize| {
            (0..n)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect::<Vec<f64>>()
        };
        let q: Vec<Vec<f64>> = (0..nh).map(|_| r(dh * d)).collect();
        let o: Vec<Vec<f64>> = (0..nh).map(|_| r(d * dh)).collect();
        let k: Vec<Vec<f64>> = (0..nkv).map(|_| r(dh * d)).collect();
        let v: Vec<Vec<f64>> = (0..nkv).map(|_| r(dh * d)).collect();
        let x: Vec<Vec<f64>> = (0..4).map(|_| r(d)).collect();
        let base = attention(&x, d, dh, nh, nkv, &q, &k, &v, &o);
        let run = |hp: &[usize], gp: &[usize]| {
            // Query head h moves to hp[h]; group g to gp[g].
            let mut q2 = q.clone();
            let mut o2 = o.clone();
            let mut k2 = k.clone();
            let mut v2 = v.clone();
            for h in 0..nh {
                q2[hp[h]] = q[h].clone();
                o2[hp[h]] = o[h].clone();
            }
            for g in 0..nkv {
                k2[gp[g]] = k[g].clone();
                v2[gp[g]] = v[g].clone();
            }
            let y = attention(&x, d, dh, nh, nkv, &q2, &k2, &v2, &o2);
            y.iter()
                .flatten()
                .zip(base.iter().flatten())
                .all(|(a, b)| (a - b).abs() < 1e-12)
        };
        let shape = NetworkShape {
            n_layers: 1,
            d_model: d,
            head_dim: dh,
            n_heads: nh,
            n_kv_heads: nkv,
            ..NetworkShape::default()
        };
        let rep = weight_space_symmetry(&shape).unwrap();
        let heads = rep
            .components
            .iter()
            .find(|c| c.name == "layer 0 attention heads")
            .unwrap();
        assert_eq!(heads.order, BigUint::from(8u32)); // S_2 wr S_2
                                                      // The 8 claimed permutations preserve the output ...
        let mut preserved = 0;
        let mut all = vec![];
        for a in [[0, 1], [1, 0]] {
            for b in [[0, 1], [1, 0]] {
                for gp in [[0, 1], [1, 0]] {
                    // within-group swaps a (group 0) and b (group 1), then group permutation gp
                    let hp: Vec<usize> = (0..nh)
                        .map(|h| {
                            let (g, i) = (h / 2, h % 2);
                            let i2 = if g == 0 { a[i] } else { b[i] };
                            gp[g] * 2 + i2
                        })
                        .collect();
                    all.push(hp.clone());
                    if run(&hp, &gp) {
                        preserved += 1;
                    }
                }
            }
        }
        assert_eq!(preserved, 8);
        // ... while moving a query head to the other group without its key/value does not.
        assert!(!run(&[2, 1, 0, 3], &[0, 1]));
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn excluded_residual_note_has_no_empty_parentheses() {
        let r = weight_space_symmetry(&NetworkShape::default()).unwrap();
        let res = r
            .components
            .iter()
            .find(|c| c.space == SpaceKind::Residual)
            .unwrap();
        assert_eq!(
            res.note,
            "S_384 would relabel the output features: excluded"
        );
        let s = NetworkShape {
            norm: NormKind::LayerNorm { affine: false },
            ..NetworkShape::default()
        };
        let r = weight_space_symmetry(&s).unwrap();
        let res = r
            .components
            .iter()
            .find(|c| c.space == SpaceKind::Residual)
            .unwrap();
        assert!(res.note.starts_with("S_384 (and O(d-1)"), "{}", res.note);
    }
}
