//! `claimlab compress`: a llama GGUF model in, a smaller GGUF with standard block types out, with
//! its measured perplexity beside the original's.
//!
//! First cut (issue 14): per 2-D weight tensor a menu of GGUF's 32-element block types
//! (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), each option's cost its real stored bytes and its damage the
//! squared reconstruction error against the input's dequantised weights (unweighted: no
//! calibration activations yet). The budget crate picks one option per tensor (Lagrangian and
//! exact, with their gap); the file is written with `copy_with_replacements`, re-opened, and its
//! perplexity on Brown news measured against the input model's on the same tokens.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use claimlab_budget::{allocate_bits, AllocateConfig, Item};
use claimlab_runtime::{perplexity, LlamaModel, Overrides, PerplexityConfig, TextTokenizer};
use claimlab_weights::{
    brown_documents, copy_with_replacements, dequantize, quantize, Architecture, Cache, DType,
    Model, Param, Pinned,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use super::open_model;

/// The menu of block types tried for each tensor (32-element blocks, so they fit SmolLM2's
/// 576-wide rows; a type is skipped for a tensor whose row length its block does not divide).
pub const MENU: [DType; 5] = [
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
];

/// Context window of the perplexity evaluation, in tokens.
pub const EVAL_CONTEXT: usize = 512;

/// Arguments of `claimlab compress`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A llama-family GGUF decoder; default: the pinned SmolLM2-135M.
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
    /// Tokens of Brown news (documents ca01-ca44) to score, in windows of 512.
    #[arg(long, default_value_t = 2048)]
    pub eval_tokens: usize,
    /// Output GGUF path.
    #[arg(long, default_value = "compressed.gguf")]
    pub out: PathBuf,
}

/// One tensor's menu: the options that fit its rows, their bytes and their damage.
#[derive(Debug, Clone)]
pub struct TensorMenu {
    /// Tensor name.
    pub name: String,
    /// Number of elements.
    pub n_elems: usize,
    /// Storage type in the input file.
    pub input_dtype: DType,
    /// The options: type, stored bytes, squared reconstruction error (sum over elements).
    pub options: Vec<(DType, usize, f64)>,
}

/// Builds the menu of one tensor from its dequantised weights (`row` = innermost length).
///
/// # Errors
/// When quantisation fails (non-finite weights) or no type of [`MENU`] fits the row length.
pub fn tensor_menu(name: &str, input_dtype: DType, row: usize, w: &[f32]) -> Result<TensorMenu> {
    let mut options = Vec::new();
    for &dt in &MENU {
        if !row.is_multiple_of(dt.block_elems()) {
            continue;
        }
        let q = quantize(dt, w).with_context(|| format!("quantising {name} to {dt}"))?;
        let back = dequantize(dt, &q, w.len())?;
        let sse: f64 = w
            .iter()
            .zip(&back)
            .map(|(&a, &b)| {
                let d = f64::from(a) - f64::from(b);
                d * d
            })
            .sum();
        options.push((dt, q.len(), sse));
    }
    if options.is_empty() {
        bail!("{name}: row length {row} is not a multiple of 32; no block type of the menu fits");
    }
    Ok(TensorMenu {
        name: name.to_string(),
        n_elems: w.len(),
        input_dtype,
        options,
    })
}

fn bar(len: u64, msg: &str, json: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if json {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(s) = ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb
}

fn eval_tokens(tok: &TextTokenizer, cache_dir: Option<PathBuf>, n: usize) -> Result<Vec<u32>> {
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

/// Runs `claimlab compress`; returns what to print.
///
/// # Errors
/// Bad arguments, a model that is not a llama GGUF, a target below the smallest size the menus
/// reach (the message says the minimum), or failures of the runtime or the writer.
#[allow(clippy::too_many_lines)]
pub fn run(args: Args, json_out: bool) -> Result<String> {
    if args.eval_tokens < 2 {
        bail!("--eval-tokens must be at least 2, got {}", args.eval_tokens);
    }
    if let Some(b) = args.target_bpw {
        if !(b.is_finite() && b > 0.0) {
            bail!("--target-bpw must be a positive number, got {b}");
        }
    }
    let model = open_model(
        args.model.as_deref(),
        Pinned::SmolLm2,
        args.cache_dir.clone(),
    )?;
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
    let t0 = Instant::now();
    let n_params = model.n_params();
    let targets: Vec<_> = model
        .tensors()
        .iter()
        .filter(|t| t.shape.len() == 2 && t.param == Param::Weight)
        .cloned()
        .collect();
    let fixed_bytes: u64 = model
        .tensors()
        .iter()
        .filter(|t| !(t.shape.len() == 2 && t.param == Param::Weight))
        .map(|t| t.nbytes)
        .sum();
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let target_total = match (args.target_bpw, args.target_bytes) {
        (Some(b), None) => (b * n_params as f64 / 8.0).floor() as u64,
        (None, Some(n)) => n,
        _ => bail!("give exactly one of --target-bpw and --target-bytes"),
    };

    // 1. Menus.
    let pb = bar(targets.len() as u64, "menus (quantise x5)", json_out);
    let menus: Vec<TensorMenu> = targets
        .par_iter()
        .map(|t| {
            let w = model.tensor_f32(&t.name)?;
            let row = *t.shape.last().unwrap_or(&1);
            let m = tensor_menu(&t.name, t.dtype, row, &w);
            pb.inc(1);
            m
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let min_bytes: u64 = fixed_bytes
        + menus
            .iter()
            .map(|m| m.options.iter().map(|o| o.1 as u64).min().unwrap_or(0))
            .sum::<u64>();
    let max_bytes: u64 = fixed_bytes
        + menus
            .iter()
            .map(|m| m.options.iter().map(|o| o.1 as u64).max().unwrap_or(0))
            .sum::<u64>();
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

    // 2. Allocation.
    #[allow(clippy::cast_precision_loss)]
    let items: Vec<Vec<Item>> = menus
        .iter()
        .map(|m| {
            m.options
                .iter()
                .map(|&(_, c, d)| Item::new(c as f64, d))
                .collect()
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let budget = (target_total - fixed_bytes) as f64;
    let rep = allocate_bits(&items, budget, &AllocateConfig::default())?;
    let choice = rep
        .exact
        .as_ref()
        .map_or(&rep.lagrangian.choice, |e| &e.choice)
        .clone();

    // 3. Write (to a temporary file, then rename).
    let pb = bar(menus.len() as u64, "quantise chosen", json_out);
    let repl: HashMap<String, (DType, Vec<u8>)> = menus
        .par_iter()
        .zip(&choice)
        .map(|(m, &c)| {
            let dt = m.options[c].0;
            let w = model.tensor_f32(&m.name)?;
            let q = quantize(dt, &w)?;
            pb.inc(1);
            Ok((m.name.clone(), (dt, q)))
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let tmp = tmp_path(&args.out);
    copy_with_replacements(&model, &repl, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.out.display()))?;
    drop(repl);

    // 4. Re-open and measure.
    let out_model =
        Model::open(&args.out).with_context(|| format!("re-opening {}", args.out.display()))?;
    let out_tensor_bytes = out_model.tensor_bytes();
    let file_bytes = std::fs::metadata(&args.out)?.len();
    let in_file_bytes = std::fs::metadata(model.file())?.len();
    let tok = TextTokenizer::for_model(&model)?;
    let ids = eval_tokens(&tok, args.cache_dir.clone(), args.eval_tokens)?;
    let cfg = PerplexityConfig {
        context: EVAL_CONTEXT.min(ids.len()),
        stride: EVAL_CONTEXT.min(ids.len()),
    };
    let pb = bar(2, "perplexity before/after", json_out);
    let before = perplexity(
        &LlamaModel::load(&model)?,
        &ids,
        &cfg,
        &Overrides::default(),
    )?;
    pb.inc(1);
    let after = perplexity(
        &LlamaModel::load(&out_model)?,
        &ids,
        &cfg,
        &Overrides::default(),
    )?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();

    // Summary per type.
    let mut counts: Vec<(DType, usize, u64, usize)> = Vec::new(); // type, tensors, bytes, elems
    for (m, &c) in menus.iter().zip(&choice) {
        let (dt, b, _) = m.options[c];
        if let Some(e) = counts.iter_mut().find(|e| e.0 == dt) {
            e.1 += 1;
            e.2 += b as u64;
            e.3 += m.n_elems;
        } else {
            counts.push((dt, 1, b as u64, m.n_elems));
        }
    }
    counts.sort_by_key(|e| MENU.iter().position(|&d| d == e.0));
    let input_types: Vec<String> = {
        let mut v: Vec<String> = menus.iter().map(|m| m.input_dtype.to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let chosen_proxy: f64 = menus
        .iter()
        .zip(&choice)
        .map(|(m, &c)| m.options[c].2)
        .sum();
    let d_nll = after.mean_nll_nats - before.mean_nll_nats;

    if json_out {
        let tensors: Vec<_> = menus
            .iter()
            .zip(&choice)
            .map(|(m, &c)| {
                json!({
                    "name": m.name, "input_type": m.input_dtype.to_string(), "n_elems": m.n_elems,
                    "chosen": m.options[c].0.to_string(), "bytes": m.options[c].1, "sq_error": m.options[c].2,
                    "options": m.options.iter().map(|o| json!({"type": o.0.to_string(), "bytes": o.1, "sq_error": o.2})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&json!({
            "input": model.path(), "output": args.out,
            "baseline_note": format!("the input stores its matrices as {}; its dequantised weights are the baseline", input_types.join(", ")),
            "damage_proxy": "plain squared reconstruction error (no activation weighting yet)",
            "n_params": n_params, "target_bytes": target_total, "target_bpw": bpw(target_total),
            "min_bytes": min_bytes, "max_bytes": max_bytes, "fixed_f32_bytes": fixed_bytes,
            "tensor_bytes": out_tensor_bytes, "bpw": bpw(out_tensor_bytes), "file_bytes": file_bytes,
            "input_tensor_bytes": model.tensor_bytes(), "input_file_bytes": in_file_bytes,
            "allocation": rep, "chosen_proxy": chosen_proxy,
            "per_type": counts.iter().map(|e| json!({"type": e.0.to_string(), "tensors": e.1, "bytes": e.2, "elems": e.3})).collect::<Vec<_>>(),
            "eval": {"text": "Brown news ca01-ca44", "tokens": ids.len(), "scored": after.n_tokens, "context": cfg.context},
            "perplexity_before": before.ppl, "perplexity_after": after.ppl,
            "nll_before": before.mean_nll_nats, "nll_after": after.mean_nll_nats, "delta_nll": d_nll,
            "seconds": secs, "tensors": tensors,
        }))?);
    }
    let mut s = String::new();
    let _ = writeln!(s, "input       {} ({} tensors, {} params; matrices stored as {}: its dequantised weights are the baseline)", model.path().display(), model.tensors().len(), n_params, input_types.join(", "));
    let _ = writeln!(
        s,
        "output      {} ({} tensors)",
        args.out.display(),
        out_model.tensors().len()
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
        "damage      plain squared reconstruction error per tensor (NOT activation-weighted yet)\n"
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
    let _ = writeln!(
        s,
        "predicted   proxy total {chosen_proxy:.4e} (squared-error units, not calibrated to nats)"
    );
    let _ = writeln!(s, "time        {secs:.1} s");
    Ok(s)
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
        let m = tensor_menu("t", DType::F32, 64, &w).unwrap();
        assert_eq!(m.options.len(), 5);
        let bytes: Vec<usize> = m.options.iter().map(|o| o.1).collect();
        // 64 blocks of 32: Q4_0 18, Q4_1 20, Q5_0 22, Q5_1 24, Q8_0 34 bytes each.
        assert_eq!(bytes, vec![64 * 18, 64 * 20, 64 * 22, 64 * 24, 64 * 34]);
        let e: Vec<f64> = m.options.iter().map(|o| o.2).collect();
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
    fn rows_not_multiple_of_32_are_rejected() {
        let w = vec![0.5f32; 48 * 2];
        assert!(tensor_menu("t", DType::F32, 48, &w).is_err());
    }
}
