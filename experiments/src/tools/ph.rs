//! `claimlab ph`: persistent homology (claimlab-topology) from the command line.
//!
//! - `claimlab ph barcode --dim K [--threshold T] [--distance-matrix] FILE`: Vietoris-Rips barcodes
//!   in dimensions `0..=K`, one interval per line as `dim birth death` (`inf` when it never dies).
//!   FILE holds points, one per line, coordinates separated by whitespace or commas; with
//!   `--distance-matrix` it holds the strict lower triangle of a distance matrix (Ripser's
//!   `lower-distance` format: row i holds `d(i,0) … d(i,i-1)`, the first row may be empty or absent).
//! - `claimlab ph bottleneck A B` and `claimlab ph wasserstein --q Q A B`: the distance between two
//!   diagrams read from files of `birth death` lines (`inf` allowed for the death). Files written by
//!   `ph barcode` (three columns) are accepted when `--dim` says which rows to keep.
//!
//! Conventions are the crate's: diameter filtration, zero-length intervals dropped, L∞ ground metric
//! with points at infinity matched among themselves. Lines that are empty or start with `#` are
//! skipped everywhere.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use claimlab_topology::{
    bottleneck_distance, vr_barcodes, vr_barcodes_from_distances, wasserstein_distance, Barcodes,
    Diagram, VrConfig,
};
use clap::Subcommand;

/// Arguments of `claimlab ph`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to compute.
    #[command(subcommand)]
    pub cmd: PhCmd,
}

/// The `claimlab ph` subcommands.
#[derive(Subcommand, Debug)]
pub enum PhCmd {
    /// Vietoris-Rips barcodes of a point cloud or a distance matrix.
    Barcode {
        /// Highest homology dimension (0..=3).
        #[arg(long, default_value_t = 1)]
        dim: usize,
        /// Keep only simplices of diameter <= T (default: the enclosing radius, as Ripser).
        #[arg(long)]
        threshold: Option<f64>,
        /// FILE is a lower-triangular distance matrix instead of points.
        #[arg(long)]
        distance_matrix: bool,
        /// Input file.
        file: PathBuf,
    },
    /// Exact bottleneck distance between two diagrams.
    Bottleneck {
        /// Keep only rows of this dimension (for 3-column `ph barcode` output).
        #[arg(long)]
        dim: Option<usize>,
        /// First diagram file.
        a: PathBuf,
        /// Second diagram file.
        b: PathBuf,
    },
    /// q-Wasserstein distance between two diagrams (L∞ ground metric).
    Wasserstein {
        /// Order q >= 1.
        #[arg(long, default_value_t = 1.0)]
        q: f64,
        /// Keep only rows of this dimension (for 3-column `ph barcode` output).
        #[arg(long)]
        dim: Option<usize>,
        /// First diagram file.
        a: PathBuf,
        /// Second diagram file.
        b: PathBuf,
    },
}

/// Runs `claimlab ph`; returns what to print.
///
/// # Errors
/// Unreadable or malformed files (with file and line), invalid parameters, and every error of the
/// topology crate (with the file it concerns).
pub fn run(args: Args, json: bool) -> Result<String> {
    match args.cmd {
        PhCmd::Barcode {
            dim,
            threshold,
            distance_matrix,
            file,
        } => {
            let config = VrConfig {
                max_dim: dim,
                threshold,
                ..VrConfig::default()
            };
            let text = read(&file)?;
            let bars = if distance_matrix {
                let (n, lower) = parse_lower_triangle(&text, &file)?;
                vr_barcodes_from_distances(n, &lower, &config)
            } else {
                let points = parse_points(&text, &file)?;
                vr_barcodes(&points, &config)
            }
            .with_context(|| format!("{}: barcodes", file.display()))?;
            Ok(format_barcodes(&bars, json))
        }
        PhCmd::Bottleneck { dim, a, b } => {
            let (da, db) = (read_diagram(&a, dim)?, read_diagram(&b, dim)?);
            let d = bottleneck_distance(&da, &db).context("bottleneck distance")?;
            Ok(format_distance("bottleneck", None, d, &da, &db, json))
        }
        PhCmd::Wasserstein { q, dim, a, b } => {
            let (da, db) = (read_diagram(&a, dim)?, read_diagram(&b, dim)?);
            let d = wasserstein_distance(&da, &db, q).context("Wasserstein distance")?;
            Ok(format_distance("wasserstein", Some(q), d, &da, &db, json))
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Fields of a line (whitespace or commas), or `None` for blank and `#` comment lines.
fn fields(line: &str) -> Option<Vec<&str>> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    Some(
        t.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

fn number(tok: &str, path: &Path, line: usize) -> Result<f64> {
    let v = match tok {
        "inf" | "+inf" | "Inf" | "infinity" => f64::INFINITY,
        _ => tok
            .parse::<f64>()
            .map_err(|_| anyhow::anyhow!("{}:{line}: `{tok}` is not a number", path.display()))?,
    };
    if v.is_nan() {
        bail!("{}:{line}: NaN is not allowed", path.display());
    }
    Ok(v)
}

fn finite(tok: &str, path: &Path, line: usize) -> Result<f64> {
    let v = number(tok, path, line)?;
    if !v.is_finite() {
        bail!("{}:{line}: `{tok}` must be finite", path.display());
    }
    Ok(v)
}

fn parse_points(text: &str, path: &Path) -> Result<Vec<Vec<f64>>> {
    let mut points: Vec<Vec<f64>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(toks) = fields(line) else { continue };
        let row = toks
            .iter()
            .map(|t| finite(t, path, i + 1))
            .collect::<Result<Vec<f64>>>()?;
        if let Some(first) = points.first() {
            if first.len() != row.len() {
                bail!(
                    "{}:{}: {} coordinates, but the first point has {}",
                    path.display(),
                    i + 1,
                    row.len(),
                    first.len()
                );
            }
        }
        points.push(row);
    }
    if points.is_empty() {
        bail!("{}: no points", path.display());
    }
    Ok(points)
}

/// Reads Ripser's `lower-distance` format: the k-th non-comment line holds the k or k+1 distances of
/// a row (an empty first row for point 0 is optional). Returns `(n, lower)`.
fn parse_lower_triangle(text: &str, path: &Path) -> Result<(usize, Vec<f64>)> {
    let mut lower = Vec::new();
    let mut row = 1usize; // the row of the distance matrix the next line must hold
    for (i, line) in text.lines().enumerate() {
        let Some(toks) = fields(line) else { continue };
        if toks.len() != row {
            bail!(
                "{}:{}: row {row} of a lower-triangular matrix needs {row} distances, found {}",
                path.display(),
                i + 1,
                toks.len()
            );
        }
        for t in toks {
            let v = finite(t, path, i + 1)?;
            if v < 0.0 {
                bail!("{}:{}: negative distance {v}", path.display(), i + 1);
            }
            lower.push(v);
        }
        row += 1;
    }
    if row == 1 {
        bail!("{}: no distances", path.display());
    }
    Ok((row, lower))
}

fn read_diagram(path: &Path, dim: Option<usize>) -> Result<Diagram> {
    let text = read(path)?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(toks) = fields(line) else { continue };
        let line_no = i + 1;
        let (row_dim, b, d) = match toks.len() {
            2 => (None, toks[0], toks[1]),
            3 => (Some(toks[0]), toks[1], toks[2]),
            n => bail!(
                "{}:{line_no}: expected `birth death` or `dim birth death`, found {n} fields",
                path.display()
            ),
        };
        if let Some(rd) = row_dim {
            let Some(want) = dim else {
                bail!(
                    "{}:{line_no}: three columns (`dim birth death`): say which rows with --dim",
                    path.display()
                );
            };
            let rd: usize = rd.parse().map_err(|_| {
                anyhow::anyhow!("{}:{line_no}: `{rd}` is not a dimension", path.display())
            })?;
            if rd != want {
                continue;
            }
        }
        let birth = finite(b, path, line_no)?;
        let death = number(d, path, line_no)?;
        if death < birth {
            bail!(
                "{}:{line_no}: death {death} is before birth {birth}",
                path.display()
            );
        }
        pairs.push((birth, death));
    }
    Diagram::from_pairs(&pairs).with_context(|| format!("{}", path.display()))
}

fn fmt_value(v: f64) -> String {
    if v.is_infinite() {
        "inf".to_string()
    } else {
        format!("{v}")
    }
}

fn json_value(v: f64) -> serde_json::Value {
    if v.is_infinite() {
        serde_json::Value::String("inf".into())
    } else {
        serde_json::json!(v)
    }
}

fn format_barcodes(bars: &Barcodes, json: bool) -> String {
    if json {
        let diagrams: Vec<serde_json::Value> = bars
            .diagrams
            .iter()
            .enumerate()
            .map(|(dim, d)| {
                let iv: Vec<serde_json::Value> = d
                    .intervals
                    .iter()
                    .map(|iv| serde_json::json!([json_value(iv.birth), json_value(iv.death)]))
                    .collect();
                serde_json::json!({"dim": dim, "intervals": iv})
            })
            .collect();
        return format!(
            "{}\n",
            serde_json::json!({
                "n_points": bars.n_points,
                "threshold": json_value(bars.threshold),
                "diagrams": diagrams,
            })
        );
    }
    let mut out = String::new();
    for (dim, d) in bars.diagrams.iter().enumerate() {
        for iv in &d.intervals {
            out.push_str(&format!(
                "{dim} {} {}\n",
                fmt_value(iv.birth),
                fmt_value(iv.death)
            ));
        }
    }
    out
}

fn format_distance(
    kind: &str,
    q: Option<f64>,
    d: f64,
    a: &Diagram,
    b: &Diagram,
    json: bool,
) -> String {
    if json {
        let mut v = serde_json::json!({
            "distance": json_value(d),
            "kind": kind,
            "points_a": a.len(),
            "points_b": b.len(),
        });
        if let Some(q) = q {
            v["q"] = serde_json::json!(q);
        }
        format!("{v}\n")
    } else {
        format!("{}\n", fmt_value(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_triangle_with_and_without_empty_first_row() {
        let p = Path::new("m.txt");
        let (n, l) = parse_lower_triangle("1\n2,3\n", p).unwrap();
        assert_eq!((n, l), (3, vec![1.0, 2.0, 3.0]));
        let e = parse_lower_triangle("1\n2\n", p).unwrap_err().to_string();
        assert!(e.contains("m.txt:2"), "{e}");
    }

    #[test]
    fn points_reject_ragged_rows_and_nan() {
        let p = Path::new("p.txt");
        let e = parse_points("0 0\n1 1 1\n", p).unwrap_err().to_string();
        assert!(e.contains("p.txt:2"), "{e}");
        let e = parse_points("# c\n0, nan\n", p).unwrap_err().to_string();
        assert!(e.contains("p.txt:2"), "{e}");
        assert_eq!(parse_points("0,1\n2 3\n", p).unwrap()[1], vec![2.0, 3.0]);
    }
}
