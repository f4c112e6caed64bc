//! Outcomes of claims and the report files (`report.md`, `report.json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

/// The verdict of one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The measurement agrees with the claim under the rule written in `papers/`.
    Supported,
    /// The measurement contradicts the claim under that rule.
    Refuted,
    /// Neither: the data cannot decide, or the claim is not testable as stated.
    Inconclusive,
    /// No experiment exists yet for this claim (never a fake verdict).
    NotImplemented,
    /// The experiment failed with an error; the message is in `why`.
    Failed,
}

impl Verdict {
    /// The word used in tables.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Refuted => "refuted",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotImplemented => "not implemented",
            Verdict::Failed => "failed",
        }
    }
}

/// A figure written by a claim: the PNG and SVG files (relative to the report directory).
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Caption shown under the figure.
    pub caption: String,
    /// PNG path relative to the report directory.
    pub png: String,
    /// SVG path relative to the report directory.
    pub svg: String,
}

/// What one claim produced.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Claim id, e.g. `intro-1`.
    pub id: String,
    /// One-line statement of the claim (from `papers/`).
    pub statement: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The measured figure, as a short human string.
    pub measured: String,
    /// The claimed figure, as a short human string.
    pub claimed: String,
    /// One line of why, with numbers.
    pub why: String,
    /// Markdown body of the claim's section (tables, method, sample, seed).
    pub body: String,
    /// Figures.
    pub figures: Vec<Figure>,
    /// Every number behind the verdict, machine-readable.
    pub numbers: serde_json::Value,
    /// Wall time of the claim's run in seconds.
    pub wall_s: f64,
}

impl Outcome {
    /// An outcome with the verdict and headline filled in; body, figures and numbers empty.
    #[must_use]
    pub fn new(
        id: &str,
        verdict: Verdict,
        measured: impl Into<String>,
        claimed: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Outcome {
            id: id.to_string(),
            statement: String::new(),
            verdict,
            measured: measured.into(),
            claimed: claimed.into(),
            why: why.into(),
            body: String::new(),
            figures: Vec::new(),
            numbers: serde_json::Value::Null,
            wall_s: 0.0,
        }
    }
}

/// Where the inputs came from, recorded in both report files.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Provenance {
    /// `claimlab` crate version.
    pub version: String,
    /// Git commit of the source tree, when known.
    pub git_commit: Option<String>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Whether `--quick` reduced the samples.
    pub quick: bool,
    /// Input files and their sha256, as (label, path, sha256).
    pub inputs: Vec<InputFile>,
    /// UTC time the run started (seconds since the Unix epoch).
    pub started_unix: u64,
    /// Total wall time in seconds.
    pub wall_s: f64,
    /// Rayon threads used.
    pub threads: usize,
}

/// One input file of the run.
#[derive(Clone, Debug, Serialize)]
pub struct InputFile {
    /// What it is (`minilm`, `smollm2`, `brown`).
    pub label: String,
    /// Where it was read from.
    pub path: String,
    /// Its sha256 (lowercase hex).
    pub sha256: String,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Provenance.
    pub provenance: Provenance,
    /// Outcomes in run order.
    pub outcomes: Vec<Outcome>,
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Report {
    /// Renders `report.md`.
    #[must_use]
    pub fn markdown(&self) -> String {
        let p = &self.provenance;
        let mut s = String::new();
        let _ = writeln!(s, "# claimlab report\n");
        let _ = writeln!(
            s,
            "Each claim of the source documents (restated in `papers/`) tested on real weights. \
             Verdicts follow the rule written in `papers/` before the run.\n"
        );
        let _ = writeln!(s, "## Verdicts\n");
        let _ = writeln!(s, "| claim | verdict | measured | claimed | why |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for o in &self.outcomes {
            let _ = writeln!(
                s,
                "| [{id}](#{anchor}) | **{v}** | {m} | {c} | {w} |",
                id = o.id,
                anchor = o.id.replace('.', ""),
                v = o.verdict.label(),
                m = md_cell(&o.measured),
                c = md_cell(&o.claimed),
                w = md_cell(&o.why)
            );
        }
        let _ = writeln!(s, "\n## Provenance\n");
        let _ = writeln!(
            s,
            "- claimlab {}, commit {}",
            p.version,
            p.git_commit.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(
            s,
            "- seed {}, quick {}, {} threads",
            p.seed, p.quick, p.threads
        );
        let _ = writeln!(
            s,
            "- started (unix) {}, total wall time {:.1} s",
            p.started_unix, p.wall_s
        );
        for f in &p.inputs {
            let _ = writeln!(s, "- {}: `{}` sha256 `{}`", f.label, f.path, f.sha256);
        }
        for o in &self.outcomes {
            let _ = writeln!(s, "\n## {}\n", o.id);
            if !o.statement.is_empty() {
                let _ = writeln!(s, "*Claim:* {}\n", o.statement);
            }
            let _ = writeln!(
                s,
                "**Verdict: {}.** Measured: {}. Claimed: {}. {}\n",
                o.verdict.label(),
                o.measured,
                o.claimed,
                o.why
            );
            if !o.body.is_empty() {
                let _ = writeln!(s, "{}\n", o.body.trim_end());
            }
            for f in &o.figures {
                let _ = writeln!(
                    s,
                    "![{}]({})\n\n*{}* ([SVG]({}))\n",
                    f.caption, f.png, f.caption, f.svg
                );
            }
            let _ = writeln!(s, "_Wall time {:.2} s._", o.wall_s);
        }
        s
    }

    /// Writes `report.md` and `report.json` into `dir` and returns their paths.
    ///
    /// # Errors
    /// When the directory or a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let md = dir.join("report.md");
        let js = dir.join("report.json");
        std::fs::write(&md, self.markdown())
            .with_context(|| format!("writing {}", md.display()))?;
        let json = serde_json::to_string_pretty(self).context("serialising the report")?;
        std::fs::write(&js, json).with_context(|| format!("writing {}", js.display()))?;
        Ok((md, js))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_table_and_sections() {
        let mut o = Outcome::new(
            "intro-1",
            Verdict::Refuted,
            "6.4x",
            "8x",
            "scales cost bits",
        );
        o.statement = "ratio".into();
        let r = Report {
            provenance: Provenance::default(),
            outcomes: vec![o],
        };
        let md = r.markdown();
        assert!(md.contains("| [intro-1](#intro-1) | **refuted** | 6.4x | 8x | scales cost bits |"));
        assert!(md.contains("## intro-1"));
        let js = serde_json::to_value(&r).unwrap();
        assert_eq!(js["outcomes"][0]["verdict"], "refuted");
    }

    #[test]
    fn pipes_are_escaped() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
