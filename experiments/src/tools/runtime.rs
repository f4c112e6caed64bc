//! `claimlab embed`, `claimlab perplexity`, `claimlab generate`: the transformer runtime from the
//! command line.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{
    cosine, generate, perplexity, BertModel, LlamaModel, Overrides, PerplexityConfig, TextTokenizer,
};
use claimlab_weights::{Architecture, Pinned};
use serde_json::json;

use super::open_model;

/// Arguments of `claimlab embed`.
#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// A BERT encoder (HF directory or safetensors); default: the pinned MiniLM-L6.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data cache directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Sentences to embed.
    #[arg(required = true)]
    pub sentences: Vec<String>,
}

/// Arguments of `claimlab perplexity`.
#[derive(clap::Args, Debug)]
pub struct PerplexityArgs {
    /// A llama-family GGUF decoder; default: the pinned SmolLM2-135M.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data cache directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512)]
    pub context: usize,
    /// Step between windows in tokens (default: the context, i.e. disjoint windows).
    #[arg(long)]
    pub stride: Option<usize>,
    /// Score at most this many tokens of the file (0 = all).
    #[arg(long, default_value_t = 0)]
    pub max_tokens: usize,
    /// UTF-8 text file.
    pub file: PathBuf,
}

/// Arguments of `claimlab generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// A llama-family GGUF decoder; default: the pinned SmolLM2-135M.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data cache directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: usize,
    /// Do not stop at the end-of-turn token (for timing a fixed number of tokens).
    #[arg(long)]
    pub ignore_eos: bool,
    /// The prompt.
    pub prompt: String,
}

/// Runs `claimlab embed`; returns what to print.
///
/// # Errors
/// When the model is not a BERT encoder or the runtime fails.
pub fn embed(args: EmbedArgs, json: bool) -> Result<String> {
    let model = open_model(args.model.as_deref(), Pinned::MiniLm, args.cache_dir)?;
    if model.config().arch != Architecture::BertEncoder {
        bail!(
            "{}: `embed` needs a BERT encoder, this is {:?}",
            model.path().display(),
            model.config().arch
        );
    }
    let tok = TextTokenizer::for_model(&model)?;
    let bert = BertModel::load(&model)?;
    let none = Overrides::default();
    let mut vecs = Vec::new();
    for s in &args.sentences {
        let ids = tok.encode(s)?;
        vecs.push(bert.embed(&ids, &none)?);
    }
    let n = vecs.len();
    let sims: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| cosine(&vecs[i], &vecs[j])).collect())
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(&json!({
            "model": model.path(), "sentences": args.sentences, "cosine": sims, "embeddings": vecs,
        }))?);
    }
    let mut out = String::from("pairwise cosine similarity\n\n     ");
    for j in 0..n {
        let _ = write!(out, " {:>6}", format!("[{j}]"));
    }
    out.push('\n');
    for (i, row) in sims.iter().enumerate() {
        let _ = write!(out, "{:>5}", format!("[{i}]"));
        for v in row {
            let _ = write!(out, " {v:>6.3}");
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, s) in args.sentences.iter().enumerate() {
        let _ = writeln!(out, "[{i}] {s}");
    }
    Ok(out)
}

fn load_decoder(
    path: Option<&std::path::Path>,
    cache_dir: Option<PathBuf>,
) -> Result<(claimlab_weights::Model, LlamaModel, TextTokenizer)> {
    let model = open_model(path, Pinned::SmolLm2, cache_dir)?;
    if model.config().arch != Architecture::LlamaDecoder {
        bail!(
            "{}: needs a llama decoder, this is {:?}",
            model.path().display(),
            model.config().arch
        );
    }
    let tok = TextTokenizer::for_model(&model)?;
    let llama = LlamaModel::load(&model)?;
    Ok((model, llama, tok))
}

/// Runs `claimlab perplexity`; returns what to print.
///
/// # Errors
/// When the file cannot be read, the model is not a decoder, or the runtime fails.
pub fn perplexity_cmd(args: PerplexityArgs, json: bool) -> Result<String> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let (model, llama, tok) = load_decoder(args.model.as_deref(), args.cache_dir)?;
    let mut ids = tok.encode(&text)?;
    if args.max_tokens > 0 && ids.len() > args.max_tokens {
        ids.truncate(args.max_tokens);
    }
    if ids.len() < 2 {
        bail!("{}: fewer than 2 tokens to score", args.file.display());
    }
    let cfg = PerplexityConfig {
        context: args.context,
        stride: args.stride.unwrap_or(args.context),
    };
    let t0 = std::time::Instant::now();
    let p = perplexity(&llama, &ids, &cfg, &Overrides::default())?;
    let secs = t0.elapsed().as_secs_f64();
    if json {
        return Ok(serde_json::to_string_pretty(&json!({
            "model": model.path(), "file": args.file, "tokens_in_file": ids.len(), "scored_tokens": p.n_tokens,
            "mean_nll_nats": p.mean_nll_nats, "perplexity": p.ppl, "context": cfg.context, "stride": cfg.stride,
            "windows": p.n_windows, "seconds": secs,
        }))?);
    }
    Ok(format!(
        "model       {}\nfile        {}\ntokens      {} ({} scored in {} windows, context {}, stride {})\nmean NLL    {:.4} nats\nperplexity  {:.3}\ntime        {:.1} s ({:.0} tokens/s)\n",
        model.path().display(),
        args.file.display(),
        ids.len(),
        p.n_tokens,
        p.n_windows,
        cfg.context,
        cfg.stride,
        p.mean_nll_nats,
        p.ppl,
        secs,
        ids.len() as f64 / secs
    ))
}

/// Runs `claimlab generate`; returns what to print.
///
/// # Errors
/// When the model is not a decoder or the runtime fails.
pub fn generate_cmd(args: GenerateArgs, json: bool) -> Result<String> {
    let (model, llama, tok) = load_decoder(args.model.as_deref(), args.cache_dir)?;
    let ids = tok.encode(&args.prompt)?;
    // Stop at the chat end-of-turn token when the vocabulary has one (SmolLM2: `<|im_end|>`).
    let stop: Vec<u32> = if args.ignore_eos {
        Vec::new()
    } else {
        tok.token_id("<|im_end|>").into_iter().collect()
    };
    let t0 = std::time::Instant::now();
    let out = generate(&llama, &ids, args.max_tokens, &stop, &Overrides::default())?;
    let secs = t0.elapsed().as_secs_f64();
    let text = tok.decode(&out)?;
    if json {
        // The prompt pass timed on its own (same work as generate's first step), so that decoding
        // speed excludes it.
        let t1 = std::time::Instant::now();
        let mut cache = llama.new_cache();
        llama.forward_cached(&mut cache, &ids, &Overrides::default())?;
        let prefill = t1.elapsed().as_secs_f64();
        let decode_tokens = out.len().saturating_sub(1);
        return Ok(serde_json::to_string_pretty(&json!({
            "model": model.path(), "prompt": args.prompt, "continuation": text, "tokens": out,
            "prompt_tokens": ids.len(), "seconds": secs, "prefill_seconds": prefill,
            "prefill_tokens_per_s": ids.len() as f64 / prefill,
            "decode_tokens_per_s": decode_tokens as f64 / (secs - prefill).max(1e-9),
        }))?);
    }
    Ok(format!("{}{}\n", args.prompt, text))
}
