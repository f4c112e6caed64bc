//! Sharded `claimlab compress`: the per-tensor work of one compression spread over many
//! machines by a batch scheduler, merged into the file a single run writes, byte for byte.
//!
//! The allocation is global (one budget over all tensors), so a shard cannot pick its tensors'
//! types alone. A sharded run therefore has two rounds around one small global step:
//!
//! 1. **Menus** — `compress ARGS --shard I/N --out menus-I.json`, for I = 0..N−1: each shard
//!    calibrates on the whole model (the calibration is the part every shard repeats; it is one
//!    forward pass per 512 calibration tokens) and builds the menus (bytes and damage of every
//!    block type) of its slice of the tensors, written as JSON with the damages as exact f64 bits.
//! 2. **Plan** — `compress plan menus-*.json --out plan.json`: checks that the N files come from
//!    the same model and settings and cover every tensor once, then runs the same allocation as a
//!    single run (`claimlab_budget::allocate_bits` over the menus in the model's tensor order).
//!    It needs neither the model nor the calibration, and takes seconds.
//! 3. **Quantise** — `compress ARGS --shard I/N --plan plan.json --out part-I.bin`: each shard
//!    fills its tensors' chosen types (rounding; or GPTQ, sequential by default, which runs over
//!    every block in order in each shard because block l's inputs come from the quantised blocks
//!    before it, so only `--gptq-clean` spreads the GPTQ work itself), into a
//!    part file: a JSON header (its slice of the manifest, a fingerprint per tensor) and the
//!    tensor bytes.
//! 4. **Merge** — `compress merge --plan plan.json part-*.bin --out model.gguf`: checks every
//!    part against the plan (all present once, same plan, the expected tensors, types and
//!    lengths, intact bytes) and the model against the plan's fingerprint before writing
//!    anything, then writes the GGUF exactly as a single run does (same metadata, tensor order
//!    and alignment; temporary file, then rename) and scores it (perplexity before and after on
//!    the same Brown news tokens as a single run).
//!
//! ARGS are the arguments of a single run (`--model`, `--target-bpw`/`--target-bytes`,
//! `--calib`, `--calib-tokens`, `--method`, `--gptq-damp`, `--gptq-clean`, `--damage`, `--quick`,
//! `--eval-tokens`), the same
//! for every shard and both rounds: each file records them with the model's fingerprint, and a
//! shard, plan or part made with other settings or another model is refused with the difference
//! named. Tensors go to shards by longest-processing-time order on their element counts (largest
//! first, each to the least-loaded shard, ties by index), so the slices are balanced and depend
//! only on the model. Every step is deterministic and the per-tensor work does not depend on the
//! shard that runs it, so the merged file equals a single run's byte for byte (the test
//! `tests/compress_shard_cli.rs` checks it with 3 shards). Run every step with the same
//! `claimlab` build.
//!
//! BERT encoders (`--model minilm` or a BERT file; see [`super::bert`]) shard the same way: in
//! round 1 each shard embeds the calibration sentences once and measures the sensitivity of
//! its own matrices (each alone at its cheapest type), the plan allocates over all of them, and
//! the merge writes the single run's BERT GGUF (its `general.name` comes from the model's file
//! name, so give the merge the model under the same name) and scores its embedding fidelity on
//! the single run's evaluation sentences. For a BERT safetensors model the fingerprint covers
//! its `tokenizer.json` too (the GGUF's vocabulary comes from it).
//!
//! Not covered yet: the validation of the damage proxy and its loss prediction (and BERT's
//! validation probes and uniform per-row baseline), `--extended-menu`, `--eval-ids-out`, and
//! GPTQ's same-size rounding comparison (a merged GPTQ run reports the GPTQ model only). The
//! merge holds all quantised tensors in memory, as a single run does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use claimlab_budget::{allocate_bits, AllocateConfig, Item};
use claimlab_runtime::{perplexity_streamed_file, Overrides, PerplexityConfig, TextTokenizer};
use claimlab_weights::{copy_with_replacements, DType, Model, Pinned};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    bar, calib_ids, calibration, fisher_of, menu_of, news_tokens, quantise_one, sequential_results,
    targets_of, tmp_path, Args, GptqInputs, MenuOption, Method, TensorMenu, EVAL_CONTEXT,
};
use crate::tools::open_model;

/// The job-array recipe, shown by `claimlab compress --help`.
pub const RECIPE: &str = "\
Sharded compression (a Slurm job array or a Kubernetes indexed Job; shards are 0-based):
  round 1, N tasks:  claimlab compress ARGS --shard $I/N --out work/menus-$I.json
  once:              claimlab compress plan work/menus-*.json --out work/plan.json
  round 2, N tasks:  claimlab compress ARGS --shard $I/N --plan work/plan.json --out work/part-$I.bin
  once:              claimlab compress merge --plan work/plan.json work/part-*.bin --out model.gguf
ARGS (--model, --target-bpw/--target-bytes, --calib, --calib-tokens, --method, --gptq-damp,
--gptq-clean, --damage, --quick, --eval-tokens) must be the same in every task; I is $SLURM_ARRAY_TASK_ID (sbatch --array=0-$((N-1))) or
$JOB_COMPLETION_INDEX (Kubernetes, completionMode: Indexed, completions: N). Each file records the
settings and the model's fingerprint; mismatched, missing or duplicate shards are refused. The
merged GGUF is byte-identical to a single run with ARGS.";

/// Format tag of a round-1 menus file.
const MENUS_FORMAT: &str = "claimlab-compress-menus/1";
/// Format tag of a plan.
const PLAN_FORMAT: &str = "claimlab-compress-plan/1";
/// Magic bytes opening a part file (then a u64 little-endian header length, the JSON header and
/// the tensor bytes).
const PART_MAGIC: &[u8; 8] = b"CLMPART1";
/// Environment variable (a testing hook): milliseconds the merge sleeps between writing its
/// temporary file and renaming it, so that a test can interrupt it there.
pub const MERGE_PAUSE_ENV: &str = "CLAIMLAB_MERGE_PAUSE_MS";

/// Slice `index` of `count` (written `I/N`, 0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards, at least 1.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (e.g. 0/4), got {s:?}"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: need 0 <= I < N (shards are numbered from 0)"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// Arguments of a sharded run, flattened into `compress`'s.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(after_long_help = RECIPE)]
pub struct ShardArgs {
    /// Compress only slice I of N (0-based): without --plan, round 1 (write this slice's menus
    /// as JSON to --out); with --plan, round 2 (write this slice's quantised tensors as a part
    /// file to --out). See `compress plan` and `compress merge`, and the recipe below.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Round 2 of a sharded run: the plan written by `claimlab compress plan`.
    #[arg(long, requires = "shard", value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
}

/// Arguments of `claimlab compress plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// The menus files of round 1, one per shard (any order).
    #[arg(required = true, value_name = "MENUS.json")]
    pub menus: Vec<PathBuf>,
    /// Output plan (JSON).
    #[arg(long, default_value = "plan.json")]
    pub out: PathBuf,
}

/// Arguments of `claimlab compress merge`.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// The part files of round 2, one per shard (any order).
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// The plan the parts were made from.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: PathBuf,
    /// The input model (default: the path the plan records); its fingerprint must match.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data cache directory (Brown text for the scoring; the pinned model).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Write the GGUF without scoring it.
    #[arg(long)]
    pub no_score: bool,
    /// Output GGUF path.
    #[arg(long, default_value = "compressed.gguf")]
    pub out: PathBuf,
}

/// Everything that decides the output bytes (and the scoring), recorded in every file of a
/// sharded run and compared across them. `model` (the path) is informational: machines may
/// mount the model at different paths; the fingerprint decides.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Settings {
    claimlab_version: String,
    /// `llama` (a GGUF decoder) or `bert` (an encoder; see [`super::bert`]).
    #[serde(default = "llama_arch")]
    architecture: String,
    model: PathBuf,
    model_fingerprint: String,
    model_file_bytes: u64,
    n_params: u64,
    n_targets: usize,
    target_bytes: u64,
    fixed_bytes: u64,
    min_bytes: u64,
    method: String,
    gptq_damp: String,
    gptq_embd: bool,
    gptq_clean: bool,
    damage: String,
    calib: String,
    calib_tokens: usize,
    eval_tokens: usize,
}

/// The differences between two settings (field, this value, other value), the path excepted.
fn differences(a: &Settings, b: &Settings) -> Vec<String> {
    let (va, vb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let (Some(oa), Some(ob)) = (va.as_object(), vb.as_object()) else {
        return vec!["unreadable settings".into()];
    };
    oa.iter()
        .filter(|(k, v)| k.as_str() != "model" && ob.get(k.as_str()) != Some(*v))
        .map(|(k, v)| format!("{k} {v} vs {}", ob.get(k.as_str()).unwrap_or(&json!(null))))
        .collect()
}

/// 64-bit FNV-1a over little-endian 8-byte words (the last one zero-padded), then the length:
/// a fingerprint that tells inputs apart, not a cryptographic hash.
#[derive(Clone, Copy)]
struct Fingerprint {
    h: u64,
    len: u64,
}

impl Fingerprint {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fingerprint {
            h: Self::OFFSET,
            len: 0,
        }
    }

    /// Adds `bytes`; a call with a length that is not a multiple of 8 must be the last.
    fn update(&mut self, bytes: &[u8]) {
        for w in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..w.len()].copy_from_slice(w);
            self.h = (self.h ^ u64::from_le_bytes(b)).wrapping_mul(Self::PRIME);
        }
        self.len += bytes.len() as u64;
    }

    fn hex(mut self) -> String {
        self.h = (self.h ^ self.len).wrapping_mul(Self::PRIME);
        format!("{:016x}", self.h)
    }
}

/// Fingerprint of a byte slice.
fn fingerprint(bytes: &[u8]) -> String {
    let mut f = Fingerprint::new();
    f.update(bytes);
    f.hex()
}

/// Fingerprint of a file's contents, read in fixed 1 MiB blocks.
fn file_fingerprint(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut f = Fingerprint::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = file
                .read(&mut buf[filled..])
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        f.update(&buf[..filled]);
        if filled < buf.len() {
            return Ok(f.hex());
        }
    }
}

/// Shard of each tensor (by element counts): longest processing time first, each tensor to the
/// shard with the fewest elements so far, ties by the lower tensor and shard index.
///
/// # Panics
/// If `n_shards` is 0 (a caller bug).
#[must_use]
pub fn assign_shards(n_elems: &[u64], n_shards: usize) -> Vec<usize> {
    assert!(n_shards > 0, "at least one shard");
    let mut order: Vec<usize> = (0..n_elems.len()).collect();
    order.sort_by(|&a, &b| n_elems[b].cmp(&n_elems[a]).then(a.cmp(&b)));
    let mut load = vec![0u64; n_shards];
    let mut out = vec![0usize; n_elems.len()];
    for i in order {
        let s = (0..n_shards)
            .min_by_key(|&s| (load[s], s))
            .unwrap_or_default();
        load[s] += n_elems[i];
        out[i] = s;
    }
    out
}

/// Writes `bytes` to `out` through a temporary file and a rename.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(out);
    let r = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    std::fs::rename(&tmp, out).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming {} to {}", tmp.display(), out.display())
    })
}

/// The model of a sharded run with its settings, checked as a single run checks them.
struct Prepared {
    model: Model,
    settings: Settings,
    /// The tensors that get a menu, in the order of a single run's allocation.
    targets: Vec<claimlab_weights::TensorInfo>,
    calib_tokens: usize,
    /// A BERT encoder's checked plan (`None` for a llama decoder).
    bert: Option<super::bert::Preflight>,
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Rtn => "rtn",
        Method::Gptq => "gptq",
    }
}

/// The architecture tag of settings written before BERT encoders could be sharded.
fn llama_arch() -> String {
    "llama".into()
}

/// Fingerprint of everything of the model that reaches the output: its file, and for a model
/// whose vocabulary lives beside it (BERT safetensors) its `tokenizer.json`.
fn model_fingerprint(model: &Model) -> Result<String> {
    let fp = file_fingerprint(model.file())?;
    match model.tokenizer_json_path() {
        Some(t) if model.gguf_metadata().is_none() => {
            Ok(format!("{fp}+tokenizer {}", file_fingerprint(&t)?))
        }
        _ => Ok(fp),
    }
}

/// Opens and checks the model of `args` and resolves its settings (the preflight of a single
/// run, [`super::preflight`] or [`super::bert::preflight`], plus the fingerprints).
fn prepare(args: &Args) -> Result<Prepared> {
    if args.extended_menu || args.eval_ids_out.is_some() {
        bail!("--extended-menu and --eval-ids-out are not supported with --shard");
    }
    // The checks of a single run, then this run's numbers in common form.
    let (model, bert) = match super::bert::bert_model(args)? {
        Some(m) => {
            let pf = super::bert::preflight(&m, args)?;
            (m, Some(pf))
        }
        None => (
            open_model(
                args.model.as_deref(),
                Pinned::SmolLm2,
                args.cache_dir.clone(),
            )?,
            None,
        ),
    };
    let (pf, architecture, damage) = match &bert {
        Some(b) => (
            super::Preflight {
                n_params: b.n_params,
                targets: b.menu_slots().iter().map(|s| s.info.clone()).collect(),
                fixed_bytes: b.fixed_bytes,
                target_total: b.target_total,
                min_bytes: b.min_bytes,
                eval_tokens: b.eval_tokens,
                calib_tokens: b.calib_tokens,
            },
            "bert",
            "measured: 1 - mean cos of the calibration embeddings".to_string(),
        ),
        None => (
            super::preflight(&model, args)?,
            "llama",
            format!("{:?}", args.damage),
        ),
    };
    // (The preflight checked that a calibration file exists.)
    let calib = match &args.calib {
        Some(f) => format!("file {}", file_fingerprint(f)?),
        None => "Brown, documents outside the news genre, in corpus order".into(),
    };
    let settings = Settings {
        claimlab_version: env!("CARGO_PKG_VERSION").into(),
        architecture: architecture.into(),
        model: model.path().to_path_buf(),
        model_fingerprint: model_fingerprint(&model)?,
        model_file_bytes: std::fs::metadata(model.file())?.len(),
        n_params: pf.n_params,
        n_targets: pf.targets.len(),
        target_bytes: pf.target_total,
        fixed_bytes: pf.fixed_bytes,
        min_bytes: pf.min_bytes,
        method: method_name(args.method).into(),
        gptq_damp: format!("{:?}", args.gptq_damp),
        gptq_embd: std::env::var_os("CLAIMLAB_GPTQ_EMBD").is_some(),
        gptq_clean: args.gptq_clean,
        damage,
        calib,
        calib_tokens: pf.calib_tokens,
        eval_tokens: pf.eval_tokens,
    };
    Ok(Prepared {
        model,
        settings,
        targets: pf.targets,
        calib_tokens: pf.calib_tokens,
        bert,
    })
}

/// One option of a menu as stored: the damages as exact bits (JSON floats need not round-trip).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredOption {
    dtype: String,
    ggml_id: u32,
    bytes: usize,
    sq_error: f64,
    weighted_error: f64,
    sq_error_bits: u64,
    weighted_error_bits: u64,
}

/// One tensor's menu as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMenu {
    index: usize,
    name: String,
    n_elems: usize,
    row: usize,
    input_ggml_id: u32,
    options: Vec<StoredOption>,
}

fn dtype_of(id: u32) -> Result<DType> {
    DType::from_ggml_id(id).with_context(|| format!("unknown GGML type id {id}"))
}

fn ggml_id(d: DType) -> Result<u32> {
    d.ggml_id()
        .with_context(|| format!("type {d} has no GGML id"))
}

impl StoredMenu {
    fn from_menu(index: usize, m: &TensorMenu) -> Result<Self> {
        Ok(StoredMenu {
            index,
            name: m.name.clone(),
            n_elems: m.n_elems,
            row: m.row,
            input_ggml_id: ggml_id(m.input_dtype)?,
            options: m
                .options
                .iter()
                .map(|o| {
                    Ok(StoredOption {
                        dtype: o.dtype.to_string(),
                        ggml_id: ggml_id(o.dtype)?,
                        bytes: o.bytes,
                        sq_error: o.sq_error,
                        weighted_error: o.weighted_error,
                        sq_error_bits: o.sq_error.to_bits(),
                        weighted_error_bits: o.weighted_error.to_bits(),
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    fn to_menu(&self) -> Result<TensorMenu> {
        Ok(TensorMenu {
            name: self.name.clone(),
            n_elems: self.n_elems,
            row: self.row,
            input_dtype: dtype_of(self.input_ggml_id)?,
            options: self
                .options
                .iter()
                .map(|o| {
                    Ok(MenuOption {
                        dtype: dtype_of(o.ggml_id)?,
                        bytes: o.bytes,
                        sq_error: f64::from_bits(o.sq_error_bits),
                        weighted_error: f64::from_bits(o.weighted_error_bits),
                    })
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// A round-1 file: one shard's menus.
#[derive(Debug, Serialize, Deserialize)]
struct MenusFile {
    format: String,
    shard: usize,
    n_shards: usize,
    settings: Settings,
    calibration: serde_json::Value,
    seconds: f64,
    tensors: Vec<StoredMenu>,
}

/// One tensor of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlannedTensor {
    index: usize,
    name: String,
    shard: usize,
    n_elems: usize,
    chosen: String,
    ggml_id: u32,
    bytes: usize,
    sq_error: f64,
    weighted_error: f64,
}

/// The plan: settings, the allocation and each tensor's type and shard.
#[derive(Debug, Serialize, Deserialize)]
struct PlanFile {
    format: String,
    n_shards: usize,
    settings: Settings,
    /// Fingerprint of the settings and the chosen types (every part records it).
    plan_fingerprint: String,
    max_bytes: u64,
    allocation: serde_json::Value,
    tensors: Vec<PlannedTensor>,
}

/// One tensor of a part file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartTensor {
    index: usize,
    name: String,
    ggml_id: u32,
    offset: u64,
    len: u64,
    fingerprint: String,
    gptq: Option<serde_json::Value>,
}

/// The JSON header of a part file.
#[derive(Debug, Serialize, Deserialize)]
struct PartHeader {
    format: String,
    shard: usize,
    n_shards: usize,
    plan_fingerprint: String,
    seconds: f64,
    tensors: Vec<PartTensor>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a {what} (JSON)", path.display()))
}

/// Runs `claimlab compress ARGS --shard I/N` (round 1 without `--plan`, round 2 with it).
///
/// # Errors
/// As a single run's checks; a plan made with other settings or another model; failures of the
/// calibration, quantisation or writing.
pub(crate) fn run_shard(args: &Args, json_out: bool) -> Result<String> {
    let shard = args.shard.shard.context("--shard I/N is needed")?;
    let t0 = Instant::now();
    let prep = prepare(args)?;
    match &args.shard.plan {
        None => menus_round(args, shard, &prep, json_out, t0),
        Some(p) => quantise_round(args, shard, &prep, p, json_out, t0),
    }
}

fn shard_of_targets(prep: &Prepared, shard: Shard) -> Vec<usize> {
    let elems: Vec<u64> = prep.targets.iter().map(|t| t.n_elems()).collect();
    assign_shards(&elems, shard.count)
        .iter()
        .enumerate()
        .filter(|&(_, &s)| s == shard.index)
        .map(|(i, _)| i)
        .collect()
}

fn menus_round(
    args: &Args,
    shard: Shard,
    prep: &Prepared,
    json_out: bool,
    t0: Instant,
) -> Result<String> {
    let mine = shard_of_targets(prep, shard);
    let model = &prep.model;
    let (tensors, calibration) = if let Some(b) = &prep.bert {
        // Each shard embeds the calibration sentences once and measures its own tensors.
        let c = super::bert::shard_calibration(model, args, b)?;
        let slots = b.menu_slots();
        let pb = bar(mine.len() as u64, "menus + damage", json_out);
        let tensors: Vec<StoredMenu> = mine
            .iter()
            .map(|&i| {
                let m = super::bert::shard_menu(model, &c, slots[i])?;
                pb.inc(1);
                StoredMenu::from_menu(i, &m)
            })
            .collect::<Result<_>>()?;
        pb.finish_and_clear();
        (
            tensors,
            json!({"text": c.calib.what, "sentences": c.calib.ids.len(),
                   "tokens": c.calib.ids.iter().map(Vec::len).sum::<usize>()}),
        )
    } else {
        let tok = TextTokenizer::for_model(model)?;
        let (cal, calib_what, cids) = calibration(model, &tok, args, prep.calib_tokens, json_out)?;
        let names: Vec<String> = mine.iter().map(|&i| prep.targets[i].name.clone()).collect();
        let fisher = fisher_of(model, &names, &cids, args, json_out)?;
        let pb = bar(mine.len() as u64, "menus", json_out);
        let tensors: Vec<StoredMenu> = mine
            .par_iter()
            .map(|&i| {
                let m = menu_of(model, &prep.targets[i], &cal, fisher.as_ref(), args)?;
                pb.inc(1);
                StoredMenu::from_menu(i, &m)
            })
            .collect::<Result<_>>()?;
        pb.finish_and_clear();
        (
            tensors,
            json!({"text": calib_what, "tokens": cal.n_tokens, "rebuild_rel_error": cal.rebuild_error}),
        )
    };
    let file = MenusFile {
        format: MENUS_FORMAT.into(),
        shard: shard.index,
        n_shards: shard.count,
        settings: prep.settings.clone(),
        calibration,
        seconds: t0.elapsed().as_secs_f64(),
        tensors,
    };
    write_atomically(&args.out, &serde_json::to_vec(&file)?)?;
    summary(
        json_out,
        &json!({"stage": "menus", "shard": shard.index, "n_shards": shard.count, "tensors": file.tensors.len(),
                "of_tensors": prep.targets.len(), "out": args.out, "seconds": file.seconds}),
    )
}

fn summary(json_out: bool, js: &serde_json::Value) -> Result<String> {
    if json_out {
        return Ok(serde_json::to_string_pretty(js)?);
    }
    let mut s = String::new();
    if let Some(o) = js.as_object() {
        for (k, v) in o {
            let _ = writeln!(s, "{k:<14} {v}");
        }
    }
    Ok(s)
}

/// Shards `0..n` that `present` misses, and those it holds more than once (with their files).
fn coverage(n: usize, present: &[(usize, &Path)]) -> Result<()> {
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for &(s, p) in present {
        if let Some(prev) = seen.insert(s, p) {
            bail!(
                "shard {s}/{n} is given twice: {} and {}",
                prev.display(),
                p.display()
            );
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|s| !seen.contains_key(s))
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing shard(s) {} of {n}: every shard 0..{} must be given once",
            missing.join(", "),
            n - 1
        );
    }
    Ok(())
}

/// Runs `claimlab compress plan`: the global allocation over all shards' menus.
///
/// # Errors
/// Unreadable files, shards from different settings or models, missing or duplicate shards,
/// tensors not covered exactly once, or an allocation failure.
pub(crate) fn plan(args: &PlanArgs, json_out: bool) -> Result<String> {
    let mut files: Vec<(PathBuf, MenusFile)> = Vec::new();
    for p in &args.menus {
        let f: MenusFile = read_json(p, "menus file of `compress --shard`")?;
        if f.format != MENUS_FORMAT {
            bail!(
                "{}: format {:?}, expected {MENUS_FORMAT:?} (a round-1 menus file)",
                p.display(),
                f.format
            );
        }
        files.push((p.clone(), f));
    }
    let (p0, f0) = &files[0];
    for (p, f) in &files[1..] {
        if f.n_shards != f0.n_shards {
            bail!(
                "{} is shard {}/{} but {} is shard {}/{}: all shards must have the same N",
                p.display(),
                f.shard,
                f.n_shards,
                p0.display(),
                f0.shard,
                f0.n_shards
            );
        }
        let d = differences(&f.settings, &f0.settings);
        if !d.is_empty() {
            bail!(
                "{} was made with other settings or another model than {}: {}",
                p.display(),
                p0.display(),
                d.join("; ")
            );
        }
    }
    let n = f0.n_shards;
    let present: Vec<(usize, &Path)> = files.iter().map(|(p, f)| (f.shard, p.as_path())).collect();
    coverage(n, &present)?;
    let settings = f0.settings.clone();
    let n_targets = settings.n_targets;
    let mut slots: Vec<Option<(usize, &StoredMenu)>> = vec![None; n_targets];
    for (p, f) in &files {
        for m in &f.tensors {
            let slot = slots.get_mut(m.index).with_context(|| {
                format!(
                    "{}: tensor index {} beyond the model's {n_targets}",
                    p.display(),
                    m.index
                )
            })?;
            if slot.is_some() {
                bail!("{}: tensor {} appears in two shards", p.display(), m.name);
            }
            *slot = Some((f.shard, m));
        }
    }
    let stored: Vec<(usize, &StoredMenu)> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| s.with_context(|| format!("tensor #{i} is in no shard's menus")))
        .collect::<Result<_>>()?;
    let expect = assign_shards(
        &stored
            .iter()
            .map(|(_, m)| m.n_elems as u64)
            .collect::<Vec<_>>(),
        n,
    );
    for ((s, m), e) in stored.iter().zip(&expect) {
        if s != e {
            bail!(
                "tensor {} is in shard {s}'s menus but belongs to shard {e}",
                m.name
            );
        }
    }
    let menus: Vec<TensorMenu> = stored
        .iter()
        .map(|(_, m)| m.to_menu())
        .collect::<Result<_>>()?;
    let (choice, rep) = allocate(&menus, settings.target_bytes, settings.fixed_bytes)?;
    let max_bytes = settings.fixed_bytes
        + menus
            .iter()
            .map(|m| m.options.iter().map(|o| o.bytes as u64).max().unwrap_or(0))
            .sum::<u64>();
    let mut tensors = Vec::with_capacity(menus.len());
    for (i, ((s, _), (m, &c))) in stored.iter().zip(menus.iter().zip(&choice)).enumerate() {
        let o = m.options[c];
        tensors.push(PlannedTensor {
            index: i,
            name: m.name.clone(),
            shard: *s,
            n_elems: m.n_elems,
            chosen: o.dtype.to_string(),
            ggml_id: ggml_id(o.dtype)?,
            bytes: o.bytes,
            sq_error: o.sq_error,
            weighted_error: o.weighted_error,
        });
    }
    let plan = PlanFile {
        format: PLAN_FORMAT.into(),
        n_shards: n,
        plan_fingerprint: plan_fingerprint(n, &settings, &tensors)?,
        settings,
        max_bytes,
        allocation: serde_json::to_value(&rep)?,
        tensors,
    };
    write_atomically(&args.out, &serde_json::to_vec_pretty(&plan)?)?;
    let bytes: u64 =
        plan.tensors.iter().map(|t| t.bytes as u64).sum::<u64>() + plan.settings.fixed_bytes;
    summary(
        json_out,
        &json!({"stage": "plan", "n_shards": n, "tensors": plan.tensors.len(), "plan_fingerprint": plan.plan_fingerprint,
                "tensor_bytes": bytes, "target_bytes": plan.settings.target_bytes, "out": args.out}),
    )
}

/// The single run's allocation: `allocate_bits` on (bytes, activation-weighted damage) within
/// the target less the fixed bytes; the exact optimum when known, else the Lagrangian choice.
pub(crate) fn allocate(
    menus: &[TensorMenu],
    target_total: u64,
    fixed_bytes: u64,
) -> Result<(Vec<usize>, claimlab_budget::AllocationReport)> {
    #[allow(clippy::cast_precision_loss)]
    let items: Vec<Vec<Item>> = menus
        .iter()
        .map(|m| {
            m.options
                .iter()
                .map(|o| Item::new(o.bytes as f64, o.weighted_error))
                .collect()
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let budget = target_total.saturating_sub(fixed_bytes) as f64;
    let rep = allocate_bits(&items, budget, &AllocateConfig::default())?;
    let choice = rep
        .exact
        .as_ref()
        .map_or(&rep.lagrangian.choice, |e| &e.choice)
        .clone();
    Ok((choice, rep))
}

/// Fingerprint of a plan's shard count, settings and tensors (names, shards, types, bytes).
fn plan_fingerprint(n: usize, settings: &Settings, tensors: &[PlannedTensor]) -> Result<String> {
    let mut fp = format!("{n}\n").into_bytes();
    fp.extend_from_slice(&serde_json::to_vec(settings)?);
    for t in tensors {
        fp.extend_from_slice(
            format!(
                "\n{}\0{}\0{}\0{}\0{}",
                t.index, t.name, t.shard, t.ggml_id, t.bytes
            )
            .as_bytes(),
        );
    }
    Ok(fingerprint(&fp))
}

fn read_plan(path: &Path) -> Result<PlanFile> {
    let p: PlanFile = read_json(path, "plan of `compress plan`")?;
    if p.format != PLAN_FORMAT {
        bail!(
            "{}: format {:?}, expected {PLAN_FORMAT:?} (a plan of `compress plan`)",
            path.display(),
            p.format
        );
    }
    if plan_fingerprint(p.n_shards, &p.settings, &p.tensors)? != p.plan_fingerprint {
        bail!(
            "{}: the plan does not match its fingerprint (edited or damaged); make it again with `compress plan`",
            path.display()
        );
    }
    Ok(p)
}

fn quantise_round(
    args: &Args,
    shard: Shard,
    prep: &Prepared,
    plan_path: &Path,
    json_out: bool,
    t0: Instant,
) -> Result<String> {
    let plan = read_plan(plan_path)?;
    let d = differences(&prep.settings, &plan.settings);
    if !d.is_empty() {
        bail!(
            "{}: the plan was made with other settings or another model than this run: {} (this run vs the plan)",
            plan_path.display(),
            d.join("; ")
        );
    }
    if plan.n_shards != shard.count {
        bail!(
            "{}: the plan has {} shards, this run is shard {}/{}",
            plan_path.display(),
            plan.n_shards,
            shard.index,
            shard.count
        );
    }
    let model = &prep.model;
    let mine: Vec<&PlannedTensor> = plan
        .tensors
        .iter()
        .filter(|t| t.shard == shard.index)
        .collect();
    let needs_cal = mine.iter().any(|t| {
        dtype_of(t.ggml_id).is_ok_and(|dt| {
            prep.targets
                .get(t.index)
                .is_some_and(|ti| super::uses_gptq(args, dt, ti))
        })
    });
    // GPTQ's inputs: the clean calibration (--gptq-clean), or the sequential run over the
    // whole model (each block's inputs come from every block before it, so every shard repeats
    // it and keeps its own slice; --gptq-clean distributes the GPTQ work itself).
    let (cal, seq) = if !needs_cal {
        (None, None)
    } else if args.gptq_clean {
        let tok = TextTokenizer::for_model(model)?;
        let cal = calibration(model, &tok, args, prep.calib_tokens, json_out)?.0;
        (Some(cal), None)
    } else {
        let tok = TextTokenizer::for_model(model)?;
        let (cids, _) = calib_ids(
            &tok,
            args.cache_dir.clone(),
            args.calib.as_deref(),
            prep.calib_tokens,
        )?;
        let pick = plan
            .tensors
            .iter()
            .map(|t| Ok((t.name.clone(), dtype_of(t.ggml_id)?)))
            .collect::<Result<HashMap<String, DType>>>()?;
        (
            None,
            Some(sequential_results(model, &pick, &cids, args, json_out)?),
        )
    };
    let gi = match (&cal, &seq) {
        (Some(c), _) => Some(GptqInputs::Clean(c)),
        (None, Some(s)) => Some(GptqInputs::Sequential(s)),
        (None, None) => None,
    };
    let pb = bar(mine.len() as u64, "quantise chosen", json_out);
    let done: Vec<(Vec<u8>, Option<serde_json::Value>)> = mine
        .par_iter()
        .map(|t| {
            let ti = prep
                .targets
                .get(t.index)
                .filter(|ti| ti.name == t.name)
                .with_context(|| {
                    format!("plan tensor {} (#{}) is not in the model", t.name, t.index)
                })?;
            let dt = dtype_of(t.ggml_id)?;
            let m = TensorMenu {
                name: t.name.clone(),
                n_elems: t.n_elems,
                row: *ti.shape.last().unwrap_or(&1),
                input_dtype: ti.dtype,
                options: Vec::new(),
            };
            let (q, g) = quantise_one(model, &m, dt, ti, gi, args)?;
            pb.inc(1);
            Ok(match g {
                Some((gq, rep)) => (gq, Some(serde_json::to_value(rep)?)),
                None => (q, None),
            })
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let mut header = PartHeader {
        format: "claimlab-compress-part/1".into(),
        shard: shard.index,
        n_shards: shard.count,
        plan_fingerprint: plan.plan_fingerprint.clone(),
        seconds: 0.0,
        tensors: Vec::with_capacity(mine.len()),
    };
    let mut offset = 0u64;
    for (t, (bytes, g)) in mine.iter().zip(&done) {
        if bytes.len() != t.bytes {
            bail!(
                "{}: {} bytes at {} but the plan says {}",
                t.name,
                bytes.len(),
                t.chosen,
                t.bytes
            );
        }
        header.tensors.push(PartTensor {
            index: t.index,
            name: t.name.clone(),
            ggml_id: t.ggml_id,
            offset,
            len: bytes.len() as u64,
            fingerprint: fingerprint(bytes),
            gptq: g.clone(),
        });
        offset += bytes.len() as u64;
    }
    header.seconds = t0.elapsed().as_secs_f64();
    let hjs = serde_json::to_vec(&header)?;
    let mut out = Vec::with_capacity(16 + hjs.len() + usize::try_from(offset)?);
    out.extend_from_slice(PART_MAGIC);
    out.extend_from_slice(&(hjs.len() as u64).to_le_bytes());
    out.extend_from_slice(&hjs);
    for (b, _) in &done {
        out.extend_from_slice(b);
    }
    write_atomically(&args.out, &out)?;
    summary(
        json_out,
        &json!({"stage": "quantise", "shard": shard.index, "n_shards": shard.count, "tensors": header.tensors.len(),
                "bytes": offset, "out": args.out, "seconds": header.seconds}),
    )
}

/// A part file read and checked on its own (magic, header, data length).
fn read_part(path: &Path) -> Result<(PartHeader, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 16 || &bytes[..8] != PART_MAGIC {
        bail!(
            "{}: not a part file of `compress --shard I/N --plan` (no {:?} magic)",
            path.display(),
            String::from_utf8_lossy(PART_MAGIC)
        );
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[8..16]);
    let hlen = usize::try_from(u64::from_le_bytes(len8))?;
    let data_start = 16usize
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .with_context(|| format!("{}: truncated header", path.display()))?;
    let header: PartHeader = serde_json::from_slice(&bytes[16..data_start])
        .with_context(|| format!("{}: unreadable part header", path.display()))?;
    let data = bytes[data_start..].to_vec();
    let total: u64 = header.tensors.iter().map(|t| t.len).sum();
    if total != data.len() as u64 {
        bail!(
            "{}: {} bytes of tensor data, the header lists {total} (truncated or damaged)",
            path.display(),
            data.len()
        );
    }
    Ok((header, data))
}

/// Runs `claimlab compress merge`: checks the parts against the plan and the model, writes the
/// GGUF as a single run does and scores it.
///
/// # Errors
/// Missing, duplicate or foreign parts (another plan), parts whose tensors, types, lengths or
/// bytes differ from the plan's, a model whose fingerprint differs: all before any output;
/// then failures of the writer or the runtime.
#[allow(clippy::too_many_lines)]
pub(crate) fn merge(args: &MergeArgs, json_out: bool) -> Result<String> {
    let t0 = Instant::now();
    let plan = read_plan(&args.plan)?;
    let n = plan.n_shards;
    let mut parts = Vec::new();
    for p in &args.parts {
        let (h, data) = read_part(p)?;
        if h.plan_fingerprint != plan.plan_fingerprint {
            bail!(
                "{} was made from another plan (fingerprint {}, {} has {}): rerun round 2 with this plan",
                p.display(),
                h.plan_fingerprint,
                args.plan.display(),
                plan.plan_fingerprint
            );
        }
        if h.n_shards != n {
            bail!(
                "{} is shard {}/{} but the plan has {n} shards",
                p.display(),
                h.shard,
                h.n_shards
            );
        }
        parts.push((p.clone(), h, data));
    }
    let present: Vec<(usize, &Path)> = parts
        .iter()
        .map(|(p, h, _)| (h.shard, p.as_path()))
        .collect();
    coverage(n, &present)?;
    let mut repl = std::collections::HashMap::new();
    let mut gptq_reports = Vec::new();
    for (p, h, data) in &parts {
        let want: Vec<&PlannedTensor> =
            plan.tensors.iter().filter(|t| t.shard == h.shard).collect();
        let got: Vec<(&str, u32)> = h
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.ggml_id))
            .collect();
        let expect: Vec<(&str, u32)> = want.iter().map(|t| (t.name.as_str(), t.ggml_id)).collect();
        if got != expect {
            bail!(
                "{}: its tensors or types differ from the plan's for shard {}",
                p.display(),
                h.shard
            );
        }
        for (t, w) in h.tensors.iter().zip(&want) {
            let range = usize::try_from(t.offset)?..usize::try_from(t.offset + t.len)?;
            let bytes = data
                .get(range)
                .with_context(|| format!("{}: {} lies outside the data", p.display(), t.name))?;
            if bytes.len() != w.bytes || fingerprint(bytes) != t.fingerprint {
                bail!(
                    "{}: the bytes of {} are damaged (length {} vs {}, or fingerprint)",
                    p.display(),
                    t.name,
                    bytes.len(),
                    w.bytes
                );
            }
            repl.insert(t.name.clone(), (dtype_of(t.ggml_id)?, bytes.to_vec()));
            if let Some(g) = &t.gptq {
                gptq_reports.push(json!({"name": t.name, "errors": g}));
            }
        }
    }
    drop(parts);
    let model_path = args
        .model
        .clone()
        .unwrap_or_else(|| plan.settings.model.clone());
    let bert = plan.settings.architecture == "bert";
    let model = if bert && !model_path.exists() {
        // `--model minilm` (the pinned encoder, from the cache).
        super::bert::bert_model_at(&model_path, args.cache_dir.clone())?
            .with_context(|| format!("{}: no such model", model_path.display()))?
    } else {
        open_model(Some(&model_path), Pinned::SmolLm2, args.cache_dir.clone())?
    };
    let fp = model_fingerprint(&model)?;
    if fp != plan.settings.model_fingerprint {
        bail!(
            "{}: model fingerprint {fp}, the plan was made from {} (fingerprint {}): give the same model with --model",
            model.file().display(),
            plan.settings.model.display(),
            plan.settings.model_fingerprint
        );
    }
    let bert_slots = if bert {
        Some(super::bert::plan_tensors(&model)?.0)
    } else {
        None
    };
    let n_targets = match &bert_slots {
        Some(slots) => slots
            .iter()
            .filter(|s| matches!(s.plan, super::bert::Plan::Menu))
            .count(),
        None => targets_of(&model).len(),
    };
    if repl.len() != n_targets {
        bail!(
            "the parts hold {} tensors, the model has {n_targets} to compress",
            repl.len(),
        );
    }
    // Write exactly as a single run (temporary file, then rename).
    let tmp = tmp_path(&args.out);
    let written = match &bert_slots {
        Some(slots) => super::bert::write_gguf(&model, slots, &repl, &tmp),
        None => copy_with_replacements(&model, &repl, &tmp).map_err(Into::into),
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    drop(repl);
    if let Some(ms) = std::env::var(MERGE_PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.out.display()))?;
    let t_write = t0.elapsed().as_secs_f64();

    let out_model =
        Model::open(&args.out).with_context(|| format!("re-opening {}", args.out.display()))?;
    let out_tensor_bytes = out_model.tensor_bytes();
    let file_bytes = std::fs::metadata(&args.out)?.len();
    let s = &plan.settings;
    #[allow(clippy::cast_precision_loss)]
    let bpw = |bytes: u64| bytes as f64 * 8.0 / s.n_params as f64;
    if bert {
        let fid = if args.no_score {
            None
        } else {
            Some(super::bert::merged_fidelity(
                &model,
                &out_model,
                args.cache_dir.clone(),
                s.eval_tokens,
            )?)
        };
        let secs = t0.elapsed().as_secs_f64();
        let field = |k: &str| fid.as_ref().map(|f| f[k].clone());
        let js = json!({
            "architecture": "bert", "input": model.path(), "output": args.out, "n_shards": n, "plan": args.plan,
            "plan_fingerprint": plan.plan_fingerprint, "method": s.method,
            "n_params": s.n_params, "target_bytes": s.target_bytes, "target_bpw": bpw(s.target_bytes),
            "min_bytes": s.min_bytes, "max_bytes": plan.max_bytes, "fixed_f32_bytes": s.fixed_bytes,
            "tensor_bytes": out_tensor_bytes, "bpw": bpw(out_tensor_bytes), "file_bytes": file_bytes,
            "allocation": plan.allocation, "eval": field("eval"), "fidelity": field("fidelity"),
            "measured_damage": field("measured_damage"), "tokenizer_mismatches": field("tokenizer_mismatches"),
            "seconds": secs, "seconds_write": t_write,
            "tensors": plan.tensors.iter().map(|t| json!({"name": t.name, "shard": t.shard, "chosen": t.chosen, "bytes": t.bytes,
                "sq_error": t.sq_error, "predicted_damage": t.weighted_error})).collect::<Vec<_>>(),
        });
        if json_out {
            return Ok(serde_json::to_string_pretty(&js)?);
        }
        let mut o = String::new();
        let _ = writeln!(
            o,
            "merged      {n} shards of {} into {} (BERT, {} tensors)",
            model.path().display(),
            args.out.display(),
            out_model.tensors().len()
        );
        let _ = writeln!(
            o,
            "size        tensor data {} bytes = {:.3} bpw (target {} bytes, {:.3} bpw); file {} bytes",
            out_tensor_bytes,
            bpw(out_tensor_bytes),
            s.target_bytes,
            bpw(s.target_bytes),
            file_bytes
        );
        if let Some(f) = &fid {
            let _ = writeln!(
                o,
                "fidelity    {} Brown news sentences: mean cos {}, min cos {}, Spearman of pairwise similarities {}",
                f["eval"]["sentences"], f["fidelity"]["mean_cosine"], f["fidelity"]["min_cosine"], f["fidelity"]["spearman"]
            );
        }
        let _ = writeln!(
            o,
            "time        {secs:.1} s (checks and write {t_write:.1} s)"
        );
        return Ok(o);
    }
    let scores = if args.no_score {
        None
    } else {
        let tok = TextTokenizer::for_model(&model)?;
        let ids = news_tokens(&tok, args.cache_dir.clone(), s.eval_tokens)?;
        let cfg = PerplexityConfig {
            context: EVAL_CONTEXT.min(ids.len()),
            stride: EVAL_CONTEXT.min(ids.len()),
        };
        let pb = bar(2, "perplexity", json_out);
        // Streamed block by block from the files, as a single run scores them.
        let before = perplexity_streamed_file(&model, &ids, &cfg, &Overrides::default())?;
        pb.inc(1);
        let after = perplexity_streamed_file(&out_model, &ids, &cfg, &Overrides::default())?;
        pb.finish_and_clear();
        Some((before, after, ids.len(), cfg.context))
    };
    let secs = t0.elapsed().as_secs_f64();
    let js = json!({
        "input": model.path(), "output": args.out, "n_shards": n, "plan": args.plan, "plan_fingerprint": plan.plan_fingerprint,
        "method": s.method, "gptq_tensors": gptq_reports.len(), "gptq_reports": gptq_reports,
        "n_params": s.n_params, "target_bytes": s.target_bytes, "target_bpw": bpw(s.target_bytes),
        "min_bytes": s.min_bytes, "max_bytes": plan.max_bytes, "fixed_f32_bytes": s.fixed_bytes,
        "tensor_bytes": out_tensor_bytes, "bpw": bpw(out_tensor_bytes), "file_bytes": file_bytes,
        "allocation": plan.allocation,
        "perplexity_before": scores.as_ref().map(|x| x.0.ppl), "perplexity_after": scores.as_ref().map(|x| x.1.ppl),
        "nll_before": scores.as_ref().map(|x| x.0.mean_nll_nats), "nll_after": scores.as_ref().map(|x| x.1.mean_nll_nats),
        "delta_nll": scores.as_ref().map(|x| x.1.mean_nll_nats - x.0.mean_nll_nats),
        "eval": scores.as_ref().map(|x| json!({"text": "Brown news ca01-ca44", "tokens": x.2, "context": x.3})),
        "seconds": secs, "seconds_write": t_write,
        "tensors": plan.tensors.iter().map(|t| json!({"name": t.name, "shard": t.shard, "chosen": t.chosen, "bytes": t.bytes,
            "sq_error": t.sq_error, "weighted_error": t.weighted_error})).collect::<Vec<_>>(),
    });
    if json_out {
        return Ok(serde_json::to_string_pretty(&js)?);
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "merged      {} shards of {} into {} ({} tensors, method {})",
        n,
        model.path().display(),
        args.out.display(),
        out_model.tensors().len(),
        s.method
    );
    let _ = writeln!(
        o,
        "size        tensor data {} bytes = {:.3} bpw (target {} bytes, {:.3} bpw); file {} bytes",
        out_tensor_bytes,
        bpw(out_tensor_bytes),
        s.target_bytes,
        bpw(s.target_bytes),
        file_bytes
    );
    if let Some((b, a, nt, ctx)) = &scores {
        let _ = writeln!(
            o,
            "perplexity  before {:.3}  after {:.3}  (Brown news, {nt} tokens, context {ctx}); delta NLL {:+.4} nats/token",
            b.ppl,
            a.ppl,
            a.mean_nll_nats - b.mean_nll_nats
        );
    }
    let _ = writeln!(
        o,
        "time        {secs:.1} s (checks and write {t_write:.1} s)"
    );
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_and_rejects() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["3/3", "0/0", "1", "a/2", "1/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lpt_assignment_covers_balances_and_is_deterministic() {
        let elems: Vec<u64> = (0..40u64).map(|i| (i * 7919) % 97 + 1).collect();
        for n in 1..6 {
            let a = assign_shards(&elems, n);
            assert_eq!(a, assign_shards(&elems, n));
            assert!(a.iter().all(|&s| s < n));
            let mut load = vec![0u64; n];
            for (i, &s) in a.iter().enumerate() {
                load[s] += elems[i];
            }
            // LPT: no shard exceeds the mean by more than the largest single item.
            let total: u64 = elems.iter().sum();
            let biggest = *elems.iter().max().unwrap();
            for &l in &load {
                assert!(l * n as u64 <= total + biggest * n as u64, "{load:?}");
            }
        }
        // By hand: 3 and 3 to shards 0 and 1, then each 2 to the lighter shard.
        assert_eq!(assign_shards(&[3, 3, 2, 2, 2], 2), vec![0, 1, 0, 1, 0]);
        // More shards than tensors: the extra shards are empty.
        assert_eq!(assign_shards(&[5, 1], 3), vec![0, 1]);
    }

    #[test]
    fn fingerprint_tells_bytes_and_lengths_apart() {
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abc\0"));
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        // The file fingerprint reads in blocks yet equals the slice's.
        let d = std::env::temp_dir().join(format!("shard-fp-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("x.bin");
        let data: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(file_fingerprint(&p).unwrap(), fingerprint(&data));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn coverage_names_missing_and_duplicate_shards() {
        let (a, b) = (Path::new("a"), Path::new("b"));
        assert!(coverage(2, &[(0, a), (1, b)]).is_ok());
        let e = coverage(3, &[(0, a), (2, b)]).unwrap_err().to_string();
        assert!(e.contains("missing shard(s) 1 of 3"), "{e}");
        let e = coverage(2, &[(1, a), (1, b)]).unwrap_err().to_string();
        assert!(e.contains("shard 1/2 is given twice"), "{e}");
    }

    #[test]
    fn stored_menus_round_trip_exact_bits() {
        let w: Vec<f32> = (0..64 * 32)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect();
        let h: Vec<f64> = (0..64).map(|j| 1.0 / (1.0 + f64::from(j) / 3.0)).collect();
        let m = super::super::tensor_menu("t", DType::F32, 64, &w, Some(&h)).unwrap();
        let s = StoredMenu::from_menu(3, &m).unwrap();
        let back: StoredMenu = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        let m2 = back.to_menu().unwrap();
        assert_eq!(m2.options.len(), m.options.len());
        for (a, b) in m.options.iter().zip(&m2.options) {
            assert_eq!(a.dtype, b.dtype);
            assert_eq!(a.bytes, b.bytes);
            assert_eq!(a.weighted_error.to_bits(), b.weighted_error.to_bits());
            assert_eq!(a.sq_error.to_bits(), b.sq_error.to_bits());
        }
    }
}
