//! `sys-2.remove`: erase each concept at its identified layer (LEACE folded into the MLP down
//! projection; separately, ablation of the 10 identified neurons) and validate: retrained probe
//! after erasure, loss on unrelated and on concept text with bootstrap intervals.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::claim_2_identify::{identify_cached, identify_seed};
use super::features::{
    load_models, remove_all, sizes, tensor_table, validation_text, Method, Validation,
};
use crate::aecl::common::Loaded;
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "sys-2.remove";
/// Supported: probe after erasure within this of the majority rate ...
const PROBE_TOL: f64 = 0.02;
/// ... and the unrelated-text loss rise (interval upper end) below this.
const UNRELATED_MAX: f64 = 0.01;
/// Refuted: probe more than this above the majority rate ...
const PROBE_REFUTE: f64 = 0.10;
/// ... or unrelated-text loss rise above this.
const UNRELATED_REFUTE: f64 = 0.05;

/// Validations of every model and concept, and the wall seconds of the removal per model.
pub(crate) type Removed = (Vec<Validation>, Vec<f64>);

#[allow(clippy::type_complexity)]
static CACHE: Mutex<Option<((u64, bool), Arc<Removed>)>> = Mutex::new(None);

/// Erase-and-validate of every concept on the shared identification run, once per process.
pub(crate) fn remove_cached(ctx: &mut Ctx, models: &[Loaded]) -> Result<Arc<Removed>> {
    let seed = identify_seed(ctx);
    let key = (seed, ctx.opts.quick);
    if let Ok(g) = CACHE.lock() {
        if let Some((k, v)) = g.as_ref() {
            if *k == key {
                return Ok(Arc::clone(v));
            }
        }
    }
    let sz = sizes(ctx.opts.quick);
    let ided = identify_cached(ctx, models)?;
    let mut vals = Vec::new();
    let mut walls = Vec::new();
    for (m, mi) in models.iter().zip(ided.iter()) {
        let t0 = Instant::now();
        let table = tensor_table(ctx, m)?;
        let vt = validation_text(ctx, m, &sz, seed)?;
        vals.extend(remove_all(m, &table, &mi.data, &mi.ids, &vt, seed)?);
        walls.push(t0.elapsed().as_secs_f64());
    }
    let v = Arc::new((vals, walls));
    if let Ok(mut g) = CACHE.lock() {
        *g = Some((key, Arc::clone(&v)));
    }
    Ok(v)
}

/// Judges one LEACE validation: `Some(true)` supported, `Some(false)` refuted, `None` neither.
pub(crate) fn judge(v: &Validation, causal: bool) -> Option<bool> {
    let excess = v.probe_after - v.majority_rate;
    if excess > PROBE_REFUTE || v.unrelated.value > UNRELATED_REFUTE {
        return Some(false);
    }
    // SmolLM2: the concept-text rise interval excludes 0. MiniLM (no loss): the concept-text
    // damage interval lies above the unrelated-text one.
    let concept_hit = if causal {
        v.concept_text.lo > 0.0
    } else {
        v.concept_text.lo > v.unrelated.hi
    };
    if excess.abs() <= PROBE_TOL && v.unrelated.hi < UNRELATED_MAX && concept_hit {
        Some(true)
    } else {
        None
    }
}

fn verdict_of(j: &[Option<bool>]) -> Verdict {
    if j.contains(&Some(false)) {
        Verdict::Refuted
    } else if j.iter().all(|v| *v == Some(true)) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// Markdown table rows of validations.
pub(crate) fn table(vals: &[Validation]) -> String {
    let mut s = String::from(
        "| model | concept | method | layer | probe before | probe after [95% CI] | majority | unrelated loss Δ [95% CI] | concept loss Δ [95% CI] |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for v in vals {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} | {:.3} [{:.3}, {:.3}] | {:.3} | {:+.4} [{:+.4}, {:+.4}] | {:+.4} [{:+.4}, {:+.4}] |",
            v.model,
            v.concept.name(),
            v.method.name(),
            v.layer,
            v.probe_before,
            v.probe_after,
            v.probe_after_ci95.0,
            v.probe_after_ci95.1,
            v.majority_rate,
            v.unrelated.value,
            v.unrelated.lo,
            v.unrelated.hi,
            v.concept_text.value,
            v.concept_text.lo,
            v.concept_text.hi
        );
    }
    s
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = identify_seed(ctx);
    let sz = sizes(ctx.opts.quick);
    let models = load_models(ctx, None)?;
    let removed = remove_cached(ctx, &models)?;
    let vals: Vec<Validation> = removed.0.clone();
    let leace: Vec<&Validation> = vals.iter().filter(|v| v.method == Method::Leace).collect();
    let judged: Vec<Option<bool>> = leace
        .iter()
        .map(|v| judge(v, v.model == "SmolLM2"))
        .collect();
    let verdict = verdict_of(&judged);
    let max_excess = leace
        .iter()
        .map(|v| v.probe_after - v.majority_rate)
        .fold(f64::NEG_INFINITY, f64::max);
    let max_unrel = leace
        .iter()
        .filter(|v| v.model == "SmolLM2")
        .map(|v| v.unrelated.hi)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "LEACE: probe after erasure at most {max_excess:+.3} from the majority rate; SmolLM2 unrelated-loss rise ≤ {:+.2}% (95% upper end)",
            100.0 * max_unrel
        ),
        "no number (feature removed, function kept)",
        format!(
            "{} of {} LEACE model-concept pairs meet the support rule (probe within {PROBE_TOL} of majority, unrelated rise < {:.0}%, concept loss up), {} refute it; {} chunks × {} tokens per kind (SmolLM2), {} sentences (MiniLM), seed {seed}",
            judged.iter().filter(|j| **j == Some(true)).count(),
            judged.len(),
            100.0 * UNRELATED_MAX,
            judged.iter().filter(|j| **j == Some(false)).count(),
            sz.chunks,
            sz.chunk_len,
            4 * sz.val_sentences
        ),
    );
    let mut body = format!(
        "Erasure site: the MLP hidden activations (input of the down projection) of the layer where the \
         residual-stream probe of `sys-2.identify` peaks. LEACE (closed form, Belrose et al. 2023) is fitted \
         on the training examples and folded into the down projection (`W' = W − (W E) Fᵀ`; MiniLM's bias \
         gets `W E Fᵀ μ`; SmolLM2's projections have no bias, so that constant is dropped — it changes \
         no class-conditional difference). Neuron ablation zeroes the top {} neurons' columns. The probe \
         after erasure is retrained on the erased activations of the training examples and scored on the \
         held-out ones. Loss: SmolLM2 relative change of mean NLL on held-out Brown chunks ({} news + {} other, \
         {} tokens each; concept text = digit-start targets / capitalised-word targets / news chunks, \
         unrelated = the rest), bootstrap over chunks; MiniLM has no LM loss, so its loss is 1 − cos between \
         the edited and original sentence embeddings, concept sentences against the rest. Sizes are reduced \
         from the contract (8 × 512 tokens, 500 sentences) to fit the time budget. Seed {seed}.\n\n",
        super::features::TOP_NEURONS,
        sz.chunks,
        sz.chunks,
        sz.chunk_len
    );
    body.push_str(&table(&vals));
    let pts = |method: Method| -> Vec<(f64, f64)> {
        vals.iter()
            .filter(|v| v.method == method)
            .map(|v| {
                (
                    v.probe_before - v.majority_rate,
                    v.probe_after - v.majority_rate,
                )
            })
            .collect()
    };
    let chart = Chart {
        title: "Probe accuracy above majority, before vs after the edit".into(),
        x_label: "before (accuracy − majority)".into(),
        y_label: "after (accuracy − majority)".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points("LEACE", pts(Method::Leace)),
            Series::points("neuron ablation", pts(Method::Ablation)),
            Series::reference("y = x", vec![(0.0, 0.0), (0.5, 0.5)]),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "sys-2.remove_probe",
        "Held-out probe accuracy above the majority rate on the erased MLP activations, before and after each edit",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "sizes": sz, "validations": vals});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::super::features::{Change, Concept};
    use super::*;

    fn v(after: f64, unrel: (f64, f64), conc_lo: f64) -> Validation {
        Validation {
            model: "SmolLM2".into(),
            concept: Concept::Digit,
            method: Method::Leace,
            layer: 3,
            probe_before: 0.9,
            probe_after: after,
            probe_after_ci95: (after - 0.05, after + 0.05),
            majority_rate: 0.5,
            n_test: 100,
            unrelated: Change {
                value: unrel.0,
                lo: unrel.0 - 0.001,
                hi: unrel.1,
                units: 4,
            },
            concept_text: Change {
                value: conc_lo + 0.01,
                lo: conc_lo,
                hi: conc_lo + 0.02,
                units: 4,
            },
            dropped_bias_norm: 0.0,
            edited: vec![],
        }
    }

    #[test]
    fn judge_follows_the_rule() {
        assert_eq!(judge(&v(0.51, (0.001, 0.005), 0.01), true), Some(true));
        assert_eq!(judge(&v(0.65, (0.001, 0.005), 0.01), true), Some(false));
        assert_eq!(judge(&v(0.51, (0.06, 0.07), 0.01), true), Some(false));
        assert_eq!(judge(&v(0.51, (0.001, 0.02), 0.01), true), None);
        assert_eq!(judge(&v(0.51, (0.001, 0.005), -0.01), true), None);
        assert_eq!(verdict_of(&[Some(true), None]), Verdict::Inconclusive);
        assert_eq!(verdict_of(&[Some(true), Some(false)]), Verdict::Refuted);
        assert_eq!(verdict_of(&[Some(true), Some(true)]), Verdict::Supported);
    }
}
