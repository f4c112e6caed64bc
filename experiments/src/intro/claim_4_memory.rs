//! `intro-4.memory`: a model occupies Σ_l |W_l|·b_l/8 bytes. The formula with nominal and with
//! stored bits per weight against the files' tensor data, and against the resident memory the
//! project's runtime adds when it loads each model (it dequantises every tensor to f32).

use anyhow::Result;
use claimlab_runtime::{BertModel, LlamaModel};
use claimlab_weights::{DType, Model};
use serde_json::json;
use std::fmt::Write as _;

use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Files: the formula with stored b must match within this.
const FILE_TOL: f64 = 0.01;
/// Runtime: supported within this.
const RUNTIME_SUPPORT_TOL: f64 = 0.10;
/// Runtime: refuted when resident memory exceeds the formula by more than this.
const RUNTIME_REFUTE_TOL: f64 = 0.25;

/// Resident set size of this process in bytes (Linux `/proc/self/statm`), if readable.
fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Nominal bits of a storage type as a reader of the text would take them.
fn nominal_bits(t: DType) -> f64 {
    match t {
        DType::Q4_0 | DType::Q4_1 | DType::Q4_K => 4.0,
        DType::Q5_0 | DType::Q5_1 | DType::Q5_K => 5.0,
        DType::Q6_K => 6.0,
        DType::Q8_0 | DType::Q8_K => 8.0,
        DType::F16 | DType::BF16 => 16.0,
        DType::Q2_K => 2.0,
        DType::Q3_K => 3.0,
        _ => 32.0,
    }
}

/// (Σ|W|·b_nominal/8, Σ|W|·b_stored/8, tensor data bytes, float parameters)
fn formula(m: &Model) -> (f64, f64, u64, u64) {
    let (mut nominal, mut stored, mut data, mut n) = (0.0, 0.0, 0u64, 0u64);
    for t in m.tensors().iter().filter(|t| t.dtype != DType::I64) {
        let k = t.shape.iter().map(|&d| d as u64).product::<u64>();
        nominal += k as f64 * nominal_bits(t.dtype) / 8.0;
        stored += k as f64 * t.dtype.bits_per_elem() / 8.0;
        data += t.nbytes;
        n += k;
    }
    (nominal, stored, data, n)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let mut body = String::from(
        "| model | params | Σ|W|·b/8 nominal | Σ|W|·b/8 stored | tensor data in file | runtime weights (f32) | resident Δ (cross-check) | runtime / stored formula |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut rows = Vec::new();
    let mut worst_file: f64 = 0.0;
    let mut worst_runtime: f64 = 0.0;
    for enc in [true, false] {
        let m = if enc { ctx.encoder()? } else { ctx.decoder()? };
        let (nominal, stored, data, n) = formula(m);
        let before = rss_bytes();
        // Load the runtime's copy and measure what it adds while alive.
        let (after, runtime_params) = if enc {
            let b = BertModel::load(m)?;
            (rss_bytes(), b.n_params())
        } else {
            let l = LlamaModel::load(m)?;
            (rss_bytes(), l.n_params())
        };
        let delta = match (before, after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let file_err = (stored - data as f64).abs() / data as f64;
        worst_file = worst_file.max(file_err);
        // The runtime keeps one f32 copy of every parameter: that is its weight memory, whatever
        // the allocator does. The resident-set growth is only a cross-check (it depends on what
        // earlier claims of the same process freed).
        let runtime_bytes = 4 * runtime_params as u64;
        let ratio = Some(runtime_bytes as f64 / stored);
        if let Some(r) = ratio {
            worst_runtime = worst_runtime.max(r - 1.0);
        }
        let name = if enc { "MiniLM" } else { "SmolLM2" };
        let _ = writeln!(
            body,
            "| {name} | {n} | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB | {} | {} |",
            nominal / 1e6,
            stored / 1e6,
            data as f64 / 1e6,
            runtime_bytes as f64 / 1e6,
            delta.map_or("n/a".into(), |d| format!("{:.1} MB", d as f64 / 1e6)),
            ratio.map_or("n/a".into(), |r| format!("{r:.2}"))
        );
        rows.push(json!({"model": name, "params": n, "runtime_params": runtime_params, "formula_nominal_bytes": nominal,
            "formula_stored_bytes": stored, "tensor_data_bytes": data, "runtime_weight_bytes": runtime_bytes, "runtime_resident_delta_bytes": delta,
            "file_rel_error": file_err, "runtime_over_formula": ratio}));
    }
    let _ = writeln!(
        body,
        "\nThe runtime holds every tensor dequantised to f32 (4 bytes per weight): its weight memory is \
         4 × its parameter count, which the verdict uses. Resident Δ, the growth of this process's \
         resident set (/proc/self/statm) while the runtime loads, is a cross-check only: it also counts \
         pages of the memory-mapped file, and allocator reuse of memory freed by an earlier claim makes \
         it smaller, so it depends on what ran before."
    );
    let verdict = if worst_runtime > RUNTIME_REFUTE_TOL {
        Verdict::Refuted
    } else if worst_file <= FILE_TOL && worst_runtime <= RUNTIME_SUPPORT_TOL {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let smol = &rows[1];
    let mut o = Outcome::new(
        "intro-4.memory",
        verdict,
        format!(
            "files: stored-b formula within {:.3}%; runtime weights up to {:.2}x the formula",
            100.0 * worst_file,
            1.0 + worst_runtime
        ),
        "Memory = Σ|W_l|·b_l/8",
        format!(
            "with stored b the formula is the file's tensor data ({:.3}% off, tolerance {:.0}%), with nominal b SmolLM2 is {:.1} MB vs {:.1} MB; \
             the runtime holds weights as f32, {:.2}x the formula (refute > {:.2}x)",
            100.0 * worst_file,
            100.0 * FILE_TOL,
            smol["formula_nominal_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
            smol["tensor_data_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
            1.0 + worst_runtime,
            1.0 + RUNTIME_REFUTE_TOL
        ),
    );
    o.body = body;
    o.numbers = json!({"rows": rows});
    Ok(o)
}
