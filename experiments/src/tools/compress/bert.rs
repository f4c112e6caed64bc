//! `claimlab compress` for BERT encoders (the pinned MiniLM or a BERT safetensors / GGUF file):
//! a GGUF with llama.cpp's BERT layout out (`general.architecture = "bert"`, `bert.*`
//! hyper-parameters, `token_embd` / `position_embd` / `token_types` / `blk.N.attn_q` … names, the
//! WordPiece vocabulary as `tokenizer.ggml.*`, mean pooling), with its embedding fidelity.
//!
//! 1. Menus: every 2-D weight (token and position embeddings, the six projections of each block)
//!    gets the GGUF block types of [`MENU`] whose block divides its rows; the token-type table
//!    (added as a view in llama.cpp's graph) and all 1-D tensors stay F32; the pooler (unused by
//!    mean pooling) and integer buffers are dropped, as llama.cpp's converter does.
//! 2. Damage, measured: for each tensor, `1 − mean cos` between the original sentence
//!    embeddings and those with that tensor alone quantised to its cheapest option, on
//!    calibration sentences (Brown outside the news genre, or `--calib FILE`). The other
//!    options' damage is that number scaled by their squared-error ratio (the quadratic
//!    regime); a seeded sample of (tensor, middle option) pairs is measured directly to
//!    validate the scaling.
//! 3. Allocation: `claimlab_budget::allocate_bits` on (real bytes, damage).
//! 4. Output written to a temporary file and renamed, re-opened by our reader, loaded by our
//!    runtime with the tokenizer rebuilt from the GGUF metadata, and scored on Brown news
//!    sentences: mean and minimum cosine to the original embeddings and the Spearman
//!    correlation of the pairwise similarities. Beside it, uniform per-row quantisation
//!    (b bits, f16 scale and minimum per row, same F32 parts) at b = 2..8, so the comparison
//!    at equal size can be read off.
//!
//! A sharded run (`--shard I/N`, `compress plan`, `compress merge`; see [`super::shard`]) splits
//! step 2 by tensor (each shard embeds the calibration sentences once and measures its own
//! matrices) and writes the same GGUF, byte for byte; it skips the validation probes and the
//! uniform baseline.
//!
//! Shared arguments read for an encoder: `--calib-tokens` and `--eval-tokens` are token budgets
//! filled with whole sentences; `--validate` counts validation probes (default 8); `--method`
//! must be `rtn`; `--eval-ids-out` writes `{"sentences", "ids", "embeddings",
//! "original_embeddings"}` for `experiments/scripts/llamacpp_embed.sh`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{cosine, embeddings, gguf_bert_name, BertModel, Overrides, TextTokenizer};
use claimlab_weights::{
    brown_documents, dequantize, quantize, Architecture, Cache, DType, GgufValue, GgufWriter,
    Model, Param, Pinned, Role, TensorInfo,
};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde_json::json;

use super::calib::spearman;
use super::{bar, median, target_bytes, tensor_menu, tmp_path, Args, Method, TensorMenu, MENU};

/// GGUF `tokenizer.ggml.token_type` of control tokens (`[CLS]`, `[SEP]`, …).
const TOKEN_CONTROL: i32 = 3;
/// GGUF `tokenizer.ggml.token_type` of ordinary tokens.
const TOKEN_NORMAL: i32 = 1;
/// llama.cpp's `LLAMA_POOLING_TYPE_MEAN` (sentence-transformers' MiniLM pools by the mean).
const POOLING_MEAN: u32 = 1;
/// Sentences are cut from Brown text with 6 to 40 words.
const SENTENCE_WORDS: (usize, usize) = (6, 40);
/// Bit widths of the uniform per-row baseline.
const BASELINE_BITS: std::ops::RangeInclusive<u32> = 2..=8;

/// What happens to one tensor of the input.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    /// A 2-D weight with a menu of block types.
    Menu,
    /// Kept as F32.
    F32,
}

/// One tensor of the output: input tensor, Hugging Face (runtime) name, GGUF name, plan.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) info: TensorInfo,
    pub(super) hf: String,
    pub(super) gguf: String,
    pub(super) plan: Plan,
}

/// Opens the model of `args` when it is a BERT encoder (`--model minilm` or a path to a BERT
/// file); `None` sends the request to the llama path.
///
/// # Errors
/// A path that exists but cannot be opened, or a failing fetch of the pinned MiniLM.
pub(super) fn bert_model(args: &Args) -> Result<Option<Model>> {
    let Some(p) = args.model.as_deref() else {
        return Ok(None);
    };
    bert_model_at(p, args.cache_dir.clone())
}

/// The BERT encoder at `p` (or the pinned MiniLM for `minilm`), `None` for any other model.
///
/// # Errors
/// As [`bert_model`].
pub(super) fn bert_model_at(
    p: &std::path::Path,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<Option<Model>> {
    if !p.exists() {
        return match p.to_str().and_then(|s| s.parse::<Pinned>().ok()) {
            Some(Pinned::MiniLm) => {
                let path = Cache::new(cache_dir)?.model(Pinned::MiniLm)?;
                Ok(Some(
                    Model::open(&path).with_context(|| format!("opening {}", path.display()))?,
                ))
            }
            _ => Ok(None),
        };
    }
    let m = Model::open(p).with_context(|| format!("opening {}", p.display()))?;
    Ok((m.config().arch == Architecture::BertEncoder).then_some(m))
}

/// Hugging Face name (as the runtime's parameters are called) of a BERT tensor's role.
fn hf_name(t: &TensorInfo) -> Option<String> {
    let suffix = match t.param {
        Param::Weight => "weight",
        Param::Bias => "bias",
    };
    let stem = match (t.role, t.layer) {
        (Role::TokenEmbedding, None) => "embeddings.word_embeddings".to_string(),
        (Role::PositionEmbedding, None) => "embeddings.position_embeddings".to_string(),
        (Role::TypeEmbedding, None) => "embeddings.token_type_embeddings".to_string(),
        (Role::EmbeddingNorm, None) => "embeddings.LayerNorm".to_string(),
        (r, Some(l)) => {
            let rest = match r {
                Role::Query => "attention.self.query",
                Role::Key => "attention.self.key",
                Role::Value => "attention.self.value",
                Role::AttnOutput => "attention.output.dense",
                Role::AttnNorm => "attention.output.LayerNorm",
                Role::MlpUp => "intermediate.dense",
                Role::MlpDown => "output.dense",
                Role::MlpNorm => "output.LayerNorm",
                _ => return None,
            };
            format!("encoder.layer.{l}.{rest}")
        }
        _ => return None,
    };
    Some(format!("{stem}.{suffix}"))
}

/// The output's tensors, checked before any work: every tensor has a BERT role and a type that
/// converts to f32; the pooler and integer buffers are dropped (listed in the second value).
pub(super) fn plan_tensors(model: &Model) -> Result<(Vec<Slot>, Vec<String>)> {
    let mut slots = Vec::new();
    let mut dropped = Vec::new();
    for t in model.tensors() {
        if t.dtype == DType::I64 || t.role == Role::Pooler {
            dropped.push(t.name.clone());
            continue;
        }
        if matches!(t.dtype, DType::Other(_)) {
            bail!(
                "{}: tensor {} has an unsupported type ({}); supported: F32, F16, BF16 and the GGML block types",
                model.path().display(),
                t.name,
                t.dtype
            );
        }
        let Some(hf) = hf_name(t) else {
            bail!(
                "{}: tensor {} ({:?}, layer {:?}) has no place in a BERT encoder; cannot compress it",
                model.path().display(),
                t.name,
                t.role,
                t.layer
            );
        };
        let matrix = t.shape.len() == 2
            && t.param == Param::Weight
            && !matches!(t.role, Role::TypeEmbedding);
        slots.push(Slot {
            info: t.clone(),
            gguf: gguf_bert_name(&hf),
            hf,
            plan: if matrix { Plan::Menu } else { Plan::F32 },
        });
    }
    Ok((slots, dropped))
}

fn n_elems(t: &TensorInfo) -> u64 {
    t.shape.iter().map(|&d| d as u64).product()
}

fn row_of(t: &TensorInfo) -> usize {
    *t.shape.last().unwrap_or(&1)
}

/// Sentences of the texts (6 to 40 words, in order) until their tokens reach `budget`.
fn sentences(
    tok: &TextTokenizer,
    texts: &[&str],
    budget: usize,
    max_len: usize,
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    let (mut ss, mut ids, mut total) = (Vec::new(), Vec::new(), 0usize);
    for t in texts {
        for s in
            claimlab_runtime::split_sentences(t, usize::MAX, SENTENCE_WORDS.0, SENTENCE_WORDS.1)
        {
            let v = tok.encode(&s)?;
            if v.len() > max_len {
                continue;
            }
            total += v.len();
            ss.push(s);
            ids.push(v);
            if total >= budget {
                return Ok((ss, ids));
            }
        }
    }
    Ok((ss, ids))
}

/// `1 − mean cos` of embeddings against `base`.
fn damage(base: &[Vec<f32>], other: &[Vec<f32>]) -> f64 {
    let s: f64 = base.iter().zip(other).map(|(a, b)| cosine(a, b)).sum();
    #[allow(clippy::cast_precision_loss)]
    let n = base.len().max(1) as f64;
    1.0 - s / n
}

/// Fidelity of `other` to `base`: mean cosine, minimum cosine, Spearman of pairwise similarities.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Fidelity {
    mean_cosine: f64,
    min_cosine: f64,
    spearman: Option<f64>,
}

fn fidelity(base: &[Vec<f32>], other: &[Vec<f32>]) -> Fidelity {
    let cos: Vec<f64> = base.iter().zip(other).map(|(a, b)| cosine(a, b)).collect();
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for i in 0..base.len() {
        for j in i + 1..base.len() {
            sa.push(cosine(&base[i], &base[j]));
            sb.push(cosine(&other[i], &other[j]));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let n = cos.len().max(1) as f64;
    Fidelity {
        mean_cosine: cos.iter().sum::<f64>() / n,
        min_cosine: cos.iter().copied().fold(f64::INFINITY, f64::min),
        spearman: spearman(&sa, &sb),
    }
}

/// Uniform per-row asymmetric quantisation to `bits`: per row the minimum `m` and step
/// `s = (max − m)/(2^bits − 1)`, both rounded to f16 (4 bytes per row), codes
/// `round((x − m)/s)` clamped to `0..2^bits−1`. Returns the dequantised weights.
///
/// # Panics
/// If `row` is 0 or does not divide `w.len()` (a caller bug).
#[must_use]
pub fn uniform_per_row(w: &[f32], row: usize, bits: u32) -> Vec<f32> {
    assert!(
        row > 0 && w.len().is_multiple_of(row),
        "rows of {row} do not tile {}",
        w.len()
    );
    let levels = f64::from((1u32 << bits) - 1);
    let mut out = Vec::with_capacity(w.len());
    for r in w.chunks_exact(row) {
        let lo = r.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let m = f64::from(f16_round(lo));
        let s = f64::from(f16_round(((f64::from(hi) - m) / levels) as f32));
        for &x in r {
            let q = if s > 0.0 {
                ((f64::from(x) - m) / s).round().clamp(0.0, levels)
            } else {
                0.0
            };
            out.push((m + q * s) as f32);
        }
    }
    out
}

/// `x` rounded to the nearest f16 (through the weights crate's F16 storage).
fn f16_round(x: f32) -> f32 {
    quantize(DType::F16, &[x])
        .ok()
        .and_then(|b| dequantize(DType::F16, &b, 1).ok())
        .and_then(|v| v.first().copied())
        .unwrap_or(x)
}

/// Stored bytes of the uniform per-row baseline at `bits` for one `[rows, row]` tensor.
fn uniform_bytes(n: u64, row: usize, bits: u32) -> u64 {
    let rows = n / row as u64;
    rows * (row as u64 * u64::from(bits)).div_ceil(8) + rows * 4
}

/// llama.cpp's `general.file_type` for the type holding most matrix elements.
fn file_type(d: DType) -> u32 {
    match d {
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q8_0 => 7,
        DType::Q5_0 => 8,
        DType::Q5_1 => 9,
        DType::Q2_K => 10,
        DType::Q3_K => 12,
        DType::Q4_K => 15,
        DType::Q5_K => 17,
        DType::Q6_K => 18,
        DType::F16 => 1,
        _ => 0,
    }
}

/// The `tokenizer.ggml.*` keys: copied from a GGUF input, or built from `tokenizer.json`
/// as llama.cpp's converter does (control tokens verbatim, word starts prefixed with `▁`,
/// `##` continuations bare).
fn tokenizer_metadata(model: &Model) -> Result<Vec<(String, GgufValue)>> {
    if let Some(md) = model.gguf_metadata() {
        let kv: Vec<_> = md
            .iter()
            .filter(|(k, _)| k.starts_with("tokenizer."))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if kv.is_empty() {
            bail!(
                "{}: GGUF without tokenizer metadata",
                model.path().display()
            );
        }
        return Ok(kv);
    }
    let p = model.tokenizer_json_path().with_context(|| {
        format!(
            "{}: no tokenizer.json beside the model (needed for the GGUF vocabulary)",
            model.path().display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
    )
    .with_context(|| format!("parsing {}", p.display()))?;
    if v["model"]["type"].as_str() != Some("WordPiece") {
        bail!(
            "{}: tokenizer model {:?} (only WordPiece is supported for BERT)",
            p.display(),
            v["model"]["type"]
        );
    }
    let vocab = v["model"]["vocab"]
        .as_object()
        .with_context(|| format!("{}: model.vocab is not an object", p.display()))?;
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        let i = id
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < tokens.len())
            .with_context(|| format!("{}: bad id for token {t:?}", p.display()))?;
        tokens[i] = t.clone();
    }
    let mut special: HashMap<usize, String> = HashMap::new();
    if let Some(added) = v["added_tokens"].as_array() {
        for a in added {
            if a["special"].as_bool() == Some(true) {
                if let (Some(id), Some(c)) = (a["id"].as_u64(), a["content"].as_str()) {
                    special.insert(usize::try_from(id)?, c.to_string());
                }
            }
        }
    }
    let mut types = Vec::with_capacity(tokens.len());
    let mut out_tokens = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if special.contains_key(&i) {
            types.push(GgufValue::I32(TOKEN_CONTROL));
            out_tokens.push(GgufValue::String(t.clone()));
        } else {
            types.push(GgufValue::I32(TOKEN_NORMAL));
            out_tokens.push(GgufValue::String(match t.strip_prefix("##") {
                Some(rest) => rest.to_string(),
                None => format!("\u{2581}{t}"),
            }));
        }
    }
    let id = |name: &str| -> Result<GgufValue> {
        let i = tokens
            .iter()
            .position(|t| t == name)
            .with_context(|| format!("{}: vocabulary lacks {name}", p.display()))?;
        Ok(GgufValue::U32(u32::try_from(i)?))
    };
    Ok(vec![
        ("tokenizer.ggml.token_type_count".into(), GgufValue::U32(2)),
        (
            "tokenizer.ggml.model".into(),
            GgufValue::String("bert".into()),
        ),
        (
            "tokenizer.ggml.pre".into(),
            GgufValue::String("default".into()),
        ),
        ("tokenizer.ggml.tokens".into(), GgufValue::Array(out_tokens)),
        ("tokenizer.ggml.token_type".into(), GgufValue::Array(types)),
        ("tokenizer.ggml.unknown_token_id".into(), id("[UNK]")?),
        ("tokenizer.ggml.seperator_token_id".into(), id("[SEP]")?),
        ("tokenizer.ggml.padding_token_id".into(), id("[PAD]")?),
        ("tokenizer.ggml.cls_token_id".into(), id("[CLS]")?),
        ("tokenizer.ggml.mask_token_id".into(), id("[MASK]")?),
    ])
}

/// One validation probe: a tensor at its middle option, predicted and measured damage.
#[derive(Debug, Clone, serde::Serialize)]
struct Probe {
    name: String,
    dtype: String,
    predicted: f64,
    measured: f64,
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What a BERT compression (single or one shard) resolves and checks before any work.
pub(super) struct Preflight {
    /// The output's tensors (menu or F32), in the input's order.
    pub(super) slots: Vec<Slot>,
    /// Input tensors left out of the output (pooler, integer buffers).
    pub(super) dropped: Vec<String>,
    /// Parameters of the output's tensors (bits per weight are over these).
    pub(super) n_params: u64,
    /// Bytes of the tensors kept as F32.
    pub(super) fixed_bytes: u64,
    /// The smallest size the menus reach.
    pub(super) min_bytes: u64,
    /// The target size of all tensor data.
    pub(super) target_total: u64,
    /// Evaluation token budget (`--eval-tokens`, filled with whole sentences).
    pub(super) eval_tokens: usize,
    /// Calibration token budget (`--calib-tokens`).
    pub(super) calib_tokens: usize,
}

impl Preflight {
    /// The slots with a menu (the tensors the allocation chooses types for), in order.
    pub(super) fn menu_slots(&self) -> Vec<&Slot> {
        self.slots
            .iter()
            .filter(|s| matches!(s.plan, Plan::Menu))
            .collect()
    }
}

/// The checks of a BERT compression before any work, shared by a single run and every shard:
/// `--method rtn`, the calibration file, every tensor's role and type, a fitting block type for
/// every matrix, and the target against the smallest reachable size (the message says it).
///
/// # Errors
/// Each failed check, with its reason.
pub(super) fn preflight(model: &Model, args: &Args) -> Result<Preflight> {
    if args.method != Method::Rtn {
        bail!("--method gptq is not supported for BERT encoders (only rtn)");
    }
    if let Some(f) = &args.calib {
        if !f.is_file() {
            bail!(
                "calibration file {} does not exist or is not a file",
                f.display()
            );
        }
    }
    let eval_tokens = args
        .eval_tokens
        .unwrap_or(if args.quick { 256 } else { 2048 });
    let calib_tokens = args
        .calib_tokens
        .unwrap_or(if args.quick { 128 } else { 1024 });
    let (slots, dropped) = plan_tensors(model)?;
    let n_params: u64 = slots.iter().map(|s| n_elems(&s.info)).sum();
    let fixed_bytes: u64 = slots
        .iter()
        .filter(|s| matches!(s.plan, Plan::F32))
        .map(|s| 4 * n_elems(&s.info))
        .sum();
    let mut min_bytes = fixed_bytes;
    for s in slots.iter().filter(|s| matches!(s.plan, Plan::Menu)) {
        let row = row_of(&s.info);
        let n = n_elems(&s.info);
        let cheapest = MENU
            .iter()
            .filter(|d| row > 0 && row.is_multiple_of(d.block_elems()))
            .map(|d| n / d.block_elems() as u64 * d.block_bytes() as u64)
            .min()
            .with_context(|| {
                format!(
                    "{}: row length {row} is not a multiple of 32; no GGUF block type fits",
                    s.info.name
                )
            })?;
        min_bytes += cheapest;
    }
    #[allow(clippy::cast_precision_loss)]
    let bpw = |bytes: u64| bytes as f64 * 8.0 / n_params as f64;
    let target_total = target_bytes(args, n_params)?;
    if target_total < min_bytes {
        bail!(
            "target {} bytes ({:.3} bits per weight) is below the smallest size the menus reach: {} bytes ({:.3} bits per weight; rows of {} fit only 32-element block types)",
            target_total,
            bpw(target_total),
            min_bytes,
            bpw(min_bytes),
            model.config().d_model
        );
    }
    Ok(Preflight {
        slots,
        dropped,
        n_params,
        fixed_bytes,
        min_bytes,
        target_total,
        eval_tokens,
        calib_tokens,
    })
}

/// Brown news sentences (6 to 40 words, in corpus order) up to `budget` tokens, with their ids.
fn eval_sentences(
    tok: &TextTokenizer,
    cache_dir: Option<std::path::PathBuf>,
    budget: usize,
    max_len: usize,
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    let brown = Cache::new(cache_dir)?.brown()?;
    let docs = brown_documents(&brown)?;
    let news: Vec<&str> = docs
        .iter()
        .filter(|d| d.genre == "news")
        .map(|d| d.text.as_str())
        .collect();
    sentences(tok, &news, budget, max_len)
}

/// The calibration sentences' token ids and a description of their text.
pub(super) struct CalibSentences {
    /// Where the sentences come from.
    pub(super) what: String,
    /// Their token ids.
    pub(super) ids: Vec<Vec<u32>>,
}

/// Calibration sentences of `--calib FILE` or of Brown outside the news genre, up to `budget`
/// tokens.
fn calib_sentences(
    tok: &TextTokenizer,
    args: &Args,
    budget: usize,
    max_len: usize,
) -> Result<CalibSentences> {
    let (what, ids) = if let Some(f) = &args.calib {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading calibration file {}", f.display()))?;
        let (_, ids) = sentences(tok, &[text.as_str()], budget, max_len)?;
        (format!("{}", f.display()), ids)
    } else {
        let brown = Cache::new(args.cache_dir.clone())?.brown()?;
        let docs = brown_documents(&brown)?;
        let src: Vec<&str> = docs
            .iter()
            .filter(|d| d.genre != "news")
            .map(|d| d.text.as_str())
            .collect();
        let (_, ids) = sentences(tok, &src, budget, max_len)?;
        (
            "Brown, documents outside the news genre, in corpus order".to_string(),
            ids,
        )
    };
    Ok(CalibSentences { what, ids })
}

/// The calibration of a shard's menus: the runtime, the calibration sentences and their
/// original embeddings.
pub(super) struct ShardCalibration {
    rt: BertModel,
    /// The calibration sentences.
    pub(super) calib: CalibSentences,
    base: Vec<Vec<f32>>,
}

/// Loads the runtime and embeds the calibration sentences, as a single run does.
///
/// # Errors
/// Runtime, tokenizer or Brown failures; fewer than 2 calibration sentences.
pub(super) fn shard_calibration(
    model: &Model,
    args: &Args,
    pf: &Preflight,
) -> Result<ShardCalibration> {
    let rt = BertModel::load(model)?;
    let tok = TextTokenizer::for_model(model)?;
    let calib = calib_sentences(&tok, args, pf.calib_tokens, rt.config().max_positions)?;
    if calib.ids.len() < 2 {
        bail!(
            "too few sentences: {} for calibration ({}), need 2",
            calib.ids.len(),
            calib.what
        );
    }
    let base = embeddings(&rt, &calib.ids, &Overrides::new())?;
    Ok(ShardCalibration { rt, calib, base })
}

/// The menu of one slot as a shard measures it (see [`measured_menu`]).
///
/// # Errors
/// As [`measured_menu`].
pub(super) fn shard_menu(model: &Model, c: &ShardCalibration, s: &Slot) -> Result<TensorMenu> {
    Ok(measured_menu(model, &c.rt, s, &c.calib.ids, &c.base)?.0)
}

/// The menu of one matrix with its measured damage: `1 − mean cos` of the calibration
/// embeddings with this tensor alone at its cheapest option, per unit of that option's squared
/// error (returned beside the menu), times each option's squared error in `weighted_error`.
///
/// # Errors
/// Quantisation or runtime failures, or no fitting block type.
fn measured_menu(
    model: &Model,
    rt: &BertModel,
    s: &Slot,
    calib_ids: &[Vec<u32>],
    base_cal: &[Vec<f32>],
) -> Result<(TensorMenu, f64)> {
    let w = model.tensor_f32(&s.info.name)?;
    let mut m = tensor_menu(&s.info.name, s.info.dtype, row_of(&s.info), &w, None)?;
    let cheap = m
        .options
        .iter()
        .min_by_key(|o| o.bytes)
        .copied()
        .context("empty menu")?;
    let back = dequantize(cheap.dtype, &quantize(cheap.dtype, &w)?, w.len())?;
    let mut ov = Overrides::new();
    ov.insert(s.hf.clone(), back);
    let d = damage(base_cal, &embeddings(rt, calib_ids, &ov)?).max(0.0);
    let sens = if cheap.sq_error > 0.0 {
        d / cheap.sq_error
    } else {
        0.0
    };
    for o in &mut m.options {
        o.weighted_error = sens * o.sq_error;
    }
    Ok((m, sens))
}

/// Writes the output GGUF to `path`: llama.cpp's BERT metadata and vocabulary, then every slot,
/// at its chosen type from `chosen` (tensor name to type and bytes) or as F32.
///
/// # Errors
/// Metadata that does not fit GGUF's integers, a missing vocabulary, failures of the writer.
pub(super) fn write_gguf(
    model: &Model,
    slots: &[Slot],
    chosen: &HashMap<String, (DType, Vec<u8>)>,
    path: &std::path::Path,
) -> Result<()> {
    let cfg = model.config();
    let max_len = cfg
        .max_positions
        .context("BERT model without max_position_embeddings")?;
    let mut by_type: HashMap<DType, u64> = HashMap::new();
    for (dt, q) in chosen.values() {
        *by_type.entry(*dt).or_default() += q.len() as u64;
    }
    let dominant = by_type
        .iter()
        .max_by_key(|&(d, n)| (*n, d.ggml_id()))
        .map_or(DType::F32, |(d, _)| *d);
    let mut w = GgufWriter::new();
    let name = model
        .gguf_metadata()
        .and_then(|m| m.get("general.name"))
        .and_then(GgufValue::as_str)
        .map_or_else(
            || {
                model
                    .path()
                    .file_stem()
                    .map_or("bert".into(), |s| s.to_string_lossy().into_owned())
            },
            str::to_string,
        );
    let u32_of = |v: usize| -> Result<GgufValue> { Ok(GgufValue::U32(u32::try_from(v)?)) };
    w.set_metadata("general.architecture", GgufValue::String("bert".into()));
    w.set_metadata("general.name", GgufValue::String(name));
    w.set_metadata("bert.block_count", u32_of(cfg.n_layers)?);
    w.set_metadata("bert.context_length", u32_of(max_len)?);
    w.set_metadata("bert.embedding_length", u32_of(cfg.d_model)?);
    w.set_metadata("bert.feed_forward_length", u32_of(cfg.d_ff)?);
    w.set_metadata("bert.attention.head_count", u32_of(cfg.n_heads)?);
    #[allow(clippy::cast_possible_truncation)]
    w.set_metadata(
        "bert.attention.layer_norm_epsilon",
        GgufValue::F32(cfg.norm_eps as f32),
    );
    w.set_metadata("general.file_type", GgufValue::U32(file_type(dominant)));
    w.set_metadata("bert.attention.causal", GgufValue::Bool(false));
    w.set_metadata("bert.pooling_type", GgufValue::U32(POOLING_MEAN));
    for (k, v) in tokenizer_metadata(model)? {
        w.set_metadata(k, v);
    }
    w.set_metadata("general.quantization_version", GgufValue::U32(2));
    for s in slots {
        match chosen.get(s.info.name.as_str()) {
            Some((dt, q)) => w.add_tensor(&s.gguf, *dt, &s.info.shape, q.as_slice())?,
            None => {
                let v = model.tensor_f32(&s.info.name)?;
                let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                w.add_tensor(&s.gguf, DType::F32, &s.info.shape, b)?;
            }
        }
    }
    w.write(path)?;
    Ok(())
}

/// The fidelity of a merged output to its input on the evaluation sentences of a single run
/// (the same fields as its manifest).
///
/// # Errors
/// Runtime, tokenizer or Brown failures; fewer than 3 evaluation sentences.
pub(super) fn merged_fidelity(
    model: &Model,
    out_model: &Model,
    cache_dir: Option<std::path::PathBuf>,
    eval_tokens: usize,
) -> Result<serde_json::Value> {
    let rt = BertModel::load(model)?;
    let tok = TextTokenizer::for_model(model)?;
    let (eval_s, eval_ids) =
        eval_sentences(&tok, cache_dir, eval_tokens, rt.config().max_positions)?;
    if eval_ids.len() < 3 {
        bail!(
            "too few sentences: {} for evaluation (need 3)",
            eval_ids.len()
        );
    }
    let none = Overrides::new();
    let base = embeddings(&rt, &eval_ids, &none)?;
    drop(rt);
    let out_rt = BertModel::load(out_model)?;
    let out_tok = TextTokenizer::for_model(out_model)?;
    let mut mismatches = 0usize;
    for (s, ids) in eval_s.iter().zip(&eval_ids) {
        if &out_tok.encode(s)? != ids {
            mismatches += 1;
        }
    }
    let fid = fidelity(&base, &embeddings(&out_rt, &eval_ids, &none)?);
    Ok(json!({
        "eval": {"text": "Brown news sentences (6-40 words)", "sentences": eval_ids.len(), "tokens": eval_ids.iter().map(Vec::len).sum::<usize>()},
        "fidelity": fid, "measured_damage": 1.0 - fid.mean_cosine, "tokenizer_mismatches": mismatches,
    }))
}

/// Runs `claimlab compress` on a BERT encoder; returns what to print.
///
/// # Errors
/// `--method gptq`, a tensor without a BERT role or with an unconvertible type, a row length no
/// block type fits, a target below the smallest reachable size (the message says it), a missing
/// calibration file, too few sentences, or failures of the runtime or the writer.
#[allow(clippy::too_many_lines)]
pub(super) fn run(args: &Args, model: &Model, json_out: bool) -> Result<String> {
    let quiet = json_out;
    let t0 = Instant::now();
    let Preflight {
        slots,
        dropped,
        n_params,
        fixed_bytes,
        min_bytes,
        target_total,
        eval_tokens: eval_budget,
        calib_tokens: calib_budget,
    } = preflight(model, args)?;
    let n_validate = args.validate.unwrap_or(if args.quick { 2 } else { 8 });
    let cfg = model.config().clone();
    #[allow(clippy::cast_precision_loss)]
    let bpw = |bytes: u64| bytes as f64 * 8.0 / n_params as f64;

    // Runtime, tokenizer, sentences.
    let rt = BertModel::load(model)?;
    let tok = TextTokenizer::for_model(model)?;
    let max_len = rt.config().max_positions;
    let (eval_s, eval_ids) = eval_sentences(&tok, args.cache_dir.clone(), eval_budget, max_len)?;
    let CalibSentences {
        what: calib_what,
        ids: calib_ids,
    } = calib_sentences(&tok, args, calib_budget, max_len)?;
    if calib_ids.len() < 2 || eval_ids.len() < 3 {
        bail!(
            "too few sentences: {} for calibration ({calib_what}), {} for evaluation (need 2 and 3)",
            calib_ids.len(),
            eval_ids.len()
        );
    }
    let none = Overrides::new();
    let base_cal = embeddings(&rt, &calib_ids, &none)?;
    let base_eval = embeddings(&rt, &eval_ids, &none)?;

    // Menus and measured sensitivities.
    let menu_slots: Vec<&Slot> = slots
        .iter()
        .filter(|s| matches!(s.plan, Plan::Menu))
        .collect();
    let pb = bar(menu_slots.len() as u64, "menus + damage", quiet);
    let mut menus: Vec<TensorMenu> = Vec::with_capacity(menu_slots.len());
    let mut sens: Vec<f64> = Vec::with_capacity(menu_slots.len());
    for s in &menu_slots {
        let (m, k) = measured_menu(model, &rt, s, &calib_ids, &base_cal)?;
        menus.push(m);
        sens.push(k);
        pb.inc(1);
    }
    pb.finish_and_clear();
    // The predicted damage of option `o` of tensor `i` (what the allocator minimises).
    let pred = |i: usize, o: usize| menus[i].options[o].weighted_error;

    // Validation: a seeded sample, each tensor alone at its middle option, measured directly.
    let mut order: Vec<usize> = (0..menus.len()).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(args.seed));
    order.truncate(n_validate.min(menus.len()));
    let mut probes = Vec::new();
    for &i in &order {
        let o = menus[i].options.len() / 2;
        let dt = menus[i].options[o].dtype;
        let w = model.tensor_f32(&menus[i].name)?;
        let mut ov = Overrides::new();
        ov.insert(
            menu_slots[i].hf.clone(),
            dequantize(dt, &quantize(dt, &w)?, w.len())?,
        );
        probes.push(Probe {
            name: menus[i].name.clone(),
            dtype: dt.to_string(),
            predicted: pred(i, o),
            measured: damage(&base_cal, &embeddings(&rt, &calib_ids, &ov)?),
        });
    }
    let rho = spearman(
        &probes.iter().map(|p| p.predicted).collect::<Vec<_>>(),
        &probes.iter().map(|p| p.measured).collect::<Vec<_>>(),
    );
    let ratio_median = median(
        &probes
            .iter()
            .filter(|p| p.predicted > 0.0)
            .map(|p| p.measured / p.predicted)
            .collect::<Vec<_>>(),
    );

    // Allocation (the one a sharded run's plan makes from the same menus).
    let (choice, rep) = super::shard::allocate(&menus, target_total, fixed_bytes)?;
    let predicted_damage: f64 = choice.iter().enumerate().map(|(i, &o)| pred(i, o)).sum();

    // Quantise and write.
    let t_q = Instant::now();
    let chosen: HashMap<String, (DType, Vec<u8>)> = menus
        .par_iter()
        .zip(&choice)
        .map(|(m, &c)| {
            let dt = m.options[c].dtype;
            let w = model.tensor_f32(&m.name)?;
            Ok((m.name.clone(), (dt, quantize(dt, &w)?)))
        })
        .collect::<Result<_>>()?;
    let t_quant = t_q.elapsed().as_secs_f64();
    let tmp = tmp_path(&args.out);
    if let Err(e) = write_gguf(model, &slots, &chosen, &tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    drop(chosen);
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.out.display()))?;

    // Re-open, load, score.
    let out_model =
        Model::open(&args.out).with_context(|| format!("re-opening {}", args.out.display()))?;
    let out_rt = BertModel::load(&out_model)?;
    let out_tok = TextTokenizer::for_model(&out_model)?;
    let mut tokenizer_mismatches = 0usize;
    for (s, ids) in eval_s.iter().zip(&eval_ids) {
        if &out_tok.encode(s)? != ids {
            tokenizer_mismatches += 1;
        }
    }
    let out_eval = embeddings(&out_rt, &eval_ids, &none)?;
    drop(out_rt);
    let fid = fidelity(&base_eval, &out_eval);
    let out_tensor_bytes = out_model.tensor_bytes();
    let file_bytes = std::fs::metadata(&args.out)?.len();
    if let Some(p) = &args.eval_ids_out {
        let js = json!({"sentences": eval_s, "ids": eval_ids, "embeddings": out_eval, "original_embeddings": base_eval});
        std::fs::write(p, serde_json::to_string(&js)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }

    // Uniform per-row baseline at 2..8 bits (same F32 parts).
    let pb = bar(
        u64::from(BASELINE_BITS.end() - BASELINE_BITS.start() + 1),
        "uniform per-row",
        quiet,
    );
    let mut baseline = Vec::new();
    for bits in BASELINE_BITS {
        let mut ov = Overrides::new();
        let mut bytes = fixed_bytes;
        for s in &menu_slots {
            let wv = model.tensor_f32(&s.info.name)?;
            let row = row_of(&s.info);
            bytes += uniform_bytes(n_elems(&s.info), row, bits);
            ov.insert(s.hf.clone(), uniform_per_row(&wv, row, bits));
        }
        let f = fidelity(&base_eval, &embeddings(&rt, &eval_ids, &ov)?);
        baseline.push((bits, bytes, f));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let same_size = baseline
        .iter()
        .filter(|b| b.1 <= out_tensor_bytes)
        .max_by_key(|b| b.1)
        .copied();
    let secs = t0.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();

    let mut counts: Vec<(DType, usize, u64)> = Vec::new();
    for (m, &c) in menus.iter().zip(&choice) {
        let o = m.options[c];
        if let Some(e) = counts.iter_mut().find(|e| e.0 == o.dtype) {
            e.1 += 1;
            e.2 += o.bytes as u64;
        } else {
            counts.push((o.dtype, 1, o.bytes as u64));
        }
    }
    counts.sort_by_key(|e| MENU.iter().position(|&d| d == e.0));
    let fmt_rho = |r: Option<f64>| r.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"));

    if json_out {
        let tensors: Vec<_> = menus
            .iter()
            .zip(&choice)
            .enumerate()
            .map(|(i, (m, &c))| {
                json!({
                    "name": m.name, "gguf_name": menu_slots[i].gguf, "input_type": m.input_dtype.to_string(),
                    "n_elems": m.n_elems, "chosen": m.options[c].dtype.to_string(), "bytes": m.options[c].bytes,
                    "damage_per_sq_error": sens[i],
                    "options": m.options.iter().enumerate().map(|(o, op)| json!({"type": op.dtype.to_string(), "bytes": op.bytes, "sq_error": op.sq_error, "predicted_damage": pred(i, o)})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&json!({
            "architecture": "bert", "input": model.path(), "output": args.out, "method": "rtn",
            "input_config": cfg, "output_config": out_model.config(),
            "dropped_tensors": dropped,
            "damage": "1 - mean cos(original, quantised) sentence embeddings, tensor alone at its cheapest option, scaled by squared-error ratio",
            "calibration": {"text": calib_what, "sentences": calib_ids.len(), "tokens": calib_ids.iter().map(Vec::len).sum::<usize>()},
            "eval": {"text": "Brown news sentences (6-40 words)", "sentences": eval_ids.len(), "tokens": eval_ids.iter().map(Vec::len).sum::<usize>()},
            "n_params": n_params, "target_bytes": target_total, "target_bpw": bpw(target_total),
            "min_bytes": min_bytes, "min_bpw": bpw(min_bytes), "fixed_f32_bytes": fixed_bytes,
            "tensor_bytes": out_tensor_bytes, "bpw": bpw(out_tensor_bytes), "file_bytes": file_bytes,
            "allocation": rep, "predicted_damage": predicted_damage,
            "per_type": counts.iter().map(|e| json!({"type": e.0.to_string(), "tensors": e.1, "bytes": e.2})).collect::<Vec<_>>(),
            "fidelity": fid, "measured_damage": 1.0 - fid.mean_cosine,
            "tokenizer_mismatches": tokenizer_mismatches,
            "validation": {"seed": args.seed, "probes": probes, "spearman": rho, "median_measured_over_predicted": ratio_median},
            "uniform_per_row": baseline.iter().map(|(b, by, f)| json!({"bits": b, "tensor_bytes": by, "bpw": bpw(*by), "fidelity": f})).collect::<Vec<_>>(),
            "uniform_same_size_bits": same_size.map(|b| b.0),
            "seconds": secs, "seconds_quantise": t_quant, "peak_rss_bytes": peak,
            "tensors": tensors,
        }))?);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "input       {} (BERT, {} tensors written, {} params; dropped: {})",
        model.path().display(),
        slots.len(),
        n_params,
        if dropped.is_empty() {
            "none".into()
        } else {
            dropped.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "output      {} (GGUF, architecture bert, mean pooling)",
        args.out.display()
    );
    let _ = writeln!(
        s,
        "target      {} bytes ({:.3} bpw); smallest reachable {} bytes ({:.3} bpw)",
        target_total,
        bpw(target_total),
        min_bytes,
        bpw(min_bytes)
    );
    let _ = writeln!(
        s,
        "damage      measured on {} calibration sentences of {calib_what}",
        calib_ids.len()
    );
    for e in &counts {
        let _ = writeln!(
            s,
            "  {:<6} {:>3} tensors {:>10} bytes",
            e.0.to_string(),
            e.1,
            e.2
        );
    }
    let _ = writeln!(
        s,
        "tensor data {} bytes = {:.3} bits per weight; file {} bytes",
        out_tensor_bytes,
        bpw(out_tensor_bytes),
        file_bytes
    );
    let _ = writeln!(
        s,
        "fidelity    {} Brown news sentences: mean cos {:.5}, min cos {:.5}, Spearman of pairwise similarities {}; predicted 1-cos {:.2e}, measured {:.2e}; tokenizer from the GGUF differs on {} sentences",
        eval_ids.len(),
        fid.mean_cosine,
        fid.min_cosine,
        fmt_rho(fid.spearman),
        predicted_damage,
        1.0 - fid.mean_cosine,
        tokenizer_mismatches
    );
    let _ = writeln!(
        s,
        "validation  {} probes at the middle option: Spearman(predicted, measured) {}, median measured/predicted {}",
        probes.len(),
        fmt_rho(rho),
        fmt_rho(ratio_median)
    );
    let _ = writeln!(s, "uniform per-row (f16 scale+min per row):");
    for (b, by, f) in &baseline {
        let _ = writeln!(
            s,
            "  {b} bits  {by:>10} bytes {:>6.3} bpw  mean cos {:.5}  min cos {:.5}  Spearman {}",
            bpw(*by),
            f.mean_cosine,
            f.min_cosine,
            fmt_rho(f.spearman)
        );
    }
    let _ = writeln!(
        s,
        "time        {secs:.1} s (quantise {t_quant:.1} s); peak RSS {}",
        peak.map_or_else(
            || "n/a".into(),
            |b| format!("{:.1} MiB", b as f64 / 1048576.0)
        )
    );
    Ok(s)
}

/// Largest absolute error a Q8_0 block of `block` can have after a round trip: half a step of
/// `amax/127`, plus the f16 rounding of the scale times the largest code.
#[must_use]
pub fn q8_0_bound(block: &[f32]) -> f64 {
    let amax = block.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
    let d = amax / 127.0;
    d * (0.5 + 127.0 * 2f64.powi(-11)) + 1e-12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_per_row_error_within_half_step_and_sizes() {
        let w: Vec<f32> = (0..4 * 64)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.3)
            .collect();
        for bits in [2u32, 3, 4, 8] {
            let back = uniform_per_row(&w, 64, bits);
            for (r, br) in w.chunks_exact(64).zip(back.chunks_exact(64)) {
                let lo = r.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let step = f64::from(hi - lo) / f64::from((1u32 << bits) - 1);
                for (a, b) in r.iter().zip(br) {
                    // half a step plus the f16 rounding of minimum and step
                    let tol = 0.5 * step + 2e-3 * (step + f64::from(lo.abs()));
                    assert!(f64::from((a - b).abs()) <= tol, "{bits} bits: {a} vs {b}");
                }
            }
        }
        // 4 rows of 64 at 3 bits: 24 bytes of codes + 4 bytes of scale/min per row.
        assert_eq!(uniform_bytes(256, 64, 3), 4 * (24 + 4));
    }

    #[test]
    fn q8_0_round_trip_within_bound() {
        let w: Vec<f32> = (0..32 * 8)
            .map(|i| ((i * 104_729 % 997) as f32 / 498.0 - 1.0) * 0.05)
            .collect();
        let back = dequantize(DType::Q8_0, &quantize(DType::Q8_0, &w).unwrap(), w.len()).unwrap();
        for (b, bb) in w.chunks_exact(32).zip(back.chunks_exact(32)) {
            let bound = q8_0_bound(b);
            for (x, y) in b.iter().zip(bb) {
                assert!(f64::from((x - y).abs()) <= bound);
            }
        }
    }

    #[test]
    fn hf_and_gguf_names_from_roles() {
        let t = |name: &str, shape: Vec<usize>| {
            let parsed = claimlab_weights::parse_gguf_bytes(&tiny_gguf(name, &shape)).unwrap();
            parsed.tensors[0].clone()
        };
        let q = t("encoder.layer.3.attention.self.query.bias", vec![32]);
        assert_eq!(
            hf_name(&q).unwrap(),
            "encoder.layer.3.attention.self.query.bias"
        );
        assert_eq!(gguf_bert_name(&hf_name(&q).unwrap()), "blk.3.attn_q.bias");
        let e = t("token_embd.weight", vec![4, 32]);
        assert_eq!(hf_name(&e).unwrap(), "embeddings.word_embeddings.weight");
        let o = t("blk.1.layer_output_norm.weight", vec![32]);
        assert_eq!(
            hf_name(&o).unwrap(),
            "encoder.layer.1.output.LayerNorm.weight"
        );
        assert!(hf_name(&t("mystery.weight", vec![32])).is_none());
    }

    #[test]
    fn tensors_without_a_bert_role_are_refused_before_work() {
        let dir = std::env::temp_dir().join(format!("bert-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tiny.gguf");
        let mut w = GgufWriter::new();
        w.set_metadata("general.architecture", GgufValue::String("bert".into()));
        for (k, v) in [
            ("bert.block_count", 1u32),
            ("bert.context_length", 8),
            ("bert.embedding_length", 32),
            ("bert.feed_forward_length", 64),
            ("bert.attention.head_count", 2),
            ("bert.vocab_size", 4),
        ] {
            w.set_metadata(k, GgufValue::U32(v));
        }
        w.add_tensor(
            "token_embd.weight",
            DType::F32,
            &[4, 32],
            vec![0u8; 4 * 128],
        )
        .unwrap();
        w.add_tensor(
            "pooler.dense.weight",
            DType::F32,
            &[32, 32],
            vec![0u8; 4 * 1024],
        )
        .unwrap();
        w.add_tensor("mystery.weight", DType::F32, &[32], vec![0u8; 128])
            .unwrap();
        w.write(&p).unwrap();
        let m = Model::open(&p).unwrap();
        assert_eq!(m.config().arch, Architecture::BertEncoder);
        let e = plan_tensors(&m).unwrap_err().to_string();
        assert!(
            e.contains("mystery.weight") && e.contains("no place in a BERT encoder"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A one-tensor GGUF (F32 zeros) for the name and shape tests.
    fn tiny_gguf(name: &str, shape: &[usize]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("bert-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{}.gguf", name.replace('.', "_")));
        let mut w = GgufWriter::new();
        let n: usize = shape.iter().product();
        w.add_tensor(name, DType::F32, shape, vec![0u8; 4 * n])
            .unwrap();
        w.write(&p).unwrap();
        let b = std::fs::read(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        b
    }
}
