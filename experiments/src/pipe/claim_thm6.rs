//! `pipe-thm6`: "the best batch is B* = (M − S)/m; throughput is B/Latency(B)". The runtime's
//! forward pass on SmolLM2 and MiniLM over batches of B Brown passages run concurrently (the
//! runtime has no batch dimension; the B sequences share the rayon pool): model memory S, peak
//! memory growth per batch (its slope is m), B* for a 2 GB cap, and tokens per second against B.

use anyhow::Result;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::roofline_common::{self as rc, bert_forward_live_bytes, llama_forward_live_bytes};
use crate::aecl::common::{claim_seed, median, passages_from, Loaded, Net};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Memory cap M, bytes (2 GB).
const CAP_BYTES: f64 = 2e9;
/// Supported: largest feasible B within this of (M − S)/m ...
const B_TOL: f64 = 0.10;
/// ... and throughput at B* within this of the best.
const THROUGHPUT_TOL: f64 = 0.05;
/// Refuted: the best batch is below B*/2 and beats the largest batch by more than this.
const REFUTE_MARGIN: f64 = 0.10;

/// One forward pass of each sequence, concurrently.
fn batch_forward(m: &Loaded, seqs: &[Vec<u32>]) -> Result<()> {
    let none = claimlab_runtime::Hooks::none();
    seqs.par_iter().try_for_each(|t| -> Result<()> {
        match &m.net {
            Net::Llama(l) => {
                std::hint::black_box(l.forward(t, &none)?);
            }
            Net::Bert(b) => {
                std::hint::black_box(b.forward(t, &none)?);
            }
        }
        Ok(())
    })
}

/// One model's measurements.
struct Sweep {
    name: &'static str,
    model_bytes: f64,
    /// Counted peak bytes of one sequence's forward (`roofline_common::*_live_bytes`).
    per_sample: f64,
    /// (B, resident growth bytes, median tokens per second, runs)
    points: Vec<(usize, f64, f64, usize)>,
}

fn sweep(
    m: &Loaded,
    texts: &[Vec<u32>],
    batches: &[usize],
    reps: usize,
    model_bytes: f64,
    per_sample: f64,
) -> Result<Sweep> {
    let mut points = Vec::new();
    for &b in batches {
        let seqs = &texts[..b];
        let tokens = seqs.iter().map(Vec::len).sum::<usize>() as f64;
        let mut rates = Vec::with_capacity(reps);
        let t0 = Instant::now();
        let (r, rss) = rc::peak_rss_delta(|| batch_forward(m, seqs));
        r?;
        rates.push(tokens / t0.elapsed().as_secs_f64());
        for t in rc::times(reps.saturating_sub(1), || batch_forward(m, seqs))? {
            rates.push(tokens / t);
        }
        points.push((
            b,
            rss.map_or(f64::NAN, |v| v as f64),
            median(&rates),
            rates.len(),
        ));
    }
    Ok(Sweep {
        name: m.name,
        model_bytes,
        per_sample,
        points,
    })
}

/// Verdict of one sweep from `(B, tokens per second)`, model memory S and per-sample memory m:
/// (verdict, B* = (M − S)/m, largest integer B with S + B·m ≤ M, best B, throughput of the
/// largest measured batch over the best).
pub(crate) fn judge(
    points: &[(usize, f64)],
    model_bytes: f64,
    per_sample: f64,
) -> (Verdict, f64, f64, usize, f64) {
    let b_star = (CAP_BYTES - model_bytes) / per_sample;
    let feasible = b_star.floor();
    let (best_b, best_t) =
        points.iter().copied().fold(
            (0, f64::NEG_INFINITY),
            |acc, x| if x.1 > acc.1 { x } else { acc },
        );
    let (last_b, last_t) = *points.last().unwrap_or(&(0, 0.0));
    let ratio = last_t / best_t;
    let reached = last_b as f64 >= feasible;
    let verdict = if (best_b as f64) < b_star / 2.0 && ratio < 1.0 - REFUTE_MARGIN {
        Verdict::Refuted
    } else if reached && (feasible / b_star - 1.0).abs() <= B_TOL && ratio >= 1.0 - THROUGHPUT_TOL {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    (verdict, b_star, feasible, best_b, ratio)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, "pipe-thm6");
    let quick = ctx.opts.quick;
    let seq = if quick { 32 } else { 256 };
    let (smol_batches, mini_batches, reps): (&[usize], &[usize], usize) = if quick {
        (&[1, 2], &[1, 2, 4], 1)
    } else {
        (&[1, 2, 4], &[1, 2, 4, 8], 2)
    };
    let mut sweeps = Vec::new();
    let bar = ctx.bar(2, "pipe-thm6: batch sweeps");
    for enc in [false, true] {
        let m = if enc {
            rc::load_minilm(ctx)?
        } else {
            rc::load_smol(ctx)?
        };
        let batches = if enc { mini_batches } else { smol_batches };
        let maxb = *batches.last().unwrap_or(&1);
        let texts = passages_from(ctx, &m, seq, maxb, seed, false)?;
        let (params, per_sample) = match &m.net {
            Net::Llama(l) => (l.n_params(), llama_forward_live_bytes(l.config(), seq)),
            Net::Bert(b) => (b.n_params(), bert_forward_live_bytes(b.config(), seq)),
        };
        sweeps.push(sweep(
            &m,
            &texts,
            batches,
            reps,
            4.0 * params as f64,
            per_sample,
        )?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut body = format!(
        "Sequence length {seq}; a batch of B is B Brown passages run through the runtime's `forward` concurrently; \
         tokens per second the median of {reps} run(s) (this machine, 2 cores shared with other jobs). Model memory S = the \
         runtime's f32 weights; memory per sample m = the f32 buffers one sequence's forward keeps alive at its peak, counted \
         from the runtime's code (every position's logits dominate SmolLM2's). The growth of this process's peak resident set \
         (`VmHWM` after `clear_refs`, first run) is a cross-check only: the allocator reuses memory freed earlier in the \
         process, so it is a lower bound. Cap M = {:.0} GB.\n\n\
         | model | B | resident growth (MB, cross-check) | counted B·m (MB) | tokens/s |\n|---|---|---|---|---|\n",
        CAP_BYTES / 1e9
    );
    let mut results = Vec::new();
    let mut verdicts = Vec::new();
    let mut series = Vec::new();
    for s in &sweeps {
        for &(b, p, t, _) in &s.points {
            let _ = writeln!(
                body,
                "| {} | {b} | {:.1} | {:.1} | {t:.1} |",
                s.name,
                p / 1e6,
                b as f64 * s.per_sample / 1e6
            );
        }
        let pts: Vec<(usize, f64)> = s.points.iter().map(|&(b, _, t, _)| (b, t)).collect();
        let (v, b_star, feasible, best_b, ratio) = judge(&pts, s.model_bytes, s.per_sample);
        let slope = s.per_sample;
        verdicts.push(v);
        results.push(json!({"model": s.name, "model_bytes": s.model_bytes, "per_sample_bytes": slope, "b_star": b_star,
            "largest_feasible": feasible, "best_batch": best_b, "largest_over_best_throughput": ratio, "verdict": v,
            "points": s.points.iter().map(|&(b, p, t, n)| json!({"batch": b, "peak_growth": p, "tokens_per_s": t, "runs": n})).collect::<Vec<_>>()}));
        let _ = writeln!(
            body,
            "\n**{}**: S = {:.1} MB, m = {:.2} MB per sequence, B* = (M − S)/m = {b_star:.1}; largest whole B under the cap \
             {feasible:.0}; throughput peaks at B = {best_b}, the largest batch run reaches \
             {:.1}% of the best. Batches near B* were not run (time budget), so the throughput at B* is not measured.\n",
            s.name,
            s.model_bytes / 1e6,
            slope / 1e6,
            100.0 * ratio
        );
        series.push(Series::line(
            format!("{} tokens/s", s.name),
            s.points.iter().map(|&(b, _, t, _)| (b as f64, t)).collect(),
        ));
    }
    let verdict = if verdicts.contains(&Verdict::Refuted) {
        Verdict::Refuted
    } else if verdicts.iter().all(|v| *v == Verdict::Supported) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let smol = &results[0];
    let mini = &results[1];
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let mut o = Outcome::new(
        "pipe-thm6",
        verdict,
        format!(
            "B* = {:.0} (SmolLM2), {:.0} (MiniLM); throughput best at B = {} and {}",
            f(smol, "b_star"),
            f(mini, "b_star"),
            smol["best_batch"],
            mini["best_batch"]
        ),
        "B* = (M − S)/m",
        format!(
            "seq {seq}, M = 2 GB: SmolLM2 m = {:.1} MB, B* = {:.1}, largest batch run {:.0}% of best throughput; MiniLM m = {:.2} MB, B* = {:.0}, {:.0}%; \
             refute if the best batch < B*/2 beats the largest by > {:.0}%, support needs B* reached",
            f(smol, "per_sample_bytes") / 1e6,
            f(smol, "b_star"),
            100.0 * f(smol, "largest_over_best_throughput"),
            f(mini, "per_sample_bytes") / 1e6,
            f(mini, "b_star"),
            100.0 * f(mini, "largest_over_best_throughput"),
            100.0 * REFUTE_MARGIN
        ),
    );
    let chart = Chart {
        title: format!("Throughput against batch (sequence {seq})"),
        x_label: "batch B (sequences)".into(),
        y_label: "tokens per second".into(),
        log_x: true,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "pipe-thm6_throughput",
        "Tokens per second of the runtime against the number of concurrent sequences",
    )?);
    o.body = body;
    o.numbers =
        json!({"models": results, "seq": seq, "reps": reps, "cap": CAP_BYTES, "seed": seed});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_throughput_refutes_and_reached_optimum_supports() {
        // 100 MB per sample on a 1 GB model: B* = 10. Throughput flat from B = 1, falling 20% by B = 8.
        let pts = [(1, 100.0), (2, 100.0), (4, 90.0), (8, 80.0)];
        let (v, b_star, feasible, best, _) = judge(&pts, 1e9, 1e8);
        assert!((b_star - 10.0).abs() < 1e-9 && (feasible - 10.0).abs() < 1e-9);
        assert_eq!((v, best), (Verdict::Refuted, 1));
        // Throughput rising up to B = 16 beyond B*: supported.
        let pts = [(1, 10.0), (4, 40.0), (16, 100.0)];
        assert_eq!(judge(&pts, 1e9, 1e8).0, Verdict::Supported);
        // Flat throughput, B* not reached: inconclusive.
        let pts = [(1, 100.0), (2, 99.0)];
        assert_eq!(judge(&pts, 1e9, 1e8).0, Verdict::Inconclusive);
    }
}
