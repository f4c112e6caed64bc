//! `claimlab spectrum`: Spectral layer report (claimlab-spectral): spectrum FILE|--model M.
//!
//! Not implemented yet: the subcommand exists so the command line is stable; it reports that it is
//! not implemented and exits with status 2.

use anyhow::{bail, Result};

/// Arguments of `claimlab spectrum`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Arguments (not parsed yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `claimlab spectrum`; returns what to print.
///
/// # Errors
/// Always, until the subcommand is implemented.
pub fn run(_args: Args, _json: bool) -> Result<String> {
    bail!("`claimlab spectrum` is not implemented yet")
}
