//! The crates' tools as subcommands of the one binary (`claimlab embed`, `claimlab perplexity`, …).
//!
//! Each submodule holds the clap arguments of its subcommands and a `run` function that prints
//! human-readable output or, with `--json`, one JSON document.

pub mod budget;
pub mod compress;
pub mod convert;
pub mod features;
pub mod orbits;
pub mod ph;
pub mod powerlaw;
pub mod rd;
pub mod runtime;
pub mod spectrum;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use claimlab_weights::{Cache, Model, Pinned};

/// Opens `--model PATH` if given, else the pinned model `default` (fetched on first use).
///
/// # Errors
/// When the file does not open or the pinned model cannot be fetched.
pub fn open_model(
    path: Option<&Path>,
    default: Pinned,
    cache_dir: Option<PathBuf>,
) -> Result<Model> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => Cache::new(cache_dir)?.model(default)?,
    };
    Model::open(&path).with_context(|| format!("opening {}", path.display()))
}
