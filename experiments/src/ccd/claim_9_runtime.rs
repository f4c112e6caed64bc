//! `ccd-9.runtime`: "compressing the 30 GB example takes 2-3 hours on 8 A100 GPUs". The measured
//! wall time of the project's pipeline (`ccd-7.1` runs, 3 stages, streaming) extrapolated with its
//! fitted log-log slope to 10¹⁰ parameters, then converted to 8 × A100 by the ratio of this
//! machine's measured f64 matrix-multiply rate and memory bandwidth to the A100's stated FP32
//! peak (19.5 TFLOP/s) and bandwidth (2 TB/s).

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_7_1::{loglog_fit, scaling_runs, series_of, Arrangement, ScalePoint, BOOT};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Parameters of the example (as the text states).
const N_EXAMPLE: f64 = 1e10;
/// Claimed time range, hours.
const CLAIMED_H: (f64, f64) = (2.0, 3.0);
/// A100 FP32 peak, FLOP/s (NVIDIA data sheet, non-tensor-core).
const A100_FLOPS: f64 = 19.5e12;
/// A100 memory bandwidth, bytes/s (80 GB SXM data sheet, rounded).
const A100_BYTES_S: f64 = 2.0e12;
/// GPUs in the claim.
const GPUS: f64 = 8.0;
/// Rule: supported within this factor.
const SUPPORT_FACTOR: f64 = 3.0;
/// Rule: refuted beyond this factor.
const REFUTE_FACTOR: f64 = 10.0;
/// Side of the matrices timed for the FLOP rate (full, quick).
const GEMM_N: (usize, usize) = (1024, 512);
/// Bytes streamed for the bandwidth (full, quick).
const STREAM_BYTES: (usize, usize) = (1 << 28, 1 << 26);

/// Measured f64 matrix-multiply rate of this machine in FLOP/s (best of 3, faer, all threads).
fn gemm_flops(n: usize) -> f64 {
    let a = faer::Mat::<f64>::from_fn(n, n, |i, j| ((i * 31 + j * 17) % 97) as f64 / 97.0);
    let b = faer::Mat::<f64>::from_fn(n, n, |i, j| ((i * 13 + j * 29) % 89) as f64 / 89.0);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let c = a.as_ref() * b.as_ref();
        std::hint::black_box(&c);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) / best
}

/// Measured read bandwidth in bytes/s: sum of an f32 buffer of `bytes` (best of 3, one thread).
fn read_bandwidth(bytes: usize) -> f64 {
    let v: Vec<f32> = (0..bytes / 4).map(|i| (i % 7) as f32).collect();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let s: f32 = v.iter().sum();
        std::hint::black_box(s);
        best = best.min(t.elapsed().as_secs_f64());
    }
    bytes as f64 / best
}

/// Factor between x and the interval [lo, hi] (1 when inside), and whether x is above it.
fn factor_off(x: f64, lo: f64, hi: f64) -> (f64, bool) {
    if x < lo {
        (lo / x, false)
    } else if x > hi {
        (x / hi, true)
    } else {
        (1.0, false)
    }
}

/// The rule on the factors by which the converted estimates miss [2 h, 3 h].
fn judge(factors: &[(f64, bool)]) -> Verdict {
    let all_high = factors.iter().all(|f| f.0 > REFUTE_FACTOR && f.1);
    let all_low = factors.iter().all(|f| f.0 > REFUTE_FACTOR && !f.1);
    if all_high || all_low {
        Verdict::Refuted
    } else if factors.iter().all(|f| f.0 <= SUPPORT_FACTOR) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    let quick = ctx.opts.quick;
    let sc = scaling_runs(ctx)?;
    let flops = gemm_flops(if quick { GEMM_N.1 } else { GEMM_N.0 });
    let bw = read_bandwidth(if quick {
        STREAM_BYTES.1
    } else {
        STREAM_BYTES.0
    });
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "This machine: {:.1} GFLOP/s (f64 matrix multiply, faer, {threads} threads) and {:.1} GB/s \
         (one-thread read of an f32 buffer). Conversion to 8 × A100: the estimate here times \
         (this machine's rate) / (8 × A100 rate), once by FLOP rate ({:.1} TFLOP/s FP32 each) and \
         once by bandwidth ({:.1} TB/s each): perfect scaling over 8 GPUs, which favours the claim.\n\n\
         | k | arrangement | slope [95%] | s per parameter at largest n | here at 10^10 (h) | 95% (h) | 8×A100 by FLOPs (h) | 8×A100 by bandwidth (h) |\n|---|---|---|---|---|---|---|---|",
        flops / 1e9,
        bw / 1e9,
        A100_FLOPS / 1e12,
        A100_BYTES_S / 1e12
    );
    let mut judged = Vec::new();
    let mut series = Vec::new();
    for k in 1..=3 {
        let xy = series_of(&sc, k, Arrangement::Streaming, |p: &ScalePoint| {
            Some(p.median_wall())
        });
        let fit = loglog_fit(&xy, sc.seed ^ 0x72 ^ (k as u64 * 7))?;
        let (t, lo, hi) = fit.predict(N_EXAMPLE);
        let largest = xy
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .copied()
            .unwrap_or((f64::NAN, f64::NAN));
        let by_flops = t * flops / (GPUS * A100_FLOPS);
        let by_bw = t * bw / (GPUS * A100_BYTES_S);
        let _ = writeln!(
            body,
            "| {k} | streaming | {:.2} [{:.2}, {:.2}] | {:.2e} | {:.3} | [{:.3}, {:.3}] | {:.2e} | {:.2e} |",
            fit.slope,
            fit.lo,
            fit.hi,
            largest.1 / largest.0,
            t / 3600.0,
            lo / 3600.0,
            hi / 3600.0,
            by_flops / 3600.0,
            by_bw / 3600.0
        );
        if k == 3 {
            judged = vec![
                factor_off(by_flops / 3600.0, CLAIMED_H.0, CLAIMED_H.1),
                factor_off(by_bw / 3600.0, CLAIMED_H.0, CLAIMED_H.1),
            ];
            series.push(Series::points("measured, k=3 streaming", xy.clone()));
            series.push(Series::line(
                "fit extrapolated to 1e10",
                vec![
                    (
                        largest.0,
                        (fit.intercept + fit.slope * largest.0.ln()).exp(),
                    ),
                    (N_EXAMPLE, t),
                ],
            ));
            series.push(Series::points(
                "8×A100 by FLOPs",
                vec![(N_EXAMPLE, by_flops)],
            ));
            series.push(Series::points(
                "8×A100 by bandwidth",
                vec![(N_EXAMPLE, by_bw)],
            ));
            series.push(Series::reference(
                "claimed 2-3 h",
                vec![
                    (N_EXAMPLE, CLAIMED_H.0 * 3600.0),
                    (N_EXAMPLE, CLAIMED_H.1 * 3600.0),
                ],
            ));
        }
        rows.push(json!({"k": k, "fit": fit.json(), "largest_n": largest.0,
            "seconds_per_param_at_largest": largest.1 / largest.0,
            "here_at_1e10_s": t, "here_ci95_s": [lo, hi],
            "a100x8_by_flops_s": by_flops, "a100x8_by_bandwidth_s": by_bw}));
    }
    let verdict = judge(&judged);
    let r3 = &rows[2];
    let h = |key: &str| r3[key].as_f64().unwrap_or(f64::NAN) / 3600.0;
    let measured = format!(
        "3-stage pipeline at 10^10 parameters: {:.2} h here; {:.2e} h (by FLOPs) to {:.2e} h (by \
         bandwidth) on 8×A100",
        h("here_at_1e10_s"),
        h("a100x8_by_flops_s"),
        h("a100x8_by_bandwidth_s")
    );
    let why = format!(
        "extrapolated with the fitted wall-time slope {:.2} (ccd-7.2 runs, {BOOT} bootstrap \
         resamples) and converted by measured {:.1} GFLOP/s and {:.1} GB/s here: 2-3 h is off by \
         {:.1}x (FLOPs) and {:.1}x (bandwidth); rule: supported within {SUPPORT_FACTOR}x, refuted \
         beyond {REFUTE_FACTOR}x either way; median of {} repeats, seed {}",
        r3["fit"]["slope"].as_f64().unwrap_or(f64::NAN),
        flops / 1e9,
        bw / 1e9,
        judged.first().map_or(f64::NAN, |f| f.0),
        judged.get(1).map_or(f64::NAN, |f| f.0),
        sc.repeats,
        sc.seed
    );
    let mut o = Outcome::new(
        "ccd-9.runtime",
        verdict,
        measured,
        "2-3 h on 8 × A100 for 10^10 parameters",
        why,
    );
    let _ = writeln!(
        body,
        "\nThe 8-GPU figure itself is not measurable here: the project's pipeline is CPU code, no \
         A100 is available, and no algorithm in the text fixes what would run (its stages are \
         never defined), so the conversion is an estimate of what this pipeline would take, not a \
         test of the text's system. The task's accelerator (when one is lent) cannot run this \
         pipeline either, since it has no GPU implementation."
    );
    let chart = Chart {
        title: "ccd-9.runtime: wall time extrapolated to 10^10 parameters".into(),
        x_label: "parameters n".into(),
        y_label: "wall time (s)".into(),
        log_x: true,
        log_y: true,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "ccd-9.runtime_extrapolation",
        "Median wall time of the 3-stage streaming pipeline (ccd-7.1 runs), the fitted power law \
         extrapolated to 1e10 parameters, its conversion to 8 A100s by FLOP rate and by \
         bandwidth, and the claimed 2-3 hours.",
    )?);
    o.body = body;
    o.numbers = json!({"gemm_flops": flops, "read_bandwidth_bytes_s": bw, "threads": threads,
        "a100_flops": A100_FLOPS, "a100_bandwidth": A100_BYTES_S, "gpus": GPUS,
        "claimed_hours": [CLAIMED_H.0, CLAIMED_H.1], "rows": rows, "seed": sc.seed});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_and_factors() {
        let (f, high) = factor_off(1.0, 2.0, 3.0);
        assert!((f - 2.0).abs() < 1e-15 && !high);
        let (f, high) = factor_off(9.0, 2.0, 3.0);
        assert!((f - 3.0).abs() < 1e-15 && high);
        assert_eq!(judge(&[(1.0, false), (2.5, true)]), Verdict::Supported);
        assert_eq!(judge(&[(20.0, false), (11.0, false)]), Verdict::Refuted);
        assert_eq!(judge(&[(20.0, false), (11.0, true)]), Verdict::Inconclusive);
        assert_eq!(judge(&[(20.0, false), (2.0, false)]), Verdict::Inconclusive);
    }

    #[test]
    fn machine_rates_are_positive_and_finite() {
        let f = gemm_flops(64);
        let b = read_bandwidth(1 << 16);
        assert!(f.is_finite() && f > 1e6, "{f}");
        assert!(b.is_finite() && b > 1e6, "{b}");
    }
}
