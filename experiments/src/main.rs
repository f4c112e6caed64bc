//! `claimlab`: the product's entry point. See `claimlab --help` and the README.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use experiments::registry::{self, Claim};
use experiments::report::{Outcome, Provenance, Report, Verdict};
use experiments::{inspect, papers, tools, Ctx, CtxOptions};

#[derive(Parser)]
#[command(
    name = "claimlab",
    version,
    about = "Tests published claims about transformer compression on real weights"
)]
struct Cli {
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    /// Machine-readable output (and errors) as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every claim id, its document, a one-line statement and whether it is implemented.
    List,
    /// Run claims by id or document prefix (ccd, pipe, sys, intro, aecl).
    Run {
        /// Claim ids or document prefixes.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Run every claim.
    All {
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Describe a model file or a pinned model (`minilm`, `smollm2`).
    Inspect {
        /// A .gguf or .safetensors file, a Hugging Face style directory, or a pinned name.
        target: String,
        /// Data cache directory (default: $CLAIMLAB_CACHE_DIR or the user cache dir).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Sentence embeddings of a BERT encoder and their pairwise cosine similarities.
    Embed(tools::runtime::EmbedArgs),
    /// Per-token negative log-likelihood and perplexity of a llama decoder on a text file.
    Perplexity(tools::runtime::PerplexityArgs),
    /// Greedy continuation of a prompt by a llama decoder.
    Generate(tools::runtime::GenerateArgs),
    /// Persistent homology: Vietoris-Rips barcodes, bottleneck and Wasserstein distances.
    Ph(tools::ph::Args),
    /// Locate, erase (LEACE) and validate a concept in SmolLM2 and MiniLM.
    Features(tools::features::Args),
    /// Power-law fits (Clauset-Shalizi-Newman) of a sample.
    Powerlaw(tools::powerlaw::Args),
    /// Spectral report of a weight matrix file or of every layer of a model.
    Spectrum(tools::spectrum::Args),
    /// Rate-distortion: Blahut-Arimoto points and operational curves.
    Rd(tools::rd::Args),
    /// Permutation groups, orbit counting and a model's weight-space symmetry.
    Orbits(tools::orbits::Args),
    /// Bit allocation under a budget (Lagrangian and exact).
    Budget(tools::budget::Args),
    /// Rewrite a GGUF model with its weight matrices in one type (F32, F16, Q8_0).
    Convert(tools::convert::Args),
    /// Compress a llama GGUF to a target size (per-tensor GGUF block types, measured perplexity).
    Compress(tools::compress::Args),
    /// Fetch and verify the pinned real data (MiniLM, SmolLM2, Brown) into the cache.
    Fetch {
        /// Data cache directory (default: $CLAIMLAB_CACHE_DIR or the user cache dir).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct RunOpts {
    /// Reduced samples for a fast run.
    #[arg(long)]
    quick: bool,
    /// Seed of every random choice.
    #[arg(long, default_value_t = CtxOptions::default().seed)]
    seed: u64,
    /// Report directory.
    #[arg(long, default_value = "target/claimlab-report")]
    out: PathBuf,
    /// Your own model (HF directory with config.json + *.safetensors, or a .gguf file); it replaces
    /// the pinned model of the same architecture.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Data cache directory (default: $CLAIMLAB_CACHE_DIR or the user cache dir).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                println!(
                    "{}",
                    serde_json::json!({"error": e.to_string(), "chain": chain})
                );
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::List => {
            list(cli.json);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { ids, opts } => {
            let claims = registry::select(&ids)?;
            run(&claims, opts, cli.quiet, cli.json)
        }
        Cmd::All { opts } => run(registry::CLAIMS, opts, cli.quiet, cli.json),
        Cmd::Inspect { target, cache_dir } => {
            let path = match target.parse::<claimlab_weights::Pinned>() {
                Ok(p) if !std::path::Path::new(&target).exists() => {
                    claimlab_weights::Cache::new(cache_dir)?.model(p)?
                }
                _ => PathBuf::from(&target),
            };
            let model = claimlab_weights::Model::open(&path)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&model.description())?);
            } else {
                print!("{}", inspect::describe(&model));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Embed(a) => {
            print!("{}", tools::runtime::embed(a, cli.json)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Perplexity(a) => {
            print!("{}", tools::runtime::perplexity_cmd(a, cli.json)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Generate(a) => {
            print!("{}", tools::runtime::generate_cmd(a, cli.json)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ph(a) => tool(tools::ph::run(a, cli.json)),
        Cmd::Features(a) => tool(tools::features::run(a, cli.json)),
        Cmd::Powerlaw(a) => tool(tools::powerlaw::run(a, cli.json)),
        Cmd::Spectrum(a) => tool(tools::spectrum::run(a, cli.json)),
        Cmd::Rd(a) => tool(tools::rd::run(a, cli.json)),
        Cmd::Orbits(a) => tool(tools::orbits::run(a, cli.json)),
        Cmd::Budget(a) => tool(tools::budget::run(a, cli.json)),
        Cmd::Compress(a) => tool(tools::compress::run(a, cli.json)),
        Cmd::Convert(a) => tool(tools::convert::run(a, cli.json)),
        Cmd::Fetch { cache_dir } => {
            let cache = claimlab_weights::Cache::new(cache_dir)?;
            let mut out = Vec::new();
            for p in [
                claimlab_weights::Pinned::MiniLm,
                claimlab_weights::Pinned::SmolLm2,
            ] {
                let path = cache.model(p)?;
                out.push(serde_json::json!({"name": p.to_string(), "path": path}));
            }
            let brown = cache.brown()?;
            out.push(serde_json::json!({"name": "brown", "path": brown}));
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for o in &out {
                    println!(
                        "{:<8} {}",
                        o["name"].as_str().unwrap_or(""),
                        o["path"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a tool's output.
fn tool(out: Result<String>) -> Result<ExitCode> {
    print!("{}", out?);
    Ok(ExitCode::SUCCESS)
}

fn list(json: bool) {
    let claims = papers::all_claims();
    let rows: Vec<_> = registry::CLAIMS
        .iter()
        .map(|c| {
            let p = claims.iter().find(|p| p.id == c.id);
            let doc = papers::DOCUMENTS
                .iter()
                .find(|d| d.prefix == c.prefix())
                .map_or("", |d| d.source);
            serde_json::json!({
                "id": c.id,
                "document": doc,
                "statement": p.map_or("", |p| p.statement.as_str()),
                "implemented": c.run.is_some(),
            })
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return;
    }
    let done = rows.iter().filter(|r| r["implemented"] == true).count();
    println!("{:<18} {:<5} {:<11} statement", "id", "doc", "status");
    for (r, c) in rows.iter().zip(registry::CLAIMS) {
        println!(
            "{:<18} {:<5} {:<11} {}",
            c.id,
            c.prefix(),
            if c.run.is_some() {
                "implemented"
            } else {
                "not impl."
            },
            r["statement"].as_str().unwrap_or("")
        );
    }
    println!("\n{} claims, {} implemented", rows.len(), done);
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run(claims: &[Claim], opts: RunOpts, quiet: bool, json: bool) -> Result<ExitCode> {
    let start = Instant::now();
    let ctx_opts = CtxOptions {
        seed: opts.seed,
        quick: opts.quick,
        out_dir: opts.out.clone(),
        model: opts.model.clone(),
        cache_dir: opts.cache_dir.clone(),
        quiet,
    };
    let mut ctx = Ctx::new(ctx_opts)?;
    let statements = papers::all_claims();
    let mut outcomes = Vec::new();
    for c in claims {
        let t0 = Instant::now();
        let reused = ctx.outcome(c.id).cloned();
        let is_reused = reused.is_some();
        let mut o = match (c.run, reused) {
            (None, _) => Outcome::new(c.id, Verdict::NotImplemented, "-", "-", "no experiment yet"),
            // Already computed for a claim that re-uses it (a sys summary reads the ccd theorems):
            // reported as computed, with the first run's wall time.
            (Some(_), Some(o)) => o,
            (Some(f), None) => {
                if !quiet {
                    eprintln!("running {}", c.id);
                }
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut ctx)));
                match res {
                    Ok(Ok(o)) => o,
                    Ok(Err(e)) => {
                        Outcome::new(c.id, Verdict::Failed, "-", "-", format!("error: {e:#}"))
                    }
                    Err(_) => Outcome::new(
                        c.id,
                        Verdict::Failed,
                        "-",
                        "-",
                        "the experiment panicked (a bug: please report it)",
                    ),
                }
            }
        };
        if !is_reused {
            o.wall_s = t0.elapsed().as_secs_f64();
            if o.verdict != Verdict::Failed {
                ctx.remember(&o);
            }
        }
        if let Some(p) = statements.iter().find(|p| p.id == c.id) {
            o.statement.clone_from(&p.statement);
        }
        outcomes.push(o);
    }
    let provenance = Provenance {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: git_commit(),
        seed: opts.seed,
        quick: opts.quick,
        inputs: ctx.inputs().to_vec(),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(start.elapsed().as_secs()),
        wall_s: start.elapsed().as_secs_f64(),
        threads: rayon::current_num_threads(),
    };
    let report = Report {
        provenance,
        outcomes,
    };
    let (md, js) = report.write(&opts.out).context("writing the report")?;
    let failed = report
        .outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Failed)
        .count();
    if json {
        println!(
            "{}",
            serde_json::json!({"report_md": md, "report_json": js,
            "verdicts": report.outcomes.iter().map(|o| serde_json::json!({"id": o.id, "verdict": o.verdict})).collect::<Vec<_>>()})
        );
    } else {
        for o in &report.outcomes {
            println!("{:<18} {:<16} {}", o.id, o.verdict.label(), o.measured);
        }
        println!("\nreport: {}\n        {}", md.display(), js.display());
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
