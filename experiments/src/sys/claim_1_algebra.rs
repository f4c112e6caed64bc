//! `sys-1.algebra`: "model symmetries, handled with group theory, compress the model while keeping
//! its mathematical relationships". The ccd-3.1 run (group, `log2 |G|`, stabiliser, bits saved,
//! real ratio) plus the check that the canonicalised models compute the same outputs: MiniLM
//! embeddings and SmolLM2 logits on Brown sentences, with every MLP layer's units sorted.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use crate::ccd::claim_3_1::{
    brown_sentences, burnside_step_check, decoder_check, encoder_check, model_symmetry,
    symmetry_outcome, FunctionCheck, FUNCTION_TOL_REL,
};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Sentences per model for the output check (full mode).
const SENTENCES: usize = 64;
/// Sentences per model with `--quick`.
const SENTENCES_QUICK: usize = 4;

fn check_json(c: &FunctionCheck) -> serde_json::Value {
    json!({"sentences": c.sentences, "moved_units": c.moved_units, "max_abs_diff": c.max_abs_diff,
           "max_rel_diff": c.max_rel_diff, "passed": c.max_rel_diff <= FUNCTION_TOL_REL})
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let quick = ctx.opts.quick;
    let seed = ctx.opts.seed;
    let bar = ctx.bar(5, "sys-1.algebra: symmetry and canonical outputs");
    let enc = model_symmetry(ctx.encoder()?, "MiniLM")?;
    bar.inc(1);
    let dec = model_symmetry(ctx.decoder()?, "SmolLM2")?;
    bar.inc(1);
    let burn = burnside_step_check(seed, quick)?;
    bar.inc(1);
    let n = if quick { SENTENCES_QUICK } else { SENTENCES };
    let sentences = brown_sentences(ctx, n)?;
    let ec = encoder_check(ctx.encoder()?, &sentences)?;
    bar.inc(1);
    let dc = decoder_check(ctx.decoder()?, &sentences)?;
    bar.inc(1);
    bar.finish_and_clear();
    let mut o = symmetry_outcome("sys-1.algebra", &[&enc, &dec], &burn, ctx)?;
    let function_ok = ec.max_rel_diff <= FUNCTION_TOL_REL && dc.max_rel_diff <= FUNCTION_TOL_REL;
    if !function_ok {
        o.verdict = Verdict::Refuted;
    }
    let _ = writeln!(
        o.body,
        "\nOutputs of the canonical models ({n} Brown sentences, every MLP layer's units sorted, \
         tolerance {FUNCTION_TOL_REL:e} relative to the largest output): MiniLM embeddings max |Δ| = \
         {:.2e} (relative {:.2e}, {} units moved); SmolLM2 logits max |Δ| = {:.2e} (relative {:.2e}, \
         {} units moved). The relationships are kept: {}. What the symmetry does not give is \
         compression: the saving is the ccd-3.1 figure above.",
        ec.max_abs_diff,
        ec.max_rel_diff,
        ec.moved_units,
        dc.max_abs_diff,
        dc.max_rel_diff,
        dc.moved_units,
        if function_ok { "yes" } else { "NO (outputs differ)" }
    );
    o.why = format!(
        "{}; canonical outputs max rel diff MiniLM {:.1e}, SmolLM2 {:.1e} on {n} sentences (tol {FUNCTION_TOL_REL:e})",
        o.why, ec.max_rel_diff, dc.max_rel_diff
    );
    o.numbers["function_check"] = json!({"tolerance_rel": FUNCTION_TOL_REL,
        "minilm_embeddings": check_json(&ec), "smollm2_logits": check_json(&dc)});
    Ok(o)
}
