//! `intro-sizes`: parameter count × bytes per weight gives the motivating sizes (3.6 TB, 140 GB,
//! 4 GB, 1.3 GB); the same rule against our two models' real files.

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// (label, parameters, bytes per weight, stated size in bytes (decimal units), stated text)
const LINES: [(&str, f64, f64, f64, &str); 4] = [
    ("GPT-4 (quoted count) FP16", 1.8e12, 2.0, 3.6e12, "3.6 TB"),
    ("LLaMA-70B FP16", 70e9, 2.0, 140e9, "140 GB"),
    ("Stable Diffusion 1B FP32", 1e9, 4.0, 4e9, "4 GB"),
    ("BERT-Large 340M FP32", 340e6, 4.0, 1.3e9, "1.3 GB"),
];
/// Supported within this relative error.
const SUPPORT_TOL: f64 = 0.05;
/// Refuted beyond this relative error.
const REFUTE_TOL: f64 = 0.10;
/// Our files must match the rule within this, after adding their headers.
const FILE_TOL: f64 = 0.01;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let mut body = String::from(
        "| line | params × bytes | stated | error (GB = 1e9) | error (GB = GiB) | best |\n|---|---|---|---|---|---|\n",
    );
    let mut lines = Vec::new();
    let mut worst: f64 = 0.0;
    for (label, p, b, stated, text) in LINES {
        let size = p * b;
        let err_dec = (size - stated).abs() / stated;
        // The same stated number read in binary units (GiB, TiB).
        let stated_bin = stated * 1.024_f64.powi(if stated >= 1e12 { 4 } else { 3 });
        let err_bin = (size - stated_bin).abs() / stated_bin;
        let best = err_dec.min(err_bin);
        worst = worst.max(best);
        let _ = writeln!(
            body,
            "| {label} | {size:.4e} B | {text} | {:.2}% | {:.2}% | {} |",
            100.0 * err_dec,
            100.0 * err_bin,
            if err_dec <= err_bin {
                "decimal"
            } else {
                "binary"
            }
        );
        lines.push(
            json!({"line": label, "params": p, "bytes_per_weight": b, "computed_bytes": size,
            "stated": text, "rel_error_decimal": err_dec, "rel_error_binary": err_bin}),
        );
    }

    // Our models: parameters × stored bytes per weight + header against the real file.
    let mut files = Vec::new();
    let mut worst_file: f64 = 0.0;
    for enc in [true, false] {
        let m = if enc { ctx.encoder()? } else { ctx.decoder()? };
        let file_len = std::fs::metadata(if m.path().is_dir() {
            m.path().join("model.safetensors")
        } else {
            m.path().to_path_buf()
        })
        .map(|md| md.len())
        .unwrap_or(0);
        let data: u64 = m.tensors().iter().map(|t| t.nbytes).sum();
        let header = m.tensors().iter().map(|t| t.offset).min().unwrap_or(0);
        let n = m.n_params();
        let err = (file_len as f64 - (data + header) as f64).abs() / file_len as f64;
        worst_file = worst_file.max(err);
        let _ = writeln!(
            body,
            "\n{}: {n} parameters; tensor data {data} bytes ({:.3} bits/weight) + header {header} bytes = {} vs file {file_len} bytes ({:.3}% off). At 16 bits the rule would give {} bytes.",
            m.path().display(),
            data as f64 * 8.0 / n as f64,
            data + header,
            100.0 * err,
            2 * n
        );
        files.push(
            json!({"path": m.path(), "params": n, "tensor_bytes": data, "header_bytes": header,
            "file_bytes": file_len, "rel_error": err}),
        );
    }
    let verdict = if worst > REFUTE_TOL || worst_file > REFUTE_TOL {
        Verdict::Refuted
    } else if worst <= SUPPORT_TOL && worst_file <= FILE_TOL {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let _ = writeln!(body, "\nThe external parameter counts (GPT-4 especially, which is unpublished) are quoted, not tested.");
    let mut o = Outcome::new(
        "intro-sizes",
        verdict,
        format!("worst line {:.1}% off; our files {:.3}% off", 100.0 * worst, 100.0 * worst_file),
        "3.6 TB, 140 GB, 4 GB, 1.3 GB",
        format!(
            "each stated size against params × bytes, best of decimal/binary units: worst {:.1}% (support ≤ {:.0}%, refute > {:.0}%); \
             MiniLM and SmolLM2 files match data + header within {:.3}% (≤ {:.0}%)",
            100.0 * worst, 100.0 * SUPPORT_TOL, 100.0 * REFUTE_TOL, 100.0 * worst_file, 100.0 * FILE_TOL
        ),
    );
    o.body = body;
    o.numbers = json!({"lines": lines, "files": files});
    Ok(o)
}
