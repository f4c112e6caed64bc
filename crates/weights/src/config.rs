//! `ModelConfig` from a Hugging Face `config.json` or GGUF metadata.

use std::path::Path;

use crate::error::{Error, Result};
use crate::gguf::GgufMetadata;
use crate::model::{Architecture, ModelConfig};
use crate::roles::Role;
use crate::tensor::TensorInfo;

fn unsupported(path: &Path, reason: impl Into<String>) -> Error {
    Error::UnsupportedModel {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads `config.json` (BERT or llama family) for a safetensors checkpoint.
pub(crate) fn config_from_json(path: &Path, tensors: &[TensorInfo]) -> Result<ModelConfig> {
    let text =
        match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(unsupported(
                path,
                "config.json not found beside the safetensors file (needed for the model's sizes)",
            )),
            Err(e) => return Err(Error::io(path, e)),
        };
    config_from_json_bytes(path, &text, tensors)
}

/// Parses the text of a `config.json`; `path` is used in errors.
pub(crate) fn config_from_json_bytes(
    path: &Path,
    text: &[u8],
    tensors: &[TensorInfo],
) -> Result<ModelConfig> {
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| Error::Malformed {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!("bad JSON at line {} column {}: {e}", e.line(), e.column()),
    })?;
    let get_u = |k: &str| -> Result<usize> {
        v.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| unsupported(path, format!("config.json lacks integer \"{k}\"")))
    };
    let opt_u = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|x| usize::try_from(x).ok())
    };
    let opt_f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let model_type = v
        .get("model_type")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    let arch = match model_type.as_str() {
        "bert" => Architecture::BertEncoder,
        "llama" | "mistral" | "qwen2" => Architecture::LlamaDecoder,
        other => {
            return Err(unsupported(
                path,
                format!("model_type {other:?} (supported: bert, llama, mistral, qwen2)"),
            ))
        }
    };
    let d_model = get_u("hidden_size")?;
    let n_heads = get_u("num_attention_heads")?;
    if n_heads == 0 || d_model % n_heads != 0 {
        return Err(unsupported(
            path,
            format!("hidden_size {d_model} not divisible by num_attention_heads {n_heads}"),
        ));
    }
    let has_head = tensors.iter().any(|t| t.role == Role::LmHead);
    Ok(ModelConfig {
        arch,
        n_layers: get_u("num_hidden_layers")?,
        d_model,
        n_heads,
        n_kv_heads: opt_u("num_key_value_heads").unwrap_or(n_heads),
        head_dim: opt_u("head_dim").unwrap_or(d_model / n_heads),
        d_ff: get_u("intermediate_size")?,
        vocab_size: get_u("vocab_size")?,
        max_positions: opt_u("max_position_embeddings"),
        norm_eps: match arch {
            Architecture::BertEncoder => opt_f("layer_norm_eps").unwrap_or(1e-12),
            Architecture::LlamaDecoder => opt_f("rms_norm_eps").unwrap_or(1e-6),
        },
        rope_theta: match arch {
            Architecture::BertEncoder => None,
            Architecture::LlamaDecoder => Some(opt_f("rope_theta").unwrap_or(10_000.0)),
        },
        tied_embeddings: match arch {
            Architecture::BertEncoder => true,
            Architecture::LlamaDecoder => v
                .get("tie_word_embeddings")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(!has_head),
        },
    })
}

/// Reads the `{arch}.*` keys of GGUF metadata.
pub(crate) fn config_from_gguf(
    path: &Path,
    md: &GgufMetadata,
    tensors: &[TensorInfo],
) -> Result<ModelConfig> {
    let arch_name = md
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .ok_or_else(|| unsupported(path, "GGUF metadata lacks general.architecture"))?
        .to_owned();
    let arch = match arch_name.as_str() {
        "bert" => Architecture::BertEncoder,
        "llama" | "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "gemma3" | "phi3"
        | "granite" | "smollm3" => Architecture::LlamaDecoder,
        other => {
            return Err(unsupported(
                path,
                format!("GGUF architecture {other:?} is not supported"),
            ))
        }
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let get_u = |k: &str| -> Result<usize> {
        md.get(&key(k))
            .and_then(|v| v.as_u64())
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| unsupported(path, format!("GGUF metadata lacks integer {}", key(k))))
    };
    let opt_u = |k: &str| {
        md.get(&key(k))
            .and_then(|v| v.as_u64())
            .and_then(|x| usize::try_from(x).ok())
    };
    let opt_f = |k: &str| md.get(&key(k)).and_then(|v| v.as_f64());
    let d_model = get_u("embedding_length")?;
    let n_heads = get_u("attention.head_count")?;
    if n_heads == 0 {
        return Err(unsupported(path, "attention.head_count is 0"));
    }
    let token_embd = tensors.iter().find(|t| t.role == Role::TokenEmbedding);
    let vocab_size = md
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(<[_]>::len)
        .or_else(|| opt_u("vocab_size"))
        .or_else(|| token_embd.and_then(|t| t.shape.first().copied()))
        .ok_or_else(|| unsupported(path, "vocabulary size unknown (no tokenizer.ggml.tokens)"))?;
    let norm_eps = match arch {
        Architecture::BertEncoder => opt_f("attention.layer_norm_epsilon").unwrap_or(1e-12),
        Architecture::LlamaDecoder => opt_f("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
    };
    Ok(ModelConfig {
        arch,
        n_layers: get_u("block_count")?,
        d_model,
        n_heads,
        n_kv_heads: opt_u("attention.head_count_kv").unwrap_or(n_heads),
        head_dim: opt_u("attention.key_length").unwrap_or(d_model / n_heads),
        d_ff: get_u("feed_forward_length")?,
        vocab_size,
        max_positions: opt_u("context_length"),
        norm_eps,
        rope_theta: match arch {
            Architecture::BertEncoder => None,
            Architecture::LlamaDecoder => Some(opt_f("rope.freq_base").unwrap_or(10_000.0)),
        },
        tied_embeddings: !tensors.iter().any(|t| t.role == Role::LmHead),
    })
}
