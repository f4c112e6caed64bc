//! `pipe-kv`: "the KV cache needs M_KV = 2·B·S·L·h·d·b bytes". The cache our incremental decoder
//! (`roofline_common::Decoder`, on the runtime's SmolLM2 weights) allocates for B = 1, 4 and
//! S = 128, 512, 2048, its resident growth when written, and the K/V widths read from both models'
//! weight shapes, against the formula with h = query heads and h = key/value heads.

use anyhow::Result;
use claimlab_weights::{Model, Param, Role};
use serde_json::json;
use std::fmt::Write as _;

use super::roofline_common::{self as rc, Cost, Decoder, KvCache, WeightFormat};
use crate::aecl::common::{claim_seed, passages_from};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Supported: measured equals the formula (h = KV heads) within this.
const SUPPORT_TOL: f64 = 0.01;
/// Refuted: measured equals neither reading within this.
const REFUTE_TOL: f64 = 0.10;
/// Batches and sequence lengths of the table.
const BATCHES: [usize; 2] = [1, 4];
const SEQS: [usize; 3] = [128, 512, 2048];

/// `2·B·S·L·h·d·b`.
pub(crate) fn kv_formula(b: usize, s: usize, l: usize, h: usize, d: usize, bytes: usize) -> f64 {
    2.0 * (b * s * l * h * d * bytes) as f64
}

/// Per layer, the output widths of the key and value projections (rows of their weights).
fn kv_widths(m: &Model) -> Vec<(usize, usize)> {
    let width = |role: Role, l: usize| {
        m.find(role, Some(l), Param::Weight)
            .map_or(0, |t| t.shape[0])
    };
    (0..m.config().n_layers)
        .map(|l| (width(Role::Key, l), width(Role::Value, l)))
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, "pipe-kv");
    let enc_widths = kv_widths(ctx.encoder()?);
    let ecfg = ctx.encoder()?.config().clone();
    let dec_widths = kv_widths(ctx.decoder()?);
    let smol = rc::load_smol(ctx)?;
    let model = rc::llama(&smol)?;
    let cfg = model.config().clone();
    let (l, hq, hkv, hd) = (cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);

    // Allocated caches (capacities), f32 (b = 4).
    let mut body = format!(
        "SmolLM2: L = {l}, {hq} query heads, {hkv} key/value heads, d = {hd}. The runtime's `forward` keeps no cache, \
         so the cache measured is the one of our incremental decoder on the runtime's weights (f32, b = 4 bytes).\n\n\
         | B | S | allocated (bytes) | formula h = {hkv} (KV heads) | formula h = {hq} (query heads) | allocated / (h = {hkv}) | f16 formula h = {hkv} | f16 formula h = {hq} |\n|---|---|---|---|---|---|---|---|\n"
    );
    let mut rows = Vec::new();
    let mut worst_kv: f64 = 0.0;
    let mut best_any: f64 = f64::INFINITY;
    let mut series_meas = [Vec::new(), Vec::new()];
    let mut series_f3 = [Vec::new(), Vec::new()];
    let mut series_f9 = [Vec::new(), Vec::new()];
    for (bi, &b) in BATCHES.iter().enumerate() {
        for &s in &SEQS {
            let caches: Vec<KvCache> = (0..b).map(|_| KvCache::new(&cfg, s)).collect();
            let alloc: usize = caches.iter().map(KvCache::allocated_bytes).sum();
            drop(caches);
            let f_kv = kv_formula(b, s, l, hkv, hd, 4);
            let f_q = kv_formula(b, s, l, hq, hd, 4);
            let a = alloc as f64;
            worst_kv = worst_kv.max(rel(a, f_kv));
            best_any = best_any.min(rel(a, f_kv).min(rel(a, f_q)));
            let _ = writeln!(
                body,
                "| {b} | {s} | {alloc} | {f_kv:.0} | {f_q:.0} | {:.4} | {:.0} | {:.0} |",
                a / f_kv,
                kv_formula(b, s, l, hkv, hd, 2),
                kv_formula(b, s, l, hq, hd, 2)
            );
            series_meas[bi].push((s as f64, a));
            series_f3[bi].push((s as f64, f_kv));
            series_f9[bi].push((s as f64, f_q));
            rows.push(
                json!({"batch": b, "seq": s, "allocated_bytes": alloc, "formula_kv_heads": f_kv,
                "formula_query_heads": f_q, "formula_kv_heads_f16": kv_formula(b, s, l, hkv, hd, 2),
                "formula_query_heads_f16": kv_formula(b, s, l, hq, hd, 2)}),
            );
        }
    }

    // A real cache: prefill Brown text through the decoder; its filled bytes and its last logits
    // against the runtime's full forward pass.
    let fill = if ctx.opts.quick { 32 } else { 128 };
    let toks = passages_from(ctx, &smol, fill, 1, seed, false)?.remove(0);
    let dec = Decoder::new(model, WeightFormat::F32)?;
    let mut cache = KvCache::new(&cfg, fill);
    let logits = dec.step(&mut cache, &toks, 1, &mut Cost::default())?;
    let full = model.forward(&toks, &claimlab_runtime::Hooks::none())?;
    let last = full.row(fill - 1);
    let scale = last.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let logit_err = logits
        .iter()
        .zip(last)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .fold(0.0, f64::max)
        / scale;
    let used = cache.used_bytes();
    let held = cache.len();
    let f_fill = kv_formula(1, fill, l, hkv, hd, 4);
    worst_kv = worst_kv.max(rel(used as f64, f_fill));
    drop(cache);

    // Resident growth when a B = 1, S = 2048 cache is written.
    let (_, rss) = rc::peak_rss_delta(|| {
        let mut c = KvCache::new(&cfg, 2048);
        c.fill_zeros(2048);
        std::hint::black_box(c.used_bytes())
    });
    let f_2048 = kv_formula(1, 2048, l, hkv, hd, 4);

    // K/V widths from the weight shapes of both files.
    let width_bytes = |w: &[(usize, usize)]| w.iter().map(|&(k, v)| 4 * (k + v)).sum::<usize>();
    let smol_tok = width_bytes(&dec_widths);
    let e_heads = ecfg.n_heads;
    let e_hd = ecfg.d_model / e_heads;
    let mini_tok = width_bytes(&enc_widths);
    let mini_formula = kv_formula(1, 1, ecfg.n_layers, e_heads, e_hd, 4);
    let mini_err = rel(mini_tok as f64, mini_formula);
    let _ = writeln!(
        body,
        "\nA real cache: {fill} Brown tokens prefilled through the decoder ({held} positions cached) hold {used} bytes (formula h = {hkv}: {f_fill:.0}); \
         its last logits match the runtime's full forward pass to {logit_err:.1e} (relative to the largest logit).\n\n\
         Written B = 1, S = 2048 cache: resident growth {} (formula {f_2048:.0} bytes).\n\n\
         Per-token K/V bytes from the weight shapes (rows of the key and value projections, f32): SmolLM2 {smol_tok} \
         (formula h = {hkv}: {:.0}, h = {hq}: {:.0}); MiniLM (encoder, no GQA; the K/V its forward computes per token) {mini_tok} \
         (formula h = {e_heads}, d = {e_hd}: {mini_formula:.0}).\n\n\
         Reading h as the attention heads overstates SmolLM2's cache by a factor {:.1}: grouped-query attention stores \
         only the {hkv} key/value heads.",
        rss.map_or("unavailable".into(), |r| format!("{r} bytes ({:.3} × formula)", r as f64 / f_2048)),
        kv_formula(1, 1, l, hkv, hd, 4),
        kv_formula(1, 1, l, hq, hd, 4),
        hq as f64 / hkv as f64
    );
    let smol_err = rel(smol_tok as f64, kv_formula(1, 1, l, hkv, hd, 4));
    let worst = worst_kv.max(mini_err).max(smol_err);
    let verdict = if worst <= SUPPORT_TOL {
        Verdict::Supported
    } else if best_any > REFUTE_TOL {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let mut o = Outcome::new(
        "pipe-kv",
        verdict,
        format!(
            "SmolLM2 cache = formula with h = {hkv} KV heads (worst {:.2}% off); h = {hq} gives {:.1}x too much; MiniLM {:.2}% off with h = {e_heads}",
            100.0 * worst_kv,
            hq as f64 / hkv as f64,
            100.0 * mini_err
        ),
        "M_KV = 2·B·S·L·h·d·b",
        format!(
            "allocated f32 cache for B in {{1,4}}, S in {{128,512,2048}} and a real {fill}-token prefill vs the formula: worst {:.3}% off with h = KV heads \
             (tolerance {:.0}%), factor {:.1} off with h = query heads; MiniLM per-token K/V {:.3}% off with h = heads",
            100.0 * worst_kv,
            100.0 * SUPPORT_TOL,
            hq as f64 / hkv as f64,
            100.0 * mini_err
        ),
    );
    let mut series = Vec::new();
    for (bi, &b) in BATCHES.iter().enumerate() {
        series.push(Series::points(
            format!("allocated, B = {b}"),
            series_meas[bi].clone(),
        ));
        series.push(Series::line(
            format!("formula h = {hkv}, B = {b}"),
            series_f3[bi].clone(),
        ));
        series.push(Series::reference(
            format!("formula h = {hq}, B = {b}"),
            series_f9[bi].clone(),
        ));
    }
    let chart = Chart {
        title: "SmolLM2 KV cache: allocated vs 2BSLhdb (f32)".into(),
        x_label: "sequence length S".into(),
        y_label: "bytes".into(),
        log_x: true,
        log_y: true,
        series,
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "pipe-kv_cache",
        "KV-cache bytes allocated by the decoder against the formula read with KV heads and with query heads",
    )?);
    o.body = body;
    o.numbers = json!({"rows": rows, "fill_tokens": fill, "fill_used_bytes": used, "fill_formula": f_fill,
        "fill_logit_rel_error": logit_err, "rss_growth_2048": rss, "formula_2048": f_2048,
        "smollm2_kv_bytes_per_token": smol_tok, "minilm_kv_bytes_per_token": mini_tok, "minilm_formula_per_token": mini_formula,
        "worst_rel_error_kv_heads": worst_kv, "seed": seed});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_matches_the_papers_worked_numbers() {
        // SmolLM2, S = 2048, B = 1, f16: 47,185,920 bytes with h = 3, 141,557,760 with h = 9.
        assert!((kv_formula(1, 2048, 30, 3, 64, 2) - 47_185_920.0).abs() < 0.5);
        assert!((kv_formula(1, 2048, 30, 9, 64, 2) - 141_557_760.0).abs() < 0.5);
    }

    #[test]
    fn decoder_cache_of_tiny_model_equals_formula_with_kv_heads() {
        let m = rc::tests::tiny_model(9);
        let c = KvCache::new(m.config(), 33);
        let cfg = m.config();
        let f = kv_formula(1, 33, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, 4);
        assert!(rel(c.allocated_bytes() as f64, f) < 1e-12);
        let fq = kv_formula(1, 33, cfg.n_layers, cfg.n_heads, cfg.head_dim, 4);
        assert!(rel(c.allocated_bytes() as f64, fq) > 0.4);
    }
}
