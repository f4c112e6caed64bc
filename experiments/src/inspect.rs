//! `claimlab inspect`: the model description of a file or a pinned model.

use std::fmt::Write as _;

use claimlab_weights::Model;

/// Renders the human-readable description of `m`.
#[must_use]
pub fn describe(m: &Model) -> String {
    let c = m.config();
    let mut s = String::new();
    let _ = writeln!(s, "file:          {}", m.path().display());
    let _ = writeln!(s, "format:        {:?}", m.format());
    let _ = writeln!(s, "architecture:  {:?}", c.arch);
    let _ = writeln!(
        s,
        "sizes:         {} layers, d_model {}, {} heads ({} kv, head dim {}), d_ff {}, vocab {}",
        c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.head_dim, c.d_ff, c.vocab_size
    );
    let _ = writeln!(
        s,
        "parameters:    {} in {} tensors, {} bytes of tensor data ({:.3} bits/weight)",
        m.n_params(),
        m.tensors().len(),
        m.tensor_bytes(),
        m.tensor_bytes() as f64 * 8.0 / (m.n_params().max(1)) as f64
    );
    for n in m.notes() {
        let _ = writeln!(s, "note:          {n}");
    }
    let _ = writeln!(
        s,
        "\n{:<56} {:<16} {:>5} {:<7} {:<14} {:>12}",
        "tensor", "role", "layer", "dtype", "shape", "bytes"
    );
    for t in m.tensors() {
        let shape = t
            .shape
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("x");
        let _ = writeln!(
            s,
            "{:<56} {:<16} {:>5} {:<7} {:<14} {:>12}",
            t.name,
            format!("{:?}/{:?}", t.role, t.param),
            t.layer.map_or("-".to_string(), |l| l.to_string()),
            t.dtype.name(),
            shape,
            t.nbytes
        );
    }
    s
}
