//! `intro-5.prune`: pruning with a 0/1 mask compresses by 1/sparsity. MiniLM magnitude-pruned
//! per tensor at 10..90% zeros, stored as CSR (16- and 32-bit column indices), bitmap + values,
//! and 2:4 semi-structured; real bytes against 1/s and 1/(1−s).

use anyhow::Result;
use claimlab_weights::{DType, Param};
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const SPARSITIES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/// The rule: refuted if the real factor differs from 1/s by more than this at s = 0.9.
const REFUTE_TOL: f64 = 0.25;
/// Supported if within this.
const SUPPORT_TOL: f64 = 0.10;

/// Bytes of each storage format for one pruned matrix: (csr16, csr32, bitmap, dense f32).
fn stored_bytes(rows: usize, cols: usize, nnz: u64) -> (u64, u64, u64, u64) {
    let n = (rows * cols) as u64;
    let rowptr = 4 * (rows as u64 + 1);
    let csr16 = if cols <= 65_536 {
        4 * nnz + 2 * nnz + rowptr
    } else {
        u64::MAX
    };
    let csr32 = 4 * nnz + 4 * nnz + rowptr;
    let bitmap = n.div_ceil(8) + 4 * nnz;
    (csr16, csr32, bitmap, 4 * n)
}

/// Number of weights of `w` left after zeroing the `s` fraction of smallest magnitude.
fn kept_after_pruning(w: &[f32], s: f64) -> u64 {
    let mut mags: Vec<f32> = w.iter().map(|x| x.abs()).collect();
    let k = ((s * w.len() as f64).round() as usize).min(w.len());
    if k == 0 {
        return w.iter().filter(|&&x| x != 0.0).count() as u64;
    }
    let (_, thr, _) = mags.select_nth_unstable_by(k - 1, f32::total_cmp);
    let thr = *thr;
    // Zero the k smallest (ties at the threshold broken by position), count the rest that are
    // non-zero.
    let mut zeroed = 0usize;
    let mut kept = 0u64;
    for &x in w {
        let a = x.abs();
        // Exact tie with the threshold value: total_cmp is an exact comparison, not a tolerance.
        if a < thr || (a.total_cmp(&thr).is_eq() && zeroed < k) {
            zeroed += 1;
        } else if x != 0.0 {
            kept += 1;
        }
    }
    kept
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    let tensors: Vec<_> = {
        let enc = ctx.encoder()?;
        enc.tensors()
            .iter()
            .filter(|t| t.shape.len() == 2 && t.param == Param::Weight && t.dtype != DType::I64)
            .cloned()
            .collect()
    };
    let bar = ctx.bar(tensors.len() as u64, "intro-5.prune: pruning MiniLM");
    let enc = ctx.encoder()?;
    // Per tensor and sparsity: bytes in each format.
    let per: Vec<Vec<(u64, u64, u64, u64)>> = tensors
        .par_iter()
        .map(|t| -> Result<_> {
            let w = enc.tensor_f32(&t.name)?;
            let (r, c) = (t.shape[0], t.shape[1]);
            let v = SPARSITIES
                .iter()
                .map(|&s| stored_bytes(r, c, kept_after_pruning(&w, s)))
                .collect();
            bar.inc(1);
            Ok(v)
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let n: u64 = tensors
        .iter()
        .map(|t| (t.shape[0] * t.shape[1]) as u64)
        .sum();
    let dense = 4 * n;
    let mut body = String::from("| zeros s | 1/s | 1/(1−s) | CSR16 | CSR32 | bitmap+values | 2:4 |\n|---|---|---|---|---|---|---|\n");
    let mut rows = Vec::new();
    let (mut p16, mut p32, mut pbm) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &s) in SPARSITIES.iter().enumerate() {
        let sum = |f: fn(&(u64, u64, u64, u64)) -> u64| per.iter().map(|v| f(&v[i])).sum::<u64>();
        let (b16, b32, bbm) = (sum(|x| x.0), sum(|x| x.1), sum(|x| x.2));
        let f16 = dense as f64 / b16 as f64;
        let f32_ = dense as f64 / b32 as f64;
        let fbm = dense as f64 / bbm as f64;
        // 2:4 keeps exactly half: values + a 2-bit position per kept value.
        let two_four = if (s - 0.5).abs() < 1e-9 {
            Some(dense as f64 / (4.0 * n as f64 / 2.0 + (n as f64 / 2.0) * 2.0 / 8.0))
        } else {
            None
        };
        let _ = writeln!(
            body,
            "| {s:.1} | {:.2} | {:.2} | {f16:.2} | {f32_:.2} | {fbm:.2} | {} |",
            1.0 / s,
            1.0 / (1.0 - s),
            two_four.map_or("-".to_string(), |x| format!("{x:.2}"))
        );
        p16.push((s, f16));
        p32.push((s, f32_));
        pbm.push((s, fbm));
        rows.push(
            json!({"sparsity": s, "inv_s": 1.0 / s, "inv_density": 1.0 / (1.0 - s),
            "csr16": f16, "csr32": f32_, "bitmap": fbm, "two_four": two_four}),
        );
    }
    let at90 = &rows[SPARSITIES.len() - 1];
    let best90 = ["csr16", "csr32", "bitmap"]
        .iter()
        .filter_map(|k| at90[*k].as_f64())
        .fold(0.0f64, f64::max);
    let claimed90 = 1.0 / 0.9;
    let dev = (best90 - claimed90).abs() / claimed90;
    let verdict = if dev > REFUTE_TOL {
        Verdict::Refuted
    } else if dev <= SUPPORT_TOL {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let mut o = Outcome::new(
        "intro-5.prune",
        verdict,
        format!("at 90% zeros: best real factor {best90:.2}x (CSR16 {:.2}x)", at90["csr16"].as_f64().unwrap_or(f64::NAN)),
        format!("1/sparsity = {claimed90:.2}x at 90% zeros"),
        format!(
            "real factor differs from 1/s by {:.0}% at s = 0.9 (threshold {:.0}%); it tracks 1/(1−s) = 10 less index overhead \
             (CSR16 ≈ 32/(48(1−s))), so the formula is inverted",
            100.0 * dev,
            100.0 * REFUTE_TOL
        ),
    );
    let chart = Chart {
        title: "Pruning: real compression factor vs the formula".into(),
        x_label: "fraction of zeros s".into(),
        y_label: "compression factor vs dense f32".into(),
        log_x: false,
        log_y: true,
        series: vec![
            Series::line("CSR, 16-bit indices", p16),
            Series::line("CSR, 32-bit indices", p32),
            Series::line("bitmap + values", pbm),
            Series::reference(
                "claimed 1/s",
                SPARSITIES.iter().map(|&s| (s, 1.0 / s)).collect(),
            ),
            Series::reference(
                "ideal 1/(1−s)",
                SPARSITIES.iter().map(|&s| (s, 1.0 / (1.0 - s))).collect(),
            ),
        ],
    };
    o.figures.push(chart.save(
        &figdir,
        "intro-5.prune_factor",
        "Real stored factor of magnitude-pruned MiniLM against 1/s and 1/(1−s)",
    )?);
    o.body = body;
    o.numbers = json!({"weights": n, "rows": rows, "deviation_at_0.9": dev});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_complement() {
        let w: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(kept_after_pruning(&w, 0.9), 10);
        assert_eq!(kept_after_pruning(&w, 0.0), 100);
        // Ties: all equal, 30% zeroed exactly.
        assert_eq!(kept_after_pruning(&[1.0; 10], 0.3), 7);
    }

    #[test]
    fn csr16_bytes() {
        let (c16, c32, bm, d) = stored_bytes(2, 4, 3);
        assert_eq!((c16, c32, bm, d), (18 + 12, 24 + 12, 1 + 12, 32));
    }
}
