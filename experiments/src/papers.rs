//! The claims as restated in `papers/`, compiled into the binary.
//!
//! Each claim is one heading `### <id>: <statement>` followed by bullet fields
//! (`**Kind:**`, `**Statement:**`, `**Claimed:**`, `**Experiment:**`, `**Verdict rule:**`).
//! `papers/README.md` documents the format; a test keeps this list and [`crate::registry`] in step.

/// One source document and its restatement.
#[derive(Clone, Copy, Debug)]
pub struct Document {
    /// Id prefix (`ccd`, `pipe`, `sys`, `intro`, `aecl`).
    pub prefix: &'static str,
    /// File name of the source document in `shared/seeds/`.
    pub source: &'static str,
    /// Markdown of `papers/<prefix>.md`.
    pub markdown: &'static str,
}

/// The five documents, in source order.
pub const DOCUMENTS: [Document; 5] = [
    Document {
        prefix: "ccd",
        source: "000_08d9b1fef9139af3.txt",
        markdown: include_str!("../../papers/ccd.md"),
    },
    Document {
        prefix: "pipe",
        source: "001_3ed56d1dd018e82f.txt",
        markdown: include_str!("../../papers/pipe.md"),
    },
    Document {
        prefix: "sys",
        source: "002_96624b311820fc81.txt",
        markdown: include_str!("../../papers/sys.md"),
    },
    Document {
        prefix: "intro",
        source: "003_6f80d6f84e728dd4.txt",
        markdown: include_str!("../../papers/intro.md"),
    },
    Document {
        prefix: "aecl",
        source: "004_fc344d6c9eb077ae.txt",
        markdown: include_str!("../../papers/aecl.md"),
    },
];

/// One claim as written in `papers/`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PaperClaim {
    /// Stable id, e.g. `ccd-2.1`.
    pub id: String,
    /// Document prefix.
    pub prefix: String,
    /// The one-line statement of the heading.
    pub statement: String,
    /// The `**Claimed:**` field.
    pub claimed: String,
    /// The `**Verdict rule:**` field.
    pub verdict_rule: String,
}

/// Parses the claims of one document's Markdown.
#[must_use]
pub fn parse(prefix: &str, markdown: &str) -> Vec<PaperClaim> {
    // Which field a continuation line (indented by two spaces) extends.
    #[derive(Clone, Copy, PartialEq)]
    enum Field {
        None,
        Claimed,
        Rule,
    }
    let mut out: Vec<PaperClaim> = Vec::new();
    let mut field = Field::None;
    for line in markdown.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            field = Field::None;
            let (id, statement) = match rest.split_once(':') {
                Some((id, st)) => (id.trim(), st.trim()),
                None => (rest.trim(), ""),
            };
            out.push(PaperClaim {
                id: id.to_string(),
                prefix: prefix.to_string(),
                statement: statement.to_string(),
                ..PaperClaim::default()
            });
        } else if let Some(last) = out.last_mut() {
            if let Some(v) = line.strip_prefix("- **Claimed:**") {
                last.claimed = v.trim().to_string();
                field = Field::Claimed;
            } else if let Some(v) = line.strip_prefix("- **Verdict rule:**") {
                last.verdict_rule = v.trim().to_string();
                field = Field::Rule;
            } else if line.starts_with("  ") && !line.trim().is_empty() {
                let target = match field {
                    Field::Claimed => &mut last.claimed,
                    Field::Rule => &mut last.verdict_rule,
                    Field::None => continue,
                };
                target.push(' ');
                target.push_str(line.trim());
            } else {
                field = Field::None;
            }
        }
    }
    out
}

/// Every claim of every document, in document order.
#[must_use]
pub fn all_claims() -> Vec<PaperClaim> {
    DOCUMENTS
        .iter()
        .flat_map(|d| parse(d.prefix, d.markdown))
        .collect()
}

/// Whether `id` is well formed: `<prefix>-<lowercase alphanumerics, dots, dashes>`.
#[must_use]
pub fn id_is_well_formed(id: &str) -> bool {
    let Some((prefix, rest)) = id.split_once('-') else {
        return false;
    };
    DOCUMENTS.iter().any(|d| d.prefix == prefix)
        && rest
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn parse_reads_heading_and_fields() {
        let md = "# T\n## Claims\n### ccd-1.2: entropy of weights\n- **Kind:** definition\n\
                  - **Claimed:** 4.13 bits\n- **Verdict rule:** refuted if off\n  by more than 0.05\n\
                  - **Note:** x\n  continued note\n";
        let c = parse("ccd", md);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id, "ccd-1.2");
        assert_eq!(c[0].statement, "entropy of weights");
        assert_eq!(c[0].claimed, "4.13 bits");
        assert_eq!(c[0].verdict_rule, "refuted if off by more than 0.05");
    }

    #[test]
    fn every_paper_claim_is_well_formed_unique_and_complete() {
        let claims = all_claims();
        assert!(
            claims.len() >= 20,
            "only {} claims in papers/",
            claims.len()
        );
        let mut seen = HashSet::new();
        for c in &claims {
            assert!(id_is_well_formed(&c.id), "malformed id {:?}", c.id);
            assert!(
                c.id.starts_with(&format!("{}-", c.prefix)),
                "{} in wrong file",
                c.id
            );
            assert!(seen.insert(c.id.clone()), "duplicate id {}", c.id);
            assert!(!c.statement.is_empty(), "{} has no statement", c.id);
            assert!(!c.verdict_rule.is_empty(), "{} has no verdict rule", c.id);
        }
        for d in DOCUMENTS {
            assert!(
                claims.iter().any(|c| c.prefix == d.prefix),
                "no claims for {}",
                d.prefix
            );
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        assert!(id_is_well_formed("ccd-2.1"));
        assert!(id_is_well_formed("intro-entropy"));
        assert!(!id_is_well_formed("xyz-1"));
        assert!(!id_is_well_formed("ccd-"));
        assert!(!id_is_well_formed("ccd-A"));
        assert!(!id_is_well_formed("ccd"));
    }
}
