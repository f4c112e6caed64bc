//! `claimlab features`: locate, erase and validate a concept in SmolLM2 and MiniLM
//! (claimlab-concepts on activations captured through the runtime hooks).
//!
//! - `claimlab features find --concept NAME [--model M]`: held-out probe accuracy per layer, the
//!   best layer, its top correlated MLP neurons, the activation-patching effect of each layer
//!   (the concept coordinate patched from negative examples; see `sys::patching`) and the
//!   information-flow graph of the concept direction (as `sys-2.flow`).
//! - `claimlab features erase --concept NAME [--model M] [--method leace|ablation] [--save DIR]`:
//!   LEACE at the best layer folded into the MLP down projection (or ablation of the top neurons'
//!   columns of it); the probe before and after; `--save DIR` writes the whole
//!   edited model, re-readable by `claimlab_weights::Model::open` and the runtime: MiniLM as
//!   `DIR/MiniLM/` (`model.safetensors` in f32 with the original names, plus the original
//!   `config.json` and `tokenizer.json`), SmolLM2 as `DIR/SmolLM2.gguf` (every tensor byte for byte
//!   except the edited ones, stored as F32); and the edited tensors alone as
//!   `DIR/<model>-edit.safetensors` (f32, runtime names).
//! - `claimlab features validate --concept NAME [--model M]`: erase by LEACE and by neuron ablation
//!   and report the probe after erasure and the loss on unrelated and concept text, with intervals,
//!   and each edit's verdict by the `sys-2.remove` rule.
//!
//! Concepts: `digit` (next token starts a number), `capital` (token starts a capitalised word),
//! `news` (sentence from Brown's news genre). Models: `smollm2`, `minilm` (default both).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::json;

use crate::aecl::common::Net;
use crate::sys::claim_2_flow::graph;
use crate::sys::claim_2_identify::identify_models;
use crate::sys::claim_2_remove::{judge, table};
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
    /// Locate the concept: probe accuracy per layer, best layer, top neurons, patching effects.
    Find {
        /// Concept, model, sizes and seed.
        #[command(flatten)]
        common: Common,
    },
    /// Erase the concept at the best layer as a weight edit of the MLP down projection: LEACE
    /// (default) or ablation of the top neurons.
    Erase {
        /// Concept, model, sizes and seed.
        #[command(flatten)]
        common: Common,
        /// Erasure: `leace` (closed form, folded into the down projection) or `ablation` (the
        /// top correlated neurons' columns of the down projection zeroed).
        #[arg(long, default_value = "leace")]
        method: String,
        /// Write the whole edited model (and the edited tensors alone) into this directory.
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

/// Writes the whole model `model` with `overrides` (runtime tensor names; BERT names without the
/// `bert.` prefix) applied, into `dir`: a GGUF model as `dir/<name>.gguf` (unedited tensors byte
/// for byte, edited ones as F32), a safetensors model as `dir/<name>/model.safetensors` (every
/// weight as F32 under its original name; integer buffers are left out) beside copies of its `config.json` and `tokenizer.json`.
/// Returns the path to open.
///
/// # Errors
/// An override that names no tensor of the model, or a file that cannot be read or written.
pub fn save_edited_model(
    model: &claimlab_weights::Model,
    overrides: &claimlab_runtime::Overrides,
    dir: &Path,
    name: &str,
) -> Result<PathBuf> {
    use claimlab_weights::{DType, Format};
    let runtime_name = |t: &str| t.strip_prefix("bert.").unwrap_or(t).to_string();
    for k in overrides.keys() {
        if !model.tensors().iter().any(|t| &runtime_name(&t.name) == k) {
            anyhow::bail!("edited tensor {k} is not in the model");
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    match model.format() {
        Format::Gguf => {
            let out = dir.join(format!("{name}.gguf"));
            let repl = overrides
                .iter()
                .map(|(k, v)| {
                    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    (k.clone(), (DType::F32, bytes))
                })
                .collect();
            claimlab_weights::copy_with_replacements(model, &repl, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            Ok(out)
        }
        Format::Safetensors => {
            let out = dir.join(name);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut tensors = Vec::with_capacity(model.tensors().len());
            for t in model.tensors() {
                // Integer buffers (BERT's `position_ids`) are not weights: the reader skips them.
                if t.dtype == DType::I64 {
                    continue;
                }
                let data = match overrides.get(&runtime_name(&t.name)) {
                    Some(v) => v.clone(),
                    None => model.tensor_f32(&t.name)?,
                };
                tensors.push((t.name.clone(), t.shape.clone(), data));
            }
            write_safetensors(&out.join("model.safetensors"), &tensors)?;
            let src = model.file().parent().unwrap_or(Path::new("."));
            for f in ["config.json", "tokenizer.json"] {
                if src.join(f).is_file() {
                    std::fs::copy(src.join(f), out.join(f))
                        .with_context(|| format!("copying {f} to {}", out.display()))?;
                }
            }
            Ok(out)
        }
    }
}

/// The `--method` of `erase`.
fn parse_method(s: &str) -> Result<Method> {
    match s {
        "leace" => Ok(Method::Leace),
        "ablation" => Ok(Method::Ablation),
        other => anyhow::bail!("unknown method {other:?}; methods: leace, ablation"),
    }
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
    if let FeaturesCmd::Erase { method, .. } = &args.cmd {
        parse_method(method)?;
    }
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
                let _ = writeln!(
                    out,
                    "\nactivation patching (positive's concept coordinate set to a paired negative's at one block; \
                     change of the last block's concept score as a fraction of the class gap, and for SmolLM2 of the \
                     log-probability of the actual next token, nats; bootstrap 95% CI over pairs)\n\n\
                     | layer | Δscore/gap [95% CI] | Δlog p [95% CI] | pairs |\n|---|---|---|---|"
                );
                for p in &id.patching {
                    let lp = p.logp.map_or("—".to_string(), |c| {
                        format!("{:+.4} [{:+.4}, {:+.4}]", c.value, c.lo, c.hi)
                    });
                    let _ = writeln!(
                        out,
                        "| {} | {:+.3} [{:+.3}, {:+.3}] | {lp} | {} |",
                        p.layer, p.score.value, p.score.lo, p.score.hi, p.score.units
                    );
                }
                // Information flow (as sys-2.flow): how much of each layer's concept direction
                // the next layer carries.
                let fg = graph(&mi.data.concepts[0], &mi.data.concepts[0].labels)?;
                let _ = writeln!(
                    out,
                    "\ninformation flow (difference-of-means direction of layer l against layer l+1; transfer \
                     accuracy: layer l's direction thresholded on layer l+1's held-out activations); mean transfer \
                     accuracy {:.3}, mean cosine {:.3}\n\n| edge | cosine | transfer accuracy |\n|---|---|---|",
                    fg.mean_transfer_accuracy, fg.mean_cosine
                );
                let mut flow = Vec::new();
                for e in fg.graph.edge_indices() {
                    let (a, b) = fg
                        .graph
                        .edge_endpoints(e)
                        .context("edge without endpoints")?;
                    let (la, lb) = (fg.graph[a].layer, fg.graph[b].layer);
                    let w = &fg.graph[e];
                    let _ = writeln!(
                        out,
                        "| {la} → {lb} | {:+.3} | {:.3} |",
                        w.cosine, w.transfer_accuracy
                    );
                    flow.push(json!({"from": la, "to": lb, "cosine": w.cosine, "transfer_accuracy": w.transfer_accuracy}));
                }
                out.push('\n');
                js.push(json!({"model": mi.name, "identified": id, "flow": {
                    "edges": flow, "mean_transfer_accuracy": fg.mean_transfer_accuracy,
                    "mean_cosine": fg.mean_cosine}}));
            }
        }
        FeaturesCmd::Erase { save, method, .. } => {
            let method = parse_method(method)?;
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
                    method,
                    seed,
                )?;
                let _ = writeln!(
                    out,
                    "## {}: {} at layer {} (MLP activations)\nprobe before {:.3}, after {:.3} [{:.3}, {:.3}], majority {:.3}\nedited: {}{}\n",
                    m.name,
                    method.name(),
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
                let mut files = serde_json::Value::Null;
                if let Some(dir) = save {
                    let runtime_shape = |name: &str| match &m.net {
                        Net::Llama(l) => l.param(name).map(|p| p.0.to_vec()),
                        Net::Bert(b) => b.param(name).map(|p| p.0.to_vec()),
                    };
                    let mut edit = Vec::new();
                    for (name, data) in &er.overrides {
                        let shape = runtime_shape(name)
                            .with_context(|| format!("runtime has no tensor {name}"))?;
                        edit.push((name.clone(), shape, data.clone()));
                    }
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let edit_file = dir.join(format!("{}-edit.safetensors", m.name));
                    write_safetensors(&edit_file, &edit)?;
                    let model_path =
                        save_edited_model(m.weights(&mut ctx)?, &er.overrides, dir, m.name)?;
                    let _ = writeln!(
                        out,
                        "wrote the edited model to {} and the {} edited tensors to {}\n",
                        model_path.display(),
                        edit.len(),
                        edit_file.display()
                    );
                    files = json!({"model": model_path, "edit": edit_file});
                }
                js.push(json!({
                    "model": m.name, "method": method, "layer": er.layer, "edited": er.edited,
                    "probe_before": er.probe_before, "probe_after": er.probe_after,
                    "dropped_bias_norm": er.dropped_bias_norm, "saved": files
                }));
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
            // Verdict of each edit by the sys-2.remove rule.
            let _ = writeln!(
                out,
                "\n| model | method | verdict (sys-2.remove rule) |\n|---|---|---|"
            );
            let mut verdicts = Vec::new();
            for v in &vals {
                let verdict = match judge(v, v.model == "SmolLM2") {
                    Some(true) => "supported",
                    Some(false) => "refuted",
                    None => "inconclusive",
                };
                let _ = writeln!(out, "| {} | {} | {verdict} |", v.model, v.method.name());
                verdicts.push(json!({"model": v.model, "method": v.method, "verdict": verdict}));
            }
            js.push(json!({"validations": vals, "verdicts": verdicts}));
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
