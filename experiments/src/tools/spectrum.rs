//! `claimlab spectrum`: WeightWatcher-style spectral layer reports (claimlab-spectral).
//!
//! - `claimlab spectrum FILE`: FILE holds a matrix, one row per line, entries separated by
//!   whitespace or commas (blank lines and lines starting with `#` are skipped).
//! - `claimlab spectrum [--model M]`: every 2-D weight of a model (M is a file or directory, or a
//!   pinned name `minilm` / `smollm2`; default: the pinned MiniLM), one report per tensor, computed
//!   in parallel over tensors. Tensors are selected by role (weights, not biases or norm scales),
//!   never by name.
//!
//! Each report is `claimlab_spectral::layer_report`: the ESD (eigenvalues of `WᵀW`, not divided by
//! N, as WeightWatcher 0.7), its continuous power-law fit (alpha, xmin, KS distance D, n_tail), the
//! largest eigenvalue and `log10` norms, alpha-hat, stable rank, spectral entropy and the
//! eigenvalues above the Marchenko-Pastur edge.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use claimlab_spectral::{faer, layer_report, LayerReport};
use claimlab_weights::{Model, Param, Pinned, Role, TensorInfo};
use rayon::prelude::*;
use serde_json::json;

/// Arguments of `claimlab spectrum`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A matrix file, one row per line.
    #[arg(conflicts_with = "model")]
    pub file: Option<PathBuf>,
    /// A model file or directory, or a pinned name (`minilm`, `smollm2`); the default, when no
    /// FILE is given, is the pinned MiniLM.
    #[arg(long)]
    pub model: Option<String>,
    /// Data cache directory for pinned models (default: $CLAIMLAB_CACHE_DIR or the user cache dir).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Runs `claimlab spectrum`; returns what to print.
///
/// # Errors
/// Unreadable or malformed matrix files (with file and line), models that do not open, and the
/// spectral crate's errors on a matrix file. On a model, a tensor whose report fails is listed with
/// its error instead of failing the whole run.
pub fn run(args: Args, json: bool) -> Result<String> {
    if let Some(file) = args.file {
        let (rows, cols, data) = read_matrix(&file)?;
        let w = faer::Mat::<f64>::from_fn(rows, cols, |i, j| data[i * cols + j]);
        let r = layer_report(w.as_ref())
            .with_context(|| format!("{}: layer report", file.display()))?;
        return Ok(if json {
            let mut v = report_json(&r);
            v["file"] = json!(file);
            v["eigenvalues"] = json!(r.eigenvalues);
            serde_json::to_string_pretty(&v)?
        } else {
            let mut out = format!("file {} ({rows} x {cols})\n", file.display());
            out.push_str(&header());
            out.push_str(&row_text("matrix", &r));
            out
        });
    }
    let model = open(args.model.as_deref(), args.cache_dir)?;
    let targets: Vec<&TensorInfo> = model.tensors().iter().filter(|t| wanted(t)).collect();
    if targets.is_empty() {
        bail!("{}: no 2-D weight matrices found", model.path().display());
    }
    let reports: Vec<Result<LayerReport>> = targets
        .par_iter()
        .map(|t| tensor_report(&model, t))
        .collect();
    if json {
        let layers: Vec<_> = targets
            .iter()
            .zip(&reports)
            .map(|(t, r)| {
                let mut v = match r {
                    Ok(r) => report_json(r),
                    Err(e) => json!({ "error": format!("{e:#}") }),
                };
                v["name"] = json!(t.name);
                v["role"] = json!(t.role);
                v["layer"] = json!(t.layer);
                v["shape"] = json!(t.shape);
                v
            })
            .collect();
        let v = json!({ "model": model.path(), "arch": format!("{:?}", model.config().arch),
                        "layers": layers });
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    let mut out = format!(
        "model {} ({:?}), {} weight matrices\n",
        model.path().display(),
        model.config().arch,
        targets.len()
    );
    out.push_str(&header());
    for (t, r) in targets.iter().zip(&reports) {
        let label = format!(
            "{}{:?} {}x{}",
            t.layer.map(|l| format!("L{l} ")).unwrap_or_default(),
            t.role,
            t.shape[0],
            t.shape[1]
        );
        match r {
            Ok(r) => out.push_str(&row_text(&label, r)),
            Err(e) => out.push_str(&format!("{label:<28} error: {e:#}\n")),
        }
    }
    Ok(out)
}

/// Opens `--model`: a path if it exists, else a pinned name, else the pinned MiniLM.
fn open(model: Option<&str>, cache_dir: Option<PathBuf>) -> Result<Model> {
    match model {
        None => super::open_model(None, Pinned::MiniLm, cache_dir),
        Some(m) if Path::new(m).exists() => {
            super::open_model(Some(Path::new(m)), Pinned::MiniLm, cache_dir)
        }
        Some(m) => match m.parse::<Pinned>() {
            Ok(p) => super::open_model(None, p, cache_dir),
            Err(e) => bail!("--model {m}: no such file, and {e}"),
        },
    }
}

/// 2-D weight matrices (not biases, norm scales or unknown buffers).
fn wanted(t: &TensorInfo) -> bool {
    t.param == Param::Weight
        && t.shape.len() == 2
        && t.shape.iter().all(|&d| d > 1)
        && !matches!(
            t.role,
            Role::AttnNorm | Role::MlpNorm | Role::FinalNorm | Role::EmbeddingNorm | Role::Other
        )
}

fn tensor_report(model: &Model, t: &TensorInfo) -> Result<LayerReport> {
    let v = model.tensor_f32(&t.name)?;
    let (rows, cols) = (t.shape[0], t.shape[1]);
    if v.len() != rows * cols {
        bail!("{}: {} values for shape {rows}x{cols}", t.name, v.len());
    }
    let w = faer::MatRef::from_row_major_slice(&v, rows, cols);
    Ok(claimlab_spectral::layer_report_f32(w)?)
}

fn header() -> String {
    format!(
        "{:<28} {:>8} {:>11} {:>8} {:>6} {:>11} {:>8} {:>9} {:>7} {:>7} {:>6}\n",
        "layer",
        "alpha",
        "xmin",
        "D",
        "n_tail",
        "lambda_max",
        "alpha^",
        "st.rank",
        "entropy",
        "spikes",
        "Q"
    )
}

fn row_text(label: &str, r: &LayerReport) -> String {
    format!(
        "{label:<28} {:>8.4} {:>11.5} {:>8.5} {:>6} {:>11.5} {:>8.4} {:>9.3} {:>7.4} {:>7} {:>6.2}\n",
        r.fit.alpha,
        r.fit.xmin,
        r.fit.ks_distance,
        r.fit.n_tail,
        r.lambda_max,
        r.alpha_weighted,
        r.stable_rank,
        r.entropy,
        r.n_spikes,
        r.q
    )
}

fn report_json(r: &LayerReport) -> serde_json::Value {
    json!({
        "n_rows": r.n_rows,
        "n_cols": r.n_cols,
        "q": r.q,
        "alpha": r.fit.alpha,
        "xmin": r.fit.xmin,
        "xmax": r.fit.xmax,
        "sigma": r.fit.sigma,
        "D": r.fit.ks_distance,
        "n_tail": r.fit.n_tail,
        "lambda_max": r.lambda_max,
        "log_spectral_norm": r.log_spectral_norm,
        "alpha_weighted": r.alpha_weighted,
        "log_alpha_norm": r.log_alpha_norm,
        "log_norm": r.log_norm,
        "stable_rank": r.stable_rank,
        "entropy": r.entropy,
        "matrix_rank": r.matrix_rank,
        "mp_edge": r.mp_edge,
        "n_spikes": r.n_spikes,
        "entropy_effective_rank": r.entropy_effective_rank,
    })
}

/// Reads a matrix, one row per line, entries separated by whitespace or commas.
fn read_matrix(path: &Path) -> Result<(usize, usize, Vec<f64>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut data = Vec::new();
    let mut cols = 0;
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut n = 0;
        for tok in t
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
        {
            let v: f64 = tok.parse().map_err(|_| {
                anyhow::anyhow!("{}:{}: `{tok}` is not a number", path.display(), i + 1)
            })?;
            if !v.is_finite() {
                bail!(
                    "{}:{}: `{tok}` is not a finite number",
                    path.display(),
                    i + 1
                );
            }
            data.push(v);
            n += 1;
        }
        if rows == 0 {
            cols = n;
        } else if n != cols {
            bail!(
                "{}:{}: {n} entries, but the first row has {cols}",
                path.display(),
                i + 1
            );
        }
        rows += 1;
    }
    if rows == 0 {
        bail!("{}: no matrix rows in the file", path.display());
    }
    Ok((rows, cols, data))
}
