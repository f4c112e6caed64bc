//! `pipe-fisher`: "layer sensitivity is approximately the Fisher trace, S_l ≈ tr(F_l)". For every
//! SmolLM2 block: the Fisher trace (Hutchinson with central differences, as the runtime's
//! `fisher_trace`, for labels sampled from the model and for the text's next tokens), the measured loss
//! increase under a random perturbation of relative norm 10⁻² and under 4-bit (Q4_0) quantisation of
//! that block alone (not Q4_1: the file stores SmolLM2 in Q4_1, so re-quantising to Q4_1 changes nothing), and their Spearman rank correlations. The ± perturbed passes of each direction
//! give both the traces (from the difference) and the loss increase (from the mean), so each block
//! costs 2K + 1 forward passes.

use anyhow::Result;
use claimlab_runtime::{Hooks, LlamaModel, Overrides};
use claimlab_weights::DType;
use rand::{Rng, RngExt};
use serde_json::json;
use std::fmt::Write as _;

use super::roofline_common as rc;
use crate::aecl::common::{claim_seed, median, passages_from, rng, spearman_test};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Relative norm of the random perturbation, ‖δ‖ / ‖θ_l‖.
const REL_NORM: f64 = 1e-2;
/// Supported: Spearman ρ at least this ...
const SUPPORT_RHO: f64 = 0.7;
/// ... with a permutation p-value below this, for both perturbation kinds.
const SUPPORT_P: f64 = 0.01;
/// Refuted: ρ below this for either kind.
const REFUTE_RHO: f64 = 0.3;
/// Permutations of the Spearman test.
const PERMS: usize = 9999;

/// log p(y) of one row of logits, in f64 (log-sum-exp).
pub(crate) fn log_prob(row: &[f32], y: u32) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let lse = row
        .iter()
        .map(|&v| (f64::from(v) - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    f64::from(row[y as usize]) - lse
}

/// Inverse-CDF sample from softmax(row).
fn sample(row: &[f32], r: &mut impl Rng) -> u32 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let w: Vec<f64> = row.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let u = r.random::<f64>() * w.iter().sum::<f64>();
    let mut acc = 0.0;
    for (i, &p) in w.iter().enumerate() {
        acc += p;
        if u < acc {
            return i as u32;
        }
    }
    (w.len() - 1) as u32
}

/// Per position t < n − 1: (log p(text token t + 1), log p(sampled label t)).
fn log_probs(
    m: &LlamaModel,
    toks: &[u32],
    sampled: &[u32],
    ov: &Overrides,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let out = m.forward(toks, &Hooks::with_overrides(ov.clone()))?;
    let n = toks.len() - 1;
    Ok((
        (0..n).map(|t| log_prob(out.row(t), toks[t + 1])).collect(),
        (0..n).map(|t| log_prob(out.row(t), sampled[t])).collect(),
    ))
}

/// Hutchinson sample `mean_t ((lp₊ − lp₋)/(2ε))²`.
pub(crate) fn hutchinson_sample(plus: &[f64], minus: &[f64], eps: f64) -> f64 {
    plus.iter()
        .zip(minus)
        .map(|(a, b)| ((a - b) / (2.0 * eps)).powi(2))
        .sum::<f64>()
        / plus.len() as f64
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// One block's measurements.
#[derive(serde::Serialize)]
struct Block {
    layer: usize,
    n_params: usize,
    trace_sampled: f64,
    trace_text: f64,
    dloss_random: f64,
    dloss_quant: f64,
    /// ΔL_random / (ε²·tr F / 2d), ε = ‖δ‖.
    ratio_sampled: f64,
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, "pipe-fisher");
    let quick = ctx.opts.quick;
    let (n_tok, dirs, stride) = if quick { (32, 1, 5) } else { (64, 2, 1) };
    let smol = rc::load_smol(ctx)?;
    let toks = passages_from(ctx, &smol, n_tok, 1, seed, false)?.remove(0);
    let model = rc::llama(&smol)?;
    let none = Overrides::new();
    let base = model.forward(&toks, &Hooks::none())?;
    let mut r = rng(seed);
    let sampled: Vec<u32> = (0..n_tok).map(|t| sample(base.row(t), &mut r)).collect();
    let (base_text, _) = log_probs(model, &toks, &sampled, &none)?;
    let base_loss = -mean(&base_text);
    let layers: Vec<usize> = (0..model.config().n_layers).step_by(stride).collect();
    let bar = ctx.bar(layers.len() as u64, "pipe-fisher: blocks");
    let mut blocks = Vec::new();
    for &l in &layers {
        let prefix = format!("blk.{l}.");
        let names: Vec<String> = model
            .param_names()
            .filter(|n| n.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        let params: Vec<&[f32]> = names
            .iter()
            .filter_map(|n| model.param(n).map(|(_, d)| d))
            .collect();
        let n_params: usize = params.iter().map(|p| p.len()).sum();
        let norm = params
            .iter()
            .flat_map(|p| p.iter())
            .map(|&x| f64::from(x).powi(2))
            .sum::<f64>()
            .sqrt();
        // Rademacher direction scaled so that ‖δ‖ = REL_NORM·‖θ_l‖: each entry ±ε.
        let eps = REL_NORM * norm / (n_params as f64).sqrt();
        let (mut a_s, mut a_t, mut dl) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..dirs {
            let mut dr =
                rng(seed ^ (((l as u64) << 20) | k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (mut plus, mut minus) = (Overrides::new(), Overrides::new());
            for (n, p) in names.iter().zip(&params) {
                let signs: Vec<bool> = (0..p.len()).map(|_| dr.random::<bool>()).collect();
                plus.insert(
                    n.clone(),
                    p.iter()
                        .zip(&signs)
                        .map(|(&x, &s)| (f64::from(x) + if s { eps } else { -eps }) as f32)
                        .collect(),
                );
                minus.insert(
                    n.clone(),
                    p.iter()
                        .zip(&signs)
                        .map(|(&x, &s)| (f64::from(x) - if s { eps } else { -eps }) as f32)
                        .collect(),
                );
            }
            let (pt, ps) = log_probs(model, &toks, &sampled, &plus)?;
            let (mt, ms) = log_probs(model, &toks, &sampled, &minus)?;
            a_s.push(hutchinson_sample(&ps, &ms, eps));
            a_t.push(hutchinson_sample(&pt, &mt, eps));
            dl.push((-mean(&pt) - mean(&mt)) / 2.0 - base_loss);
        }
        let mut q = Overrides::new();
        for n in &names {
            if let Some((shape, d)) = model.param(n) {
                if shape.len() == 2 {
                    let bytes = claimlab_weights::quantize(DType::Q4_0, d)?;
                    q.insert(
                        n.clone(),
                        claimlab_weights::dequantize(DType::Q4_0, &bytes, d.len())?,
                    );
                }
            }
        }
        let (qt, _) = log_probs(model, &toks, &sampled, &q)?;
        let trace_sampled = mean(&a_s);
        let dloss_random = mean(&dl);
        let e2 = (REL_NORM * norm).powi(2);
        blocks.push(Block {
            layer: l,
            n_params,
            trace_sampled,
            trace_text: mean(&a_t),
            dloss_random,
            dloss_quant: -mean(&qt) - base_loss,
            ratio_sampled: dloss_random / (e2 * trace_sampled / (2.0 * n_params as f64)),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let col = |f: fn(&Block) -> f64| blocks.iter().map(f).collect::<Vec<f64>>();
    let (ts, tt, dr, dq) = (
        col(|b| b.trace_sampled),
        col(|b| b.trace_text),
        col(|b| b.dloss_random),
        col(|b| b.dloss_quant),
    );
    let (rho_r, p_r) = spearman_test(&ts, &dr, PERMS, seed ^ 1);
    let (rho_q, p_q) = spearman_test(&ts, &dq, PERMS, seed ^ 2);
    let (rho_tr, p_tr) = spearman_test(&tt, &dr, PERMS, seed ^ 3);
    let (rho_tq, p_tq) = spearman_test(&tt, &dq, PERMS, seed ^ 4);
    let ok = |rho: f64, p: f64| rho >= SUPPORT_RHO && p < SUPPORT_P;
    let verdict = if !(rho_r >= REFUTE_RHO && rho_q >= REFUTE_RHO) {
        Verdict::Refuted
    } else if ok(rho_r, p_r) && ok(rho_q, p_q) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let ratios = col(|b| b.ratio_sampled);
    let mut body = format!(
        "SmolLM2, {n_tok} Brown calibration tokens (the contract's 2,048 does not fit the time budget: each block costs \
         {} forward passes), {} block(s) (every {stride}th), {dirs} Rademacher direction(s) per block, perturbation \
         ‖δ‖ = {REL_NORM}·‖θ_l‖ used both for the central difference and as the random perturbation; seed {seed}. \
         Fisher traces in nats² per token; loss in nats per token (base {base_loss:.4}).\n\n\
         | block | params | tr F (sampled labels) | tr F (text labels) | ΔL random | ΔL Q4_0 | ΔL / (ε² tr F / 2d) |\n|---|---|---|---|---|---|---|\n",
        2 * dirs + 1,
        layers.len()
    );
    for b in &blocks {
        let _ = writeln!(
            body,
            "| {} | {} | {:.4e} | {:.4e} | {:.3e} | {:.3e} | {:.2} |",
            b.layer,
            b.n_params,
            b.trace_sampled,
            b.trace_text,
            b.dloss_random,
            b.dloss_quant,
            b.ratio_sampled
        );
    }
    let _ = writeln!(
        body,
        "\n| Fisher labels | ρ with ΔL random (p) | ρ with ΔL Q4_0 (p) |\n|---|---|---|\n\
         | sampled from the model (the verdict's) | {rho_r:.3} ({p_r:.4}) | {rho_q:.3} ({p_q:.4}) |\n\
         | text next tokens (empirical Fisher) | {rho_tr:.3} ({p_tr:.4}) | {rho_tq:.3} ({p_tq:.4}) |\n\n\
         Median ΔL / (ε² tr F / 2d) = {:.2}: the trace predicts the size of a random perturbation's effect up to this factor \
         (second order; the first-order term cancels in the ± mean). p-values from {PERMS} seeded permutations.",
        median(&ratios)
    );
    let mut o = Outcome::new(
        "pipe-fisher",
        verdict,
        format!("Spearman ρ(tr F, ΔL): random {rho_r:.2} (p {p_r:.3}), Q4_0 {rho_q:.2} (p {p_q:.3})"),
        "S_l ≈ tr(F_l)",
        format!(
            "{} blocks, {n_tok} tokens, {dirs} direction(s): ρ = {rho_r:.2} with the random-perturbation loss and {rho_q:.2} with Q4_0 \
             (support ρ ≥ {SUPPORT_RHO} and p < {SUPPORT_P} for both, refute ρ < {REFUTE_RHO}); empirical Fisher {rho_tr:.2} / {rho_tq:.2}; seed {seed}",
            blocks.len()
        ),
    );
    let chart = Chart {
        title: "SmolLM2 blocks: Fisher trace against measured loss increase".into(),
        x_label: "tr F_l (sampled labels)".into(),
        y_label: "loss increase (nats/token)".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::points(
                "random perturbation ‖δ‖ = 1e-2‖θ‖",
                ts.iter()
                    .zip(&dr)
                    .map(|(&a, &b)| (a, b.abs().max(1e-9)))
                    .collect(),
            ),
            Series::points(
                "Q4_0 of the block",
                ts.iter()
                    .zip(&dq)
                    .map(|(&a, &b)| (a, b.abs().max(1e-9)))
                    .collect(),
            ),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "pipe-fisher_scatter",
        "Per-block Fisher trace against the loss increase (absolute value, log axes) of two perturbations",
    )?);
    o.body = body;
    o.numbers = json!({"blocks": blocks, "tokens": n_tok, "directions": dirs, "rel_norm": REL_NORM, "base_loss": base_loss,
        "spearman": {"sampled_random": [rho_r, p_r], "sampled_q4_0": [rho_q, p_q], "text_random": [rho_tr, p_tr], "text_q4_0": [rho_tq, p_tq]},
        "seed": seed});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_runtime::fisher_trace;

    #[test]
    fn log_prob_is_a_log_softmax() {
        let row = [1.0f32, 2.0, 3.0];
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        assert!((log_prob(&row, 2) - (3.0 - z.ln())).abs() < 1e-12);
        assert!(
            (hutchinson_sample(&[1.0, 3.0], &[0.0, 1.0], 0.5) - (1.0 + 4.0) / 2.0).abs() < 1e-12
        );
    }

    #[test]
    fn hutchinson_matches_the_runtimes_estimator_on_a_tiny_model() {
        // Same estimator, same labels (the runtime's sampled ones), many directions: the traces of
        // block 0 agree within their standard errors.
        let m = rc::tests::tiny_model(11);
        let toks: Vec<u32> = (0..12).map(|i| (i * 5 + 1) % 37).collect();
        let cfg = claimlab_runtime::FisherConfig {
            n_directions: 64,
            rel_step: 1e-3,
            seed: 7,
        };
        let ft = fisher_trace(&m, &toks, &cfg).unwrap();
        let names: Vec<String> = m
            .param_names()
            .filter(|n| n.starts_with("blk.0."))
            .map(str::to_string)
            .collect();
        let eps = ft.layers[0].step;
        let mut r = rng(99);
        let mut a = Vec::new();
        let none = Overrides::new();
        for _ in 0..64 {
            let (mut p, mut q) = (Overrides::new(), Overrides::new());
            for n in &names {
                let d = m.param(n).unwrap().1;
                let s: Vec<bool> = (0..d.len()).map(|_| r.random::<bool>()).collect();
                p.insert(
                    n.clone(),
                    d.iter()
                        .zip(&s)
                        .map(|(&x, &b)| (f64::from(x) + if b { eps } else { -eps }) as f32)
                        .collect(),
                );
                q.insert(
                    n.clone(),
                    d.iter()
                        .zip(&s)
                        .map(|(&x, &b)| (f64::from(x) - if b { eps } else { -eps }) as f32)
                        .collect(),
                );
            }
            // All positions, as the runtime (log_probs drops the last one; use the sampled labels at every t).
            let lp = |ov: &Overrides| -> Vec<f64> {
                let out = m
                    .forward(&toks, &Hooks::with_overrides(ov.clone()))
                    .unwrap();
                (0..toks.len())
                    .map(|t| log_prob(out.row(t), ft.sampled[t]))
                    .collect()
            };
            a.push(hutchinson_sample(&lp(&p), &lp(&q), eps));
        }
        let _ = log_probs(&m, &toks, &ft.sampled, &none).unwrap();
        let ours = mean(&a);
        let sd = (a.iter().map(|x| (x - ours).powi(2)).sum::<f64>() / 63.0 / 64.0).sqrt();
        let theirs = ft.layers[0].trace;
        let se = (sd.powi(2) + ft.layers[0].std_error.powi(2)).sqrt();
        assert!(
            (ours - theirs).abs() < 4.0 * se,
            "ours {ours} theirs {theirs} se {se}"
        );
    }
}
