//! `claimlab compress`: a llama GGUF model in, a smaller GGUF with standard block types out, with
//! its measured perplexity beside the original's and beside the predicted loss.
//!
//! 1. Calibration ([`sequential::calibrate_streaming`]): the Gram matrix `XᵀX` of every
//!    projection's inputs over calibration tokens (Brown text outside the news genre, or
//!    `--calib FILE`), the tokens' hidden states pushed through the model one block at a time
//!    (weights read from the memory map block by block).
//! 2. Menus: per 2-D weight tensor, every GGUF block type whose block divides its rows
//!    ([`MENU`]: Q2_K..Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0). Cost = the real stored bytes;
//!    damage ([`damage`], `--damage`) = by default `½ Σ F_rj ΔW_rj²` with the empirical Fisher
//!    diagonal from exact gradients (loss units, comparable across tensors), or the
//!    activation-weighted squared error `Σ_rj ΔW_rj² · (XᵀX/n)_jj` (diag) or
//!    `tr(ΔW XᵀX/n ΔWᵀ)` (full), each in the units of the matrix's own output.
//! 3. Allocation: `claimlab_budget::allocate_bits` (Lagrangian and exact, with the gap).
//! 4. Quantisation of the chosen types by plain rounding (GGML's reference rules) or, with
//!    `--method gptq`, by second-order error feedback ([`gptq`]) on the same types, with each
//!    block's `XᵀX` from the already quantised blocks before it ([`sequential`]), so both
//!    methods have exactly equal size; the rounding model's perplexity is measured beside it,
//!    and both methods' calibration objective `tr(ΔW H ΔWᵀ)` per matrix goes in the manifest.
//!    With `--extended-menu`, truncated SVD ([`svd`]), magnitude pruning ([`prune`]) and row
//!    pruning ([`structured`]) join the menus in a second, what-if allocation ([`extend`]); they are not GGUF types, so the
//!    file keeps the block types and a model using them is scored through runtime overrides.
//! 5. Validation: on a seeded sample of tensors, the loss increase when that tensor alone is
//!    compressed (to its cheapest option) is measured with the runtime and compared with the
//!    damage proxies (Spearman); the ratio of sums turns proxy units into nats, giving the
//!    predicted loss increase of the whole compressed model beside the measured one.
//!
//! The file is written to a temporary name and renamed, re-opened, and scored on Brown news.
//!
//! # Memory
//! No step loads the whole model as f32. Tensors are read from the memory map one at a time (the
//! menus, the quantisation) or one block at a time (calibration, sequential GPTQ, and every
//! perplexity: before, after, the rounding model beside GPTQ, the extended-menu model and the
//! validation probes, through [`claimlab_runtime::perplexity_streamed`]). What is held for the
//! whole model is: the chosen tensors' bytes until the file is written (the output's size), the
//! diagonal of every calibration Gram matrix, and the full Gram matrices only where they are
//! read (every site with `--damage full` or `--gptq-clean`, else the sites of the validation
//! sample). Beyond that, peak memory is a few copies of the largest tensor (the tied token
//! embedding: the menus quantise it to each block type; a tied output head is fetched for the
//! scoring) plus the calibration and evaluation activations (`tokens · d_model` f32 each, and
//! one window's intermediate activations and attention scores) plus one block's weights and
//! Gram matrices. The default `--damage fisher` adds the gradient pass of [`damage`]. Measured
//! on SmolLM2-135M from an F32 GGUF (see `--help` of `--damage`).
//!
//! A large model can be compressed by a batch scheduler in shards (`--shard I/N`, then
//! `compress plan` and `compress merge`; see [`shard`]), to the same bytes as one run.

pub mod bert;
pub mod calib;
pub mod damage;
pub mod entropy;
pub mod extend;
pub mod gptq;
pub mod prune;
pub mod sequential;
pub mod shard;
pub mod structured;
pub mod svd;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{
    file_config, perplexity_streamed, perplexity_streamed_file, Overrides, PerplexityConfig,
    TextTokenizer,
};
use claimlab_weights::{
    brown_documents, copy_with_replacements, dequantize, quantize, Architecture, Cache, DType,
    Model, Param, Pinned, Role, TensorInfo,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde_json::json;

use self::calib::{site_of, spearman, Calib, Site};
use super::open_model;

/// The menu of block types tried for each tensor, in order of bits per weight; a type is
/// skipped for a tensor whose row length its block (32 or 256 elements) does not divide.
pub const MENU: [DType; 10] = [
    DType::Q2_K,
    DType::Q3_K,
    DType::Q4_0,
    DType::Q4_K,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_K,
    DType::Q5_1,
    DType::Q6_K,
    DType::Q8_0,
];

/// Context window of the perplexity evaluation, in tokens.
pub const EVAL_CONTEXT: usize = 512;

/// Window of the calibration forward passes, in tokens.
pub const CALIB_WINDOW: usize = 512;

/// Window of the gradient passes of the Fisher damage (`--damage fisher`), in tokens.
pub const FISHER_WINDOW: usize = 64;

/// At most this many evaluation tokens score each single-tensor validation run.
pub const VALIDATE_TOKENS: usize = 512;

/// Gain of the validation probes: each sampled tensor is perturbed by this multiple of its
/// cheapest option's quantisation error, so that the loss increase rises above the first-order
/// (sign-random) term; the proxies are computed for the same perturbation (`PROBE_GAIN²` times
/// the option's errors).
pub const PROBE_GAIN: f32 = 4.0;

/// The memory note of `claimlab compress --help` (see the module doc).
pub const MEMORY_HELP: &str = "Memory: no step loads the whole model as f32. Tensors are read from the input's memory map one at a time (menus, quantisation) or one block at a time (calibration, sequential GPTQ, and every perplexity: before, after, the rounding model beside GPTQ, the extended menu, the validation probes). Peak memory is about a few copies of the largest tensor (the tied embedding) plus the calibration and evaluation activations plus one block's weights and Gram matrices plus the output's bytes until they are written; --damage full and --gptq-clean keep every calibration Gram matrix (about 13 MB per SmolLM2 block), and the default --damage fisher adds its gradient pass. Measured on SmolLM2-135M from an F32 GGUF (1024 calibration and 512 evaluation tokens, --validate 4, --damage diag): peak RSS 1.05 GiB with rtn and 1.33 GiB with gptq (before layer streaming: 2.42 and 3.07 GiB), of which about 0.6 GiB are pages of the mapped input and output files, which the kernel can drop under memory pressure.";

/// How the chosen block types are filled.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Plain rounding (GGML's reference quantisers).
    Rtn,
    /// Second-order error feedback with the calibration `XᵀX` (32-element types column by
    /// column, K-quants one super-block at a time; the tied token embedding is rounded).
    Gptq,
}

/// Arguments of `claimlab compress`.
#[derive(clap::Args, Debug)]
#[command(
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true,
    after_long_help = MEMORY_HELP
)]
pub struct Args {
    /// A step of a sharded run (`plan`, `merge`) or of the entropy-coded mode (`encode`,
    /// `decode`) instead of a compression.
    // Boxed, as is `shard`, to keep `Args` small beside the other commands.
    #[command(subcommand)]
    pub action: Option<Box<Action>>,
    /// A llama-family GGUF decoder, or a BERT encoder (safetensors or GGUF, or `minilm` for the
    /// pinned MiniLM; see `compress::bert`); default: the pinned SmolLM2-135M.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data cache directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Target size in bits per weight over all tensors (norms included).
    #[arg(
        long,
        conflicts_with = "target_bytes",
        required_unless_present = "target_bytes"
    )]
    pub target_bpw: Option<f64>,
    /// Target size in bytes of all tensor data.
    #[arg(long)]
    pub target_bytes: Option<u64>,
    /// Calibration text file (UTF-8); default: Brown documents outside the news genre.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Calibration tokens (default 1024; 128 with --quick).
    #[arg(long)]
    pub calib_tokens: Option<usize>,
    /// How the chosen types are filled: rtn (plain rounding) or gptq (error feedback; the
    /// rounding model of equal size is scored beside it).
    #[arg(long, value_enum, default_value_t = Method::Rtn)]
    pub method: Method,
    /// GPTQ's relative damping: λ = DAMP · mean(diag XᵀX/n) is added to the diagonal. The
    /// default 1.0 is the best measured: on SmolLM2 at Q4_0's size (4.507 bpw, Fisher
    /// allocation, 1024 calibration tokens, sequential statistics) damping 0.1 / 1.0 gave
    /// +0.158 / +0.154 nats against rounding's +0.178 at equal size (perplexity 42.79 / 42.59
    /// against 43.65). Heavy damping suits the small calibration sample: 1024 tokens give a
    /// rank-deficient XᵀX for `ffn_down`'s 1536 inputs. With the clean model's Gram
    /// (--gptq-clean) and the diag allocation, 0.01 / 0.1 / 0.3 / 1.0 gave +0.719 / +0.489 /
    /// +0.476 / +0.446 against rounding's +0.482.
    #[arg(long, default_value_t = 1.0)]
    pub gptq_damp: f64,
    /// GPTQ on the clean model's XᵀX (every block's inputs from the unquantised model), as
    /// before sequential calibration; default: sequential (each block's inputs from the blocks
    /// before it already quantised, as GPTQ's authors run it).
    #[arg(long)]
    pub gptq_clean: bool,
    /// The damage estimate the allocator minimises (see `compress::damage`): fisher (empirical
    /// Fisher diagonal from exact gradients, in nats; the default: on SmolLM2 at Q4_0's size its
    /// mix scored perplexity 43.65 against uniform Q4_0's 48.09 and the diag mix's 53.78, at
    /// about 2 GiB more peak memory for the f64 gradient model), diag (the diagonal of the
    /// calibration XᵀX, the previous default) or full (the full XᵀX).
    #[arg(long, value_enum, default_value_t = damage::Damage::Fisher)]
    pub damage: damage::Damage,
    /// Tokens of Brown news (documents ca01-ca44) to score, in windows of 512 (default 2048;
    /// 256 with --quick).
    #[arg(long)]
    pub eval_tokens: Option<usize>,
    /// Tensors in the seeded validation sample of the damage proxy (default 16; 4 with --quick;
    /// 0 skips the validation and the loss prediction).
    #[arg(long)]
    pub validate: Option<usize>,
    /// Small calibration, evaluation and validation samples (for tests).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the validation sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also write the evaluation token ids (JSON array) here, for
    /// `experiments/scripts/llamacpp_check.sh`.
    #[arg(long)]
    pub eval_ids_out: Option<PathBuf>,
    /// Output GGUF path.
    #[arg(long, default_value = "compressed.gguf")]
    pub out: PathBuf,
    /// Also allocate over an extended menu (truncated SVD, magnitude and row pruning beside
    /// the block types; not GGUF types, so the file keeps the block-type allocation) and report
    /// what the allocator picks; when it picks any, that model is scored by our runtime with
    /// the rebuilt matrices as overrides.
    #[arg(long)]
    pub extended_menu: bool,
    /// Sharded runs (`--shard I/N`, `--plan`); see [`shard`].
    #[command(flatten)]
    pub shard: Box<shard::ShardArgs>,
    /// Also entropy-code the output's quantisation indices into OUT.rans (checked to decode
    /// byte-identically) and report real bytes against the index entropy and R(D).
    #[arg(long)]
    pub entropy: bool,
}

/// Subcommands of `claimlab compress`.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Allocate over the menus of all shards of round 1 (see `compress --help`).
    Plan(shard::PlanArgs),
    /// Join the part files of round 2 into the GGUF a single run writes, and score it.
    Merge(shard::MergeArgs),
    /// Rebuild the GGUF from an entropy-coded container, byte for byte.
    Decode(entropy::DecodeArgs),
    /// Entropy-code the quantisation indices of any GGUF file.
    Encode(entropy::EncodeArgs),
}

/// One option of a tensor's menu.
#[derive(Debug, Clone, Copy)]
pub struct MenuOption {
    /// Block type.
    pub dtype: DType,
    /// Stored bytes.
    pub bytes: usize,
    /// Plain squared reconstruction error (sum over elements).
    pub sq_error: f64,
    /// Activation-weighted squared error `Σ_rj ΔW_rj² h_j` (equals `sq_error` without weights).
    pub weighted_error: f64,
}

/// One tensor's menu: the options that fit its rows, their bytes and their damage.
#[derive(Debug, Clone)]
pub struct TensorMenu {
    /// Tensor name.
    pub name: String,
    /// Number of elements.
    pub n_elems: usize,
    /// Row length (innermost dimension; blocks run along it).
    pub row: usize,
    /// Storage type in the input file.
    pub input_dtype: DType,
    /// The options, in [`MENU`] order.
    pub options: Vec<MenuOption>,
}

/// Builds the menu of one tensor from its dequantised weights (`row` = innermost length), the
/// damage weighted by `hdiag` (one weight per column, e.g. the diagonal of `XᵀX/n`) when given.
///
/// # Errors
/// When quantisation fails (non-finite weights), `hdiag` has the wrong length, or no type of
/// [`MENU`] fits the row length.
pub fn tensor_menu(
    name: &str,
    input_dtype: DType,
    row: usize,
    w: &[f32],
    hdiag: Option<&[f64]>,
) -> Result<TensorMenu> {
    if let Some(h) = hdiag {
        if h.len() != row {
            bail!("{name}: {} column weights for rows of {row}", h.len());
        }
    }
    // Without weights every column weighs 1, so the weighted error is the plain one.
    let ones;
    let h = match hdiag {
        Some(h) => h,
        None => {
            ones = vec![1.0; row];
            &ones
        }
    };
    damage::tensor_menu_damage(name, input_dtype, row, w, damage::Weights::Diag(h))
}

/// Plain and column-weighted squared errors of `back` against `w` (rows of `row`).
fn errors(w: &[f32], back: &[f32], row: usize, hdiag: Option<&[f64]>) -> (f64, f64) {
    let (mut sse, mut wsse) = (0.0, 0.0);
    for (wr, br) in w.chunks_exact(row).zip(back.chunks_exact(row)) {
        for (j, (&a, &b)) in wr.iter().zip(br).enumerate() {
            let d = f64::from(a) - f64::from(b);
            sse += d * d;
            wsse += d * d * hdiag.map_or(1.0, |h| h[j]);
        }
    }
    (sse, wsse)
}

fn bar(len: u64, msg: &str, hidden: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if hidden {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(s) = ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb
}

fn news_tokens(tok: &TextTokenizer, cache_dir: Option<PathBuf>, n: usize) -> Result<Vec<u32>> {
    let brown = Cache::new(cache_dir)?.brown()?;
    let docs = brown_documents(&brown)?;
    let mut text = String::new();
    for d in docs.iter().filter(|d| {
        d.id.strip_prefix("ca")
            .and_then(|s| s.parse::<u32>().ok())
            .is_some_and(|k| (1..=44).contains(&k))
    }) {
        text.push_str(&d.text);
        text.push_str("\n\n");
    }
    let mut ids = tok.encode(&text)?;
    ids.truncate(n);
    if ids.len() < 2 {
        bail!("Brown news gives fewer than 2 tokens to score");
    }
    Ok(ids)
}

fn calib_ids(
    tok: &TextTokenizer,
    cache_dir: Option<PathBuf>,
    file: Option<&Path>,
    n: usize,
) -> Result<(Vec<u32>, String)> {
    let (text, what) = if let Some(f) = file {
        let t = std::fs::read_to_string(f)
            .with_context(|| format!("reading calibration file {}", f.display()))?;
        (t, format!("{}", f.display()))
    } else {
        let brown = Cache::new(cache_dir)?.brown()?;
        let docs = brown_documents(&brown)?;
        let mut text = String::new();
        for d in docs.iter().filter(|d| d.genre != "news") {
            text.push_str(&d.text);
            text.push_str("\n\n");
            if text.len() > n * 8 {
                break;
            }
        }
        (
            text,
            "Brown, documents outside the news genre, in corpus order".into(),
        )
    };
    let mut ids = tok.encode(&text)?;
    ids.truncate(n);
    if ids.len() < 2 {
        bail!(
            "calibration text {what} gives {} tokens; need at least 2",
            ids.len()
        );
    }
    Ok((ids, what))
}

/// One tensor of the validation sample.
#[derive(Debug, Clone, serde::Serialize)]
struct Probe {
    name: String,
    dtype: String,
    sq_error: f64,
    diag_weighted: f64,
    full_weighted: f64,
    allocator_damage: f64,
    delta_nll: f64,
}

pub(crate) fn targets_of(model: &Model) -> Vec<TensorInfo> {
    model
        .tensors()
        .iter()
        .filter(|t| t.shape.len() == 2 && t.param == Param::Weight)
        .cloned()
        .collect()
}

fn site(t: &TensorInfo) -> Result<Site> {
    site_of(t.role, t.layer).with_context(|| {
        format!(
            "{}: no calibration site for role {:?} (layer {:?})",
            t.name, t.role, t.layer
        )
    })
}

fn dq_diff(w: &[f32], back: &[f32]) -> Vec<f64> {
    w.iter()
        .zip(back)
        .map(|(&a, &b)| f64::from(a) - f64::from(b))
        .collect()
}

/// Calibration of `model` (the Gram matrices of every projection's inputs, streamed block by
/// block from the file) on the tokens `--calib` or Brown gives; returns it with a description
/// of the text and the calibration token ids.
fn calibration(
    model: &Model,
    tok: &TextTokenizer,
    args: &Args,
    calib_n: usize,
    quiet: bool,
) -> Result<(Calib, String, Vec<u32>)> {
    calibration_keeping(model, tok, args, calib_n, quiet, calib::KEEP_ALL)
}

/// [`calibration`] keeping the full Gram matrices of the sites `keep` selects only (every
/// site's diagonal is kept).
fn calibration_keeping(
    model: &Model,
    tok: &TextTokenizer,
    args: &Args,
    calib_n: usize,
    quiet: bool,
    keep: calib::Keep<'_>,
) -> Result<(Calib, String, Vec<u32>)> {
    let (cids, calib_what) =
        calib_ids(tok, args.cache_dir.clone(), args.calib.as_deref(), calib_n)?;
    let pb = bar(model.config().n_layers as u64, "calibration", quiet);
    let cal: Calib =
        sequential::calibrate_streaming_keeping(model, &cids, CALIB_WINDOW, keep, || pb.inc(1))?;
    pb.finish_and_clear();
    Ok((cal, calib_what, cids))
}

/// The seeded validation sample: `k` of the `n` targets' indices (at most `n`).
fn validation_sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    order.truncate(k.min(n));
    order
}

/// Perplexity of the input model with the tensors `pick` names rounded to their block types
/// (dequantised one tensor at a time as the evaluation streams the blocks).
fn rounded_perplexity(
    model: &Model,
    pick: &HashMap<String, DType>,
    ids: &[u32],
    cfg: &PerplexityConfig,
) -> Result<claimlab_runtime::Perplexity> {
    Ok(perplexity_streamed(
        &file_config(model)?,
        ids,
        cfg,
        |name| {
            let w = model.tensor_f32(name)?;
            Ok(match pick.get(name) {
                Some(&dt) => dequantize(dt, &quantize(dt, &w)?, w.len())?,
                None => w,
            })
        },
    )?)
}

/// The empirical Fisher diagonal of the tensors `names` on the calibration tokens `cids`, when
/// `--damage fisher` asks for it (streamed block by block from the file; only the diagonals of
/// `names` are kept, 4 bytes per element).
fn fisher_of(
    model: &Model,
    names: &[String],
    cids: &[u32],
    args: &Args,
    quiet: bool,
) -> Result<Option<HashMap<String, Vec<f32>>>> {
    if args.damage != damage::Damage::Fisher {
        return Ok(None);
    }
    let pb = bar(
        2 * model.config().n_layers as u64 + 2,
        "Fisher gradients",
        quiet,
    );
    let mut keep: HashMap<String, Vec<f32>> = HashMap::new();
    damage::fisher_diag_streaming(
        model,
        cids,
        FISHER_WINDOW,
        |batch| {
            for f in batch {
                if names.contains(&f.name) {
                    keep.insert(f.name, f.diag);
                }
            }
        },
        |_, _| pb.inc(1),
    )?;
    pb.finish_and_clear();
    for n in names {
        if !keep.contains_key(n) {
            bail!("no Fisher diagonal for {n}");
        }
    }
    Ok(Some(keep))
}

/// Fisher diagonals by tensor name.
type FisherDiags = HashMap<String, Vec<f32>>;

/// The menus of `targets` (in their order) under the Fisher damage, each built as soon as its
/// tensor's Fisher diagonal is streamed out ([`damage::fisher_diag_streaming`]) and the diagonal
/// then dropped, except for the targets named in `keep` (returned for the validation step).
/// Peak memory: one block's gradient pass and menus, not the whole model's diagonal.
fn fisher_menus(
    model: &Model,
    targets: &[TensorInfo],
    cids: &[u32],
    keep: &[String],
    quiet: bool,
) -> Result<(Vec<TensorMenu>, FisherDiags)> {
    let index: HashMap<&str, &TensorInfo> = targets.iter().map(|t| (t.name.as_str(), t)).collect();
    let pb = bar(
        2 * model.config().n_layers as u64 + 2,
        "Fisher gradients and menus",
        quiet,
    );
    let mut built: HashMap<String, Result<TensorMenu>> = HashMap::new();
    let mut kept = FisherDiags::new();
    damage::fisher_diag_streaming(
        model,
        cids,
        FISHER_WINDOW,
        |batch| {
            let menus: Vec<(String, Result<TensorMenu>)> = batch
                .par_iter()
                .filter_map(|f| index.get(f.name.as_str()).map(|t| (f, *t)))
                .map(|(f, t)| {
                    let m = model
                        .tensor_f32(&t.name)
                        .map_err(anyhow::Error::from)
                        .and_then(|w| {
                            damage::tensor_menu_damage(
                                &t.name,
                                t.dtype,
                                *t.shape.last().unwrap_or(&1),
                                &w,
                                damage::Weights::Fisher(&f.diag),
                            )
                        });
                    (t.name.clone(), m)
                })
                .collect();
            built.extend(menus);
            for f in batch {
                if keep.contains(&f.name) {
                    kept.insert(f.name, f.diag);
                }
            }
        },
        |_, _| pb.inc(1),
    )?;
    pb.finish_and_clear();
    let menus = targets
        .iter()
        .map(|t| {
            built
                .remove(&t.name)
                .with_context(|| format!("no Fisher diagonal for {}", t.name))?
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((menus, kept))
}

/// The calibration weights of target `t`'s damage: its site's Gram diagonal, and the full Gram
/// with `--damage full`.
fn damage_inputs(
    cal: &Calib,
    t: &TensorInfo,
    args: &Args,
) -> Result<(Vec<f64>, Option<faer::Mat<f64>>)> {
    let s = site(t)?;
    Ok((
        cal.diag(s)?,
        (args.damage == damage::Damage::Full)
            .then(|| cal.hessian(s))
            .transpose()?,
    ))
}

/// The menu of target tensor `t`, its damage weighted as `--damage` says (the Fisher diagonal,
/// the full calibration Gram, or its diagonal).
fn menu_of(
    model: &Model,
    t: &TensorInfo,
    cal: &Calib,
    fisher: Option<&HashMap<String, Vec<f32>>>,
    args: &Args,
) -> Result<TensorMenu> {
    let w = model.tensor_f32(&t.name)?;
    let row = *t.shape.last().unwrap_or(&1);
    let h = damage_inputs(cal, t, args)?;
    damage::tensor_menu_damage(
        &t.name,
        t.dtype,
        row,
        &w,
        damage_weights(&t.name, &h, fisher)?,
    )
}

/// Stored bytes of the targets at their cheapest fitting block types (0 for a tensor none fits;
/// its menu fails later with the reason).
fn min_menu_bytes(targets: &[TensorInfo]) -> u64 {
    targets
        .iter()
        .map(|t| {
            let row = *t.shape.last().unwrap_or(&1);
            let n = t.shape.iter().product::<usize>() as u64;
            MENU.iter()
                .filter(|d| row > 0 && row.is_multiple_of(d.block_elems()))
                .map(|d| n / d.block_elems() as u64 * d.block_bytes() as u64)
                .min()
                .unwrap_or(0)
        })
        .sum()
}

/// What GPTQ works from: the clean model's calibration (`--gptq-clean`), or the results of the
/// sequential run ([`sequential::sequential_gptq`], block by block on the inputs of the already
/// quantised blocks), keyed by tensor name.
#[derive(Clone, Copy)]
enum GptqInputs<'a> {
    Clean(&'a Calib),
    Sequential(&'a HashMap<String, (Vec<u8>, gptq::GptqReport)>),
}

/// One tensor's bytes at block type `dt`: rounded, and with `--method gptq` where it applies
/// also by GPTQ (with its report).
type Quantised = (Vec<u8>, Option<(Vec<u8>, gptq::GptqReport)>);

/// Quantises target `t` (menu `m`) to `dt` as [`Quantised`] says; `gi` is needed only for GPTQ.
///
/// # Errors
/// Quantisation or GPTQ failures, or GPTQ asked without its inputs.
fn quantise_one(
    model: &Model,
    m: &TensorMenu,
    dt: DType,
    t: &TensorInfo,
    gi: Option<GptqInputs<'_>>,
    args: &Args,
) -> Result<Quantised> {
    let w = model.tensor_f32(&m.name)?;
    let q = quantize(dt, &w)?;
    // The tied token embedding is also a lookup table, whose error enters the residual
    // stream unweighted: GPTQ's head-input weighting would trade lookup error for head
    // error, so it is rounded (CLAIMLAB_GPTQ_EMBD=1 runs GPTQ on it too, for comparison).
    let g = if uses_gptq(args, dt, t) {
        match gi.context("GPTQ needs the calibration")? {
            GptqInputs::Sequential(seq) => seq.get(&m.name).cloned(),
            GptqInputs::Clean(cal) => {
                let h = cal.hessian(site(t)?)?;
                Some(
                    gptq::gptq_with_report(
                        dt,
                        &w,
                        m.n_elems / m.row,
                        m.row,
                        h.as_ref(),
                        args.gptq_damp,
                    )
                    .with_context(|| format!("{}: GPTQ", m.name))?,
                )
            }
        }
    } else {
        None
    };
    Ok((q, g))
}

/// The sequential GPTQ results for the types `pick` (tensor name to block type; every target of
/// the model, since each block's inputs come from all blocks before it), keyed by tensor name.
fn sequential_results(
    model: &Model,
    pick: &HashMap<String, DType>,
    cids: &[u32],
    args: &Args,
    quiet: bool,
) -> Result<HashMap<String, (Vec<u8>, gptq::GptqReport)>> {
    let mut seq = HashMap::new();
    let pb = bar(model.config().n_layers as u64, "sequential GPTQ", quiet);
    for t in sequential::sequential_gptq(model, pick, cids, CALIB_WINDOW, args.gptq_damp, || {
        pb.inc(1);
    })? {
        if let Some(r) = t.report {
            seq.insert(t.name, (t.bytes, r));
        }
    }
    pb.finish_and_clear();
    Ok(seq)
}

/// Whether target `t` at type `dt` is filled by GPTQ (see [`quantise_one`]).
fn uses_gptq(args: &Args, dt: DType, t: &TensorInfo) -> bool {
    args.method == Method::Gptq
        && gptq::supports(dt)
        && (t.role != Role::TokenEmbedding || std::env::var_os("CLAIMLAB_GPTQ_EMBD").is_some())
}

/// The target size in bytes of all tensor data: `--target-bytes` as given, or `--target-bpw`
/// times `n_params` bits, rounded down to whole bytes.
///
/// # Errors
/// A `--target-bpw` that is not a positive finite number, or neither or both targets given.
pub(crate) fn target_bytes(args: &Args, n_params: u64) -> Result<u64> {
    match (args.target_bpw, args.target_bytes) {
        (Some(b), None) => {
            if !(b.is_finite() && b > 0.0) {
                bail!("--target-bpw must be a positive number, got {b}");
            }
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            Ok((b * n_params as f64 / 8.0).floor() as u64)
        }
        (None, Some(n)) => Ok(n),
        _ => bail!("give exactly one of --target-bpw and --target-bytes"),
    }
}

/// What a llama run (single or one shard of a sharded run) resolves and checks before any work.
pub(crate) struct Preflight {
    /// Parameters of the model (bits per weight are over these).
    pub(crate) n_params: u64,
    /// The 2-D weights that get a menu, in the model's order.
    pub(crate) targets: Vec<TensorInfo>,
    /// Bytes of the tensors kept as they are (norms).
    pub(crate) fixed_bytes: u64,
    /// The target size of all tensor data ([`target_bytes`]).
    pub(crate) target_total: u64,
    /// The smallest size the menus reach (cheapest fitting block type per target).
    pub(crate) min_bytes: u64,
    /// Evaluation tokens (`--eval-tokens`, or the default).
    pub(crate) eval_tokens: usize,
    /// Calibration tokens (`--calib-tokens`, or the default).
    pub(crate) calib_tokens: usize,
}

/// The checks of a llama compression before any work, shared by a single run and every shard:
/// token budgets, GPTQ damping and the calibration file; a llama-family GGUF decoder whose
/// targets all have a calibration site; the target size against the smallest the menus reach
/// (the message says the minimum).
///
/// # Errors
/// Each failed check, with its reason.
pub(crate) fn preflight(model: &Model, args: &Args) -> Result<Preflight> {
    let eval_n = args
        .eval_tokens
        .unwrap_or(if args.quick { 256 } else { 2048 });
    let calib_n = args
        .calib_tokens
        .unwrap_or(if args.quick { 128 } else { 1024 });
    if eval_n < 2 {
        bail!("--eval-tokens must be at least 2, got {eval_n}");
    }
    if calib_n < 2 {
        bail!("--calib-tokens must be at least 2, got {calib_n}");
    }
    if !(args.gptq_damp.is_finite() && args.gptq_damp >= 0.0) {
        bail!(
            "--gptq-damp must be a finite non-negative number, got {}",
            args.gptq_damp
        );
    }
    if let Some(f) = &args.calib {
        if !f.is_file() {
            bail!(
                "calibration file {} does not exist or is not a file",
                f.display()
            );
        }
    }
    if model.config().arch != Architecture::LlamaDecoder {
        bail!(
            "{}: compressing a {:?} is not yet supported (only llama-family GGUF decoders)",
            model.path().display(),
            model.config().arch
        );
    }
    if model.gguf_metadata().is_none() {
        bail!(
            "{}: compress needs a GGUF file (safetensors output is not yet supported)",
            model.path().display()
        );
    }
    let n_params = model.n_params();
    let targets = targets_of(model);
    for t in &targets {
        site(t)?;
    }
    let fixed_bytes: u64 = model
        .tensors()
        .iter()
        .filter(|t| !(t.shape.len() == 2 && t.param == Param::Weight))
        .map(|t| t.nbytes)
        .sum();
    let target_total = target_bytes(args, n_params)?;
    let min_bytes = fixed_bytes + min_menu_bytes(&targets);
    #[allow(clippy::cast_precision_loss)]
    let bpw = |bytes: u64| bytes as f64 * 8.0 / n_params as f64;
    if target_total < min_bytes {
        bail!(
            "target {} bytes ({:.3} bits per weight) is below the smallest size the menus reach: {} bytes ({:.3} bits per weight)",
            target_total,
            bpw(target_total),
            min_bytes,
            bpw(min_bytes)
        );
    }
    Ok(Preflight {
        n_params,
        targets,
        fixed_bytes,
        target_total,
        min_bytes,
        eval_tokens: eval_n,
        calib_tokens: calib_n,
    })
}

/// Runs `claimlab compress`; returns what to print.
///
/// # Errors
/// Bad arguments, a missing calibration file, a model that is not a llama GGUF, a target below
/// the smallest size the menus reach (the message says the minimum), or failures of the runtime
/// or the writer.
#[allow(clippy::too_many_lines)]
pub fn run(args: Args, json_out: bool) -> Result<String> {
    match args.action.as_deref() {
        Some(Action::Plan(a)) => return shard::plan(a, json_out),
        Some(Action::Merge(a)) => return shard::merge(a, json_out),
        Some(Action::Decode(a)) => return entropy::decode_cmd(a, json_out),
        Some(Action::Encode(a)) => return entropy::encode_cmd(a, json_out),
        None => {}
    }
    if args.shard.shard.is_some() {
        if args.entropy {
            bail!("--entropy is not available with --shard: code the merged file with `claimlab compress encode`");
        }
        return shard::run_shard(&args, json_out);
    }
    if args.entropy {
        return entropy::compress_with_entropy(args, json_out);
    }
    if let Some(m) = bert::bert_model(&args)? {
        return bert::run(&args, &m, json_out);
    }
    let quiet = json_out;
    let model = open_model(
        args.model.as_deref(),
        Pinned::SmolLm2,
        args.cache_dir.clone(),
    )?;
    let t0 = Instant::now();
    let Preflight {
        n_params,
        targets,
        fixed_bytes,
        target_total,
        min_bytes,
        eval_tokens: eval_n,
        calib_tokens: calib_n,
    } = preflight(&model, &args)?;
    let n_validate = args.validate.unwrap_or(if args.quick { 4 } else { 16 });
    #[allow(clippy::cast_precision_loss)]
    let bpw = |bytes: u64| bytes as f64 * 8.0 / n_params as f64;

    // 1. Tokens, calibration (streamed block by block from the file; the runtime is loaded
    // only for the evaluation).
    let tok = TextTokenizer::for_model(&model)?;
    let ids = news_tokens(&tok, args.cache_dir.clone(), eval_n)?;
    if let Some(p) = &args.eval_ids_out {
        std::fs::write(p, serde_json::to_string(&ids)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    // The full Gram matrices are kept only where they are read: every site for --damage full
    // and --gptq-clean, else the sites of the validation sample (its full-XᵀX proxy); the
    // menus, the diag damage and the extended menu read the diagonals only.
    let order = validation_sample(targets.len(), n_validate, args.seed);
    let probe_sites: Vec<Site> = order
        .iter()
        .map(|&i| site(&targets[i]))
        .collect::<Result<_>>()?;
    let keep_all =
        args.damage == damage::Damage::Full || (args.method == Method::Gptq && args.gptq_clean);
    let keep = move |s: Site| keep_all || probe_sites.contains(&s);
    let (cal, calib_what, cids) = calibration_keeping(&model, &tok, &args, calib_n, quiet, &keep)?;
    let t_calib = t0.elapsed().as_secs_f64();

    // 2. Menus (the Fisher diagonal first when it is the damage).
    if args.extended_menu && args.damage != damage::Damage::Diag {
        bail!("--extended-menu compares against the diag damage only; drop --damage or --extended-menu");
    }
    // With the Fisher damage the diagonals stream out block by block; each tensor's menu is
    // built as its diagonal arrives, and only the validation sample's diagonals are kept.
    let (menus, fisher): (Vec<TensorMenu>, Option<FisherDiags>) =
        if args.damage == damage::Damage::Fisher {
            let keep: Vec<String> = order.iter().map(|&i| targets[i].name.clone()).collect();
            let (m, f) = fisher_menus(&model, &targets, &cids, &keep, quiet)?;
            (m, Some(f))
        } else {
            let pb = bar(targets.len() as u64, "menus", quiet);
            let m = targets
                .par_iter()
                .map(|t| {
                    let m = menu_of(&model, t, &cal, None, &args);
                    pb.inc(1);
                    m
                })
                .collect::<Result<_>>()?;
            pb.finish_and_clear();
            (m, None)
        };
    let max_bytes: u64 = fixed_bytes
        + menus
            .iter()
            .map(|m| m.options.iter().map(|o| o.bytes as u64).max().unwrap_or(0))
            .sum::<u64>();

    // 3. Allocation on the activation-weighted damage.
    #[allow(clippy::cast_precision_loss)]
    let budget = (target_total - fixed_bytes) as f64;
    let (choice, rep) = shard::allocate(&menus, target_total, fixed_bytes)?;

    // 3b. What-if allocation over the extended menu (SVD, pruning).
    let what_if = if args.extended_menu {
        let pb = bar(1, "extended menu", quiet);
        let r = extend::what_if_model(&model, &menus, &choice, &targets, &cal, budget)?;
        pb.finish_and_clear();
        Some(r)
    } else {
        None
    };

    // 4. Quantise the chosen types (rounding; GPTQ on top when asked: sequential, block by
    // block on the inputs of the already quantised blocks, unless --gptq-clean).
    let t_q = Instant::now();
    let seq = if args.method == Method::Gptq && !args.gptq_clean {
        let pick: HashMap<String, DType> = menus
            .iter()
            .zip(&choice)
            .map(|(m, &c)| (m.name.clone(), m.options[c].dtype))
            .collect();
        sequential_results(&model, &pick, &cids, &args, quiet)?
    } else {
        HashMap::new()
    };
    let pb = bar(menus.len() as u64, "quantise chosen", quiet);
    let tinfo: HashMap<&str, &TensorInfo> = targets.iter().map(|t| (t.name.as_str(), t)).collect();
    // Each tensor's written bytes (GPTQ's where it ran, else the rounding) and GPTQ's report;
    // the sequential results move in (not copied), and the rounding bytes of a GPTQ tensor are
    // not kept (the rounding model is re-quantised one tensor at a time when it is scored).
    type Chosen = (String, DType, Vec<u8>, Option<gptq::GptqReport>);
    let seq = std::sync::Mutex::new(seq);
    let no_seq = HashMap::new();
    let chosen: Vec<Chosen> = menus
        .par_iter()
        .zip(&choice)
        .map(|(m, &c)| {
            let dt = m.options[c].dtype;
            let t = tinfo[m.name.as_str()];
            if !args.gptq_clean && uses_gptq(&args, dt, t) {
                let moved = match seq.lock() {
                    Ok(mut s) => s.remove(&m.name),
                    Err(_) => bail!("sequential GPTQ results poisoned by a panic"),
                };
                if let Some((b, r)) = moved {
                    pb.inc(1);
                    return Ok((m.name.clone(), dt, b, Some(r)));
                }
            }
            // Not moved from the sequential results: rounded (as a tensor they lack always
            // was), or GPTQ on the clean model's statistics with --gptq-clean.
            let gi = if args.gptq_clean {
                GptqInputs::Clean(&cal)
            } else {
                GptqInputs::Sequential(&no_seq)
            };
            let (q, g) = quantise_one(&model, m, dt, t, Some(gi), &args)?;
            pb.inc(1);
            Ok(match g {
                Some((b, r)) => (m.name.clone(), dt, b, Some(r)),
                None => (m.name.clone(), dt, q, None),
            })
        })
        .collect::<Result<_>>()?;
    drop(seq);
    pb.finish_and_clear();
    let t_quant = t_q.elapsed().as_secs_f64();
    let n_gptq = chosen.iter().filter(|c| c.3.is_some()).count();
    let gptq_reports: Vec<(String, gptq::GptqReport)> = chosen
        .iter()
        .filter_map(|c| c.3.map(|g| (c.0.clone(), g)))
        .collect();
    let gptq_sum =
        |f: fn(&gptq::GptqReport) -> f64| gptq_reports.iter().map(|r| f(&r.1)).sum::<f64>();
    // The rounding model of the same types (scored beside GPTQ's file at equal size).
    let rtn_pick: Option<HashMap<String, DType>> =
        (args.method == Method::Gptq).then(|| chosen.iter().map(|c| (c.0.clone(), c.1)).collect());
    let repl: HashMap<String, (DType, Vec<u8>)> = chosen
        .into_iter()
        .map(|(name, dt, b, _)| (name, (dt, b)))
        .collect();

    // 5. Write (to a temporary file, then rename).
    let tmp = tmp_path(&args.out);
    if let Err(e) = copy_with_replacements(&model, &repl, &tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.out.display()))?;
    drop(repl);

    // 6. Re-open and measure, every model streamed block by block from its file (the input's
    // and the output's memory maps; the rounding and extended models re-quantised or rebuilt
    // one tensor at a time).
    let out_model =
        Model::open(&args.out).with_context(|| format!("re-opening {}", args.out.display()))?;
    let out_tensor_bytes = out_model.tensor_bytes();
    let file_bytes = std::fs::metadata(&args.out)?.len();
    let in_file_bytes = std::fs::metadata(model.file())?.len();
    let cfg = PerplexityConfig {
        context: EVAL_CONTEXT.min(ids.len()),
        stride: EVAL_CONTEXT.min(ids.len()),
    };
    let n_evals = 2 + u64::from(rtn_pick.is_some());
    let pb = bar(n_evals, "perplexity", quiet);
    let before = perplexity_streamed_file(&model, &ids, &cfg, &Overrides::default())?;
    pb.inc(1);
    let after = perplexity_streamed_file(&out_model, &ids, &cfg, &Overrides::default())?;
    pb.inc(1);
    let rtn_after = match &rtn_pick {
        Some(pick) => Some(rounded_perplexity(&model, pick, &ids, &cfg)?),
        None => None,
    };
    pb.finish_and_clear();
    // The extended allocation, scored with its rebuilt matrices when it differs.
    let ext_after = match &what_if {
        Some((wi, picks)) if !wi.chosen.is_empty() => {
            let by_name: HashMap<&str, usize> = menus
                .iter()
                .enumerate()
                .map(|(i, m)| (m.name.as_str(), i))
                .collect();
            // A rebuild failure is kept whole and returned in place of the runtime's error.
            let mut failed: Option<anyhow::Error> = None;
            let p = perplexity_streamed(&file_config(&model)?, &ids, &cfg, |name| {
                match by_name.get(name) {
                    Some(&i) => extend::rebuilt_tensor(&model, &menus[i], picks[i], &targets, &cal)
                        .map_err(|e| {
                            failed = Some(e);
                            claimlab_runtime::Error::BadOverride {
                                tensor: name.to_string(),
                                reason: "the extended option could not be rebuilt".into(),
                            }
                        }),
                    None => Ok(model.tensor_f32(name)?),
                }
            });
            if let Some(e) = failed {
                return Err(e.context("scoring the extended allocation"));
            }
            Some(p?)
        }
        _ => None,
    };
    let what_if_json = what_if.as_ref().map(|(wi, _)| {
        json!({"summary": wi, "note": "SVD and pruning options are not GGUF types: the file keeps the block-type allocation; a model using them is scored by our runtime with dense overrides",
               "perplexity": ext_after.as_ref().map(|p| p.ppl), "delta_nll": ext_after.as_ref().map(|p| p.mean_nll_nats - before.mean_nll_nats)})
    });
    let d_nll = after.mean_nll_nats - before.mean_nll_nats;

    // 7. Validation of the damage proxy on a seeded sample of tensors.
    let vids = &ids[..ids.len().min(VALIDATE_TOKENS)];
    let vcfg = PerplexityConfig {
        context: EVAL_CONTEXT.min(vids.len()),
        stride: EVAL_CONTEXT.min(vids.len()),
    };
    let pb = bar(order.len() as u64 + 1, "validate proxy", quiet);
    let v_base = if order.is_empty() {
        None
    } else {
        Some(perplexity_streamed_file(
            &model,
            vids,
            &vcfg,
            &Overrides::default(),
        )?)
    };
    pb.inc(1);
    let mut probes = Vec::new();
    if let Some(vb) = &v_base {
        for &i in &order {
            let m = &menus[i];
            let o = m
                .options
                .iter()
                .min_by_key(|o| o.bytes)
                .copied()
                .context("empty menu")?;
            let w = model.tensor_f32(&m.name)?;
            let q = dequantize(o.dtype, &quantize(o.dtype, &w)?, w.len())?;
            let back: Vec<f32> = w
                .iter()
                .zip(&q)
                .map(|(&a, &b)| a + PROBE_GAIN * (b - a))
                .collect();
            let site_t = site(tinfo[m.name.as_str()])?;
            let (sq, diag_w) = errors(&w, &back, m.row, Some(&cal.diag(site_t)?));
            let h = cal.hessian(site_t)?;
            let full =
                gptq::hessian_error(&dq_diff(&w, &back), m.n_elems / m.row, m.row, h.as_ref());
            drop(h);
            let hw = damage_inputs(&cal, tinfo[m.name.as_str()], &args)?;
            let alloc = damage::option_damage(
                &w,
                &back,
                m.row,
                damage_weights(&m.name, &hw, fisher.as_ref())?,
            )?;
            drop(hw);
            let mut ov = Overrides::default();
            ov.insert(m.name.clone(), back);
            let p = perplexity_streamed_file(&model, vids, &vcfg, &ov)?;
            probes.push(Probe {
                name: m.name.clone(),
                dtype: o.dtype.to_string(),
                sq_error: sq,
                diag_weighted: diag_w,
                full_weighted: full,
                allocator_damage: alloc,
                delta_nll: p.mean_nll_nats - vb.mean_nll_nats,
            });
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let col = |f: fn(&Probe) -> f64| probes.iter().map(f).collect::<Vec<f64>>();
    let meas = col(|p| p.delta_nll);
    let rho_sq = spearman(&col(|p| p.sq_error), &meas);
    let rho_diag = spearman(&col(|p| p.diag_weighted), &meas);
    let rho_full = spearman(&col(|p| p.full_weighted), &meas);
    let rho_alloc = spearman(&col(|p| p.allocator_damage), &meas);
    let chosen_proxy: f64 = menus
        .iter()
        .zip(&choice)
        .map(|(m, &c)| m.options[c].weighted_error)
        .sum();
    let chosen_sq: f64 = menus
        .iter()
        .zip(&choice)
        .map(|(m, &c)| m.options[c].sq_error)
        .sum();
    // Nats per proxy unit, two estimates over the sample: the ratio of sums (dominated by the
    // most damaged probe, which may be past the quadratic regime) and the median of the
    // per-probe ratios (robust to it; added after the first full run showed the ratio of sums
    // overshooting). The whole model's prediction scales the chosen options' summed errors.
    let diag_col = col(|p| p.allocator_damage);
    let scale = {
        let (sm, sp) = (meas.iter().sum::<f64>(), diag_col.iter().sum::<f64>());
        (sp > 0.0 && !probes.is_empty()).then(|| sm / sp)
    };
    let scale_median = median(
        &meas
            .iter()
            .zip(&diag_col)
            .filter(|(_, &p)| p > 0.0)
            .map(|(m, p)| m / p)
            .collect::<Vec<_>>(),
    );
    let predicted = scale.map(|c| c * chosen_proxy);
    let predicted_median = scale_median.map(|c| c * chosen_proxy);
    let secs = t0.elapsed().as_secs_f64();

    // Summary per type.
    let mut counts: Vec<(DType, usize, u64, usize)> = Vec::new(); // type, tensors, bytes, elems
    for (m, &c) in menus.iter().zip(&choice) {
        let o = m.options[c];
        if let Some(e) = counts.iter_mut().find(|e| e.0 == o.dtype) {
            e.1 += 1;
            e.2 += o.bytes as u64;
            e.3 += m.n_elems;
        } else {
            counts.push((o.dtype, 1, o.bytes as u64, m.n_elems));
        }
    }
    counts.sort_by_key(|e| MENU.iter().position(|&d| d == e.0));
    let input_types: Vec<String> = {
        let mut v: Vec<String> = menus.iter().map(|m| m.input_dtype.to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let method = match args.method {
        Method::Rtn => "rtn",
        Method::Gptq => "gptq",
    };

    if json_out {
        let validation_json = json!({
            "seed": args.seed, "tokens": vids.len(), "probe": format!("each sampled tensor alone, perturbed by {PROBE_GAIN} x the error of its cheapest option"),
            "spearman_sq_error": rho_sq, "spearman_diag_weighted": rho_diag, "spearman_full_weighted": rho_full, "spearman": {"allocator_damage": rho_alloc},
            "nats_per_proxy_unit": scale, "nats_per_proxy_unit_median": scale_median, "probes": probes,
        });
        let gptq_json = json!({"calibration": if args.gptq_clean { "clean model" } else { "sequential (quantised earlier blocks)" }, "damp": args.gptq_damp});
        let tensors: Vec<_> = menus
            .iter()
            .zip(&choice)
            .map(|(m, &c)| {
                let o = m.options[c];
                json!({
                    "name": m.name, "input_type": m.input_dtype.to_string(), "n_elems": m.n_elems,
                    "chosen": o.dtype.to_string(), "bytes": o.bytes, "sq_error": o.sq_error, "weighted_error": o.weighted_error,
                    "options": m.options.iter().map(|o| json!({"type": o.dtype.to_string(), "bytes": o.bytes, "sq_error": o.sq_error, "weighted_error": o.weighted_error})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&json!({
            "input": model.path(), "output": args.out, "method": method, "gptq_tensors": n_gptq,
            "gptq_vs_rounding": {"hessian_error_rtn": gptq_sum(|r| r.rtn_hessian_error), "hessian_error_gptq": gptq_sum(|r| r.gptq_hessian_error),
                "sq_error_rtn": gptq_sum(|r| r.rtn_sq_error), "sq_error_gptq": gptq_sum(|r| r.gptq_sq_error),
                "tensors": gptq_reports.iter().map(|(n, r)| json!({"name": n, "errors": r})).collect::<Vec<_>>()},
            "baseline_note": format!("the input stores its matrices as {}; its dequantised weights are the baseline", input_types.join(", ")),
            "damage_proxy": args.damage.label(), "gptq": gptq_json,
            "calibration": {"text": calib_what, "tokens": cal.n_tokens, "window": CALIB_WINDOW, "rebuild_rel_error": cal.rebuild_error, "seconds": t_calib},
            "n_params": n_params, "target_bytes": target_total, "target_bpw": bpw(target_total),
            "min_bytes": min_bytes, "max_bytes": max_bytes, "fixed_f32_bytes": fixed_bytes,
            "tensor_bytes": out_tensor_bytes, "bpw": bpw(out_tensor_bytes), "file_bytes": file_bytes,
            "input_tensor_bytes": model.tensor_bytes(), "input_file_bytes": in_file_bytes,
            "allocation": rep, "chosen_proxy": chosen_proxy, "chosen_sq_error": chosen_sq,
            "per_type": counts.iter().map(|e| json!({"type": e.0.to_string(), "tensors": e.1, "bytes": e.2, "elems": e.3})).collect::<Vec<_>>(),
            "eval": {"text": "Brown news ca01-ca44", "tokens": ids.len(), "scored": after.n_tokens, "context": cfg.context},
            "perplexity_before": before.ppl, "perplexity_after": after.ppl,
            "nll_before": before.mean_nll_nats, "nll_after": after.mean_nll_nats, "delta_nll": d_nll,
            "rtn_same_size": rtn_after.as_ref().map(|p| json!({"perplexity": p.ppl, "nll": p.mean_nll_nats, "delta_nll": p.mean_nll_nats - before.mean_nll_nats})),
            "validation": validation_json,
            "predicted_delta_nll": predicted, "predicted_delta_nll_median": predicted_median, "measured_delta_nll": d_nll,
            "seconds": secs, "seconds_quantise": t_quant, "extended_menu": what_if_json, "tensors": tensors,
        }))?);
    }
    let mut s = String::new();
    let _ = writeln!(s, "input       {} ({} tensors, {} params; matrices stored as {}: its dequantised weights are the baseline)", model.path().display(), model.tensors().len(), n_params, input_types.join(", "));
    let _ = writeln!(
        s,
        "output      {} ({} tensors; method {method}{})",
        args.out.display(),
        out_model.tensors().len(),
        if args.method == Method::Gptq {
            format!(
                ", GPTQ on {n_gptq} of {} matrices, rounding on the rest",
                menus.len()
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "target      {} bytes ({:.3} bpw); reachable {} .. {} bytes ({:.3} .. {:.3} bpw)",
        target_total,
        bpw(target_total),
        min_bytes,
        max_bytes,
        bpw(min_bytes),
        bpw(max_bytes)
    );
    let _ = writeln!(
        s,
        "calibration {} tokens of {} (streamed block by block); damage = {}\n",
        cal.n_tokens,
        calib_what,
        args.damage.label()
    );
    let _ = writeln!(
        s,
        "{:<6} {:>8} {:>12} {:>12} {:>6}",
        "type", "tensors", "elements", "bytes", "bpw"
    );
    for e in &counts {
        #[allow(clippy::cast_precision_loss)]
        let b = e.2 as f64 * 8.0 / e.3 as f64;
        let _ = writeln!(
            s,
            "{:<6} {:>8} {:>12} {:>12} {:>6.3}",
            e.0.to_string(),
            e.1,
            e.3,
            e.2,
            b
        );
    }
    let _ = writeln!(
        s,
        "{:<6} {:>8} {:>12} {:>12}",
        "F32",
        model.tensors().len() - menus.len(),
        "",
        fixed_bytes
    );
    let _ = writeln!(s, "\ntensor data {} bytes = {:.3} bits per weight (input {} bytes, {:.3} bpw); file {} bytes (input {})", out_tensor_bytes, bpw(out_tensor_bytes), model.tensor_bytes(), bpw(model.tensor_bytes()), file_bytes, in_file_bytes);
    let _ = writeln!(
        s,
        "allocation  Lagrangian proxy {:.6e} (lambda {:.3e}); exact {} ; gap {}",
        rep.lagrangian.distortion,
        rep.lagrangian.lambda,
        rep.exact.as_ref().map_or_else(
            || format!(
                "unavailable ({})",
                rep.exact_unavailable.clone().unwrap_or_default()
            ),
            |e| format!("{:.6e} ({:?})", e.distortion, rep.exact_method)
        ),
        rep.gap.map_or_else(|| "n/a".into(), |g| format!("{g:.3e}"))
    );
    let _ = writeln!(s, "perplexity  before {:.3}  after {:.3}  (Brown news, {} tokens, context {}); delta NLL {:+.4} nats/token", before.ppl, after.ppl, ids.len(), cfg.context, d_nll);
    if let Some(p) = &rtn_after {
        let _ = writeln!(
            s,
            "rounding    same types and bytes, plain rounding: perplexity {:.3}, delta NLL {:+.4} (GPTQ {:+.4}); calibration objective tr(dW H dW^T) over the GPTQ matrices: rounding {:.4e}, GPTQ {:.4e}",
            p.ppl,
            p.mean_nll_nats - before.mean_nll_nats,
            d_nll,
            gptq_sum(|r| r.rtn_hessian_error),
            gptq_sum(|r| r.gptq_hessian_error)
        );
    }
    if !probes.is_empty() {
        let f = |r: Option<f64>| r.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            s,
            "\nvalidation  {} tensors (seed {}), each alone perturbed by {PROBE_GAIN} x its cheapest option's error, {} tokens: Spearman vs measured delta NLL: plain sq error {}, diag-weighted {}, full X^T X {}, allocator's damage {}",
            probes.len(),
            args.seed,
            vids.len(),
            f(rho_sq),
            f(rho_diag),
            f(rho_full),
            f(rho_alloc)
        );
        let _ = writeln!(
            s,
            "{:<24} {:>6} {:>11} {:>11} {:>11} {:>10}",
            "tensor", "type", "sq err", "diag-w", "full-w", "dNLL"
        );
        for p in &probes {
            let _ = writeln!(
                s,
                "{:<24} {:>6} {:>11.4e} {:>11.4e} {:>11.4e} {:>+10.5}",
                p.name, p.dtype, p.sq_error, p.diag_weighted, p.full_weighted, p.delta_nll
            );
        }
    }
    let fmt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "n/a".into(), f);
    let _ = writeln!(
        s,
        "predicted   delta NLL {} (ratio of sums, {} nats/unit) or {} (median ratio, {} nats/unit), from the allocator's total damage {chosen_proxy:.4e}; measured {d_nll:+.4}",
        fmt(predicted, &|p| format!("{p:+.4}")),
        fmt(scale, &|c| format!("{c:.3e}")),
        fmt(predicted_median, &|p| format!("{p:+.4}")),
        fmt(scale_median, &|c| format!("{c:.3e}")),
    );
    if let Some((wi, _)) = &what_if {
        let _ = writeln!(
            s,
            "extended    {} SVD/pruning options on {} matrices; on the (bytes, damage) lower hull of {} matrices; at this budget chosen for {} (proxy {:.4e} vs block types {:.4e}){}",
            wi.options,
            wi.tensors,
            wi.tensors_with_ext_on_hull,
            wi.chosen.len(),
            wi.proxy_extended,
            wi.proxy_gguf,
            ext_after.as_ref().map_or_else(String::new, |p| format!(
                "; scored with overrides: perplexity {:.3}, delta NLL {:+.4}",
                p.ppl,
                p.mean_nll_nats - before.mean_nll_nats
            ))
        );
    }
    let _ = writeln!(
        s,
        "time        {secs:.1} s (calibration {t_calib:.1} s, quantise {t_quant:.1} s)"
    );
    Ok(s)
}

/// The damage weights of one tensor: the full Gram when given, else its Fisher diagonal when
/// given, else the Gram's diagonal.
fn damage_weights<'a>(
    name: &str,
    h: &'a (Vec<f64>, Option<faer::Mat<f64>>),
    fisher: Option<&'a HashMap<String, Vec<f32>>>,
) -> Result<damage::Weights<'a>> {
    Ok(match (&h.1, fisher) {
        (Some(full), _) => damage::Weights::Full(full.as_ref()),
        (None, Some(f)) => damage::Weights::Fisher(
            f.get(name)
                .with_context(|| format!("no Fisher diagonal for {name}"))?,
        ),
        (None, None) => damage::Weights::Diag(&h.0),
    })
}

/// Median (mean of the two middle values for an even count); `None` when empty.
fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    })
}

fn tmp_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map_or_else(|| "out".into(), std::ffi::OsStr::to_os_string);
    name.push(format!(".tmp{}", std::process::id()));
    out.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_costs_are_real_bytes_and_errors_shrink_with_bits() {
        let w: Vec<f32> = (0..64 * 32)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect();
        let m = tensor_menu("t", DType::F32, 64, &w, None).unwrap();
        assert_eq!(m.options.len(), 5);
        let bytes: Vec<usize> = m.options.iter().map(|o| o.bytes).collect();
        // 64 blocks of 32: Q4_0 18, Q4_1 20, Q5_0 22, Q5_1 24, Q8_0 34 bytes each.
        assert_eq!(bytes, vec![64 * 18, 64 * 20, 64 * 22, 64 * 24, 64 * 34]);
        let e: Vec<f64> = m.options.iter().map(|o| o.sq_error).collect();
        assert!(e[0] > e[2] && e[2] > e[4] && e[4] > 0.0, "{e:?}");
        // brute-force check of one error: Q8_0 recomputed
        let q = quantize(DType::Q8_0, &w).unwrap();
        let b = dequantize(DType::Q8_0, &q, w.len()).unwrap();
        let sse: f64 = w
            .iter()
            .zip(&b)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum();
        assert!((sse - e[4]).abs() <= 1e-12 * sse.max(1.0));
    }

    #[test]
    fn median_by_hand() {
        assert!(median(&[]).is_none());
        assert!((median(&[3.0, 1.0, 2.0]).unwrap() - 2.0).abs() < 1e-15);
        assert!((median(&[4.0, 1.0, 3.0, 2.0]).unwrap() - 2.5).abs() < 1e-15);
    }

    #[test]
    fn rows_not_multiple_of_32_are_rejected() {
        let w = vec![0.5f32; 48 * 2];
        assert!(tensor_menu("t", DType::F32, 48, &w, None).is_err());
    }

    #[test]
    fn target_bytes_from_bpw_or_bytes() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: Args,
        }
        use clap::Parser as _;
        let a = |v: &[&str]| {
            Cli::try_parse_from(std::iter::once("x").chain(v.iter().copied()))
                .unwrap()
                .a
        };
        assert_eq!(target_bytes(&a(&["--target-bpw", "4"]), 1000).unwrap(), 500);
        // 4.5 bits x 3 weights = 1.6875 bytes, rounded down
        assert_eq!(target_bytes(&a(&["--target-bpw", "4.5"]), 3).unwrap(), 1);
        assert_eq!(
            target_bytes(&a(&["--target-bytes", "77"]), 1000).unwrap(),
            77
        );
        for bad in ["0", "-1", "NaN", "inf"] {
            let e = target_bytes(&a(&[&format!("--target-bpw={bad}")]), 1000).unwrap_err();
            assert!(e.to_string().contains("positive"), "{bad}: {e}");
        }
    }
}
