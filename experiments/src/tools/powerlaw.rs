//! `claimlab powerlaw`: power-law fits by the method of Clauset, Shalizi and Newman
//! (claimlab-spectral) from the command line.
//!
//! - `claimlab powerlaw fit [--discrete] [--xmin X] [--xmax X] [--bootstrap N] [--seed S]
//!   [--compare] FILE`: FILE holds one number per line (blank lines and lines starting with `#`
//!   are skipped). Prints alpha, xmin, sigma, the KS distance D and n_tail; with `--compare` the
//!   likelihood-ratio tests against the exponential, lognormal, stretched exponential and truncated
//!   power law (R, normalised R, p); with `--bootstrap N` the semiparametric bootstrap p-value and
//!   its Monte Carlo standard error.
//!
//! Conventions are the crate's (see `claimlab_spectral`'s docs): alpha is the pdf exponent, xmin
//! minimises D over every distinct value unless `--xmin` fixes it, R > 0 favours the power law.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use claimlab_spectral::{
    bootstrap_p_value_with_progress, compare_all, fit_power_law, AlternativeParams,
    BootstrapConfig, BootstrapResult, Error as SpectralError, LikelihoodRatio, PowerLawConfig,
    PowerLawFit,
};
use clap::Subcommand;
use serde_json::json;

/// Arguments of `claimlab powerlaw`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to compute.
    #[command(subcommand)]
    pub cmd: PowerlawCmd,
}

/// The `claimlab powerlaw` subcommands.
#[derive(Subcommand, Debug)]
pub enum PowerlawCmd {
    /// Fit a power law to a sample (one number per line).
    Fit {
        /// Discrete (integer) model with the Hurwitz zeta normalisation.
        #[arg(long)]
        discrete: bool,
        /// Fix xmin instead of scanning every distinct value.
        #[arg(long)]
        xmin: Option<f64>,
        /// Leave out data above this value before fitting.
        #[arg(long)]
        xmax: Option<f64>,
        /// Semiparametric bootstrap p-value with this many replicates (CSN suggest 2500).
        #[arg(long, value_name = "N")]
        bootstrap: Option<usize>,
        /// Seed of the bootstrap's random stream.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Likelihood-ratio tests against the alternative distributions.
        #[arg(long)]
        compare: bool,
        /// Input file: one number per line.
        file: PathBuf,
    },
}

/// Replicates from which a progress bar is drawn (when stderr is a terminal).
const PROGRESS_MIN_REPLICATES: usize = 200;

/// Runs `claimlab powerlaw`; returns what to print.
///
/// # Errors
/// Unreadable or malformed files (with file and line), invalid options, and every error of the
/// spectral crate (with the file it concerns and, for a bad value, its line).
pub fn run(args: Args, json: bool) -> Result<String> {
    match args.cmd {
        PowerlawCmd::Fit {
            discrete,
            xmin,
            xmax,
            bootstrap,
            seed,
            compare,
            file,
        } => {
            let (data, lines) = read_column(&file)?;
            let mut cfg = if discrete {
                PowerLawConfig::discrete()
            } else {
                PowerLawConfig::continuous()
            };
            if let Some(x) = xmin {
                cfg = cfg.with_xmin(x);
            }
            if let Some(x) = xmax {
                cfg = cfg.with_xmax(x);
            }
            let fit = fit_power_law(&data, &cfg)
                .map_err(|e| located(e, &file, &lines))
                .with_context(|| format!("{}: power-law fit", file.display()))?;
            let ratios = if compare {
                Some(
                    compare_all(&data, &fit)
                        .with_context(|| format!("{}: likelihood-ratio tests", file.display()))?,
                )
            } else {
                None
            };
            let boot = match bootstrap {
                Some(n) => Some(
                    run_bootstrap(&data, &cfg, &fit, n, seed, json)
                        .with_context(|| format!("{}: bootstrap p-value", file.display()))?,
                ),
                None => None,
            };
            Ok(if json {
                serde_json::to_string_pretty(&fit_json(
                    &file,
                    &fit,
                    ratios.as_deref(),
                    boot.as_ref(),
                    seed,
                ))?
            } else {
                fit_text(&file, &fit, ratios.as_deref(), boot.as_ref(), seed)
            })
        }
    }
}

fn run_bootstrap(
    data: &[f64],
    cfg: &PowerLawConfig,
    fit: &PowerLawFit,
    replicates: usize,
    seed: u64,
    json: bool,
) -> Result<BootstrapResult> {
    let boot = BootstrapConfig::new(replicates, seed);
    let show = !json && replicates >= PROGRESS_MIN_REPLICATES && std::io::stderr().is_terminal();
    let bar = if show {
        let b = indicatif::ProgressBar::new(replicates as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "bootstrap {bar:40} {pos}/{len} replicates ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let progress = |done: usize| {
        if let Some(b) = &bar {
            // completion order varies between threads: never move the bar backwards
            if done as u64 > b.position() {
                b.set_position(done as u64);
            }
        }
    };
    let r = bootstrap_p_value_with_progress(data, cfg, fit, &boot, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(r?)
}

/// Reads one number per line; returns the values and the 1-based line of each.
///
/// # Errors
/// Unreadable file, a line that is not one number, a non-finite number, or no number at all.
pub(crate) fn read_column(path: &Path) -> Result<(Vec<f64>, Vec<usize>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut data = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let v: f64 = t.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}:{}: `{t}` is not a number (one number per line expected)",
                path.display(),
                i + 1
            )
        })?;
        if !v.is_finite() {
            bail!("{}:{}: `{t}` is not a finite number", path.display(), i + 1);
        }
        data.push(v);
        lines.push(i + 1);
    }
    if data.is_empty() {
        bail!("{}: no numbers in the file", path.display());
    }
    Ok((data, lines))
}

/// Adds the file and line to a spectral error that names a data index.
fn located(e: SpectralError, path: &Path, lines: &[usize]) -> anyhow::Error {
    let index = match &e {
        SpectralError::OutOfDomain { index, .. } | SpectralError::NonFinite { index, .. } => {
            Some(*index)
        }
        _ => None,
    };
    match index.and_then(|i| lines.get(i)) {
        Some(line) => anyhow::Error::new(e).context(format!("{}:{line}", path.display())),
        None => anyhow::Error::new(e),
    }
}

fn params_json(p: &AlternativeParams) -> serde_json::Value {
    match *p {
        AlternativeParams::Exponential { lambda } => json!({ "lambda": lambda }),
        AlternativeParams::Lognormal { mu, sigma } => json!({ "mu": mu, "sigma": sigma }),
        AlternativeParams::StretchedExponential { lambda, beta } => {
            json!({ "lambda": lambda, "beta": beta })
        }
        AlternativeParams::TruncatedPowerLaw { alpha, lambda } => {
            json!({ "alpha": alpha, "lambda": lambda })
        }
        _ => json!({}),
    }
}

fn params_text(p: &AlternativeParams) -> String {
    match *p {
        AlternativeParams::Exponential { lambda } => format!("lambda={lambda:.6}"),
        AlternativeParams::Lognormal { mu, sigma } => format!("mu={mu:.6} sigma={sigma:.6}"),
        AlternativeParams::StretchedExponential { lambda, beta } => {
            format!("lambda={lambda:.6} beta={beta:.6}")
        }
        AlternativeParams::TruncatedPowerLaw { alpha, lambda } => {
            format!("alpha={alpha:.6} lambda={lambda:.6}")
        }
        _ => String::new(),
    }
}

fn fit_json(
    file: &Path,
    fit: &PowerLawFit,
    ratios: Option<&[LikelihoodRatio]>,
    boot: Option<&BootstrapResult>,
    seed: u64,
) -> serde_json::Value {
    let mut v = json!({
        "file": file,
        "discrete": fit.discrete,
        "alpha": fit.alpha,
        "xmin": fit.xmin,
        "xmax": fit.xmax,
        "sigma": fit.sigma,
        "sigma_fisher": fit.sigma_fisher,
        "D": fit.ks_distance,
        "n_tail": fit.n_tail,
        "n": fit.n,
        "n_candidates": fit.n_candidates,
        "loglik": fit.log_likelihood,
    });
    if let Some(rs) = ratios {
        let mut m = serde_json::Map::new();
        for r in rs {
            m.insert(
                r.alternative.name().to_string(),
                json!({
                    "R": r.ratio,
                    "R_normalized": r.normalized_ratio,
                    "p": r.p_value,
                    "nested": r.nested,
                    "loglik": r.log_likelihood,
                    "params": params_json(&r.params),
                    "converged": r.converged,
                }),
            );
        }
        v["compare"] = serde_json::Value::Object(m);
    }
    if let Some(b) = boot {
        v["bootstrap"] = json!({
            "p": b.p_value,
            "mc_stderr": b.mc_stderr,
            "replicates": b.replicates,
            "n_at_least": b.n_at_least,
            "seed": seed,
        });
    }
    v
}

fn fit_text(
    file: &Path,
    fit: &PowerLawFit,
    ratios: Option<&[LikelihoodRatio]>,
    boot: Option<&BootstrapResult>,
    seed: u64,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "file      {}\nmodel     {}{}",
        file.display(),
        if fit.discrete {
            "discrete"
        } else {
            "continuous"
        },
        fit.xmax.map(|m| format!(", xmax {m}")).unwrap_or_default()
    );
    let _ = writeln!(out, "alpha     {:.10}", fit.alpha);
    let _ = writeln!(out, "xmin      {}", fit.xmin);
    let _ = write!(out, "sigma     {:.10}", fit.sigma);
    if let Some(s) = fit.sigma_fisher {
        let _ = write!(out, "  (Fisher: {s:.10})");
    }
    out.push('\n');
    let _ = writeln!(out, "D         {:.10}", fit.ks_distance);
    let _ = writeln!(
        out,
        "n_tail    {} of {} ({} xmin candidates)",
        fit.n_tail, fit.n, fit.n_candidates
    );
    if let Some(rs) = ratios {
        let _ = writeln!(
            out,
            "\nlikelihood ratios (R > 0 favours the power law):\n  {:<22} {:>14} {:>12} {:>12}  parameters",
            "alternative", "R", "R_norm", "p"
        );
        for r in rs {
            let _ = writeln!(
                out,
                "  {:<22} {:>14.6} {:>12.6} {:>12.4e}  {}{}",
                r.alternative.name(),
                r.ratio,
                r.normalized_ratio,
                r.p_value,
                params_text(&r.params),
                if r.nested { " (nested test)" } else { "" }
            );
        }
    }
    if let Some(b) = boot {
        let _ = writeln!(
            out,
            "\nbootstrap p {:.4} ± {:.4} (Monte Carlo s.e.; {} of {} replicates with D >= {:.6}, seed {seed})",
            b.p_value, b.mc_stderr, b.n_at_least, b.replicates, b.ks_observed
        );
    }
    out
}
