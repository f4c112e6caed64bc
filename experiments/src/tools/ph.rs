//! `claimlab ph`: Persistent homology (claimlab-topology): ph barcode | ph bottleneck | ph wasserstein.
//!
//! Not implemented yet: the subcommand exists so the command line is stable; it reports that it is
//! not implemented and exits with status 2.

use anyhow::{bail, Result};

/// Arguments of `claimlab ph`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Arguments (not parsed yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `claimlab ph`; returns what to print.
///
/// # Errors
/// Always, until the subcommand is implemented.
pub fn run(_args: Args, _json: bool) -> Result<String> {
    bail!("`claimlab ph` is not implemented yet")
}
