//! A small transformer runtime for the two real models of claimlab, with hooks.
//!
//! * [`LlamaModel`] — the llama decoder (SmolLM2-135M from its GGUF file): RMSNorm, grouped-query
//!   attention, RoPE in the GGUF (interleaved-pair) layout, SwiGLU, tied output embedding.
//! * [`BertModel`] — the BERT encoder (all-MiniLM-L6-v2 from safetensors): word + position + type
//!   embeddings, post-LayerNorm blocks, exact (erf) GELU; [`BertModel::embed`] gives the
//!   sentence-transformers embedding (mean pooling over tokens, L2 normalisation).
//! * [`TextTokenizer`] — the models' tokenisers through the `tokenizers` crate.
//! * [`perplexity`] and [`generate`] — evaluation of the decoder.
//! * [`embedding_fidelity`] — mean cosine and Spearman correlation of pairwise similarities of a
//!   compressed encoder's sentence embeddings against the original's.
//! * [`fisher_trace`] — per-block trace of the decoder's Fisher information (Hutchinson estimator
//!   with central finite differences, with its standard error).
//! * [`GradModel`] and [`loss_gradient`] — exact reverse-mode gradient of the decoder's mean
//!   next-token NLL with respect to chosen blocks, the final norm and the embedding (f64).
//! * [`perplexity_streamed`] — [`perplexity`] one block at a time, weights fetched per block
//!   (from a file's memory map: [`perplexity_streamed_file`]), memory near one block.
//! * [`block_forward`] — one decoder block on an activation matrix with caller-supplied weights
//!   (layer-streaming calibration and sequential quantisation).
//! * [`Hooks`] — per-layer captures (attention probabilities, MLP pre/post activations, residual
//!   stream) and weight substitution ([`Overrides`]) without copying the other tensors;
//!   [`ResidualPatch`] replaces the residual stream after a block at chosen positions
//!   (activation patching, [`LlamaModel::forward_patched`], [`BertModel::forward_patched`]).
//! * [`matvec`] — the bandwidth-bound matrix–vector product every decoded token goes through
//!   (public for its benchmark).
//!
//! # Conventions
//! Weights are dequantised to f32 once at load time and kept row-major in PyTorch order
//! (`[out_features, in_features]`). Activations are f32; row statistics (norms, softmax sums) and
//! log-likelihoods are accumulated in f64. Likelihoods are in nats. Matrix products go through
//! faer on the global rayon pool.
//!
//! # Accuracy
//! Checked against the numbers the models' publishers report (see the crate tests): MiniLM's
//! cos("A man is eating food.", "A man is eating a piece of bread.") = 0.755 ± 0.002, SmolLM2's greedy
//! continuation of "The capital of France is" = " Paris", and its perplexity on Brown news.

mod backward;
mod bert;
mod error;
mod eval;
mod fidelity;
mod fisher;
mod hooks;
mod kernels;
mod llama;
mod matvec;
mod params;
mod stats;
mod stream;
mod stream_eval;
mod stream_grad;
mod tokenizer;

pub use backward::{loss_gradient, GradModel, GradSpec, LossGradient, ParamGrad, BLOCK_TENSORS};
pub use bert::{cosine, gguf_bert_name, BertConfig, BertModel, BertOutput};
pub use error::{Error, Result};
pub use eval::{generate, perplexity, Perplexity, PerplexityConfig};
pub use fidelity::{embedding_fidelity, embeddings, split_sentences, EmbeddingFidelity};
pub use fisher::{fisher_trace, FisherConfig, FisherLayer, FisherTrace};
pub use hooks::{Capture, Captures, Hooks, LayerCapture, Overrides, ResidualPatch};
pub use llama::{KvCache, LlamaConfig, LlamaModel, LlamaOutput};
pub use matvec::matvec;
pub use stream::{block_forward, final_norm, BlockInputs, BlockWeights};
pub use stream_eval::{file_config, perplexity_streamed, perplexity_streamed_file, HEAD_ROWS};
pub use stream_grad::{
    block_backward, fisher_diag_streaming, BlockGrads, FisherTensor, StreamFisher,
};
pub use tokenizer::TextTokenizer;
