//! `intro-1`: the compression ratio CR = Σ|W_l|·b_orig / Σ|W_l|·b_comp, with the source's
//! "int8 gives 4×" arithmetic, measured with the real side information of real formats.
//!
//! MiniLM: every weight matrix is actually quantised (int8 per tensor, int8 per output channel,
//! int4 in groups of 32/64/128 with an f16 scale and an f16 zero point, the layout of GGUF's Q4_1 at
//! 32) and the exact stored bits are counted: codes, scales, zero points, plus the 1-D tensors
//! (biases, LayerNorms) that stay f32. SmolLM2: the bytes of the GGUF file's actual block layouts.

use anyhow::Result;
use claimlab_weights::{DType, Param};
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// A quantisation layout: bits per code, groups along the input dimension, side bits per group,
/// symmetric or with a zero point. The side bits also fix the stored precision: 16 bits per value
/// (an f16 scale, or an f16 scale and an f16 minimum) or 32 (f32), and the reconstruction uses the
/// scale and zero point rounded to that precision, as a real file would.
#[derive(Clone, Copy, Debug)]
struct Scheme {
    name: &'static str,
    bits: u32,
    group: Group,
    side_bits_per_group: u64,
    zero_point: bool,
}

#[derive(Clone, Copy, Debug)]
enum Group {
    Tensor,
    Row,
    Size(usize),
}

const SCHEMES: [Scheme; 9] = [
    Scheme {
        name: "int8 per row, f32 scale",
        bits: 8,
        group: Group::Row,
        side_bits_per_group: 32,
        zero_point: false,
    },
    Scheme {
        name: "int8 per row, f32 scale+zero",
        bits: 8,
        group: Group::Row,
        side_bits_per_group: 64,
        zero_point: true,
    },
    Scheme {
        name: "int8 g32, f16 scale (= Q8_0)",
        bits: 8,
        group: Group::Size(32),
        side_bits_per_group: 16,
        zero_point: false,
    },
    Scheme {
        name: "int8 g32, f32 scale+zero",
        bits: 8,
        group: Group::Size(32),
        side_bits_per_group: 64,
        zero_point: true,
    },
    Scheme {
        name: "int4 per row, f32 scale+zero",
        bits: 4,
        group: Group::Row,
        side_bits_per_group: 64,
        zero_point: true,
    },
    Scheme {
        name: "int4 g32, f16 scale+zero (= Q4_1)",
        bits: 4,
        group: Group::Size(32),
        side_bits_per_group: 32,
        zero_point: true,
    },
    Scheme {
        name: "int4 g32, f32 scale+zero",
        bits: 4,
        group: Group::Size(32),
        side_bits_per_group: 64,
        zero_point: true,
    },
    Scheme {
        name: "int4 g128, f16 scale+zero",
        bits: 4,
        group: Group::Size(128),
        side_bits_per_group: 32,
        zero_point: true,
    },
    Scheme {
        name: "int8 per tensor, f32 scale",
        bits: 8,
        group: Group::Tensor,
        side_bits_per_group: 32,
        zero_point: false,
    },
];

/// Quantises `w` (row-major `rows × cols`) under `s`; returns (stored bits, squared error sum).
fn quantise(w: &[f32], rows: usize, cols: usize, s: Scheme) -> (u64, f64) {
    let n_groups = match s.group {
        Group::Tensor => 1usize,
        Group::Row => rows,
        Group::Size(g) => rows * cols.div_ceil(g),
    };
    let levels = (1u32 << s.bits) as f64;
    let mut sq = 0.0f64;
    let mut quantise_group = |g: &[f32]| {
        if s.zero_point {
            let lo = g.iter().fold(f32::INFINITY, |a, &x| a.min(x)) as f64;
            let hi = g.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x)) as f64;
            // f16 scale and minimum, as stored.
            let (d, m) = if s.side_bits_per_group == 32 {
                (half_round((hi - lo) / (levels - 1.0)), half_round(lo))
            } else {
                (
                    f64::from(((hi - lo) / (levels - 1.0)) as f32),
                    f64::from(lo as f32),
                )
            };
            for &x in g {
                let x = f64::from(x);
                let q = if d > 0.0 {
                    ((x - m) / d).round().clamp(0.0, levels - 1.0)
                } else {
                    0.0
                };
                sq += (m + q * d - x).powi(2);
            }
        } else {
            let amax = g.iter().fold(0.0f32, |a, &x| a.max(x.abs())) as f64;
            let qmax = levels / 2.0 - 1.0;
            let d = if s.side_bits_per_group == 16 {
                half_round(amax / qmax)
            } else {
                f64::from((amax / qmax) as f32)
            };
            for &x in g {
                let x = f64::from(x);
                let q = if d > 0.0 {
                    (x / d).round().clamp(-qmax - 1.0, qmax)
                } else {
                    0.0
                };
                sq += (q * d - x).powi(2);
            }
        }
    };
    match s.group {
        Group::Tensor => quantise_group(w),
        Group::Row => w.chunks(cols).for_each(&mut quantise_group),
        Group::Size(g) => {
            for row in w.chunks(cols) {
                row.chunks(g).for_each(&mut quantise_group);
            }
        }
    }
    let bits = u64::from(s.bits) * w.len() as u64 + s.side_bits_per_group * n_groups as u64;
    (bits, sq)
}

/// Rounds to the nearest f16 value (the stored precision of scales and zero points).
fn half_round(x: f64) -> f64 {
    f64::from(half::f16::from_f64(x))
}

struct TensorRow {
    bits: Vec<u64>,
    sq_err: Vec<f64>,
    sum_sq: f64,
    n: u64,
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    // ---- MiniLM: real quantisation of every weight matrix ----
    let enc = ctx.encoder()?;
    let enc_name = enc.path().display().to_string();
    let mut matrices = Vec::new();
    let mut kept_f32_params: u64 = 0;
    for t in enc.tensors() {
        if t.dtype == DType::I64 {
            continue;
        }
        let n: u64 = t.shape.iter().map(|&d| d as u64).product();
        if t.shape.len() == 2 && t.param == Param::Weight {
            matrices.push(t.clone());
        } else {
            kept_f32_params += n;
        }
    }
    let rows: Vec<TensorRow> = matrices
        .par_iter()
        .map(|t| -> Result<TensorRow> {
            let w = enc.tensor_f32(&t.name)?;
            let (r, c) = (t.shape[0], t.shape[1]);
            let mut bits = Vec::new();
            let mut sq_err = Vec::new();
            for s in SCHEMES {
                let (b, e) = quantise(&w, r, c, s);
                bits.push(b);
                sq_err.push(e);
            }
            let sum_sq = w.iter().map(|&x| f64::from(x).powi(2)).sum();
            Ok(TensorRow {
                bits,
                sq_err,
                sum_sq,
                n: w.len() as u64,
            })
        })
        .collect::<Result<_>>()?;
    let n_matrix: u64 = rows.iter().map(|r| r.n).sum();
    let n_total = n_matrix + kept_f32_params;
    let orig_bits = 32 * n_total;
    let sum_sq: f64 = rows.iter().map(|r| r.sum_sq).sum();
    let mut minilm = Vec::new();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "MiniLM ({enc_name}): {n_total} float parameters, {n_matrix} in {} weight matrices \
         (quantised), {kept_f32_params} in biases and LayerNorms (kept f32).\n",
        rows.len()
    );
    let _ = writeln!(
        body,
        "| scheme | nominal CR = 32/b | real bits/weight | real CR | CR shortfall | relative MSE |"
    );
    let _ = writeln!(body, "|---|---|---|---|---|---|");
    for (k, s) in SCHEMES.iter().enumerate() {
        let bits: u64 = rows.iter().map(|r| r.bits[k]).sum::<u64>() + 32 * kept_f32_params;
        let sq: f64 = rows.iter().map(|r| r.sq_err[k]).sum();
        let nominal = 32.0 / f64::from(s.bits);
        let real = orig_bits as f64 / bits as f64;
        let bpw = bits as f64 / n_total as f64;
        let rel_mse = sq / sum_sq;
        let _ = writeln!(
            body,
            "| {} | {nominal:.2} | {bpw:.4} | {real:.3} | {:.1}% | {rel_mse:.3e} |",
            s.name,
            100.0 * (1.0 - real / nominal)
        );
        minilm.push(
            json!({"scheme": s.name, "bits": s.bits, "nominal_cr": nominal,
            "real_bits": bits, "bits_per_weight": bpw, "real_cr": real, "relative_mse": rel_mse}),
        );
    }

    // ---- SmolLM2: the bytes of the GGUF block layouts as shipped ----
    let dec = ctx.decoder()?;
    let dec_name = dec.path().display().to_string();
    let file_bytes = std::fs::metadata(dec.path())?.len();
    let mut by_type: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for t in dec.tensors() {
        let n: u64 = t.shape.iter().map(|&d| d as u64).product();
        let e = by_type.entry(t.dtype.name().to_string()).or_default();
        e.0 += n;
        e.1 += t.nbytes;
    }
    let n_dec: u64 = by_type.values().map(|v| v.0).sum();
    let bytes_dec: u64 = by_type.values().map(|v| v.1).sum();
    let _ = writeln!(
        body,
        "\nSmolLM2 ({dec_name}), bytes as stored in the GGUF file:\n"
    );
    let _ = writeln!(
        body,
        "| type | weights | bytes | bits/weight | CR vs f32 | nominal CR |"
    );
    let _ = writeln!(body, "|---|---|---|---|---|---|");
    let mut smol = Vec::new();
    for (ty, (n, b)) in &by_type {
        let bpw = *b as f64 * 8.0 / *n as f64;
        let nominal = match ty.as_str() {
            "Q4_0" | "Q4_1" | "Q4_K" => 8.0,
            "Q5_0" | "Q5_1" | "Q5_K" => 6.4,
            "Q8_0" => 4.0,
            "F16" | "BF16" => 2.0,
            _ => 1.0,
        };
        let _ = writeln!(
            body,
            "| {ty} | {n} | {b} | {bpw:.3} | {:.3} | {nominal:.1} |",
            32.0 / bpw
        );
        smol.push(
            json!({"dtype": ty, "weights": n, "bytes": b, "bits_per_weight": bpw,
            "real_cr": 32.0 / bpw, "nominal_cr": nominal}),
        );
    }
    let tensor_bpw = bytes_dec as f64 * 8.0 / n_dec as f64;
    let file_bpw = file_bytes as f64 * 8.0 / n_dec as f64;
    let _ = writeln!(
        body,
        "\nAll tensors: {n_dec} weights in {bytes_dec} bytes = {tensor_bpw:.3} bits/weight (CR {:.3} vs f32); \
         whole file {file_bytes} bytes = {file_bpw:.3} bits/weight (CR {:.3}).",
        32.0 / tensor_bpw,
        32.0 / file_bpw
    );

    // ---- the source's example arithmetic ----
    let ex_params = 340e6_f64;
    let ex_gbit_f32 = ex_params * 32.0 / 1e9;
    let ex_gb_f32 = ex_params * 4.0 / 1e9;
    let ex_mb_int8 = ex_params / 1e6;
    let ex_cr = ex_gb_f32 * 1e3 / ex_mb_int8;
    let example_ok = (ex_gbit_f32 - 10.88).abs() < 1e-9
        && (ex_gb_f32 - 1.36).abs() < 1e-9
        && (ex_cr - 4.0).abs() < 1e-9;
    let _ = writeln!(
        body,
        "\nThe source's example: 340M × 32 bit = {ex_gbit_f32:.2} Gbit = {ex_gb_f32:.2} GB; at 8 bits {ex_mb_int8:.0} MB; CR = {ex_cr:.2} (reproduces: {example_ok})."
    );

    // ---- verdict (rule in papers/intro.md) ----
    // Every measured format's real ratio against its nominal 32/b: supported if all are within
    // 10%, refuted if any falls short by more than 10% (or the example's arithmetic fails).
    let tol = 0.10;
    let mut formats: Vec<(String, f64, f64)> = minilm
        .iter()
        .map(|m| {
            (
                format!("MiniLM {}", m["scheme"].as_str().unwrap_or("?")),
                m["real_cr"].as_f64().unwrap_or(f64::NAN),
                m["nominal_cr"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    for m in &smol {
        let nominal = m["nominal_cr"].as_f64().unwrap_or(f64::NAN);
        if nominal > 1.0 {
            formats.push((
                format!("SmolLM2 {}", m["dtype"].as_str().unwrap_or("?")),
                m["real_cr"].as_f64().unwrap_or(f64::NAN),
                nominal,
            ));
        }
    }
    let shortfall = |f: &(String, f64, f64)| 1.0 - f.1 / f.2;
    let worst = formats
        .iter()
        .max_by(|a, b| shortfall(a).total_cmp(&shortfall(b)))
        .cloned()
        .unwrap_or_default();
    let n_over = formats
        .iter()
        .filter(|f| shortfall(f) > tol || shortfall(f).is_nan())
        .count();
    let verdict = if !example_ok || n_over > 0 {
        Verdict::Refuted
    } else if formats.iter().all(|f| shortfall(f) <= tol) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let int8 = minilm[0]["real_cr"].as_f64().unwrap_or(f64::NAN);
    let int4 = minilm[5]["real_cr"].as_f64().unwrap_or(f64::NAN);
    let why = format!(
        "example arithmetic reproduces ({ex_cr:.0}x); {n_over} of {} real formats fall short of 32/b by more than {:.0}%, \
         worst {} at {:.3}x vs {:.1}x ({:.1}% short); side information (scales, zero points) and f32 tensors are not in the formula",
        formats.len(),
        100.0 * tol,
        worst.0,
        worst.1,
        worst.2,
        100.0 * shortfall(&worst)
    );
    let mut o = Outcome::new(
        "intro-1",
        verdict,
        format!(
            "int8/row {int8:.2}x, int4 g32 {int4:.2}x (MiniLM); SmolLM2 file {:.2}x",
            32.0 / file_bpw
        ),
        "int8 4x, int4 8x (CR = 32/b)",
        why,
    );
    let chart = Chart {
        title: "Compression ratio: nominal 32/b vs real (MiniLM)".into(),
        x_label: "bits per weight (real, with side information)".into(),
        y_label: "compression ratio vs f32".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::reference(
                "nominal CR = 32/b",
                (3..=9)
                    .map(|b| (f64::from(b), 32.0 / f64::from(b)))
                    .collect(),
            ),
            Series::points(
                "MiniLM real schemes",
                minilm
                    .iter()
                    .map(|m| {
                        (
                            m["bits_per_weight"].as_f64().unwrap_or(f64::NAN),
                            m["real_cr"].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect(),
            ),
            Series::points(
                "MiniLM schemes at their nominal b",
                minilm
                    .iter()
                    .map(|m| {
                        (
                            m["bits"].as_f64().unwrap_or(f64::NAN),
                            m["real_cr"].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect(),
            ),
            Series::points(
                "SmolLM2 GGUF types",
                smol.iter()
                    .map(|m| {
                        (
                            m["bits_per_weight"].as_f64().unwrap_or(f64::NAN),
                            m["real_cr"].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .filter(|p| p.0 < 12.0)
                    .collect(),
            ),
        ],
    };
    o.figures.push(chart.save(&figdir, "intro-1_ratio", "Real compression ratio against bits per weight; the nominal 32/b curve ignores scales, zero points and f32 tensors")?);
    o.body = body;
    o.numbers = json!({
        "minilm": {"path": enc_name, "float_params": n_total, "matrix_params": n_matrix,
                   "kept_f32_params": kept_f32_params, "schemes": minilm},
        "smollm2": {"path": dec_name, "weights": n_dec, "tensor_bytes": bytes_dec, "file_bytes": file_bytes,
                    "tensor_bits_per_weight": tensor_bpw, "file_bits_per_weight": file_bpw, "types": smol},
        "threshold_shortfall": tol,
        "example": {"params": ex_params, "gbit_f32": ex_gbit_f32, "gb_f32": ex_gb_f32, "mb_int8": ex_mb_int8, "cr": ex_cr, "reproduces": example_ok},
        "formats": formats.iter().map(|f| json!({"format": f.0, "real_cr": f.1, "nominal_cr": f.2, "shortfall": shortfall(f)})).collect::<Vec<_>>(),
    });
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_group32_costs_exactly_five_bits_per_weight() {
        let w: Vec<f32> = (0..64 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        let (bits, _) = quantise(&w, 4, 64, SCHEMES[5]);
        assert_eq!(bits, 5 * 64 * 4);
    }

    #[test]
    fn int8_per_tensor_error_is_below_half_step() {
        let w: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.01).cos()).collect();
        let (bits, sq) = quantise(&w, 10, 100, SCHEMES[8]);
        assert_eq!(bits, 8 * 1000 + 32);
        let step = 1.0 / 127.0;
        assert!(sq / 1000.0 <= step * step / 4.0 + 1e-12);
        // Uniform rounding error has variance step²/12; a real grid comes close.
        assert!(sq / 1000.0 > step * step / 24.0);
    }

    #[test]
    fn constant_group_has_no_error() {
        let w = vec![0.5f32; 64];
        let (_, sq) = quantise(&w, 1, 64, SCHEMES[5]);
        assert!(sq < 1e-12);
    }
}
