//! `claimlab budget`: bit allocation under a budget (claimlab-budget) from the command line.
//!
//! - `claimlab budget allocate FILE --budget B`: FILE is a CSV of `layer,option,cost,distortion`
//!   rows (a header line is optional; blank lines and lines starting with `#` are skipped). Layers
//!   and options are labels (any text without commas); layers keep the order of their first row and
//!   each (layer, option) pair may appear once. Prints the Lagrangian (Shoham-Gersho) choice per
//!   layer with its total cost, distortion, multiplier lambda and dual bound, the exact optimum
//!   (dynamic programme, or branch and bound when the costs are off a grid) and the gap between them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use claimlab_budget::{allocate_bits, AllocateConfig, AllocationReport, ExactMethod, Item};
use clap::Subcommand;

/// Arguments of `claimlab budget`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to compute.
    #[command(subcommand)]
    pub cmd: BudgetCmd,
}

/// The `claimlab budget` subcommands.
#[derive(Subcommand, Debug)]
pub enum BudgetCmd {
    /// One option per layer, total cost within the budget, least total distortion.
    Allocate {
        /// CSV of `layer,option,cost,distortion`.
        file: PathBuf,
        /// Total cost allowed (same unit as the costs).
        #[arg(long, allow_hyphen_values = true)]
        budget: f64,
    },
}

/// The menus read from a CSV, with their labels.
#[derive(Debug, Clone, PartialEq)]
struct Menus {
    layers: Vec<String>,
    options: Vec<Vec<String>>,
    items: Vec<Vec<Item>>,
}

/// Runs `claimlab budget`; returns what to print.
///
/// # Errors
/// Unreadable or malformed files (with file and line), and every error of the budget crate.
pub fn run(args: Args, json: bool) -> Result<String> {
    match args.cmd {
        BudgetCmd::Allocate { file, budget } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let m = parse_csv(&text, &file)?;
            let r = allocate_bits(&m.items, budget, &AllocateConfig::default())
                .with_context(|| format!("{}: allocation at budget {budget}", file.display()))?;
            format_report(&m, budget, &r, json)
        }
    }
}

fn parse_csv(text: &str, path: &Path) -> Result<Menus> {
    let mut m = Menus {
        layers: Vec::new(),
        options: Vec::new(),
        items: Vec::new(),
    };
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = t.split(',').map(str::trim).collect();
        if f.len() != 4 {
            bail!(
                "{}:{n}: expected 4 fields `layer,option,cost,distortion`, found {}",
                path.display(),
                f.len()
            );
        }
        let is_first = std::mem::replace(&mut first, false);
        if is_first && f[2].parse::<f64>().is_err() && f[3].parse::<f64>().is_err() {
            continue; // header
        }
        let num = |s: &str, what: &str| -> Result<f64> {
            let v: f64 = s.parse().map_err(|_| {
                anyhow::anyhow!("{}:{n}: {what} `{s}` is not a number", path.display())
            })?;
            if !v.is_finite() {
                bail!("{}:{n}: {what} `{s}` is not finite", path.display());
            }
            Ok(v)
        };
        let (cost, dist) = (num(f[2], "cost")?, num(f[3], "distortion")?);
        if f[0].is_empty() || f[1].is_empty() {
            bail!("{}:{n}: empty layer or option label", path.display());
        }
        let l = match m.layers.iter().position(|x| x == f[0]) {
            Some(l) => l,
            None => {
                m.layers.push(f[0].to_string());
                m.options.push(Vec::new());
                m.items.push(Vec::new());
                m.layers.len() - 1
            }
        };
        if m.options[l].iter().any(|o| o == f[1]) {
            bail!(
                "{}:{n}: option `{}` of layer `{}` appears twice",
                path.display(),
                f[1],
                f[0]
            );
        }
        m.options[l].push(f[1].to_string());
        m.items[l].push(Item::new(cost, dist));
    }
    if m.layers.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(m)
}

fn format_report(m: &Menus, budget: f64, r: &AllocationReport, json: bool) -> Result<String> {
    let label = |choice: &[usize], l: usize| m.options[l][choice[l]].clone();
    let method = r.exact_method.map(|x| match x {
        ExactMethod::DynamicProgramming => "dynamic_programming",
        ExactMethod::BranchAndBound => "branch_and_bound",
        _ => "other",
    });
    if json {
        let layers: Vec<_> = (0..m.layers.len())
            .map(|l| {
                serde_json::json!({
                    "layer": m.layers[l],
                    "lagrangian": label(&r.lagrangian.choice, l),
                    "exact": r.exact.as_ref().map(|e| label(&e.choice, l)),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "budget": budget,
            "layers": layers,
            "exact_method": method,
            "report": r,
        }))? + "\n");
    }
    let w = m.layers.iter().map(String::len).max().unwrap_or(5).max(5);
    let mut s = format!(
        "budget {budget}: {} layers, {} options\n{:<w$}  {:<12} {:<12}\n",
        m.layers.len(),
        m.items.iter().map(Vec::len).sum::<usize>(),
        "layer",
        "lagrangian",
        "exact"
    );
    for l in 0..m.layers.len() {
        let ex = r
            .exact
            .as_ref()
            .map_or_else(|| "-".to_string(), |e| label(&e.choice, l));
        s += &format!(
            "{:<w$}  {:<12} {:<12}\n",
            m.layers[l],
            label(&r.lagrangian.choice, l),
            ex
        );
    }
    let lg = &r.lagrangian;
    s += &format!(
        "Lagrangian: cost {:.6}, distortion {:.6}, lambda {:.6e}, dual bound {:.6}, certified gap bound {:.6e}\n",
        lg.cost, lg.distortion, lg.lambda, lg.dual_bound, lg.gap_bound
    );
    match (&r.exact, r.gap) {
        (Some(e), Some(g)) => {
            s += &format!(
                "exact ({}): cost {:.6}, distortion {:.6}\ngap (Lagrangian - exact) = {:.6e}\n",
                method.unwrap_or("?"),
                e.cost,
                e.distortion,
                g
            );
        }
        _ => {
            s += &format!(
                "exact optimum not available: {}\n",
                r.exact_unavailable.as_deref().unwrap_or("unknown reason")
            );
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_header_labels_and_errors() {
        let p = Path::new("t.csv");
        let m = parse_csv(
            "layer,option,cost,distortion\n# c\nq,4b,4,1.5\nk,2b,2,3\nq,8b,8,0.25\n",
            p,
        )
        .unwrap();
        assert_eq!(m.layers, vec!["q", "k"]);
        assert_eq!(m.options[0], vec!["4b", "8b"]);
        assert_eq!(m.items[0][1], Item::new(8.0, 0.25));
        let e = parse_csv("a,b,1,2\na,b,2,1\n", p).unwrap_err().to_string();
        assert!(e.contains("t.csv:2") && e.contains("twice"), "{e}");
        let e = parse_csv("a,b,1,2\na,c,x,1\n", p).unwrap_err().to_string();
        assert!(e.contains("t.csv:2") && e.contains("cost"), "{e}");
        let e = parse_csv("a,b,1\n", p).unwrap_err().to_string();
        assert!(e.contains("t.csv:1") && e.contains("4 fields"), "{e}");
        assert!(parse_csv("layer,option,cost,distortion\n", p).is_err());
    }
}
