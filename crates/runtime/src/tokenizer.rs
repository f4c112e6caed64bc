//! Tokenisers built with the `tokenizers` crate: byte-level BPE from GGUF metadata (SmolLM2) and
//! WordPiece from a Hugging Face `tokenizer.json` (MiniLM).

use std::path::Path;

use claimlab_weights as weights;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{Error, Result};

/// GGUF `tokenizer.ggml.token_type` value of control (special) tokens.
const GGUF_TOKEN_CONTROL: u64 = 3;

/// A text tokenizer: `encode` and `decode` between text and model token ids.
#[derive(Clone, Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    add_special: bool,
}

impl TextTokenizer {
    /// The byte-level BPE tokenizer stored in a llama GGUF file's metadata
    /// (`tokenizer.ggml.model = "gpt2"`, `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    ///
    /// Pre-tokenisation as SmolLM2's `tokenizer.json`: digits split one by one, then the GPT-2
    /// byte-level regex without a prefix space; byte-level decoding. Control tokens
    /// (`token_type = 3`, e.g. `<|im_start|>`) are registered as special tokens. No BOS is added
    /// (`tokenizer.ggml.add_bos_token` is false for SmolLM2; a file with it true is rejected).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if a key is missing, has the wrong type, or the BPE cannot be built.
    pub fn from_gguf(meta: &weights::GgufMetadata) -> Result<Self> {
        let strings = |key: &str| -> Result<Vec<String>> {
            let arr = meta
                .get(key)
                .and_then(weights::GgufValue::as_array)
                .ok_or_else(|| Error::tokenizer(format!("GGUF metadata has no array {key}")))?;
            arr.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::tokenizer(format!("{key}[{i}] is not a string")))
                })
                .collect()
        };
        match meta.get("tokenizer.ggml.model").and_then(weights::GgufValue::as_str) {
            Some("gpt2") => {}
            Some("bert") => return Self::wordpiece_from_gguf(meta, &strings("tokenizer.ggml.tokens")?),
            other => {
                return Err(Error::tokenizer(format!(
                    "only byte-level BPE (tokenizer.ggml.model = \"gpt2\") is supported, found {other:?}"
                )))
            }
        }
        if let Some(weights::GgufValue::Bool(true)) = meta.get("tokenizer.ggml.add_bos_token") {
            return Err(Error::tokenizer(
                "tokenizer.ggml.add_bos_token = true is not supported",
            ));
        }
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges_raw = strings("tokenizer.ggml.merges")?;
        let mut vocab = Vocab::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| Error::tokenizer("vocabulary too large"))?;
            vocab.insert(t.clone(), id);
        }
        let mut merges = Vec::with_capacity(merges_raw.len());
        for (i, m) in merges_raw.iter().enumerate() {
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| Error::tokenizer(format!("merge {i} ({m:?}) has no space")))?;
            merges.push((a.to_string(), b.to_string()));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(Error::tokenizer)?;
        let mut tk = Tokenizer::new(bpe);
        let pre = Sequence::new(vec![
            PreTokenizerWrapper::from(Digits::new(true)),
            PreTokenizerWrapper::from(ByteLevel::new(false, true, true)),
        ]);
        tk.with_pre_tokenizer(Some(pre));
        tk.with_decoder(Some(ByteLevelDecoder::default()));
        if let Some(types) = meta
            .get("tokenizer.ggml.token_type")
            .and_then(weights::GgufValue::as_array)
        {
            let special: Vec<AddedToken> = types
                .iter()
                .zip(&tokens)
                .filter(|(t, _)| t.as_u64() == Some(GGUF_TOKEN_CONTROL))
                .map(|(_, s)| AddedToken::from(s.clone(), true))
                .collect();
            tk.add_special_tokens(special).map_err(Error::tokenizer)?;
        }
        Ok(TextTokenizer {
            inner: tk,
            add_special: false,
        })
    }

    /// The WordPiece tokenizer of a BERT GGUF (`tokenizer.ggml.model = "bert"`), stored as
    /// llama.cpp's converter writes it: control tokens (`token_type = 3`) verbatim, word-initial
    /// pieces with a leading `▁` (U+2581), continuation pieces bare (`##` dropped). Rebuilt as
    /// BERT's uncased pipeline (clean text, CJK spacing, lower case with accents stripped,
    /// whitespace and punctuation split, `[CLS] … [SEP]`), as MiniLM's `tokenizer.json`.
    fn wordpiece_from_gguf(meta: &weights::GgufMetadata, tokens: &[String]) -> Result<Self> {
        let types: Vec<u64> = meta
            .get("tokenizer.ggml.token_type")
            .and_then(weights::GgufValue::as_array)
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
            .unwrap_or_default();
        let mut vocab = Vocab::with_capacity(tokens.len());
        let mut special = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| Error::tokenizer("vocabulary too large"))?;
            let piece = if types.get(i) == Some(&GGUF_TOKEN_CONTROL) {
                special.push(t.clone());
                t.clone()
            } else if let Some(w) = t.strip_prefix('\u{2581}') {
                w.to_string()
            } else {
                format!("##{t}")
            };
            vocab.insert(piece, id);
        }
        let id_of = |key: &str, name: &str| -> Result<(String, u32)> {
            let id = meta
                .get(key)
                .and_then(weights::GgufValue::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| Error::tokenizer(format!("GGUF metadata has no {key}")))?;
            let tok = tokens.get(id as usize).ok_or_else(|| {
                Error::tokenizer(format!("{key} = {id} is outside the vocabulary"))
            })?;
            if tok != name {
                return Err(Error::tokenizer(format!(
                    "{key} = {id} is {tok:?}, expected {name}"
                )));
            }
            Ok((tok.clone(), id))
        };
        let cls = id_of("tokenizer.ggml.cls_token_id", "[CLS]")?;
        let sep = id_of("tokenizer.ggml.seperator_token_id", "[SEP]")?;
        let unk = id_of("tokenizer.ggml.unknown_token_id", "[UNK]")?;
        let wp = WordPiece::builder()
            .vocab(vocab)
            .unk_token(unk.0)
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(Error::tokenizer)?;
        let mut tk = Tokenizer::new(wp);
        tk.with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .map_err(Error::tokenizer)?;
        tk.with_pre_tokenizer(Some(BertPreTokenizer));
        tk.with_post_processor(Some(BertProcessing::new(sep, cls)));
        tk.with_decoder(Some(WordPieceDecoder::default()));
        let added: Vec<AddedToken> = special
            .into_iter()
            .map(|s| AddedToken::from(s, true))
            .collect();
        tk.add_special_tokens(added).map_err(Error::tokenizer)?;
        Ok(TextTokenizer {
            inner: tk,
            add_special: true,
        })
    }

    /// A Hugging Face `tokenizer.json` (MiniLM's WordPiece) with padding and truncation switched
    /// off, so a sentence gives exactly its own tokens (`[CLS] … [SEP]` for BERT).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the file cannot be read or parsed.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let mut tk = Tokenizer::from_file(path)
            .map_err(|e| Error::tokenizer(format!("{}: {e}", path.display())))?;
        tk.with_padding(None);
        tk.with_truncation(None).map_err(Error::tokenizer)?;
        Ok(TextTokenizer {
            inner: tk,
            add_special: true,
        })
    }

    /// The tokenizer of a model: GGUF metadata for GGUF files (byte-level BPE, or BERT WordPiece
    /// as llama.cpp stores it), `tokenizer.json` otherwise.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the model carries no tokenizer or it cannot be built.
    pub fn for_model(model: &weights::Model) -> Result<Self> {
        if let Some(meta) = model.gguf_metadata() {
            return Self::from_gguf(meta);
        }
        match model.tokenizer_json_path() {
            Some(p) => Self::from_tokenizer_json(&p),
            None => Err(Error::tokenizer(format!(
                "no tokenizer.json beside {}",
                model.path().display()
            ))),
        }
    }

    /// Token ids of `text` (with `[CLS]`/`[SEP]` for BERT tokenizers, nothing added for BPE).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, self.add_special)
            .map_err(Error::tokenizer)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens kept.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if an id is unknown or the bytes are not valid UTF-8.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(Error::tokenizer)
    }

    /// Vocabulary size including added tokens.
    #[must_use]
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token string, if it is in the vocabulary.
    #[must_use]
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
