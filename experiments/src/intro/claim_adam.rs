//! `intro-adam`: mixed-precision Adam training holds 2 + 2 + 4 + 8 = 16 bytes per parameter; 7B
//! parameters need 112 GB. Arithmetic, with the same rule applied to our two models.

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// fp16 weights, fp16 gradients, fp32 master weights, two fp32 Adam moments.
const TERMS: [(&str, u64); 4] = [
    ("fp16 weights", 2),
    ("fp16 gradients", 2),
    ("fp32 master weights", 4),
    ("fp32 Adam m and v", 8),
];
/// Relative tolerance of the rule.
const TOL: f64 = 0.01;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let per_param: u64 = TERMS.iter().map(|t| t.1).sum();
    let p7b = 7e9_f64;
    let total = p7b * per_param as f64;
    let claimed = 112e9;
    let err = (total - claimed).abs() / claimed;
    let n_enc = ctx.encoder()?.n_params();
    let n_dec = ctx.decoder()?.n_params();
    let mut body = String::from("| term | bytes/param |\n|---|---|\n");
    for (t, b) in TERMS {
        let _ = writeln!(body, "| {t} | {b} |");
    }
    let _ = writeln!(
        body,
        "\nTotal {per_param} bytes/param. 7e9 × {per_param} = {total:.3e} bytes = {:.1} GB = {:.1} GiB. \
         MiniLM ({n_enc} params): {:.3} GB; SmolLM2 ({n_dec} params): {:.3} GB before activations. \
         The 16P total leaves out activations (and any buffers), so it is a lower bound on training memory, \
         not the total the text calls it.",
        total / 1e9,
        total / f64::from(1u32 << 30),
        (n_enc * per_param) as f64 / 1e9,
        (n_dec * per_param) as f64 / 1e9
    );
    let verdict = if per_param == 16 && err <= TOL {
        Verdict::Supported
    } else {
        Verdict::Refuted
    };
    let mut o = Outcome::new(
        "intro-adam",
        verdict,
        format!("{per_param} B/param; 7B → {:.1} GB ({:.1} GiB)", total / 1e9, total / f64::from(1u32 << 30)),
        "16P bytes; 112 GB for 7B",
        format!("arithmetic holds ({:.2}% off, tolerance {:.0}%) with GB = 1e9; a lower bound, activations excluded", 100.0 * err, 100.0 * TOL),
    );
    o.body = body;
    o.numbers = json!({"bytes_per_param": per_param, "total_7b_bytes": total, "rel_error": err,
        "minilm_bytes": n_enc * per_param, "smollm2_bytes": n_dec * per_param});
    Ok(o)
}
