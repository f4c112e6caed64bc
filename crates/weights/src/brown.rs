//! The Brown corpus in NLTK's tagged form: untagging and simple detokenisation.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// One Brown document as plain text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrownDoc {
    /// File id, `ca01` .. `cr09`.
    pub id: String,
    /// Genre from `cats.txt` (`news`, `editorial`, ..., `humor`).
    pub genre: String,
    /// Untagged, detokenised text: sentences joined by spaces, paragraphs by newlines.
    pub text: String,
}

/// Reads every document listed in `cats.txt` under `dir`, sorted by id.
///
/// Each file holds paragraphs separated by blank lines, one sentence per line, tokens written
/// `word/TAG`. A token is untagged by cutting at its last `/` (so `1/2/cd` gives `1/2`); tokens
/// are joined with single spaces except that no space goes before `, . ; : ! ? ' ) ''` and none
/// after `` `` `` and `(`. The quote tokens `` `` `` and `''` are kept as written.
///
/// # Errors
/// [`Error::Io`] for a missing file, [`Error::Malformed`] for a bad `cats.txt` line or non-UTF-8
/// text.
pub fn brown_documents(dir: &Path) -> Result<Vec<BrownDoc>> {
    let cats_path = dir.join("cats.txt");
    let cats = read_text(&cats_path)?;
    let mut docs = Vec::new();
    let mut offset = 0u64;
    for line in cats.lines() {
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            let mut parts = trimmed.split_whitespace();
            let (Some(id), Some(genre)) = (parts.next(), parts.next()) else {
                return Err(Error::Malformed {
                    path: cats_path,
                    offset,
                    reason: format!("expected `<id> <genre>`, found {trimmed:?}"),
                });
            };
            if id.contains(['/', '\\']) || id.starts_with('.') {
                return Err(Error::Malformed {
                    path: cats_path,
                    offset,
                    reason: format!("bad document id {id:?}"),
                });
            }
            let path = dir.join(id);
            let raw = read_text(&path)?;
            docs.push(BrownDoc {
                id: id.to_owned(),
                genre: genre.to_owned(),
                text: untag_document(&raw),
            });
        }
        offset += line.len() as u64 + 1;
    }
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(docs)
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| Error::Malformed {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to() as u64,
        reason: "text is not valid UTF-8".into(),
    })
}

/// Untags and detokenises one tagged Brown file.
#[must_use]
pub fn untag_document(raw: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in raw.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
            continue;
        }
        let s = detokenize(line.split_whitespace().map(untag));
        if !s.is_empty() {
            current.push(s);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    paragraphs.join("\n")
}

/// The word of a `word/TAG` token: everything before the last `/` (the whole token if none).
#[must_use]
pub fn untag(token: &str) -> &str {
    match token.rfind('/') {
        Some(i) if i > 0 => &token[..i],
        _ => token,
    }
}

fn detokenize<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut no_space_next = true;
    for w in words {
        let attach = matches!(w, "," | "." | ";" | ":" | "!" | "?" | "'" | ")" | "''");
        if !(no_space_next || attach) {
            out.push(' ');
        }
        out.push_str(w);
        no_space_next = matches!(w, "``" | "(");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untag_keeps_slashes_inside_words() {
        assert_eq!(untag("The/at"), "The");
        assert_eq!(untag("1/2/cd"), "1/2");
        assert_eq!(untag("./.-hl"), ".");
        assert_eq!(untag("/"), "/");
        assert_eq!(untag("plain"), "plain");
    }

    #[test]
    fn detokenises_sentences_and_paragraphs() {
        let raw = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, then/rb left/vbd ./.\n\
                   \tIt/pps (/( e.g./rb )/) was/bedz 1/2/cd ./.\n\n\n\tNew/jj para/nn ?/.\n";
        let text = untag_document(raw);
        assert_eq!(
            text,
            "The jury said ``no'', then left. It (e.g.) was 1/2.\nNew para?"
        );
    }
}
