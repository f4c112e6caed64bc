//! `intro-4.flops`: "a forward pass costs Σ_l 2·|W_l|·(input size) FLOPs". FLOPs of SmolLM2 counted
//! by an instrumented run (the incremental decoder of `pipe::roofline_common` over the runtime's
//! weights, which adds every kernel's multiply-adds as it runs: linears, attention scores and
//! weighted sums, softmax, norms, RoPE, activations), and of MiniLM counted from the runtime's kernel
//! sequence, at several lengths, against the formula in three readings of |W|.

use anyhow::Result;
use claimlab_runtime::{BertConfig, LlamaConfig};
use serde_json::json;
use std::fmt::Write as _;

use crate::pipe::roofline_common::{self as rc, Cost, Decoder, KvCache, WeightFormat};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Supported: the formula within this of the counted total at length 128 (both models).
const SUPPORT_TOL: f64 = 0.10;
/// Refuted: off by more than this at 128.
const REFUTE_TOL: f64 = 0.25;
/// The length the verdict reads.
const VERDICT_LEN: usize = 128;

/// Parameters of a llama decoder's block linears and of its output projection.
pub(crate) fn llama_linear_params(c: &LlamaConfig) -> (f64, f64) {
    let (d, qd, kd, ff) = (
        c.d_model,
        c.n_heads * c.head_dim,
        c.n_kv_heads * c.head_dim,
        c.d_ff,
    );
    let per = d * qd + 2 * d * kd + qd * d + 3 * d * ff;
    ((c.n_layers * per) as f64, (c.vocab_size * d) as f64)
}

/// Parameters of a BERT encoder's block linear weights (no biases) and of its word embedding.
pub(crate) fn bert_linear_params(c: &BertConfig) -> (f64, f64) {
    let (d, ff) = (c.d_model, c.d_ff);
    (
        (c.n_layers * (4 * d * d + 2 * d * ff)) as f64,
        (c.vocab_size * d) as f64,
    )
}

/// One model at one length: counted FLOPs, how, and the three readings of the formula.
struct Row {
    model: &'static str,
    len: usize,
    counted: f64,
    how: &'static str,
    linears_and_head: f64,
    blocks_only: f64,
    with_embedding: f64,
    attention_term: f64,
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let smol = rc::load_smol(ctx)?;
    let model = rc::llama(&smol)?;
    let lc = model.config().clone();
    let dec = Decoder::new(model, WeightFormat::F32)?;
    let (blk, head) = llama_linear_params(&lc);
    let run_lens: &[usize] = if ctx.opts.quick {
        &[32, 128]
    } else {
        &[32, 128, 512]
    };
    let mut rows = Vec::new();
    let mut instrument_err: f64 = 0.0;
    let bar = ctx.bar(run_lens.len() as u64, "intro-4.flops: instrumented runs");
    for &n in &[32usize, 128, 512, 2048] {
        let analytic = rc::step_cost(dec.config(), n, 0, n, 32.0).flops;
        let (counted, how) = if run_lens.contains(&n) {
            // Token ids are irrelevant to the count; a fixed cycle keeps them valid.
            let toks: Vec<u32> = (0..n as u32)
                .map(|i| (i * 7919) % lc.vocab_size as u32)
                .collect();
            let mut cache = KvCache::new(&lc, n);
            let mut cost = Cost::default();
            dec.step(&mut cache, &toks, n, &mut cost)?;
            bar.inc(1);
            instrument_err = instrument_err.max((cost.flops - analytic).abs() / analytic);
            (cost.flops, "instrumented run")
        } else {
            (analytic, "same count, not run")
        };
        let nf = n as f64;
        rows.push(Row {
            model: "SmolLM2",
            len: n,
            counted,
            how,
            linears_and_head: 2.0 * (blk + head) * nf,
            blocks_only: 2.0 * blk * nf,
            with_embedding: 2.0 * (blk + head) * nf,
            attention_term: 4.0 * nf * nf * (lc.n_heads * lc.head_dim * lc.n_layers) as f64,
        });
    }
    bar.finish_and_clear();
    drop(dec);
    drop(smol);
    let mini = rc::load_minilm(ctx)?;
    let bc = rc::bert(&mini)?.config().clone();
    let (bblk, bemb) = bert_linear_params(&bc);
    for &n in &[32usize, 128, 512] {
        let nf = n as f64;
        rows.push(Row {
            model: "MiniLM",
            len: n,
            counted: rc::bert_cost(&bc, n).flops,
            how: "kernel sequence of BertModel::forward",
            linears_and_head: 2.0 * bblk * nf,
            blocks_only: 2.0 * bblk * nf,
            with_embedding: 2.0 * (bblk + bemb) * nf,
            attention_term: 4.0 * nf * nf * (bc.d_model * bc.n_layers) as f64,
        });
    }
    let mut body = format!(
        "Counting conventions: a multiply-add is 2 FLOPs; see `pipe::roofline_common`. SmolLM2's counter and the closed-form \
         count agree to {instrument_err:.1e} on the lengths run. Readings of |W|: (a) every weight matrix the forward multiplies \
         activations by (block linears, and SmolLM2's output projection, its tied token embedding); (b) block linears only; \
         (c) with the token embedding included (for SmolLM2 the same as (a); for MiniLM the word embedding, a lookup table, is added).\n\n\
         | model | tokens | counted GFLOP | how | (a) GFLOP | (a)/counted | (b)/counted | (c)/counted | attention 4T²dL share of counted |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    let mut json_rows = Vec::new();
    let mut series = Vec::new();
    let mut worst_a: f64 = 0.0;
    for r in &rows {
        let _ = writeln!(
            body,
            "| {} | {} | {:.3} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}% |",
            r.model,
            r.len,
            r.counted / 1e9,
            r.how,
            r.linears_and_head / 1e9,
            r.linears_and_head / r.counted,
            r.blocks_only / r.counted,
            r.with_embedding / r.counted,
            100.0 * r.attention_term / r.counted
        );
        if r.len == VERDICT_LEN {
            worst_a = worst_a.max((r.linears_and_head / r.counted - 1.0).abs());
        }
        json_rows.push(
            json!({"model": r.model, "tokens": r.len, "counted": r.counted, "how": r.how,
            "formula_linears_and_head": r.linears_and_head, "formula_blocks_only": r.blocks_only,
            "formula_with_embedding": r.with_embedding, "attention_term": r.attention_term}),
        );
    }
    for model in ["SmolLM2", "MiniLM"] {
        let sel: Vec<&Row> = rows.iter().filter(|r| r.model == model).collect();
        series.push(Series::line(
            format!("{model} counted"),
            sel.iter().map(|r| (r.len as f64, r.counted)).collect(),
        ));
        series.push(Series::reference(
            format!("{model} formula (a)"),
            sel.iter()
                .map(|r| (r.len as f64, r.linears_and_head))
                .collect(),
        ));
    }
    let verdict = if worst_a <= SUPPORT_TOL {
        Verdict::Supported
    } else if worst_a > REFUTE_TOL {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let at = |m: &str, n: usize, f: fn(&Row) -> f64| {
        rows.iter()
            .find(|r| r.model == m && r.len == n)
            .map_or(f64::NAN, |r| f(r) / r.counted)
    };
    let _ = writeln!(
        body,
        "\nThe formula has no attention term: 4T²d per layer grows with length, so the formula falls further short as T \
         grows (SmolLM2 (a)/counted {:.2} at 32 tokens, {:.2} at 2048)." ,
        at("SmolLM2", 32, |r| r.linears_and_head),
        at("SmolLM2", 2048, |r| r.linears_and_head)
    );
    let mut o = Outcome::new(
        "intro-4.flops",
        verdict,
        format!(
            "formula/counted at 128 tokens: SmolLM2 {:.3}, MiniLM {:.3} (block linears only: {:.3}, {:.3})",
            at("SmolLM2", 128, |r| r.linears_and_head),
            at("MiniLM", 128, |r| r.linears_and_head),
            at("SmolLM2", 128, |r| r.blocks_only),
            at("MiniLM", 128, |r| r.blocks_only)
        ),
        "FLOPs = Σ 2|W_l|·n",
        format!(
            "with |W| the weights used as linear layers the formula is within {:.1}% of the counted total at 128 tokens (support ≤ {:.0}%, refute > {:.0}%); \
             MiniLM with its word embedding counted is {:.2}x; SmolLM2 at 2048 tokens {:.2}",
            100.0 * worst_a,
            100.0 * SUPPORT_TOL,
            100.0 * REFUTE_TOL,
            at("MiniLM", 128, |r| r.with_embedding),
            at("SmolLM2", 2048, |r| r.linears_and_head)
        ),
    );
    let chart = Chart {
        title: "Forward FLOPs: counted vs Σ 2|W|·n".into(),
        x_label: "tokens".into(),
        y_label: "FLOPs".into(),
        log_x: true,
        log_y: true,
        series,
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "intro-4.flops_counts",
        "Counted forward FLOPs against the formula (|W| = weights used as linear layers) by sequence length",
    )?);
    o.body = body;
    o.numbers = json!({"rows": json_rows, "instrument_vs_closed_form": instrument_err, "worst_rel_error_128": worst_a});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_parameter_counts_of_known_configs() {
        // SmolLM2-135M: 30 blocks of 576·576·2 + 576·192·2 + 3·576·1536 and a 49152 × 576 head.
        let c = LlamaConfig {
            n_layers: 30,
            d_model: 576,
            n_heads: 9,
            n_kv_heads: 3,
            head_dim: 64,
            d_ff: 1536,
            vocab_size: 49_152,
            norm_eps: 1e-5,
            rope_theta: 1e5,
            max_positions: None,
            tied_embeddings: true,
        };
        let (blk, head) = llama_linear_params(&c);
        assert!((blk - 106_168_320.0).abs() < 0.5, "{blk}");
        assert!((head - 28_311_552.0).abs() < 0.5);
        // The counted total exceeds 2·(blk + head)·n by the attention and elementwise terms only.
        let n = 128;
        let counted = rc::step_cost(&c, n, 0, n, 32.0).flops;
        let formula = 2.0 * (blk + head) * n as f64;
        let attention = 4.0 * (n * n * 576 * 30) as f64;
        assert!(
            counted > formula + attention && counted < 1.1 * (formula + attention),
            "{counted} {formula}"
        );
    }
}
