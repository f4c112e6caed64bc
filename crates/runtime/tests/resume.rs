//! [`LlamaModel::forward_from_layer`] on a tiny random llama: resuming from a captured residual
//! stream (with or without a key/value cache of the preceding tokens) gives the full forward pass's
//! logits and later residuals, resuming from a patched stream gives `forward_patched`, and bad
//! input is an error.

use claimlab_runtime::{Capture, Error, Hooks, LlamaConfig, LlamaModel, Overrides, ResidualPatch};
use claimlab_testkit::rand::RngExt;

const TOKENS: [u32; 7] = [3, 17, 5, 29, 11, 2, 8];
/// The resumed pass runs the same kernels as the full one; allow f32 reassociation anyway.
const TOL: f32 = 1e-5;

fn cfg(n_layers: usize) -> LlamaConfig {
    LlamaConfig {
        n_layers,
        d_model: 12,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 4,
        d_ff: 20,
        vocab_size: 30,
        norm_eps: 1e-5,
        rope_theta: 1e4,
        max_positions: Some(64),
        tied_embeddings: true,
    }
}

fn llama(n_layers: usize) -> LlamaModel {
    let c = cfg(n_layers);
    let mut rng = claimlab_testkit::rng(43);
    let (d, ff, qd, kd) = (
        c.d_model,
        c.d_ff,
        c.n_heads * c.head_dim,
        c.n_kv_heads * c.head_dim,
    );
    LlamaModel::from_tensors(c.clone(), |name| {
        let len = match name.rsplit('.').nth(1).unwrap_or("") {
            "token_embd" => c.vocab_size * d,
            "attn_norm" | "ffn_norm" | "output_norm" => d,
            "attn_q" | "attn_output" => qd * d,
            "attn_k" | "attn_v" => kd * d,
            "ffn_gate" | "ffn_up" | "ffn_down" => ff * d,
            other => panic!("unexpected tensor {other}"),
        };
        let gain = name.ends_with("norm.weight");
        Ok((0..len)
            .map(|_| {
                let r = rng.random::<f32>() * 2.0 - 1.0;
                if gain {
                    1.0 + 0.3 * r
                } else {
                    0.5 * r
                }
            })
            .collect())
    })
    .expect("tiny llama")
}

fn residual_hooks() -> Hooks {
    Hooks {
        capture: Capture {
            residual: true,
            ..Capture::default()
        },
        overrides: Overrides::new(),
    }
}

fn residuals(caps: &claimlab_runtime::Captures) -> Vec<Vec<f32>> {
    caps.layers
        .iter()
        .map(|l| l.residual.clone().expect("residual"))
        .collect()
}

#[track_caller]
fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst <= TOL, "worst relative difference {worst}");
}

#[test]
fn resume_from_every_layer_equals_the_full_forward() {
    let m = llama(3);
    let full = m.forward(&TOKENS, &residual_hooks()).unwrap();
    let res = residuals(&full.captures);
    for l in 0..3 {
        let out = m
            .forward_from_layer(l, &res[l], None, &residual_hooks())
            .unwrap();
        assert_close(&out.logits, &full.logits);
        let later = residuals(&out.captures);
        assert_eq!(later.len(), 2 - l, "blocks after {l} only");
        for (k, r) in later.iter().enumerate() {
            assert_close(r, &res[l + 1 + k]);
        }
        assert!(out.captures.embeddings.is_none());
    }
}

#[test]
fn resume_with_a_cache_of_the_prefix_equals_the_full_forward() {
    let m = llama(3);
    let d = m.config().d_model;
    let v = m.config().vocab_size;
    let full = m.forward(&TOKENS, &residual_hooks()).unwrap();
    let res = residuals(&full.captures);
    for split in 1..TOKENS.len() {
        let mut cache = m.new_cache();
        m.forward_cached(&mut cache, &TOKENS[..split], &Overrides::new())
            .unwrap();
        for (l, r) in res.iter().enumerate() {
            let out = m
                .forward_from_layer(l, &r[split * d..], Some(&cache), &Hooks::none())
                .unwrap();
            assert_close(&out.logits, &full.logits[split * v..]);
        }
        assert_eq!(cache.len(), split, "the cache is read, not extended");
    }
}

#[test]
fn resume_from_a_patched_stream_equals_forward_patched() {
    let m = llama(3);
    let d = m.config().d_model;
    let full = m.forward(&TOKENS, &residual_hooks()).unwrap();
    let res = residuals(&full.captures);
    let values: Vec<f32> = (0..d).map(|j| 2.0 * ((j as f32) * 0.9).cos()).collect();
    for (l, r) in res.iter().enumerate() {
        for pos in [0, 3, TOKENS.len() - 1] {
            let patch = ResidualPatch {
                layer: l,
                position: pos,
                values: values.clone(),
            };
            let want = m
                .forward_patched(&TOKENS, &Hooks::none(), std::slice::from_ref(&patch))
                .unwrap();
            let mut x = r.clone();
            x[pos * d..(pos + 1) * d].copy_from_slice(&values);
            let got = m.forward_from_layer(l, &x, None, &Hooks::none()).unwrap();
            assert_close(&got.logits, &want.logits);
            // The patch moved something downstream.
            assert_ne!(got.logits, full.logits);
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let m = llama(3);
    let d = m.config().d_model;
    let x = vec![0.1f32; 2 * d];
    let name_of = |e: Error| match e {
        Error::InvalidParam { name, .. } => name,
        other => panic!("unexpected {other:?}"),
    };
    let e = m
        .forward_from_layer(3, &x, None, &Hooks::none())
        .unwrap_err();
    assert_eq!(name_of(e), "layer");
    let e = m
        .forward_from_layer(0, &x[..d + 1], None, &Hooks::none())
        .unwrap_err();
    assert_eq!(name_of(e), "residual");
    let e = m
        .forward_from_layer(0, &[], None, &Hooks::none())
        .unwrap_err();
    assert_eq!(name_of(e), "residual");
    let mut bad = x.clone();
    bad[5] = f32::NAN;
    assert!(matches!(
        m.forward_from_layer(0, &bad, None, &Hooks::none()),
        Err(Error::NonFinite { first_index: 5, .. })
    ));
    // A cache made by a model with another number of blocks.
    let other = llama(2);
    let mut cache = other.new_cache();
    other
        .forward_cached(&mut cache, &TOKENS[..2], &Overrides::new())
        .unwrap();
    assert!(matches!(
        m.forward_from_layer(0, &x, Some(&cache), &Hooks::none()),
        Err(Error::ShapeMismatch { .. })
    ));
    // Past max_positions (64) with the cache's positions counted.
    let long = vec![0.1f32; 64 * d];
    let mut cache = m.new_cache();
    m.forward_cached(&mut cache, &TOKENS[..1], &Overrides::new())
        .unwrap();
    assert!(matches!(
        m.forward_from_layer(0, &long, Some(&cache), &Hooks::none()),
        Err(Error::TooLong { len: 65, max: 64 })
    ));
}

/// The same on the real SmolLM2 (30 blocks): resuming from blocks 0, 14 and 29, with and without
/// a cache of the first six tokens, gives the full forward pass's logits.
#[test]
fn smollm2_resume_equals_the_full_forward() {
    use claimlab_weights::{Cache, Model, Pinned};
    let path = Cache::new(None)
        .expect("claimlab cache")
        .model(Pinned::SmolLm2)
        .expect("SmolLM2");
    let m = LlamaModel::load(&Model::open(&path).expect("open")).expect("load");
    let (d, v) = (m.config().d_model, m.config().vocab_size);
    let tokens = [504u32, 3575, 282, 4649, 314, 216, 33, 34, 35, 28];
    let full = m.forward(&tokens, &residual_hooks()).unwrap();
    let res = residuals(&full.captures);
    let split = 6;
    let mut cache = m.new_cache();
    m.forward_cached(&mut cache, &tokens[..split], &Overrides::new())
        .unwrap();
    for l in [0, 14, m.config().n_layers - 1] {
        let out = m
            .forward_from_layer(l, &res[l], None, &Hooks::none())
            .unwrap();
        assert_close(&out.logits, &full.logits);
        let out = m
            .forward_from_layer(l, &res[l][split * d..], Some(&cache), &Hooks::none())
            .unwrap();
        assert_close(&out.logits, &full.logits[split * v..]);
    }
}
