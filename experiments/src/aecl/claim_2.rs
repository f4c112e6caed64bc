//! `aecl-2`: the "information funnel": deeper layers have lower effective rank. Entropy effective
//! rank per head of the attention matrices, per layer of the residual stream (tokens × hidden) and
//! per weight matrix; Spearman ρ with the layer index and a seeded permutation p-value.

use anyhow::{Context as _, Result};
use claimlab_runtime::Capture;
use claimlab_spectral::{entropy_effective_rank, faer::MatRef, singular_values_f32};
use claimlab_weights::{Param, Role};
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;

use super::common::{figure, head_spectra, passages, spearman_test, start, Loaded};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-2";
/// Support: ρ at most this over heads, in both models.
const SUPPORT_RHO: f64 = -0.3;
/// Significance level of the rule.
const ALPHA: f64 = 0.01;
/// Permutations of the Spearman test.
const PERMS: usize = 9_999;

/// Verdict from the attention (ρ, p) of both models and the residual (ρ, p) of both.
fn verdict_of(att: &[(f64, f64)], res: &[(f64, f64)]) -> Verdict {
    let res_rises = res.iter().any(|&(r, p)| r > 0.0 && p < ALPHA);
    if att.iter().any(|&(r, _)| r >= 0.0 || r.is_nan()) || res_rises {
        Verdict::Refuted
    } else if att.iter().all(|&(r, p)| r <= SUPPORT_RHO && p < ALPHA) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// Effective ranks of one model.
pub(crate) struct ModelResult {
    /// Mean effective rank over passages, per head (layer-major).
    pub head_erank: Vec<f64>,
    /// Residual stream effective rank per block output.
    pub res_erank: Vec<f64>,
    /// Tokens stacked for the residual stream.
    pub tokens: usize,
}

/// Attention and residual-stream effective ranks of `m` on `count` passages of `n` tokens.
pub(crate) fn measure(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
) -> Result<ModelResult> {
    let ps = passages(ctx, m, n, count, seed)?;
    let heads = m.n_layers * m.n_heads;
    let mut sum = vec![0.0; heads];
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); m.n_layers];
    let bar = ctx.bar(ps.len() as u64, &format!("{ID}: {} passages", m.name));
    for p in &ps {
        let caps = m.capture(
            p,
            Capture {
                attention: true,
                residual: true,
                ..Capture::default()
            },
        )?;
        for (l, lc) in caps.layers.iter().enumerate() {
            let a = lc.attention.as_ref().context("attention not captured")?;
            for (h, sv) in head_spectra(a, m.n_heads, n)?.iter().enumerate() {
                sum[l * m.n_heads + h] += entropy_effective_rank(sv)?;
            }
            rows[l].extend_from_slice(lc.residual.as_ref().context("residual not captured")?);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let tokens = ps.len() * n;
    let res_erank = rows
        .par_iter()
        .map(|r| {
            let d = r.len() / tokens;
            let sv = singular_values_f32(MatRef::from_row_major_slice(r, tokens, d))?;
            Ok(entropy_effective_rank(&sv)?)
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(ModelResult {
        head_erank: sum.iter().map(|s| s / ps.len() as f64).collect(),
        res_erank,
        tokens,
    })
}

/// Effective rank of every weight matrix with `role`, per layer.
fn weight_eranks(ctx: &mut Ctx, causal: bool, role: Role) -> Result<Vec<(usize, f64)>> {
    let model = if causal {
        ctx.decoder()?
    } else {
        ctx.encoder()?
    };
    let ts: Vec<_> = model
        .tensors()
        .iter()
        .filter(|t| t.role == role && t.param == Param::Weight && t.shape.len() == 2)
        .filter_map(|t| t.layer.map(|l| (l, t.clone())))
        .collect();
    ts.par_iter()
        .map(|(l, t)| {
            let w = model.tensor_f32(&t.name)?;
            let sv = singular_values_f32(MatRef::from_row_major_slice(&w, t.shape[0], t.shape[1]))?;
            Ok((*l, entropy_effective_rank(&sv)?))
        })
        .collect()
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let (n, count) = if ctx.opts.quick { (128, 2) } else { (256, 8) };
    let mut body = format!(
        "Entropy effective rank exp(H(σ/Σσ)). Attention: per head, mean over {count} Brown passages of {n} \
         tokens; residual stream: the block outputs stacked over the same passages ({} tokens × hidden); \
         Spearman ρ with the layer index, two-sided permutation p-value ({PERMS} seeded permutations). \
         Seed {seed}.\n\n| model | quantity | points | ρ | p | first layer | last layer |\n|---|---|---|---|---|---|---|\n",
        count * n
    );
    let mut att_tests = Vec::new();
    let mut res_tests = Vec::new();
    let mut numbers = Vec::new();
    let mut series = Vec::new();
    let roles = [
        Role::Query,
        Role::Key,
        Role::Value,
        Role::AttnOutput,
        Role::MlpUp,
        Role::MlpGate,
        Role::MlpDown,
    ];
    for (mi, m) in models.iter().enumerate() {
        let r = measure(ctx, m, n, count, seed)?;
        let layer_of: Vec<f64> = (0..r.head_erank.len())
            .map(|i| (i / m.n_heads) as f64)
            .collect();
        let (rho, p) = spearman_test(&layer_of, &r.head_erank, PERMS, seed ^ mi as u64);
        let layer_mean: Vec<f64> = r
            .head_erank
            .chunks(m.n_heads)
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        let _ = writeln!(
            body,
            "| {} | attention heads (mean per layer) | {} | {rho:.3} | {p:.4} | {:.1} | {:.1} |",
            m.name,
            r.head_erank.len(),
            layer_mean[0],
            layer_mean[layer_mean.len() - 1]
        );
        att_tests.push((rho, p));
        let lidx: Vec<f64> = (0..r.res_erank.len()).map(|i| i as f64).collect();
        let (rr, rp) = spearman_test(&lidx, &r.res_erank, PERMS, seed ^ 0x100 ^ mi as u64);
        let _ = writeln!(
            body,
            "| {} | residual stream ({} tokens) | {} | {rr:.3} | {rp:.4} | {:.1} | {:.1} |",
            m.name,
            r.tokens,
            r.res_erank.len(),
            r.res_erank[0],
            r.res_erank[r.res_erank.len() - 1]
        );
        res_tests.push((rr, rp));
        let mut wnum = Vec::new();
        for role in roles {
            let mut w = weight_eranks(ctx, m.causal(), role)?;
            if w.is_empty() {
                continue;
            }
            w.sort_by_key(|x| x.0);
            let (x, y): (Vec<f64>, Vec<f64>) = w.iter().map(|&(l, e)| (l as f64, e)).unzip();
            let (wr, wp) = spearman_test(&x, &y, PERMS, seed ^ 0x200 ^ mi as u64);
            let _ = writeln!(
                body,
                "| {} | weights {role:?} | {} | {wr:.3} | {wp:.4} | {:.1} | {:.1} |",
                m.name,
                y.len(),
                y[0],
                y[y.len() - 1]
            );
            wnum.push(json!({"role": format!("{role:?}"), "rho": wr, "p": wp, "erank": y}));
        }
        let depth = |i: usize, len: usize| i as f64 / (len.max(2) - 1) as f64;
        let norm0 = layer_mean[0];
        series.push(Series::line(
            format!("{} attention (mean over heads)", m.name),
            layer_mean
                .iter()
                .enumerate()
                .map(|(i, &v)| (depth(i, layer_mean.len()), v / norm0))
                .collect(),
        ));
        let r0 = r.res_erank[0];
        series.push(Series::line(
            format!("{} residual stream", m.name),
            r.res_erank
                .iter()
                .enumerate()
                .map(|(i, &v)| (depth(i, r.res_erank.len()), v / r0))
                .collect(),
        ));
        numbers.push(
            json!({"model": m.name, "attention_rho": rho, "attention_p": p,
            "head_erank": r.head_erank, "layer_mean_erank": layer_mean,
            "residual_rho": rr, "residual_p": rp, "residual_erank": r.res_erank,
            "residual_tokens": r.tokens, "weights": wnum}),
        );
    }
    let verdict = verdict_of(&att_tests, &res_tests);
    let names: Vec<&str> = models.iter().map(|m| m.name).collect();
    let why = format!(
        "attention effective rank vs depth: {}; residual stream: {}; rule: supported if ρ ≤ {SUPPORT_RHO} with \
         p < {ALPHA} in both, refuted if a ρ ≥ 0 or the residual rank rises with p < {ALPHA}; {count} × {n} tokens, seed {seed}",
        names
            .iter()
            .zip(&att_tests)
            .map(|(n, (r, p))| format!("{n} ρ = {r:.2} (p = {p:.4})"))
            .collect::<Vec<_>>()
            .join(", "),
        names
            .iter()
            .zip(&res_tests)
            .map(|(n, (r, p))| format!("{n} ρ = {r:.2} (p = {p:.4})"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let measured = names
        .iter()
        .zip(&att_tests)
        .map(|(n, (r, _))| format!("attention ρ = {r:.2} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut o = Outcome::new(
        ID,
        verdict,
        measured,
        "effective rank decreasing with depth (ρ < 0)",
        why,
    );
    o.figures.push(figure(
        &figdir,
        ("aecl-2_funnel", "Effective rank of attention (mean over heads) and of the residual stream per layer, relative to layer 0"),
        "Effective rank against depth",
        ("relative depth (layer / last layer)", "effective rank / first layer's"),
        (false, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "n": n, "passages": count, "models": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_rule() {
        assert_eq!(
            verdict_of(&[(-0.5, 0.001), (-0.4, 0.005)], &[(-0.1, 0.5)]),
            Verdict::Supported
        );
        assert_eq!(
            verdict_of(&[(-0.5, 0.001), (0.1, 0.5)], &[(-0.1, 0.5)]),
            Verdict::Refuted
        );
        assert_eq!(
            verdict_of(&[(-0.5, 0.001), (-0.4, 0.005)], &[(0.8, 0.001)]),
            Verdict::Refuted
        );
        assert_eq!(
            verdict_of(&[(-0.5, 0.001), (-0.2, 0.005)], &[(0.1, 0.5)]),
            Verdict::Inconclusive
        );
    }
}
