//! `aecl-1`: attention singular values decay as `σ_k ~ k^-γ` with γ ≈ 1.12. Every head of SmolLM2
//! and MiniLM on seeded Brown passages at several lengths; γ per head by log-log least squares on
//! ranks 2..n/4 (and 1..50 as the preprint), power law against exponential on the same ranks; the
//! same fits on the singular values of each head's `W_Qᵀ W_K`.

use anyhow::Result;
use claimlab_runtime::LlamaModel;
use claimlab_spectral::{fit_rank_decay, DecayModel};
use claimlab_weights::{Param, Role};
use serde_json::json;
use std::fmt::Write as _;

use super::common::{
    bilinear_singular_values, figure, head_spectra, median, passages, quantile, start, Loaded, Net,
};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "aecl-1";
/// The claimed exponent.
const CLAIMED_GAMMA: f64 = 1.12;
/// Support interval for the median γ and the per-head share.
const SUPPORT_LO: f64 = 1.0;
/// Upper end of the support interval.
const SUPPORT_HI: f64 = 1.25;
/// Minimum share of heads in the interval and of power-law wins for support.
const SUPPORT_SHARE: f64 = 0.5;
/// Refutation interval for the median γ.
const REFUTE_LO: f64 = 0.8;
/// Upper end of the refutation interval.
const REFUTE_HI: f64 = 1.45;
/// Power law wins for fewer than this share of heads: refuted.
const REFUTE_POWER_SHARE: f64 = 0.25;
/// The length at which the rule is judged.
const JUDGE_LEN: usize = 256;
/// The preprint's fit: the first 50 singular values.
const PREPRINT_RANKS: usize = 50;

/// Per head (layer-major) and passage: γ on ranks 2..n/4, γ on 1..50, power law preferred.
struct LengthResult {
    n: usize,
    passages: usize,
    /// `[head][passage]`.
    gamma: Vec<Vec<f64>>,
    gamma50: Vec<Vec<f64>>,
    power: Vec<Vec<bool>>,
    /// Spectrum of passage 0 per head (for the figure).
    example: Vec<Vec<f64>>,
}

impl LengthResult {
    fn head_gamma(&self) -> Vec<f64> {
        self.gamma.iter().map(|g| median(g)).collect()
    }
    fn head_gamma50(&self) -> Vec<f64> {
        self.gamma50.iter().map(|g| median(g)).collect()
    }
    /// A head counts as power-law when most of its passages prefer it.
    fn head_power(&self) -> Vec<bool> {
        self.power
            .iter()
            .map(|p| 2 * p.iter().filter(|&&b| b).count() > p.len())
            .collect()
    }
}

/// γ and preference of one spectrum on `k_first..=k_last` (None when the fit is impossible).
pub(crate) fn fit(sv: &[f64], k_first: usize, k_last: usize) -> Option<(f64, bool)> {
    let k_last = k_last.min(sv.len());
    // Drop exact zeros at the end (rank-deficient spectra).
    let pos = sv.iter().take_while(|&&s| s > 0.0).count();
    let k_last = k_last.min(pos);
    if k_last < k_first + 2 {
        return None;
    }
    fit_rank_decay(sv, k_first, k_last)
        .ok()
        .map(|f| (f.gamma, f.preferred == DecayModel::PowerLaw))
}

fn run_length(
    ctx: &mut Ctx,
    m: &Loaded,
    n: usize,
    count: usize,
    seed: u64,
) -> Result<LengthResult> {
    let ps = passages(ctx, m, n, count, seed)?;
    let heads = m.n_layers * m.n_heads;
    let mut r = LengthResult {
        n,
        passages: ps.len(),
        gamma: vec![Vec::new(); heads],
        gamma50: vec![Vec::new(); heads],
        power: vec![Vec::new(); heads],
        example: vec![Vec::new(); heads],
    };
    let bar = ctx.bar(ps.len() as u64, &format!("{ID}: {} n = {n}", m.name));
    for (pi, p) in ps.iter().enumerate() {
        let att = m.attention(p)?;
        for (l, a) in att.iter().enumerate() {
            let spectra = head_spectra(a, m.n_heads, n)?;
            for (h, sv) in spectra.into_iter().enumerate() {
                let idx = l * m.n_heads + h;
                if let Some((g, pw)) = fit(&sv, 2, n / 4) {
                    r.gamma[idx].push(g);
                    r.power[idx].push(pw);
                }
                if let Some((g, _)) = fit(&sv, 1, PREPRINT_RANKS) {
                    r.gamma50[idx].push(g);
                }
                if pi == 0 {
                    r.example[idx] = sv;
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(r)
}

/// Singular values of `W_Qᵀ W_K` per head (layer-major).
fn weight_spectra(ctx: &mut Ctx, m: &Loaded) -> Result<Vec<Vec<f64>>> {
    let model = if m.causal() {
        ctx.decoder()?
    } else {
        ctx.encoder()?
    };
    let (n_kv, hd) = match &m.net {
        Net::Llama(l) => {
            let c = LlamaModel::config(l);
            (c.n_kv_heads, c.head_dim)
        }
        Net::Bert(b) => {
            let c = b.config();
            (c.n_heads, c.d_model / c.n_heads)
        }
    };
    let find = |role: Role, layer: usize| {
        model
            .tensors()
            .iter()
            .find(|t| t.role == role && t.param == Param::Weight && t.layer == Some(layer))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no {role:?} weight in layer {layer}"))
    };
    let mut out = Vec::new();
    for l in 0..m.n_layers {
        let (tq, tk) = (find(Role::Query, l)?, find(Role::Key, l)?);
        let (q, k) = (model.tensor_f32(&tq.name)?, model.tensor_f32(&tk.name)?);
        let d = tq.shape[1];
        let group = m.n_heads / n_kv;
        for h in 0..m.n_heads {
            let g = h / group;
            let a = &q[h * hd * d..(h + 1) * hd * d];
            let b = &k[g * hd * d..(g + 1) * hd * d];
            out.push(bilinear_singular_values(a, b, hd, d)?);
        }
    }
    Ok(out)
}

#[derive(Clone)]
struct Summary {
    median: f64,
    q1: f64,
    q3: f64,
    share_in: f64,
    share_power: f64,
    heads: usize,
}

fn summarize(gamma: &[f64], power: &[bool]) -> Summary {
    let g: Vec<f64> = gamma.iter().copied().filter(|x| x.is_finite()).collect();
    let inside = g
        .iter()
        .filter(|&&x| (SUPPORT_LO..=SUPPORT_HI).contains(&x))
        .count();
    Summary {
        median: median(&g),
        q1: quantile(&g, 0.25),
        q3: quantile(&g, 0.75),
        share_in: inside as f64 / g.len().max(1) as f64,
        share_power: power.iter().filter(|&&b| b).count() as f64 / power.len().max(1) as f64,
        heads: g.len(),
    }
}

fn verdict_of(s: &[Summary]) -> Verdict {
    if s.iter()
        .any(|s| !(REFUTE_LO..=REFUTE_HI).contains(&s.median) || s.share_power < REFUTE_POWER_SHARE)
    {
        Verdict::Refuted
    } else if s.iter().all(|s| {
        (SUPPORT_LO..=SUPPORT_HI).contains(&s.median)
            && s.share_in >= SUPPORT_SHARE
            && s.share_power >= SUPPORT_SHARE
    }) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let plan: Vec<(usize, usize)> = if ctx.opts.quick {
        vec![(128, 2), (256, 2)]
    } else {
        vec![(64, 8), (128, 8), (256, 8), (512, 2)]
    };
    let mut body = String::new();
    let mut numbers = Vec::new();
    let mut judged = Vec::new();
    let mut sorted_series = Vec::new();
    let mut spectra_series = Vec::new();
    let _ = writeln!(
        body,
        "Per head, γ is the median over passages of the log-log least-squares slope on ranks 2..n/4; \
         a head is 'power law' when the power law has the smaller residual sum of squares (in ln σ) \
         than the exponential on the same ranks for most of its passages. Seed {seed}.\n\n\
         | model | n | passages | heads | median γ | IQR | share in [1, 1.25] | power law wins | \
         median γ (ranks 1..50) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for m in &models {
        let mut per_len = Vec::new();
        for &(n, count) in &plan {
            let r = run_length(ctx, m, n, count, seed)?;
            let s = summarize(&r.head_gamma(), &r.head_power());
            let g50 = median(&r.head_gamma50());
            let _ = writeln!(
                body,
                "| {} | {n} | {} | {} | {:.3} | [{:.3}, {:.3}] | {:.0}% | {:.0}% | {g50:.3} |",
                m.name,
                r.passages,
                s.heads,
                s.median,
                s.q1,
                s.q3,
                100.0 * s.share_in,
                100.0 * s.share_power
            );
            numbers.push(
                json!({"model": m.name, "n": n, "passages": r.passages, "heads": s.heads,
                "median_gamma": s.median, "q1": s.q1, "q3": s.q3, "share_in_interval": s.share_in,
                "share_power_law": s.share_power, "median_gamma_ranks_1_50": g50,
                "head_gamma": r.head_gamma()}),
            );
            per_len.push((r, s));
        }
        // Judge at JUDGE_LEN (the largest planned length when it is absent).
        let idx = per_len
            .iter()
            .position(|(r, _)| r.n == JUDGE_LEN)
            .unwrap_or(per_len.len() - 1);
        let (r, s) = per_len.swap_remove(idx);
        let mut g = r.head_gamma();
        g.retain(|x| x.is_finite());
        g.sort_by(f64::total_cmp);
        let len = g.len().max(2) as f64;
        sorted_series.push(Series::points(
            format!("{} (n = {})", m.name, r.n),
            g.iter()
                .enumerate()
                .map(|(i, &v)| (i as f64 / (len - 1.0), v))
                .collect(),
        ));
        // Example spectrum: the head whose γ is closest to the median.
        let hg = r.head_gamma();
        if let Some((best, _)) = hg
            .iter()
            .enumerate()
            .filter(|(_, x)| x.is_finite())
            .min_by(|a, b| (a.1 - s.median).abs().total_cmp(&(b.1 - s.median).abs()))
        {
            let sv = &r.example[best];
            spectra_series.push(Series::line(
                format!(
                    "{} layer {} head {} (γ {:.2})",
                    m.name,
                    best / m.n_heads,
                    best % m.n_heads,
                    hg[best]
                ),
                sv.iter()
                    .enumerate()
                    .filter(|(_, &v)| v > 0.0)
                    .map(|(k, &v)| ((k + 1) as f64, v / sv[0]))
                    .collect(),
            ));
        }
        judged.push((m.name, r.n, s));
    }
    // Weights: W_Qᵀ W_K per head.
    let _ = writeln!(
        body,
        "\n**Weights.** Singular values of each head's bilinear form W_Qᵀ W_K (rank ≤ head dim k), fitted on \
         ranks 2..k/4 and 1..min(50, k):\n\n| model | heads | median γ | IQR | share in [1, 1.25] | \
         power law wins | median γ (1..50) |\n|---|---|---|---|---|---|---|"
    );
    let mut wnumbers = Vec::new();
    for m in &models {
        let sp = weight_spectra(ctx, m)?;
        let fits: Vec<_> = sp.iter().map(|sv| fit(sv, 2, sv.len() / 4)).collect();
        let g: Vec<f64> = fits.iter().map(|f| f.map_or(f64::NAN, |x| x.0)).collect();
        let p: Vec<bool> = fits.iter().map(|f| f.is_some_and(|x| x.1)).collect();
        let g50: Vec<f64> = sp
            .iter()
            .map(|sv| fit(sv, 1, PREPRINT_RANKS).map_or(f64::NAN, |x| x.0))
            .collect();
        let s = summarize(&g, &p);
        let _ = writeln!(
            body,
            "| {} | {} | {:.3} | [{:.3}, {:.3}] | {:.0}% | {:.0}% | {:.3} |",
            m.name,
            s.heads,
            s.median,
            s.q1,
            s.q3,
            100.0 * s.share_in,
            100.0 * s.share_power,
            median(&g50)
        );
        wnumbers.push(json!({"model": m.name, "heads": s.heads, "median_gamma": s.median,
            "q1": s.q1, "q3": s.q3, "share_in_interval": s.share_in, "share_power_law": s.share_power,
            "median_gamma_ranks_1_50": median(&g50)}));
    }
    let sums: Vec<Summary> = judged.iter().map(|x| x.2.clone()).collect();
    let verdict = verdict_of(&sums);
    let fmt = |x: &(&str, usize, Summary)| {
        format!(
            "{} (n = {}): median γ {:.2} [IQR {:.2}–{:.2}], {:.0}% of heads in [1, 1.25], power law wins {:.0}%",
            x.0,
            x.1,
            x.2.median,
            x.2.q1,
            x.2.q3,
            100.0 * x.2.share_in,
            100.0 * x.2.share_power
        )
    };
    let measured = judged
        .iter()
        .map(|x| format!("median γ {:.2} ({})", x.2.median, x.0))
        .collect::<Vec<_>>()
        .join(", ");
    let why = format!(
        "{}; rule: support needs median in [{SUPPORT_LO}, {SUPPORT_HI}], ≥{:.0}% in it and power law ≥{:.0}% in both; \
         refute if a median is outside [{REFUTE_LO}, {REFUTE_HI}] or power law < {:.0}%; seed {seed}{}",
        judged.iter().map(fmt).collect::<Vec<_>>().join("; "),
        100.0 * SUPPORT_SHARE,
        100.0 * SUPPORT_SHARE,
        100.0 * REFUTE_POWER_SHARE,
        if ctx.opts.quick { ", quick sample" } else { "" }
    );
    let mut o = Outcome::new(ID, verdict, measured, format!("γ ≈ {CLAIMED_GAMMA}"), why);
    let _ = writeln!(
        body,
        "\nA causal attention matrix is lower triangular with a positive diagonal, so it has full rank: \
         only a decay law, not low rank, can hold. γ depends on the length (table above)."
    );
    sorted_series.push(Series::reference(
        "claimed γ = 1.12",
        vec![(0.0, CLAIMED_GAMMA), (1.0, CLAIMED_GAMMA)],
    ));
    o.figures.push(figure(
        &figdir,
        ("aecl-1_gamma", "Sorted per-head decay exponents γ of the attention matrices (SmolLM2 and MiniLM), claimed 1.12 marked"),
        "Attention γ per head, sorted",
        ("head quantile", "γ (ranks 2..n/4)"),
        (false, false),
        sorted_series,
    )?);
    if let Some(first) = spectra_series.first() {
        let kmax = first.points.len() as f64;
        spectra_series.push(Series::reference(
            "k^-1.12",
            (1..=kmax as usize)
                .map(|k| (k as f64, (k as f64).powf(-CLAIMED_GAMMA)))
                .collect(),
        ));
    }
    o.figures.push(figure(
        &figdir,
        ("aecl-1_spectra", "Normalised singular values of the head closest to the median γ in each model, log-log, with k^-1.12"),
        "Attention spectra of the median heads",
        ("rank k", "σ_k / σ_1"),
        (true, true),
        spectra_series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "attention": numbers, "weights": wnumbers,
        "judged_length": JUDGE_LEN});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_planted_power_law() {
        let sv: Vec<f64> = (1..=64).map(|k| (k as f64).powf(-1.3)).collect();
        let (g, pw) = fit(&sv, 2, 16).unwrap();
        assert!((g - 1.3).abs() < 1e-10 && pw);
        let ex: Vec<f64> = (1..=64).map(|k| (-0.3 * k as f64).exp()).collect();
        assert!(!fit(&ex, 2, 16).unwrap().1);
        // Zeros at the tail shorten the range; too few ranks gives None.
        assert!(fit(&[1.0, 0.5, 0.0, 0.0], 2, 4).is_none());
    }

    #[test]
    fn verdict_thresholds() {
        let s = |median, share_in, share_power| Summary {
            median,
            q1: 0.0,
            q3: 0.0,
            share_in,
            share_power,
            heads: 10,
        };
        assert_eq!(
            verdict_of(&[s(1.1, 0.6, 0.6), s(1.2, 0.5, 0.5)]),
            Verdict::Supported
        );
        assert_eq!(
            verdict_of(&[s(1.1, 0.6, 0.6), s(0.7, 0.5, 0.5)]),
            Verdict::Refuted
        );
        assert_eq!(
            verdict_of(&[s(1.1, 0.6, 0.2), s(1.1, 0.6, 0.6)]),
            Verdict::Refuted
        );
        assert_eq!(
            verdict_of(&[s(1.1, 0.4, 0.6), s(1.1, 0.6, 0.6)]),
            Verdict::Inconclusive
        );
    }
}
