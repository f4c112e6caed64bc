//! `ccd-1.2`: "the information content is I(θ) = −Σ p(θ_i) log p(θ_i)". For real-valued weights the
//! sum only means something after binning at a width Δ, and then H_Δ ≈ h(W) − log2 Δ: the number is
//! a property of the binning as much as of the weights.
//!
//! Per MiniLM weight tensor (every 2-D weight, embeddings included): the empirical entropy of the
//! values rounded to widths Δ = σ·2^(−j), j = 0..8, and 1e-2, 1e-3, 1e-4; a Kozachenko-Leonenko
//! estimate of h(W); the least-squares slope of H_Δ against −log2 Δ over the widths whose occupied
//! bins hold at least 10 values on average.

use anyhow::{Context as _, Result};
use claimlab_ratedist as rd;
use claimlab_weights::{DType, Param};
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::stats::{entropy_of_codes, mean_std};
use crate::Ctx;

/// Relative widths Δ = σ·2^(−j) for these j.
const REL_J: [i32; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
/// Fixed widths.
const FIXED: [f64; 3] = [1e-2, 1e-3, 1e-4];
/// Minimum average occupancy of occupied bins for a width to count.
const MIN_PER_BIN: f64 = 10.0;
/// Supported slope range.
const SLOPE_OK: (f64, f64) = (0.95, 1.05);
/// Refuted outside this slope range.
const SLOPE_BAD: (f64, f64) = (0.8, 1.2);
/// Tolerance of H_Δ + log2 Δ against h(W), bits.
const H_TOL_BITS: f64 = 0.1;
/// Quick mode: at most this many values per tensor (a strided subsample).
const QUICK_MAX: usize = 262_144;

/// Entropy (bits) and number of occupied bins at width `step` (mid-tread rounding).
fn binned(xs: &[f32], step: f64) -> (f64, usize) {
    let mut codes: Vec<i64> = xs
        .iter()
        .map(|&x| (f64::from(x) / step).round() as i64)
        .collect();
    codes.sort_unstable();
    let occupied = 1 + codes.windows(2).filter(|p| p[0] != p[1]).count();
    (entropy_of_codes(codes), occupied)
}

/// Least-squares slope of y on x.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

/// Kozachenko-Leonenko h(W) in bits; k raised past exact ties (stored weights repeat values).
fn knn_entropy(xs: &[f32]) -> Result<(f64, usize)> {
    let v: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
    let mut last = None;
    for k in [3usize, 8, 16, 32, 64] {
        match rd::kl_entropy_1d_bits(&v, k) {
            Ok(h) => return Ok((h, k)),
            Err(e) => last = Some(e),
        }
    }
    // Every k hit exact repeats: Miller-Madow histogram estimate with ⌈√n⌉ bins (k reported 0).
    let bins = (v.len() as f64).sqrt().ceil() as usize;
    let h = rd::histogram_entropy_bits(&v, bins)
        .map_err(|e| anyhow::anyhow!("entropy failed: {e:?} after {last:?}"))?;
    Ok((h.miller_madow_bits, 0))
}

struct Row {
    name: String,
    n: usize,
    sigma: f64,
    h: f64,
    k: usize,
    /// (Δ, H_Δ, mean per occupied bin, counted)
    widths: Vec<(f64, f64, f64, bool)>,
    slope: f64,
    max_h_dev: f64,
}

fn analyse(name: &str, w: &[f32]) -> Result<Row> {
    let (_, sigma) = mean_std(w);
    let (h, k) = knn_entropy(w)?;
    let mut steps: Vec<f64> = REL_J.iter().map(|&j| sigma * 2f64.powi(-j)).collect();
    steps.extend(FIXED);
    let widths: Vec<(f64, f64, f64, bool)> = steps
        .par_iter()
        .map(|&d| {
            let (hd, occ) = binned(w, d);
            let per = w.len() as f64 / occ as f64;
            (d, hd, per, per >= MIN_PER_BIN)
        })
        .collect();
    let used: Vec<&(f64, f64, f64, bool)> = widths.iter().filter(|x| x.3).collect();
    let xs: Vec<f64> = used.iter().map(|x| -x.0.log2()).collect();
    let ys: Vec<f64> = used.iter().map(|x| x.1).collect();
    let s = if used.len() >= 2 {
        slope(&xs, &ys)
    } else {
        f64::NAN
    };
    let max_h_dev = used
        .iter()
        .map(|x| (x.1 + x.0.log2() - h).abs())
        .fold(0.0f64, f64::max);
    Ok(Row {
        name: name.to_string(),
        n: w.len(),
        sigma,
        h,
        k,
        widths,
        slope: s,
        max_h_dev,
    })
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let quick = ctx.opts.quick;
    let figdir = ctx.figures_dir();
    let tensors: Vec<_> = {
        let enc = ctx.encoder()?;
        enc.tensors()
            .iter()
            .filter(|t| t.shape.len() == 2 && t.param == Param::Weight && t.dtype != DType::I64)
            .cloned()
            .collect()
    };
    let bar = ctx.bar(tensors.len() as u64, "ccd-1.2: binned entropy per tensor");
    let enc = ctx.encoder()?;
    let path = enc.path().display().to_string();
    // Tensors one at a time (each is parallel inside): the word embeddings alone are 11.7 M values.
    let mut rows = Vec::new();
    for t in &tensors {
        let w = enc.tensor_f32(&t.name)?;
        let w: Vec<f32> = if quick && w.len() > QUICK_MAX {
            let stride = w.len().div_ceil(QUICK_MAX);
            w.iter().step_by(stride).copied().collect()
        } else {
            w
        };
        rows.push(analyse(&t.name, &w).with_context(|| t.name.clone())?);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let bad: Vec<&Row> = rows
        .iter()
        .filter(|r| !(SLOPE_BAD.0..=SLOPE_BAD.1).contains(&r.slope))
        .collect();
    let all_ok = rows
        .iter()
        .all(|r| (SLOPE_OK.0..=SLOPE_OK.1).contains(&r.slope) && r.max_h_dev <= H_TOL_BITS);
    let verdict = if !bad.is_empty() {
        Verdict::Refuted
    } else if all_ok {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let (smin, smax) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, r| {
            (a.0.min(r.slope), a.1.max(r.slope))
        });
    let worst_dev = rows.iter().map(|r| r.max_h_dev).fold(0.0f64, f64::max);
    // The spread of "the information content" of one tensor across the widths tried.
    let spread: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            r.widths
                .iter()
                .fold((f64::INFINITY, 0.0f64), |a, w| (a.0.min(w.1), a.1.max(w.1)))
        })
        .collect();
    let measured = format!(
        "slope of H_Δ vs −log2 Δ ∈ [{smin:.3}, {smax:.3}] over {} tensors; |H_Δ + log2 Δ − h| ≤ \
         {worst_dev:.3} bit; one tensor's H_Δ ranges over {:.1}..{:.1} bits across the widths",
        rows.len(),
        spread.iter().map(|s| s.0).fold(f64::INFINITY, f64::min),
        spread.iter().map(|s| s.1).fold(0.0f64, f64::max)
    );
    let why = format!(
        "slopes in [{smin:.3}, {smax:.3}] (supported range [{}, {}], refuted outside [{}, {}]); \
         largest |H_Δ + log2 Δ − h_kNN| {worst_dev:.3} bit (tolerance {H_TOL_BITS}); widths with \
         ≥ {MIN_PER_BIN} values per occupied bin; {}; deterministic. \"The information content\" has \
         no value without Δ.",
        SLOPE_OK.0,
        SLOPE_OK.1,
        SLOPE_BAD.0,
        SLOPE_BAD.1,
        if quick {
            format!("quick: ≤ {QUICK_MAX} values per tensor (strided)")
        } else {
            "all weights".to_string()
        }
    );
    let mut o = Outcome::new(
        "ccd-1.2",
        verdict,
        measured,
        "I(θ) = −Σ p(θ_i) log p(θ_i) (no number, no bin width)",
        why,
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Model: {path}; {} weight tensors. Widths Δ = σ·2^(−j), j = 0..8, and 1e-2, 1e-3, 1e-4 \
         (mid-tread rounding x → round(x/Δ)). h(W) by Kozachenko-Leonenko (k = 3, raised when exact \
         repeats of stored values make the k-th neighbour distance 0). Slope: least squares of H_Δ on \
         −log2 Δ over the widths whose occupied bins hold ≥ {MIN_PER_BIN} values on average. \
         As a definition the quantity is usable only with a stated Δ: halving Δ adds one bit.\n",
        rows.len()
    );
    let _ = writeln!(
        body,
        "| tensor | n | σ | h_kNN (k) | slope | max abs(H_Δ+log2Δ−h) | H at Δ=σ, σ/16, σ/256 | H at 1e-2, 1e-3, 1e-4 |\n|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        let h = |i: usize| r.widths[i].1;
        let _ = writeln!(
            body,
            "| {} | {} | {:.4} | {:.3} ({}) | {:.3} | {:.3} | {:.2}, {:.2}, {:.2} | {:.2}, {:.2}, {:.2} |",
            r.name,
            r.n,
            r.sigma,
            r.h,
            r.k,
            r.slope,
            r.max_h_dev,
            h(0),
            h(4),
            h(8),
            h(9),
            h(10),
            h(11)
        );
    }
    // Figure: H_Δ against −log2 Δ for a few tensors, with h − log2 Δ.
    let mut series = Vec::new();
    let pick: Vec<&Row> = rows.iter().step_by(rows.len().div_ceil(5).max(1)).collect();
    for r in &pick {
        let mut pts: Vec<(f64, f64)> = r.widths.iter().map(|w| (-w.0.log2(), w.1)).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push(Series::line(r.name.clone(), pts.clone()));
        series.push(Series::reference(
            format!("h − log2 Δ ({})", r.name),
            pts.iter().map(|p| (p.0, r.h + p.0)).collect(),
        ));
    }
    let chart = Chart {
        title: "ccd-1.2: empirical entropy against bin width".into(),
        x_label: "−log2 Δ".into(),
        y_label: "H_Δ (bits per weight)".into(),
        log_x: false,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "ccd-1.2_entropy_vs_width",
        "Empirical entropy of the binned weights against −log2 Δ for a few MiniLM tensors, with the \
         high-resolution prediction h(W) − log2 Δ: the value of \"I(θ)\" is set by the bin width.",
    )?);
    o.body = body;
    o.numbers = json!({"quick": quick, "tensors": rows.iter().map(|r| json!({
        "name": r.name, "n": r.n, "sigma": r.sigma, "h_knn_bits": r.h, "knn_k": r.k,
        "slope": r.slope, "max_h_dev_bits": r.max_h_dev,
        "widths": r.widths.iter().map(|w| json!({"delta": w.0, "entropy_bits": w.1,
            "per_bin": w.2, "counted": w.3})).collect::<Vec<_>>()})).collect::<Vec<_>>()});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [1.0, 3.0, 5.0, 7.0];
        assert!((slope(&x, &y) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn binned_counts_occupied_bins() {
        let (h, occ) = binned(&[0.0, 0.1, 1.0, 1.1], 1.0);
        assert_eq!(occ, 2);
        assert!((h - 1.0).abs() < 1e-12);
    }

    #[test]
    fn uniform_sample_follows_h_minus_log_delta() {
        // Uniform on [0, 1): h = 0, so H_Δ ≈ −log2 Δ with slope 1 while bins are well filled.
        use rand::{RngExt as _, SeedableRng as _};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let w: Vec<f32> = (0..200_000).map(|_| rng.random::<f32>()).collect();
        let r = analyse("u", &w).unwrap();
        assert!((r.slope - 1.0).abs() < 0.05, "slope {}", r.slope);
        assert!(r.h.abs() < 0.05, "h {}", r.h);
    }
}
