//! Tensor roles: what each named tensor does in the network, so experiments never match names.

use serde::Serialize;

/// What a tensor does in the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Role {
    /// Token (word) embedding table, `[vocab, d_model]`.
    TokenEmbedding,
    /// Learned absolute position embedding.
    PositionEmbedding,
    /// Token-type (segment) embedding (BERT).
    TypeEmbedding,
    /// Normalisation applied to the summed embeddings (BERT).
    EmbeddingNorm,
    /// Attention query projection.
    Query,
    /// Attention key projection.
    Key,
    /// Attention value projection.
    Value,
    /// Attention output projection.
    AttnOutput,
    /// The norm tied to attention: llama `attn_norm` (before), BERT `attention.output.LayerNorm` (after).
    AttnNorm,
    /// MLP up projection (BERT `intermediate.dense`).
    MlpUp,
    /// MLP gate projection (SwiGLU).
    MlpGate,
    /// MLP down projection (BERT `output.dense`).
    MlpDown,
    /// The norm tied to the MLP: llama `ffn_norm` (before), BERT `output.LayerNorm` (after).
    MlpNorm,
    /// Final norm before the output head.
    FinalNorm,
    /// BERT pooler dense layer.
    Pooler,
    /// Output projection to the vocabulary (absent when tied to the token embedding).
    LmHead,
    /// Anything else (buffers, unknown names).
    Other,
}

/// Whether a tensor is a weight or a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Param {
    /// Weight matrix, embedding table or norm scale.
    Weight,
    /// Additive bias (or norm shift).
    Bias,
}

/// Role, parameter kind and layer index of a tensor name, for BERT (Hugging Face names, with or
/// without a `bert.` prefix), llama in Hugging Face naming, and GGUF naming (`blk.L.attn_q.weight`).
pub(crate) fn classify(name: &str) -> (Role, Param, Option<usize>) {
    let (stem, param) = if let Some(s) = name
        .strip_suffix(".weight")
        .or_else(|| name.strip_suffix(".gamma"))
    {
        (s, Param::Weight)
    } else if let Some(s) = name
        .strip_suffix(".bias")
        .or_else(|| name.strip_suffix(".beta"))
    {
        (s, Param::Bias)
    } else {
        (name, Param::Weight)
    };
    let stem = stem.strip_prefix("bert.").unwrap_or(stem);
    // Layered names: split "<prefix>.<L>.<rest>".
    for prefix in ["encoder.layer.", "blk.", "model.layers.", "layers."] {
        if let Some(after) = stem.strip_prefix(prefix) {
            if let Some((num, rest)) = after.split_once('.') {
                if let Ok(layer) = num.parse::<usize>() {
                    return (layer_role(rest), param, Some(layer));
                }
            }
        }
    }
    let role = match stem {
        "embeddings.word_embeddings" | "token_embd" | "model.embed_tokens" | "embed_tokens" => {
            Role::TokenEmbedding
        }
        "embeddings.position_embeddings" | "position_embd" => Role::PositionEmbedding,
        "embeddings.token_type_embeddings" | "token_types" => Role::TypeEmbedding,
        "embeddings.LayerNorm" | "token_embd_norm" => Role::EmbeddingNorm,
        "pooler.dense" => Role::Pooler,
        "output_norm" | "model.norm" | "norm" => Role::FinalNorm,
        "output" | "lm_head" => Role::LmHead,
        _ => Role::Other,
    };
    (role, param, None)
}

fn layer_role(rest: &str) -> Role {
    match rest {
        "attention.self.query" | "attn_q" | "self_attn.q_proj" => Role::Query,
        "attention.self.key" | "attn_k" | "self_attn.k_proj" => Role::Key,
        "attention.self.value" | "attn_v" | "self_attn.v_proj" => Role::Value,
        "attention.output.dense" | "attn_output" | "self_attn.o_proj" => Role::AttnOutput,
        "attention.output.LayerNorm" | "attn_norm" | "attn_output_norm" | "input_layernorm" => {
            Role::AttnNorm
        }
        "intermediate.dense" | "ffn_up" | "mlp.up_proj" => Role::MlpUp,
        "ffn_gate" | "mlp.gate_proj" => Role::MlpGate,
        "output.dense" | "ffn_down" | "mlp.down_proj" => Role::MlpDown,
        "output.LayerNorm" | "ffn_norm" | "layer_output_norm" | "post_attention_layernorm" => {
            Role::MlpNorm
        }
        _ => Role::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_names() {
        assert_eq!(
            classify("encoder.layer.3.attention.self.query.bias"),
            (Role::Query, Param::Bias, Some(3))
        );
        assert_eq!(
            classify("encoder.layer.0.output.LayerNorm.weight"),
            (Role::MlpNorm, Param::Weight, Some(0))
        );
        assert_eq!(
            classify("encoder.layer.5.attention.output.LayerNorm.bias"),
            (Role::AttnNorm, Param::Bias, Some(5))
        );
        assert_eq!(
            classify("encoder.layer.5.intermediate.dense.weight"),
            (Role::MlpUp, Param::Weight, Some(5))
        );
        assert_eq!(
            classify("encoder.layer.5.output.dense.weight"),
            (Role::MlpDown, Param::Weight, Some(5))
        );
        assert_eq!(
            classify("embeddings.word_embeddings.weight"),
            (Role::TokenEmbedding, Param::Weight, None)
        );
        assert_eq!(classify("embeddings.position_ids").0, Role::Other);
        assert_eq!(classify("pooler.dense.weight").0, Role::Pooler);
    }

    #[test]
    fn gguf_and_hf_llama_names() {
        assert_eq!(
            classify("blk.12.attn_k.weight"),
            (Role::Key, Param::Weight, Some(12))
        );
        assert_eq!(classify("blk.0.ffn_gate.weight").0, Role::MlpGate);
        assert_eq!(classify("blk.0.ffn_norm.weight").0, Role::MlpNorm);
        assert_eq!(classify("blk.0.attn_norm.weight").0, Role::AttnNorm);
        assert_eq!(classify("blk.0.attn_output.weight").0, Role::AttnOutput);
        assert_eq!(
            classify("output_norm.weight"),
            (Role::FinalNorm, Param::Weight, None)
        );
        assert_eq!(classify("output.weight").0, Role::LmHead);
        assert_eq!(classify("token_embd.weight").0, Role::TokenEmbedding);
        assert_eq!(
            classify("model.layers.7.mlp.down_proj.weight"),
            (Role::MlpDown, Param::Weight, Some(7))
        );
        assert_eq!(classify("blk.x.attn_k.weight").0, Role::Other);
        assert_eq!(classify("blk.1.something").0, Role::Other);
    }
}
