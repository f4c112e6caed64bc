//! `claimlab convert`: rewrite a GGUF model with every weight matrix in one standard type (F32,
//! F16 or Q8_0), e.g. to give llama.cpp the same f32 weights our runtime computes with.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use claimlab_weights::{copy_with_replacements, quantize, DType, Format, Model};
use serde_json::json;

/// Target type of `claimlab convert`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// 32-bit floats (what the claimlab runtime computes with).
    F32,
    /// IEEE half precision.
    F16,
    /// GGML's 8-bit blocks of 32 with one f16 scale.
    #[value(name = "q8_0")]
    Q8_0,
}

impl Target {
    fn dtype(self) -> DType {
        match self {
            Target::F32 => DType::F32,
            Target::F16 => DType::F16,
            Target::Q8_0 => DType::Q8_0,
        }
    }
}

/// Arguments of `claimlab convert`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF model to convert.
    pub model: PathBuf,
    /// Type of every tensor of two or more dimensions (one-dimensional tensors become F32, as
    /// llama.cpp expects for norms).
    #[arg(long = "type", value_enum)]
    pub target: Target,
    /// Output GGUF file (refuses to overwrite the input).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `claimlab convert`; returns what to print.
///
/// # Errors
/// When the input is not a readable GGUF file, a tensor cannot be decoded or encoded (e.g. a row
/// length that is not a multiple of the block size), or the output cannot be written.
pub fn run(args: Args, json: bool) -> Result<String> {
    let model =
        Model::open(&args.model).with_context(|| format!("opening {}", args.model.display()))?;
    if model.format() != Format::Gguf {
        bail!(
            "{}: convert reads and writes GGUF files only",
            args.model.display()
        );
    }
    if args.out.canonicalize().ok() == args.model.canonicalize().ok() && args.out.exists() {
        bail!(
            "{}: the output would overwrite the input",
            args.out.display()
        );
    }
    let mut repl = HashMap::new();
    let (mut before, mut after) = (0u64, 0u64);
    for t in model.tensors() {
        before += t.nbytes;
        let dtype = if t.shape.len() >= 2 {
            args.target.dtype()
        } else {
            DType::F32
        };
        if dtype == t.dtype {
            after += t.nbytes;
            continue;
        }
        let values = model.tensor_f32(&t.name)?;
        let bytes = quantize(dtype, &values).with_context(|| {
            format!("{}: encoding {} as {dtype:?}", args.model.display(), t.name)
        })?;
        after += bytes.len() as u64;
        repl.insert(t.name.clone(), (dtype, bytes));
    }
    copy_with_replacements(&model, &repl, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    // Read the output back: it must open and hold the same tensors.
    let check =
        Model::open(&args.out).with_context(|| format!("re-opening {}", args.out.display()))?;
    if check.tensors().len() != model.tensors().len() {
        bail!(
            "{}: {} tensors written, {} expected",
            args.out.display(),
            check.tensors().len(),
            model.tensors().len()
        );
    }
    if json {
        return Ok(serde_json::to_string_pretty(&json!({
            "input": args.model, "output": args.out, "type": format!("{:?}", args.target.dtype()),
            "tensors": model.tensors().len(), "converted": repl.len(),
            "tensor_bytes_before": before, "tensor_bytes_after": after,
        }))?);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} -> {}: {} of {} tensors converted to {:?}; tensor bytes {} -> {}",
        args.model.display(),
        args.out.display(),
        repl.len(),
        model.tensors().len(),
        args.target.dtype(),
        before,
        after
    );
    Ok(out)
}
