//! `claimlab features`: locate, erase and validate a concept in SmolLM2 and MiniLM
//! (claimlab-concepts on activations captured through the runtime hooks).
//!
//! - `claimlab features find --concept NAME [--model M]`: held-out probe accuracy per layer, the
//!   best layer, its top correlated MLP neurons and (SmolLM2) the ablation effect.
//! - `claimlab features erase --concept NAME [--model M] [--save FILE]`: LEACE at the best layer,
//!   folded into the MLP down projection; the probe before and after; `--save` writes the edited
//!   tensors as a safetensors file (f32, original names), ready to replace the originals.
//! - `claimlab features validate --concept NAME [--model M]`: erase by LEACE and by neuron ablation
//!   and report the probe after erasure and the loss on unrelated and concept text, with intervals,
//!   as `sys-2.remove` does.
//!
//! Concepts: `digit` (next token starts a number), `capital` (token starts a capitalised word),
//! `news` (sentence from Brown's news genre). Models: `smollm2`, `minilm` (default both).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::json;

use crate::sys::claim_2_identify::identify_models;
use crate::sys::claim_2_remove::table;
use crate::sys::features::{
    erase, load_models, remove_all, sizes, tensor_table, validation_text, Concept, Method,
};
use crate::{Ctx, CtxOptions};

/// Options shared by the three subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Concept: digit, capital or news.
    #[arg(long)]
    pub concept: String,
    /// Model: smollm2 or minilm (default: both).
    #[arg(long)]
    pub model: Option<String>,
    /// Smaller samples (as `claimlab run --quick`).
    #[arg(long)]
    pub quick: bool,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 20_261_127)]
    pub seed: u64,
    /// Data cache directory (default: $CLAIMLAB_CACHE_DIR or the user cache dir).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Arguments of `claimlab features`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub cmd: FeaturesCmd,
}

/// The `claimlab features` subcommands.
#[derive(Subcommand, Debug)]
pub enum FeaturesCmd {
    /// Locate the concept: probe accuracy per layer, best layer, top neurons, ablation effect.
    Find {
        /// Concept, model, sizes and seed.
        #[command(flatten)]
        common: Common,
    },
    /// Erase the concept with LEACE at the best layer (weight edit of the MLP down projection).
    Erase {
        /// Concept, model, sizes and seed.
        #[command(flatten)]
        common: Common,
        /// Write the edited tensors (f32 safetensors, original names) to this file.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Erase (LEACE and neuron ablation) and validate: probe after erasure, losses with intervals.
    Validate {
        /// Concept, model, sizes and seed.
        #[command(flatten)]
        common: Common,
    },
}

fn context(c: &Common) -> Result<Ctx> {
    Ctx::new(CtxOptions {
        seed: c.seed,
        quick: c.quick,
        out_dir: std::env::temp_dir().join("claimlab-features"),
        model: None,
        cache_dir: c.cache_dir.clone(),
        quiet: true,
    })
}

/// Writes tensors as an f32 safetensors file (header sorted by name).
///
/// # Errors
/// When the file cannot be written.
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<()> {
    let mut sorted: Vec<&(String, Vec<usize>, Vec<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    let mut off = 0usize;
    for (name, shape, data) in &sorted {
        let end = off + 4 * data.len();
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [off, end]}),
        );
        off = end;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + h.len() + off);
    bytes.extend_from_slice(&(h.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&h);
    for (_, _, data) in &sorted {
        for v in data.iter() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Runs `claimlab features …`; returns the text to print.
///
/// # Errors
/// Unknown concept or model, missing data, or a failing model run.
pub fn run(args: Args, json_out: bool) -> Result<String> {
    let (common, kind) = match &args.cmd {
        FeaturesCmd::Find { common } => (common, "find"),
        FeaturesCmd::Erase { common, .. } => (common, "erase"),
        FeaturesCmd::Validate { common } => (common, "validate"),
    };
    let concept = Concept::parse(&common.concept)?;
    let mut ctx = context(common)?;
    let sz = sizes(common.quick);
    let seed = common.seed;
    let models = load_models(&mut ctx, common.model.as_deref())?;
    let ided = identify_models(&mut ctx, &models, &[concept], &sz, seed)?;
    let mut out = String::new();
    let mut js = Vec::new();
    let _ = writeln!(
        out,
        "concept {} ({}), seed {seed}, {} sentences, up to {} examples per class\n",
        concept.name(),
        concept.describe(),
        sz.sentences,
        sz.per_class
    );
    match &args.cmd {
        FeaturesCmd::Find { .. } => {
            for mi in &ided {
                let id = &mi.ids[0];
                let _ = writeln!(
                    out,
                    "## {}: best layer {} (accuracy {:.3}, majority {:.3}, {} examples)\n\n| layer | accuracy | 95% CI | direction norm |\n|---|---|---|---|",
                    mi.name, id.best_layer, id.accuracy[id.best_layer], id.majority_rate, id.n_examples
                );
                for l in 0..id.accuracy.len() {
                    let _ = writeln!(
                        out,
                        "| {l} | {:.3} | [{:.3}, {:.3}] | {:.3} |",
                        id.accuracy[l], id.ci95[l].0, id.ci95[l].1, id.direction_norm[l]
                    );
                }
                let tn: Vec<String> = id
                    .top_neurons
                    .iter()
                    .map(|(i, r)| format!("{i} ({r:+.3})"))
                    .collect();
                let _ = writeln!(
                    out,
                    "\ntop MLP neurons at layer {}: {}",
                    id.best_layer,
                    tn.join(", ")
                );
                if let Some((m, se, n)) = id.effect {
                    let _ = writeln!(
                        out,
                        "ablation of the layer's writes along the concept direction: ΔNLL {m:+.4} ± {se:.4} (n = {n})"
                    );
                }
                out.push('\n');
                js.push(json!({"model": mi.name, "identified": id}));
            }
        }
        FeaturesCmd::Erase { save, .. } => {
            let mut saved = Vec::new();
            for (m, mi) in models.iter().zip(&ided) {
                let table = tensor_table(&mut ctx, m)?;
                let id = &mi.ids[0];
                let neurons: Vec<usize> = id.top_neurons.iter().map(|n| n.0).collect();
                let er = erase(
                    m,
                    &table,
                    &mi.data.concepts[0],
                    id.best_layer,
                    &neurons,
                    Method::Leace,
                    seed,
                )?;
                let _ = writeln!(
                    out,
                    "## {}: LEACE at layer {} (MLP activations)\nprobe before {:.3}, after {:.3} [{:.3}, {:.3}], majority {:.3}\nedited: {}{}\n",
                    m.name,
                    er.layer,
                    er.probe_before.test_accuracy,
                    er.probe_after.test_accuracy,
                    er.probe_after.test_ci95.0,
                    er.probe_after.test_ci95.1,
                    er.probe_after.majority_rate,
                    er.edited.join(", "),
                    if er.dropped_bias_norm > 0.0 {
                        format!(" (no bias in this layer: offset of norm {:.3} dropped)", er.dropped_bias_norm)
                    } else {
                        String::new()
                    }
                );
                for (name, data) in &er.overrides {
                    let shape = table
                        .iter()
                        .find(|t| &t.3 == name)
                        .map(|t| t.4.clone())
                        .unwrap_or_else(|| vec![data.len()]);
                    saved.push((name.clone(), shape, data.clone()));
                }
                js.push(json!({
                    "model": m.name, "layer": er.layer, "edited": er.edited,
                    "probe_before": er.probe_before, "probe_after": er.probe_after,
                    "dropped_bias_norm": er.dropped_bias_norm
                }));
            }
            if let Some(p) = save {
                write_safetensors(p, &saved)?;
                let _ = writeln!(
                    out,
                    "wrote {} edited tensors to {}",
                    saved.len(),
                    p.display()
                );
            }
        }
        FeaturesCmd::Validate { .. } => {
            let mut vals = Vec::new();
            for (m, mi) in models.iter().zip(&ided) {
                let table = tensor_table(&mut ctx, m)?;
                let vt = validation_text(&mut ctx, m, &sz, seed)?;
                vals.extend(remove_all(m, &table, &mi.data, &mi.ids, &vt, seed)?);
            }
            out.push_str(&table(&vals));
            js.push(json!({"validations": vals}));
        }
    }
    if json_out {
        Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "command": kind, "concept": concept.name(), "seed": seed, "quick": common.quick,
                "sizes": sz, "results": js
            }))?
        ))
    } else {
        Ok(out)
    }
}
