//! `aecl-1.lowrank`: "attention matrices are intrinsically low-rank". Per head and length, the
//! smallest rank keeping 90% and 99% of the Frobenius energy, its growth with the sequence length,
//! and the rank each head's fitted γ predicts. The in-forward rank-r replacement of the attention
//! matrices needs a runtime hook that does not exist yet (see the report body).

use anyhow::Result;
use claimlab_spectral::components_for_energy;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_1::fit;
use super::common::{figure, head_spectra, median, passages, start};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-1.lowrank";
/// Support: the 90% rank grows with a log-log slope below this ...
const SUPPORT_SLOPE: f64 = 0.8;
/// Refuted at or above this slope (rank scales with length).
const REFUTE_SLOPE: f64 = 0.9;

/// Rank keeping `share` of the energy of the model spectrum `k^-γ`, `k = 1..n`.
pub(crate) fn predicted_rank(gamma: f64, n: usize, share: f64) -> usize {
    let e: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-2.0 * gamma)).collect();
    let total: f64 = e.iter().sum();
    let mut acc = 0.0;
    for (i, x) in e.iter().enumerate() {
        acc += x;
        if acc >= share * total {
            return i + 1;
        }
    }
    n
}

/// Least-squares slope of `ln y` on `ln x`.
pub(crate) fn loglog_slope(pts: &[(f64, f64)]) -> f64 {
    let xs: Vec<f64> = pts.iter().map(|p| p.0.ln()).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p.1.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let plan: Vec<(usize, usize)> = if ctx.opts.quick {
        vec![(64, 1), (128, 1), (256, 1)]
    } else {
        vec![(64, 4), (128, 4), (256, 4), (512, 2)]
    };
    let mut body = format!(
        "Energy = Σσ². Per head (and passage) the smallest rank keeping 90% / 99%; medians over heads × passages; \
         the prediction uses each head's γ (ranks 2..n/4) in σ_k = k^-γ. Seed {seed}.\n\n\
         | model | n | median rank 90% | rank 90% / n | median rank 99% | predicted rank 90% (from γ) |\n|---|---|---|---|---|---|\n"
    );
    let mut series = Vec::new();
    let mut judged = Vec::new();
    let mut numbers = Vec::new();
    for m in &models {
        let mut pts = Vec::new();
        let mut last_ratio = f64::NAN;
        for &(n, count) in &plan {
            let ps = passages(ctx, m, n, count, seed)?;
            let (mut r90, mut r99, mut pred) = (Vec::new(), Vec::new(), Vec::new());
            for p in &ps {
                for a in m.attention(p)? {
                    for sv in head_spectra(&a, m.n_heads, n)? {
                        r90.push(components_for_energy(&sv, 0.9)? as f64);
                        r99.push(components_for_energy(&sv, 0.99)? as f64);
                        if let Some((g, _)) = fit(&sv, 2, n / 4) {
                            pred.push(predicted_rank(g, n, 0.9) as f64);
                        }
                    }
                }
            }
            let (m90, m99, mp) = (median(&r90), median(&r99), median(&pred));
            let _ = writeln!(
                body,
                "| {} | {n} | {m90:.1} | {:.3} | {m99:.1} | {mp:.1} |",
                m.name,
                m90 / n as f64
            );
            numbers.push(
                json!({"model": m.name, "n": n, "median_rank_90": m90, "median_rank_99": m99,
                "predicted_rank_90": mp, "heads_x_passages": r90.len()}),
            );
            pts.push((n as f64, m90.max(1.0)));
            last_ratio = m90 / n as f64;
        }
        let slope = loglog_slope(&pts);
        let _ = writeln!(body, "| {} | slope | {slope:.3} | | | |", m.name);
        series.push(Series::line(
            format!("{} median 90% rank", m.name),
            pts.clone(),
        ));
        judged.push((m.name, slope, last_ratio));
    }
    let max_n = plan.last().map_or(0, |p| p.0);
    series.push(Series::reference(
        "rank = n/4",
        plan.iter()
            .map(|p| (p.0 as f64, p.0 as f64 / 4.0))
            .collect(),
    ));
    let refuted = judged.iter().any(|j| j.1 >= REFUTE_SLOPE);
    let rank_part_ok = judged.iter().all(|j| j.1 < SUPPORT_SLOPE && j.2 <= 0.25);
    let verdict = if refuted {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let _ = writeln!(
        body,
        "\nNot measured: the perplexity with every head's attention replaced by its rank-r approximation inside \
         the forward pass. The runtime's hooks capture attention probabilities and substitute weights, but cannot \
         substitute the attention matrix itself. Without that half the rule cannot be met, so the verdict is \
         refuted (rank part) or inconclusive, never supported. Rank part {}.",
        if rank_part_ok { "meets the support condition" } else { "does not meet the support condition" }
    );
    let mut o = Outcome::new(
        ID,
        verdict,
        judged
            .iter()
            .map(|j| format!("90% rank grows as n^{:.2} ({}), {:.2}·n at n = {max_n}", j.1, j.0, j.2))
            .collect::<Vec<_>>()
            .join("; "),
        "bounded error under aggressive rank reduction",
        format!(
            "{}; rule: refuted if the slope ≥ {REFUTE_SLOPE}, support needs slope < {SUPPORT_SLOPE}, rank ≤ n/4 and a \
             perplexity test that the runtime cannot run yet; seed {seed}",
            judged
                .iter()
                .map(|j| format!("{} log-log slope {:.2}, median 90% rank / n = {:.2} at n = {max_n}", j.0, j.1, j.2))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    );
    o.figures.push(figure(
        &figdir,
        ("aecl-1.lowrank_rank", "Median rank keeping 90% of the attention energy per head against sequence length, log-log, with n/4"),
        "Rank for 90% of the attention energy against length",
        ("sequence length n", "median rank (90% energy)"),
        (true, true),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "lengths": numbers,
        "slopes": judged.iter().map(|j| json!({"model": j.0, "slope": j.1, "ratio_at_max_n": j.2})).collect::<Vec<_>>()});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicted_rank_and_slope() {
        // Flat spectrum: 90% needs 90% of the ranks.
        assert_eq!(predicted_rank(0.0, 100, 0.9), 90);
        // Steep decay: one component.
        assert_eq!(predicted_rank(5.0, 100, 0.9), 1);
        let pts = [(2.0, 8.0), (4.0, 32.0), (8.0, 128.0)];
        assert!((loglog_slope(&pts) - 2.0).abs() < 1e-12);
    }
}
