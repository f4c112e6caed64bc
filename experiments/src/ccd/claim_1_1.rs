//! `ccd-1.1`: the "model manifold" is the set of valid parameter vectors in R^n; its one computable
//! content is n. Counted from both models' tensor tables.

use anyhow::Result;
use claimlab_weights::{DType, Model};
use serde_json::json;

use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Documented parameter counts (`shared/DATA.md`).
const MINILM_N: u64 = 22_713_216;
/// Documented parameter count of SmolLM2-135M.
const SMOLLM2_N: u64 = 134_515_008;

fn counted(m: &Model) -> (u64, usize, usize) {
    let floats: Vec<_> = m
        .tensors()
        .iter()
        .filter(|t| t.dtype != DType::I64)
        .collect();
    let n = floats
        .iter()
        .map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>())
        .sum();
    (n, floats.len(), m.tensors().len() - floats.len())
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (n_enc, t_enc, skipped) = counted(ctx.encoder()?);
    let (n_dec, t_dec, _) = counted(ctx.decoder()?);
    let user = ctx.opts.model.is_some();
    let ok = n_enc == MINILM_N && n_dec == SMOLLM2_N;
    let verdict = if user {
        Verdict::Inconclusive
    } else if ok {
        Verdict::Supported
    } else {
        Verdict::Refuted
    };
    let why = if user {
        "a user model replaces a pinned one; the documented counts do not apply".to_string()
    } else {
        format!(
            "n counted from the tensor tables: MiniLM {n_enc} ({t_enc} float tensors, {skipped} integer \
             buffer skipped), SmolLM2 {n_dec} ({t_dec} tensors); documented {MINILM_N} and {SMOLLM2_N}; \
             the 'manifold' itself is all of R^n and has no further checkable content"
        )
    };
    let mut o = Outcome::new(
        "ccd-1.1",
        verdict,
        format!("n = {n_enc} (MiniLM), {n_dec} (SmolLM2)"),
        "n left symbolic; the set of valid θ ∈ R^n",
        why,
    );
    o.body = "The definition's only concrete quantity is n. Later experiments stand the 'manifold' in \
              by the rows of each weight matrix as a point cloud in R^d (what ccd-2.1 needs); the set of \
              valid parameter vectors is all of R^n, since every real vector is a valid model, so \
              calling it a manifold adds no structure."
        .to_string();
    o.numbers = json!({"minilm_n": n_enc, "minilm_tensors": t_enc, "minilm_skipped_integer_buffers": skipped,
        "smollm2_n": n_dec, "smollm2_tensors": t_dec, "documented": {"minilm": MINILM_N, "smollm2": SMOLLM2_N}});
    Ok(o)
}
