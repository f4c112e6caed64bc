//! `sys-2.llm`: can a language model name what an identified neuron detects? For the top neurons of
//! each concept in SmolLM2 (sys-2.identify), the Brown contexts that activate each most are shown
//! to SmolLM2 itself, prompted to pick one of the three concept names; accuracy against the known
//! concept, tested against chance 1/3 with a one-sided exact binomial test.

use std::fmt::Write as _;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{Capture, Hooks, Overrides};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::claim_2_identify::{identify_cached, identify_seed, ModelIdentified};
use super::features::{load_models, Concept};
use crate::aecl::common::{Loaded, Net};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "sys-2.llm";
/// Neurons per concept (the contract's top 10; `--quick`: 3).
const NEURONS: usize = 10;
const NEURONS_QUICK: usize = 3;
/// Contexts shown per neuron (the contract's 20; `--quick`: 8).
const CONTEXTS: usize = 20;
const CONTEXTS_QUICK: usize = 8;
/// Tokens of context before the active token, and after it.
const BEFORE: usize = 8;
const AFTER: usize = 2;
/// Chance accuracy with three names.
const CHANCE: f64 = 1.0 / 3.0;
/// Supported below this one-sided p-value (and above chance).
const P_SUPPORT: f64 = 0.01;
/// Refuted above this p-value (or at or below chance).
const P_REFUTE: f64 = 0.5;
/// Tokens generated freely after the prompt (reported, not scored).
const FREE_TOKENS: usize = 6;

/// The three names offered, in `Concept::ALL` order, each with a leading space (the answer
/// continues "… detects").
const NAMES: [&str; 3] = [" numbers", " capitalized words", " news reporting"];

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed from the pmf recurrence (exact up to rounding;
/// meant for the small n here).
pub(crate) fn binomial_sf(k: usize, n: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    // pmf(j) = C(n, j) p^j (1−p)^(n−j), built in log space to avoid underflow.
    let ln_c = |j: usize| -> f64 {
        (1..=j)
            .map(|i| ((n - j + i) as f64).ln() - (i as f64).ln())
            .sum()
    };
    (k..=n)
        .map(|j| (ln_c(j) + j as f64 * p.ln() + (n - j) as f64 * (1.0 - p).ln()).exp())
        .sum::<f64>()
        .min(1.0)
}

/// The verdict rule of `papers/sys.md`.
fn verdict_of(accuracy: f64, p: f64) -> Verdict {
    if accuracy <= CHANCE || p > P_REFUTE {
        Verdict::Refuted
    } else if p < P_SUPPORT {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// The fixed prompt for one neuron's contexts.
pub(crate) fn prompt(contexts: &[String]) -> String {
    let mut s = String::from(
        "Below are text snippets where one neuron of a language model fires most strongly. \
         The token it fires on is marked with [[ ]].\n\n",
    );
    for (i, c) in contexts.iter().enumerate() {
        let _ = writeln!(s, "{}. {}", i + 1, c.replace('\n', " "));
    }
    s.push_str(
        "\nQuestion: Which of these does the neuron detect: numbers, capitalized words, or news reporting?\n\
         Answer: The neuron detects",
    );
    s
}

/// One labelled neuron.
#[derive(Clone, Debug, Serialize)]
struct Labelled {
    concept: Concept,
    layer: usize,
    neuron: usize,
    /// Correlation with the label (sys-2.identify).
    r: f64,
    /// The contexts shown, most active first, with their activation.
    contexts: Vec<(String, f64)>,
    /// Logits of the three names' first tokens after the prompt.
    option_logits: [f64; 3],
    /// Index into `Concept::ALL` of the greedy choice among the three names.
    choice: usize,
    correct: bool,
    /// What greedy decoding writes without the restriction.
    free_text: String,
    /// Which name the free text starts with, if any.
    free_choice: Option<usize>,
}

/// Top contexts (one per sentence) of each `(layer, neuron)` in `wanted` over every text token
/// of the identification sentences.
fn top_contexts(
    m: &Loaded,
    mi: &ModelIdentified,
    wanted: &[(usize, usize)],
    k: usize,
) -> Result<Vec<Vec<(String, f64)>>> {
    let Net::Llama(l) = &m.net else {
        bail!("sys-2.llm labels SmolLM2 neurons");
    };
    let mut layers: Vec<usize> = wanted.iter().map(|w| w.0).collect();
    layers.sort_unstable();
    layers.dedup();
    let hooks = Hooks {
        capture: Capture {
            mlp_post: true,
            layers: Some(layers.clone()),
            ..Capture::default()
        },
        overrides: Overrides::new(),
    };
    let sents = &mi.data.sents;
    // Per sentence, per wanted neuron: (best activation, token index).
    let best: Vec<Vec<(f64, usize)>> = sents
        .par_iter()
        .map(|s| -> Result<Vec<(f64, usize)>> {
            let o = l.forward(&s.tokens, &hooks)?;
            let n = s.tokens.len();
            let mut out = Vec::with_capacity(wanted.len());
            for &(layer, neuron) in wanted {
                let li = layers.iter().position(|&x| x == layer).context("layer")?;
                let a = o.captures.layers[li]
                    .mlp_post
                    .as_ref()
                    .context("mlp_post not captured")?;
                let f = a.len() / n;
                let (mut bv, mut bi) = (f64::NEG_INFINITY, s.offset);
                for i in s.offset..s.offset + s.len() {
                    let v = f64::from(a[i * f + neuron]);
                    if v > bv {
                        (bv, bi) = (v, i);
                    }
                }
                out.push((bv, bi));
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let mut res = Vec::with_capacity(wanted.len());
    for (w, _) in wanted.iter().enumerate() {
        let mut order: Vec<usize> = (0..sents.len()).collect();
        order.sort_by(|&a, &b| best[b][w].0.total_cmp(&best[a][w].0).then(a.cmp(&b)));
        let mut ctxs = Vec::with_capacity(k);
        for &si in order.iter().take(k) {
            let (v, i) = best[si][w];
            let s = &sents[si];
            let lo = i.saturating_sub(BEFORE).max(s.offset);
            let hi = (i + 1 + AFTER).min(s.offset + s.len());
            let text = format!(
                "{}[[{}]]{}",
                m.tok.decode(&s.tokens[lo..i])?,
                m.tok.decode(&s.tokens[i..=i])?,
                m.tok.decode(&s.tokens[i + 1..hi])?
            );
            ctxs.push((text, v));
        }
        res.push(ctxs);
    }
    Ok(res)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = identify_seed(ctx);
    let quick = ctx.opts.quick;
    let (n_neurons, n_ctx) = if quick {
        (NEURONS_QUICK, CONTEXTS_QUICK)
    } else {
        (NEURONS, CONTEXTS)
    };
    let models = load_models(ctx, None)?;
    let ided = identify_cached(ctx, &models)?;
    let (m, mi) = models
        .iter()
        .zip(ided.iter())
        .find(|(m, _)| m.causal())
        .context("no decoder among the models")?;
    let Net::Llama(llm) = &m.net else {
        bail!("the decoder is not a llama model");
    };
    // Neurons: (concept index, layer, neuron, r).
    let mut neurons = Vec::new();
    for id in &mi.ids {
        let ci = Concept::ALL
            .iter()
            .position(|&c| c == id.concept)
            .context("concept")?;
        for &(n, r) in id.top_neurons.iter().take(n_neurons) {
            neurons.push((ci, id.best_layer, n, r));
        }
    }
    let wanted: Vec<(usize, usize)> = neurons.iter().map(|n| (n.1, n.2)).collect();
    let contexts = top_contexts(m, mi, &wanted, n_ctx)?;
    // First token of each name (distinct, checked).
    let mut first = [0u32; 3];
    for (f, name) in first.iter_mut().zip(NAMES) {
        *f = *m.tok.encode(name)?.first().context("empty name")?;
    }
    if first[0] == first[1] || first[1] == first[2] || first[0] == first[2] {
        bail!("the three names share a first token");
    }
    let bar = ctx.bar(neurons.len() as u64, "sys-2.llm: prompting SmolLM2");
    let labelled: Vec<Labelled> = neurons
        .par_iter()
        .zip(&contexts)
        .map(|(&(ci, layer, neuron, r), ctxs)| -> Result<Labelled> {
            let texts: Vec<String> = ctxs.iter().map(|c| c.0.clone()).collect();
            let p = m.tok.encode(&prompt(&texts))?;
            let mut cache = llm.new_cache();
            let ov = Overrides::new();
            let logits = llm.forward_cached(&mut cache, &p, &ov)?;
            let v = llm.config().vocab_size;
            let last = &logits[(p.len() - 1) * v..p.len() * v];
            let option_logits = first.map(|t| f64::from(last[t as usize]));
            let choice = (0..3)
                .max_by(|&a, &b| {
                    option_logits[a]
                        .total_cmp(&option_logits[b])
                        .then(b.cmp(&a))
                })
                .unwrap_or(0);
            // Free greedy continuation from the same cache.
            let argmax = |row: &[f32]| {
                (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                    .unwrap_or(0) as u32
            };
            let mut next = argmax(last);
            let mut gen = Vec::with_capacity(FREE_TOKENS);
            for _ in 0..FREE_TOKENS {
                gen.push(next);
                let lg = llm.forward_cached(&mut cache, &[next], &ov)?;
                next = argmax(&lg);
            }
            let free_text = m.tok.decode(&gen)?;
            let lower = free_text.trim_start().to_lowercase();
            let free_choice = NAMES
                .iter()
                .position(|n| lower.starts_with(n.trim_start().split(' ').next().unwrap_or("")));
            bar.inc(1);
            Ok(Labelled {
                concept: Concept::ALL[ci],
                layer,
                neuron,
                r,
                contexts: ctxs.clone(),
                option_logits,
                choice,
                correct: choice == ci,
                free_text,
                free_choice,
            })
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let n = labelled.len();
    let k = labelled.iter().filter(|l| l.correct).count();
    let acc = k as f64 / n.max(1) as f64;
    let p = binomial_sf(k, n, CHANCE);
    let free_named = labelled.iter().filter(|l| l.free_choice.is_some()).count();
    let free_correct = labelled
        .iter()
        .filter(|l| {
            l.free_choice
                == Some(
                    Concept::ALL
                        .iter()
                        .position(|&c| c == l.concept)
                        .unwrap_or(3),
                )
        })
        .count();
    let verdict = verdict_of(acc, p);
    let mut o = Outcome::new(
        ID,
        verdict,
        format!("SmolLM2 names {k}/{n} neurons' concepts ({:.1}%)", 100.0 * acc),
        "no number (an LLM maps patterns to meanings)",
        format!(
            "accuracy {acc:.3} vs chance {CHANCE:.3}, one-sided binomial p = {p:.2e} (supported < {P_SUPPORT}, refuted > {P_REFUTE}); {n} neurons × {n_ctx} contexts, seed {seed}"
        ),
    );
    let mut body = format!(
        "From the sys-2.identify run (seed {seed}) on SmolLM2: for each concept the {n_neurons} MLP neurons \
         (input of the down projection) most correlated with the label at the best probe layer. For each \
         neuron, the {n_ctx} identification sentences ({} Brown sentences) whose most active text token \
         activates it most, shown as a window of {BEFORE} tokens before and {AFTER} after the token, marked \
         [[ ]]. SmolLM2 gets one fixed prompt per neuron (below) and greedy decoding restricted to the three \
         names: the name whose first token has the highest logit after \"Answer: The neuron detects\". \
         Accuracy against the concept the neuron was selected for; chance 1/3; one-sided exact binomial \
         test. The unrestricted greedy continuation ({FREE_TOKENS} tokens) is reported too: it starts \
         with one of the names for {free_named}/{n} neurons, the right one for {free_correct}/{n}.\n\n\
         SmolLM2-135M is a weak labeller (a model of 135M parameters, not an instruction-following \
         system); the document names no model for this step, so a failure here says little about larger \
         labellers, and a success shows only that the top contexts are readable.\n\n\
         | concept | neurons | correct | accuracy |\n|---|---|---|---|\n",
        mi.data.sents.len()
    );
    let mut pts = Vec::new();
    for (ci, c) in Concept::ALL.iter().enumerate() {
        let of: Vec<&Labelled> = labelled.iter().filter(|l| l.concept == *c).collect();
        let kc = of.iter().filter(|l| l.correct).count();
        let a = kc as f64 / of.len().max(1) as f64;
        pts.push(((ci + 1) as f64, a));
        let _ = writeln!(body, "| {} | {} | {kc} | {a:.2} |", c.name(), of.len());
    }
    let _ = writeln!(
        body,
        "| all | {n} | {k} | {acc:.3} (p = {p:.2e}) |\n\n| concept | layer | neuron | r | choice | free text | top context |\n|---|---|---|---|---|---|---|"
    );
    for l in &labelled {
        let _ = writeln!(
            body,
            "| {} | {} | {} | {:+.2} | {} | {} | {} |",
            l.concept.name(),
            l.layer,
            l.neuron,
            l.r,
            NAMES[l.choice].trim(),
            l.free_text.replace('|', "/").replace('\n', " "),
            l.contexts
                .first()
                .map_or(String::new(), |c| c.0.replace('|', "/").replace('\n', " "))
        );
    }
    let _ = write!(
        body,
        "\nThe prompt (contexts elided):\n\n```\n{}\n```\n",
        prompt(&["…".to_string()])
    );
    let chart = Chart {
        title: "SmolLM2 labelling its own neurons".into(),
        x_label: "concept (1 digit, 2 capital, 3 news)".into(),
        y_label: "accuracy of the chosen name".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points("accuracy per concept", pts),
            Series::reference("chance 1/3", vec![(0.5, CHANCE), (3.5, CHANCE)]),
            Series::reference("all neurons", vec![(0.5, acc), (3.5, acc)]),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "sys-2.llm_accuracy",
        "Share of neurons whose concept SmolLM2 names from their top Brown contexts, per concept, against chance",
    )?);
    o.body = body;
    o.numbers = json!({
        "seed": seed, "neurons_per_concept": n_neurons, "contexts": n_ctx, "correct": k, "n": n,
        "accuracy": acc, "p_value": p, "chance": CHANCE, "free_named": free_named,
        "free_correct": free_correct, "labelled": labelled
    });
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: enumerate all 3^n answer sequences, one of three symbols correct.
    fn brute_sf(k: usize, n: usize) -> f64 {
        let total = 3usize.pow(n as u32);
        let mut hits = 0usize;
        for code in 0..total {
            let (mut c, mut correct) = (code, 0);
            for _ in 0..n {
                if c % 3 == 0 {
                    correct += 1;
                }
                c /= 3;
            }
            if correct >= k {
                hits += 1;
            }
        }
        hits as f64 / total as f64
    }

    #[test]
    fn binomial_tail_matches_enumeration() {
        for n in 1..=7 {
            for k in 0..=n + 1 {
                let (a, b) = (binomial_sf(k, n, CHANCE), brute_sf(k, n));
                assert!((a - b).abs() < 1e-12, "n {n} k {k}: {a} vs {b}");
            }
        }
        // 30 trials: P(X ≥ 17) at p = 1/3 is about 0.0040 (below 0.01), P(X ≥ 15) ≈ 0.043.
        assert!(binomial_sf(17, 30, CHANCE) < 0.01);
        assert!(binomial_sf(15, 30, CHANCE) > 0.01);
    }

    #[test]
    fn verdict_rule() {
        assert_eq!(verdict_of(0.6, 0.001), Verdict::Supported);
        assert_eq!(verdict_of(0.45, 0.1), Verdict::Inconclusive);
        assert_eq!(verdict_of(1.0 / 3.0, 0.4), Verdict::Refuted);
        assert_eq!(verdict_of(0.3, 0.7), Verdict::Refuted);
    }

    #[test]
    fn prompt_lists_every_context() {
        let p = prompt(&["a [[b]] c".into(), "d\ne".into()]);
        assert!(p.contains("1. a [[b]] c\n2. d e\n"));
        assert!(p.ends_with("Answer: The neuron detects"));
    }
}
