//! Peer-check helper for `scripts/gguf_peer_check.py`.
//!
//! `quantize_file DTYPE IN.f32 OUT.bin`: quantises little-endian f32 values with
//! `claimlab_weights::quantize` and writes the block bytes.
//! `quantize_file --requant MODEL.gguf TENSOR DTYPE OUT.gguf`: copies a GGUF model with one tensor
//! re-quantised (`copy_with_replacements`).

use std::collections::HashMap;
use std::path::Path;

use claimlab_weights::{copy_with_replacements, quantize, DType, Model};

fn dtype(name: &str) -> DType {
    (0..40)
        .filter_map(DType::from_ggml_id)
        .find(|d| d.name() == name)
        .unwrap_or_else(|| panic!("unknown dtype {name}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--requant") {
        let [_, model, tensor, dt, out] = &args[..] else {
            return Err("usage: --requant MODEL.gguf TENSOR DTYPE OUT.gguf".into());
        };
        let m = Model::open(Path::new(model))?;
        let q = quantize(dtype(dt), &m.tensor_f32(tensor)?)?;
        let repl = HashMap::from([(tensor.clone(), (dtype(dt), q))]);
        copy_with_replacements(&m, &repl, Path::new(out))?;
        return Ok(());
    }
    let [dt, input, out] = &args[..] else {
        return Err("usage: DTYPE IN.f32 OUT.bin".into());
    };
    let raw = std::fs::read(input)?;
    let x: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    std::fs::write(out, quantize(dtype(dt), &x)?)?;
    Ok(())
}
