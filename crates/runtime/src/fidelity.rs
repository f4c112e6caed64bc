//! Sentence-embedding fidelity of a compressed encoder against the original.

use rayon::prelude::*;

use crate::bert::{cosine, BertModel};
use crate::error::{Error, Result};
use crate::hooks::Overrides;
use crate::stats;

/// Result of [`embedding_fidelity`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EmbeddingFidelity {
    /// Number of sentences.
    pub n_sentences: usize,
    /// Mean over sentences of cos(original embedding, compressed embedding).
    pub mean_cosine: f64,
    /// Smallest such cosine.
    pub min_cosine: f64,
    /// Spearman rank correlation between the pairwise cosine similarities of the original
    /// embeddings and those of the compressed ones (all `n(n−1)/2` pairs).
    pub spearman: f64,
    /// Number of pairs entering `spearman`.
    pub n_pairs: usize,
}

/// Sentence embeddings ([`BertModel::embed`]) of many token sequences, sentences in parallel.
///
/// # Errors
/// The first error of [`BertModel::embed`].
pub fn embeddings(
    model: &BertModel,
    sentences: &[Vec<u32>],
    overrides: &Overrides,
) -> Result<Vec<Vec<f32>>> {
    sentences
        .par_iter()
        .map(|s| model.embed(s, overrides))
        .collect()
}

/// How well a compressed encoder (the original with `overrides`) preserves sentence embeddings.
///
/// ```text
/// e_i = embed(original, s_i),  ê_i = embed(compressed, s_i)
/// mean_cosine = (1/n) Σ_i cos(e_i, ê_i)
/// spearman    = ρ_S( [cos(e_i, e_j)]_{i<j}, [cos(ê_i, ê_j)]_{i<j} )   (average ranks for ties)
/// ```
///
/// # Errors
/// [`Error::Empty`] for fewer than 3 sentences (no rank correlation of fewer than 3 pairs);
/// [`Error::NonFinite`] if the original pairwise similarities are all equal; errors of
/// [`BertModel::embed`].
///
/// # Complexity
/// `2n` encoder passes plus `O(n² d)` for the similarity matrices.
pub fn embedding_fidelity(
    model: &BertModel,
    sentences: &[Vec<u32>],
    overrides: &Overrides,
) -> Result<EmbeddingFidelity> {
    if sentences.len() < 3 {
        return Err(Error::Empty {
            what: "sentences (need at least 3)",
        });
    }
    let base = embeddings(model, sentences, &Overrides::new())?;
    let comp = embeddings(model, sentences, overrides)?;
    let cos: Vec<f64> = base.iter().zip(&comp).map(|(a, b)| cosine(a, b)).collect();
    let n = sentences.len();
    let mut sa = Vec::with_capacity(n * (n - 1) / 2);
    let mut sb = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            sa.push(cosine(&base[i], &base[j]));
            sb.push(cosine(&comp[i], &comp[j]));
        }
    }
    let spearman = stats::spearman(&sa, &sb).ok_or(Error::NonFinite {
        what: "Spearman correlation (constant similarities)",
        count: 1,
        first_index: 0,
    })?;
    Ok(EmbeddingFidelity {
        n_sentences: n,
        mean_cosine: stats::mean_compensated(&cos),
        min_cosine: cos.iter().copied().fold(f64::INFINITY, f64::min),
        spearman,
        n_pairs: sa.len(),
    })
}

/// A fixed, reproducible sentence set from plain text: split after `.`, `?` or `!` followed by
/// whitespace, trim, keep sentences of `min_words..=max_words` whitespace-separated words, return
/// the first `count` in text order.
#[must_use]
pub fn split_sentences(
    text: &str,
    count: usize,
    min_words: usize,
    max_words: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let end_here = matches!(b, b'.' | b'?' | b'!')
            && bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
        if !end_here {
            continue;
        }
        let s = text[start..=i].split_whitespace().collect::<Vec<_>>();
        start = i + 1;
        if (min_words..=max_words).contains(&s.len()) {
            out.push(s.join(" "));
            if out.len() == count {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_and_filter() {
        let t = "One two three. Short! A longer one here, with five words? x.y is not an end. Last";
        let s = split_sentences(t, 10, 3, 6);
        assert_eq!(s, vec!["One two three.", "x.y is not an end."]);
        assert_eq!(split_sentences(t, 1, 1, 100), vec!["One two three."]);
        assert!(split_sentences("", 5, 1, 5).is_empty());
    }
}
