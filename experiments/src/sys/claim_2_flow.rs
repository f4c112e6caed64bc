//! `sys-2.flow`: the information-flow graph of each concept through the layers (cosine of
//! consecutive difference-of-means directions, transfer accuracy of layer l's direction at layer
//! l+1), against the same graph on shuffled labels.

use std::fmt::Write as _;

use anyhow::Result;
use claimlab_concepts::{information_flow, FlowGraph, LayerActivations};
use rand::seq::SliceRandom;
use serde_json::json;

use super::claim_2_identify::{identify_cached, identify_seed, ModelIdentified};
use super::features::{load_models, rows, ConceptData};
use crate::aecl::common::{quantile, rng};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "sys-2.flow";
/// Seeded label shuffles of the null graphs.
const SHUFFLES: usize = 20;
/// The real graph must beat this quantile of the shuffled ones.
const NULL_QUANTILE: f64 = 0.95;

/// The flow graph of one concept with the given labels (rows aligned with `cd.examples`).
pub(crate) fn graph(cd: &ConceptData, labels: &[bool]) -> Result<FlowGraph> {
    let tr: Vec<bool> = cd.split.train.iter().map(|&i| labels[i]).collect();
    let te: Vec<bool> = cd.split.test.iter().map(|&i| labels[i]).collect();
    let parts: Vec<_> = cd
        .residual
        .iter()
        .map(|x| (rows(x, &cd.split.train), rows(x, &cd.split.test)))
        .collect();
    let layers: Vec<LayerActivations<'_>> = parts
        .iter()
        .map(|(a, b)| LayerActivations {
            train: a.as_ref(),
            test: b.as_ref(),
        })
        .collect();
    Ok(information_flow(&layers, &tr, &te)?)
}

fn verdict_of(beats: &[bool]) -> Verdict {
    if beats.iter().all(|&b| b) {
        Verdict::Supported
    } else if beats.iter().all(|&b| !b) {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = identify_seed(ctx);
    let models = load_models(ctx, None)?;
    let res = identify_cached(ctx, &models)?;
    let mut body = format!(
        "From the sys-2.identify run (seed {seed}): per model and concept, the chain of layers with edge l → l+1 \
         carrying the cosine of the two layers' difference-of-means directions (training rows), the held-out \
         accuracy at layer l+1 of layer l's direction (threshold refitted on layer l+1's training rows) and the \
         squared correlation of the two concept coordinates; node weight at the best layer: the patching effect (Δlog p) \
         (SmolLM2). Null: the same graph on {SHUFFLES} seeded label shuffles.\n\n\
         | model | concept | mean cosine | mean transfer accuracy | null {:.0}th pct | beats null |\n|---|---|---|---|---|---|\n",
        100.0 * NULL_QUANTILE
    );
    let mut beats = Vec::new();
    let mut numbers = Vec::new();
    let mut series = Vec::new();
    for (mi_idx, mi) in res.iter().enumerate() {
        let ModelIdentified {
            name, data, ids, ..
        } = mi;
        for (ci, (cd, id)) in data.concepts.iter().zip(ids).enumerate() {
            let mut g = graph(cd, &cd.labels)?;
            if let Some((m, _, _)) = id.effect {
                if let Some(n) = g
                    .graph
                    .node_weights_mut()
                    .find(|n| n.layer == id.best_layer)
                {
                    n.effect = Some(m);
                }
            }
            let mut r = rng(seed ^ ((mi_idx as u64) << 40) ^ ((ci as u64) << 32));
            let mut null = Vec::with_capacity(SHUFFLES);
            for _ in 0..SHUFFLES {
                let mut l = cd.labels.clone();
                l.shuffle(&mut r);
                // A shuffle can leave a class out of a part: skip it (reported by the count).
                if let Ok(ng) = graph(cd, &l) {
                    null.push(ng.mean_transfer_accuracy);
                }
            }
            let q = quantile(&null, NULL_QUANTILE);
            let beat = g.mean_transfer_accuracy > q;
            beats.push(beat);
            let _ = writeln!(
                body,
                "| {name} | {} | {:.3} | {:.3} | {q:.3} (of {}) | {} |",
                cd.concept.name(),
                g.mean_cosine,
                g.mean_transfer_accuracy,
                null.len(),
                if beat { "yes" } else { "no" }
            );
            let edges: Vec<_> = g.graph.edge_weights().cloned().collect();
            let nodes: Vec<_> = g.graph.node_weights().cloned().collect();
            series.push(Series::line(
                format!("{name} {}", cd.concept.name()),
                edges
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i as f64 / (edges.len().max(1)) as f64, e.transfer_accuracy))
                    .collect(),
            ));
            numbers.push(json!({
                "model": name, "concept": cd.concept, "mean_cosine": g.mean_cosine,
                "mean_transfer_accuracy": g.mean_transfer_accuracy, "null": null,
                "null_quantile": q, "edges": edges, "nodes": nodes
            }));
        }
    }
    let verdict = verdict_of(&beats);
    let n_beat = beats.iter().filter(|&&b| b).count();
    let mut o = Outcome::new(
        ID,
        verdict,
        format!("{n_beat}/{} model-concept graphs beat the shuffled-label null", beats.len()),
        "no number (flow can be mapped)",
        format!(
            "mean transfer accuracy above the {:.0}th percentile of {SHUFFLES} shuffled-label graphs in {n_beat} of {} model-concept pairs; seed {seed}",
            100.0 * NULL_QUANTILE,
            beats.len()
        ),
    );
    let chart = Chart {
        title: "Transfer accuracy of layer l's concept direction at layer l+1".into(),
        x_label: "relative depth of edge".into(),
        y_label: "held-out accuracy".into(),
        log_x: false,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "sys-2.flow_transfer",
        "Per edge of the flow graph: held-out accuracy at layer l+1 of layer l's difference-of-means direction",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "graphs": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_rule() {
        assert_eq!(verdict_of(&[true, true]), Verdict::Supported);
        assert_eq!(verdict_of(&[false, false]), Verdict::Refuted);
        assert_eq!(verdict_of(&[true, false]), Verdict::Inconclusive);
    }
}
