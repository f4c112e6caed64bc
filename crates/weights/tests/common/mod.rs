//! Builders for small model files, shared by the test binaries.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh, empty directory under the system temp dir, unique per test.
pub(crate) fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("claimlab-weights-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

pub(crate) fn gstr(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s.as_bytes());
    v
}

/// A GGUF writer written from the format description.
#[derive(Default)]
pub(crate) struct Gguf {
    kvs: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
    pub(crate) alignment: usize,
}

impl Gguf {
    pub(crate) fn new() -> Self {
        Gguf {
            alignment: 32,
            ..Default::default()
        }
    }
    /// Adds a key with GGUF value type `ty` and its encoded value bytes.
    pub(crate) fn kv(&mut self, key: &str, ty: u32, value: &[u8]) -> &mut Self {
        self.kvs.extend(gstr(key));
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend(value);
        self.n_kv += 1;
        self
    }
    pub(crate) fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv(key, 4, &v.to_le_bytes())
    }
    pub(crate) fn kv_f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.kv(key, 6, &v.to_le_bytes())
    }
    pub(crate) fn kv_str(&mut self, key: &str, v: &str) -> &mut Self {
        self.kv(key, 8, &gstr(v))
    }
    /// Adds a tensor at an explicit relative offset (no data written).
    pub(crate) fn info(&mut self, name: &str, ne: &[u64], ty: u32, rel: u64) -> &mut Self {
        self.infos.extend(gstr(name));
        self.infos.extend((ne.len() as u32).to_le_bytes());
        for &d in ne {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(rel.to_le_bytes());
        self.n_tensors += 1;
        self
    }
    /// Adds a tensor and appends its data (aligned).
    pub(crate) fn tensor(&mut self, name: &str, ne: &[u64], ty: u32, data: &[u8]) -> &mut Self {
        while !self.data.len().is_multiple_of(self.alignment) {
            self.data.push(0);
        }
        let rel = self.data.len() as u64;
        self.data.extend(data);
        self.info(name, ne, ty, rel)
    }
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(self.n_tensors.to_le_bytes());
        b.extend(self.n_kv.to_le_bytes());
        b.extend(&self.kvs);
        b.extend(&self.infos);
        while !b.len().is_multiple_of(self.alignment) {
            b.push(0);
        }
        b.extend(&self.data);
        b
    }
}

pub(crate) fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A tiny llama GGUF: 2 layers, d 32, 4 heads / 2 kv heads, fpub fn 64, vocab 3 (F32 and Q8_0).
pub(crate) fn tiny_llama() -> Gguf {
    let mut g = Gguf::new();
    g.kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2)
        .kv_u32("llama.embedding_length", 32)
        .kv_u32("llama.attention.head_count", 4)
        .kv_u32("llama.attention.head_count_kv", 2)
        .kv_u32("llama.feed_forward_length", 64)
        .kv_u32("llama.context_length", 128)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    // tokenizer.ggml.tokens: array (type 9) of 3 strings (type 8).
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend(3u64.to_le_bytes());
    for t in ["a", "b", "c"] {
        arr.extend(gstr(t));
    }
    g.kv("tokenizer.ggml.tokens", 9, &arr);
    // Token embedding [3, 32] as Q8_0: one block per row, d = 0.5, codes 0..32 → row r value
    // j·0.5.
    let mut emb = Vec::new();
    for _ in 0..3 {
        emb.extend(half::f16::from_f32(0.5).to_bits().to_le_bytes());
        emb.extend(0..32u8);
    }
    g.tensor("token_embd.weight", &[32, 3], 8, &emb);
    for l in 0..2 {
        g.tensor(
            &format!("blk.{l}.attn_norm.weight"),
            &[32],
            0,
            &f32s(&[1.0; 32]),
        );
        // attn_q: ne = [in 32, out 32]; attn_k: [32, 16] → shape [16, 32].
        g.tensor(
            &format!("blk.{l}.attn_q.weight"),
            &[32, 32],
            0,
            &f32s(&[0.01; 32 * 32]),
        );
        g.tensor(
            &format!("blk.{l}.attn_k.weight"),
            &[32, 16],
            0,
            &f32s(&[0.02; 32 * 16]),
        );
        g.tensor(
            &format!("blk.{l}.ffn_gate.weight"),
            &[32, 64],
            0,
            &f32s(&[0.03; 32 * 64]),
        );
    }
    g.tensor("output_norm.weight", &[32], 0, &f32s(&[1.0; 32]));
    g
}

pub(crate) fn bert_config() -> &'static str {
    r#"{"model_type": "bert", "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 8, "vocab_size": 5, "max_position_embeddings": 16,
        "layer_norm_eps": 1e-12}"#
}

/// Safetensors bytes from a JSON header body and data.
pub(crate) fn st(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend(data);
    b
}
