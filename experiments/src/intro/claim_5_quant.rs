//! `intro-5.quant`: quantising to b bits compresses by 32/b. Real stored bytes of MiniLM at
//! b = 2..8 under per-row and per-group layouts (side information in f16 or f32), and the block
//! layouts of GGUF's types as the reader defines them.

use anyhow::Result;
use claimlab_weights::{DType, Param};
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Layouts: (name, group size or 0 for per row, bits of side information per group).
const LAYOUTS: [(&str, usize, u64); 6] = [
    ("per row, f32 scale+zero", 0, 64),
    ("per row, f16 scale+zero", 0, 32),
    ("g128, f16 scale+zero", 128, 32),
    ("g64, f16 scale+zero", 64, 32),
    ("g32, f16 scale+zero", 32, 32),
    ("g32, f32 scale+zero", 32, 64),
];
/// The rule's tolerance on the shortfall from 32/b.
const TOL: f64 = 0.10;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    let enc = ctx.encoder()?;
    let mats: Vec<(usize, usize)> = enc
        .tensors()
        .iter()
        .filter(|t| t.shape.len() == 2 && t.param == Param::Weight && t.dtype != DType::I64)
        .map(|t| (t.shape[0], t.shape[1]))
        .collect();
    let n_other: u64 = enc
        .tensors()
        .iter()
        .filter(|t| !(t.shape.len() == 2 && t.param == Param::Weight) && t.dtype != DType::I64)
        .map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>())
        .sum();
    let n_mat: u64 = mats.iter().map(|&(r, c)| (r * c) as u64).sum();
    let n = n_mat + n_other;
    let mut body = String::from(
        "MiniLM, real stored bits (codes + side information + f32 biases and norms):\n\n| layout |",
    );
    for b in 2..=8 {
        let _ = write!(body, " b={b} |");
    }
    body.push_str("\n|---|");
    for _ in 2..=8 {
        body.push_str("---|");
    }
    body.push('\n');
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (name, g, side) in LAYOUTS {
        let _ = write!(body, "| {name} |");
        let mut pts = Vec::new();
        for b in 2u64..=8 {
            let groups: u64 = mats
                .iter()
                .map(|&(r, c)| {
                    if g == 0 {
                        r as u64
                    } else {
                        (r * c.div_ceil(g)) as u64
                    }
                })
                .sum();
            let bits = b * n_mat + side * groups + 32 * n_other;
            let factor = 32.0 * n as f64 / bits as f64;
            let nominal = 32.0 / b as f64;
            let _ = write!(
                body,
                " {factor:.2} ({:.0}%) |",
                100.0 * (1.0 - factor / nominal)
            );
            pts.push((b as f64, factor));
            rows.push(json!({"source": "minilm", "layout": name, "bits": b, "factor": factor, "nominal": nominal,
                             "shortfall": 1.0 - factor / nominal}));
        }
        body.push('\n');
        series.push(Series::line(format!("MiniLM {name}"), pts));
    }
    let _ = writeln!(body, "\nGGUF block layouts (bits per weight from the reader's block table):\n\n| type | block | bytes | bits/weight | factor | 32/b |\n|---|---|---|---|---|---|");
    let mut gguf_pts = Vec::new();
    for (ty, b) in [
        (DType::Q4_0, 4u64),
        (DType::Q4_1, 4),
        (DType::Q5_0, 5),
        (DType::Q5_1, 5),
        (DType::Q8_0, 8),
        (DType::Q4_K, 4),
        (DType::Q5_K, 5),
        (DType::Q6_K, 6),
        (DType::Q2_K, 2),
        (DType::Q3_K, 3),
    ] {
        let bpw = ty.block_bytes() as f64 * 8.0 / ty.block_elems() as f64;
        let factor = 32.0 / bpw;
        let nominal = 32.0 / b as f64;
        let _ = writeln!(
            body,
            "| {} | {} | {} | {bpw:.4} | {factor:.3} | {nominal:.2} |",
            ty.name(),
            ty.block_elems(),
            ty.block_bytes()
        );
        gguf_pts.push((b as f64, factor));
        rows.push(json!({"source": "gguf", "layout": ty.name(), "bits": b, "bits_per_weight": bpw, "factor": factor,
                         "nominal": nominal, "shortfall": 1.0 - factor / nominal}));
    }
    series.push(Series::points("GGUF types", gguf_pts));
    series.push(Series::reference(
        "32/b",
        (2..=8)
            .map(|b| (f64::from(b), 32.0 / f64::from(b)))
            .collect(),
    ));

    let pick = |src: &str, layout: &str, b: u64| {
        rows.iter()
            .find(|r| r["source"] == src && r["layout"] == layout && r["bits"] == b)
            .and_then(|r| r["shortfall"].as_f64())
            .unwrap_or(f64::NAN)
    };
    let g32_4 = pick("minilm", "g32, f16 scale+zero", 4);
    let q4_0 = pick("gguf", "Q4_0", 4);
    let q4_1 = pick("gguf", "Q4_1", 4);
    let row8 = pick("minilm", "per row, f32 scale+zero", 8);
    let common = [g32_4, q4_0, q4_1, row8];
    let verdict = if [g32_4, q4_0, q4_1].iter().any(|&s| s > TOL) {
        Verdict::Refuted
    } else if common.iter().all(|&s| s <= TOL) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let mut o = Outcome::new(
        "intro-5.quant",
        verdict,
        format!("g32 4-bit: Q4_0 {:.2}x, Q4_1 {:.2}x; per-row 8-bit {:.2}x", 8.0 * (1.0 - q4_0), 8.0 * (1.0 - q4_1), 4.0 * (1.0 - row8)),
        "32/b (8x at 4 bits, 4x at 8 bits)",
        format!(
            "group-32 4-bit layouts fall short of 8x by {:.0}% (Q4_0), {:.0}% (Q4_1), {:.0}% (MiniLM f16 scale+zero), threshold {:.0}%; \
             per-row 8-bit only {:.1}% short",
            100.0 * q4_0, 100.0 * q4_1, 100.0 * g32_4, 100.0 * TOL, 100.0 * row8
        ),
    );
    let chart = Chart {
        title: "Quantisation: real compression factor vs 32/b".into(),
        x_label: "bits per code b".into(),
        y_label: "compression factor vs f32".into(),
        log_x: false,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "intro-5.quant_factor",
        "Real factor of each layout against the nominal 32/b (MiniLM shapes; GGUF block tables)",
    )?);
    o.body = body;
    o.numbers = json!({"minilm_params": n, "matrix_params": n_mat, "rows": rows, "tolerance": TOL});
    Ok(o)
}
