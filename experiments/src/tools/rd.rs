//! `claimlab rd`: rate-distortion (claimlab-ratedist) from the command line.
//!
//! - `claimlab rd blahut --probs P1,P2,... --values V1,V2,... --slope S [--hamming]`: one point of
//!   R(D) of a discrete source by Blahut-Arimoto at slope `S` (nats per unit distortion). The
//!   distortion is squared error between the values (reproduction alphabet = source alphabet), or
//!   Hamming with `--hamming` (then `--values` is not needed). Prints D, R in bits, the certified
//!   lower bound on R and the gap between the bounds.
//! - `claimlab rd curve FILE [--max-bits B]`: FILE holds samples, one per line (blank lines and
//!   lines starting with `#` are skipped). Prints the sample variance, the differential entropy
//!   estimate, and for every quantizer at 1..=B bits (default 8) its MSE, its rates (fixed,
//!   entropy, real rANS stream) and the Gaussian bound and Shannon lower bound at that MSE.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use claimlab_ratedist::{
    blahut_arimoto, operational_curve, BlahutConfig, BlahutStop, DistortionMatrix, OperationalCurve,
};
use clap::Subcommand;

/// Arguments of `claimlab rd`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to compute.
    #[command(subcommand)]
    pub cmd: RdCmd,
}

/// The `claimlab rd` subcommands.
#[derive(Subcommand, Debug)]
pub enum RdCmd {
    /// One R(D) point of a discrete source by Blahut-Arimoto, with certified bounds.
    Blahut {
        /// Source probabilities, comma separated (must sum to 1).
        #[arg(
            long,
            value_delimiter = ',',
            required = true,
            allow_hyphen_values = true
        )]
        probs: Vec<f64>,
        /// Source values, comma separated (squared-error distortion between them).
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        values: Option<Vec<f64>>,
        /// Slope s > 0 in nats per unit distortion (larger s: smaller D, larger R).
        #[arg(long, allow_hyphen_values = true)]
        slope: f64,
        /// Hamming distortion instead of squared error.
        #[arg(long)]
        hamming: bool,
    },
    /// Bounds and operational points of every quantizer for samples read from a file.
    Curve {
        /// Samples, one per line.
        file: PathBuf,
        /// Largest bit width (1..=8).
        #[arg(long, default_value_t = 8)]
        max_bits: u32,
    },
}

/// Runs `claimlab rd`; returns what to print.
///
/// # Errors
/// Missing or mismatched arguments, unreadable or malformed files (with file and line), and every
/// error of the rate-distortion crate.
pub fn run(args: Args, json: bool) -> Result<String> {
    match args.cmd {
        RdCmd::Blahut {
            probs,
            values,
            slope,
            hamming,
        } => blahut(&probs, values.as_deref(), slope, hamming, json),
        RdCmd::Curve { file, max_bits } => {
            let xs = read_samples(&file)?;
            let c = operational_curve(&xs, max_bits)
                .with_context(|| format!("{}: operational curve", file.display()))?;
            format_curve(&c, &file, json)
        }
    }
}

fn blahut(
    probs: &[f64],
    values: Option<&[f64]>,
    slope: f64,
    hamming: bool,
    json: bool,
) -> Result<String> {
    let (dist, kind) = if hamming {
        if values.is_some() {
            bail!("--values is not used with --hamming (the distortion is 0 or 1)");
        }
        (
            DistortionMatrix::hamming(probs.len()).context("Hamming distortion")?,
            "hamming",
        )
    } else {
        let Some(v) = values else {
            bail!(
                "--values V1,V2,... is required for squared-error distortion (or pass --hamming)"
            );
        };
        if v.len() != probs.len() {
            bail!(
                "--probs has {} entries but --values has {}",
                probs.len(),
                v.len()
            );
        }
        (
            DistortionMatrix::squared_error(v, v).context("squared-error distortion")?,
            "squared_error",
        )
    };
    let pt =
        blahut_arimoto(probs, &dist, slope, &BlahutConfig::default()).context("Blahut-Arimoto")?;
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "symbols": probs.len(),
            "distortion_measure": kind,
            "point": pt,
        }))? + "\n");
    }
    let stop = match pt.stop {
        BlahutStop::Converged => "converged",
        BlahutStop::MaxIter => "iteration cap reached (bounds still certified)",
        _ => "stopped",
    };
    Ok(format!(
        "Blahut-Arimoto: {} symbols, {kind} distortion, slope s = {} nats\n\
         D                 = {:.12}\n\
         R                 = {:.12} bits (certified upper bound)\n\
         R lower bound     = {:.12} bits (certified)\n\
         gap               = {:.3e} nats\n\
         iterations        = {} ({stop})\n",
        probs.len(),
        pt.slope_nats,
        pt.distortion,
        pt.rate_bits,
        pt.rate_lower_bits,
        pt.gap_nats,
        pt.iterations,
    ))
}

fn read_samples(path: &Path) -> Result<Vec<f32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut xs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let v: f32 = t
            .parse()
            .map_err(|_| anyhow::anyhow!("{}:{}: `{t}` is not a number", path.display(), i + 1))?;
        if !v.is_finite() {
            bail!("{}:{}: `{t}` is not finite", path.display(), i + 1);
        }
        xs.push(v);
    }
    if xs.is_empty() {
        bail!("{}: no samples", path.display());
    }
    Ok(xs)
}

fn format_curve(c: &OperationalCurve, file: &Path, json: bool) -> Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(c)? + "\n");
    }
    let mut s = format!(
        "{}: n = {}, variance = {:.6e}, h(X) = {:.4} bits ({:?})\n\
         Gaussian bound: R(D) <= 0.5 log2(variance / D); Shannon lower bound: R(D) >= h(X) - 0.5 log2(2 pi e D)\n\
         rates in bits per weight, side information included\n",
        file.display(),
        c.n,
        c.variance,
        c.h_bits,
        c.estimator
    );
    s += &format!(
        "{:<12} {:>4} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "quantizer", "bits", "mse", "side", "fixed", "entropy", "coded", "gaussian", "slb"
    );
    for p in &c.points {
        s += &format!(
            "{:<12} {:>4} {:>12.5e} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4}\n",
            p.quantizer,
            p.bits,
            p.mse,
            p.side_bits,
            p.rate_fixed_bits,
            p.rate_entropy_bits,
            p.rate_coded_bits,
            p.gaussian_rate_bits,
            p.slb_bits
        );
    }
    Ok(s)
}
