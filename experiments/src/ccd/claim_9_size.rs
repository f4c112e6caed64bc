//! `ccd-9.size`: "a 30 GB transformer ends at about 3-5 KB". The consistency of the stated size
//! with the stated ratio (30 GB / 10⁸ = 300 bytes), the bits per parameter it leaves, and the real
//! loss of the best 5 KB models of SmolLM2 and MiniLM (shared with `ccd-8.1`).

use anyhow::Result;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_8_1::{tiny_chart, tiny_run, tiny_table, ModelTiny, BUDGET_BITS};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// The example's model size, bytes.
const MODEL_BYTES: f64 = 30e9;
/// The stated ratio.
const STATED_RATIO: f64 = 1e8;
/// The stated final size range, bytes.
const STATED_SIZE: (f64, f64) = (3e3, 5e3);
/// The stated parameter count.
const STATED_N: f64 = 1e10;
/// Rule: the stated size and ratio may disagree by at most this factor.
const CONSISTENCY_FACTOR: f64 = 3.0;

/// (size implied by the ratio in bytes, disagreement factors with the two ends of the range).
fn consistency() -> (f64, f64, f64) {
    let implied = MODEL_BYTES / STATED_RATIO;
    (implied, STATED_SIZE.0 / implied, STATED_SIZE.1 / implied)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let figdir = ctx.figures_dir();
    let (implied, f_lo, f_hi) = consistency();
    let inconsistent =
        f_lo.min(f_hi) > CONSISTENCY_FACTOR || f_lo.max(f_hi) < 1.0 / CONSISTENCY_FACTOR;
    let r = tiny_run(ctx)?;
    let chance_hit: Vec<&ModelTiny> = r
        .models
        .iter()
        .filter(|m| m.closer_to_chance(m.best().2))
        .collect();
    let kept = r.models.iter().any(|m| m.within_keep(m.best().2));
    let verdict = if inconsistent || !chance_hit.is_empty() {
        Verdict::Refuted
    } else if kept {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let bits_per_param = 8.0 * STATED_SIZE.1 / STATED_N;
    let best_txt: Vec<String> = r
        .models
        .iter()
        .map(|m| {
            let b = m.best();
            format!(
                "{} {} {:.4} (uncompressed {:.4}, chance {:.4})",
                m.model, m.loss_name, b.2, m.base_loss, m.chance_loss
            )
        })
        .collect();
    let measured = format!(
        "30 GB / 10^8 = {implied:.0} B, not 3-5 KB ({f_lo:.0}-{f_hi:.0}x); best 5 KB models: {}",
        best_txt.join("; ")
    );
    let why = format!(
        "the stated size disagrees with the stated ratio by {f_lo:.0}-{f_hi:.0}x (rule: at most \
         {CONSISTENCY_FACTOR}x); 5 KB leaves {bits_per_param:.1e} bits per parameter of the \
         example; the best 5 KB models are closer to chance than to the uncompressed model for \
         [{}]; seed {}",
        chance_hit
            .iter()
            .map(|m| m.model)
            .collect::<Vec<_>>()
            .join(", "),
        r.seed
    );
    let mut o = Outcome::new(
        "ccd-9.size",
        verdict,
        measured,
        "30 GB → 3-5 KB (ratio 6·10^6 to 10^7)",
        why,
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Arithmetic: 30 GB / 10^8 (the text's ratio) = {implied:.0} bytes; 30 GB / 3-5 KB = {:.1e} \
         to {:.1e}. 5 KB over the stated 10^10 parameters is {bits_per_param:.1e} bits each \
         ({:.1e} over 30 GB of f32, 7.5e9 parameters). The budget used for the real models is \
         {BUDGET_BITS} bits (5 KB, the favourable end).\n",
        MODEL_BYTES / STATED_SIZE.1,
        MODEL_BYTES / STATED_SIZE.0,
        8.0 * STATED_SIZE.1 / 7.5e9
    );
    body.push_str(&tiny_table(&r));
    o.figures.push(tiny_chart(&r, "ccd-9.size").save(
        &figdir,
        "ccd-9.size_tiny_models",
        "Loss of each model built within 5 KB (0 = uncompressed, 1 = chance; log scale of \
         perplexity for SmolLM2, 1 − cosine for MiniLM).",
    )?);
    o.body = body;
    o.numbers = json!({"implied_size_bytes": implied, "disagreement": [f_lo, f_hi],
        "bits_per_param_stated_n": bits_per_param, "seed": r.seed,
        "models": r.models.iter().map(ModelTiny::json).collect::<Vec<_>>()});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stated_size_and_ratio_disagree_by_10_to_17() {
        let (implied, lo, hi) = consistency();
        assert!((implied - 300.0).abs() < 1e-9);
        assert!((lo - 10.0).abs() < 1e-9 && (hi - 50.0 / 3.0).abs() < 1e-9);
    }
}
