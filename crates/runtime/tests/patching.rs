//! Activation patching ([`ResidualPatch`]) on tiny random llama and BERT models: patching a run's
//! own residual reproduces it bit for bit, a patch changes only what lies downstream of it, and bad
//! patches are errors.

mod common;

use claimlab_runtime::{
    BertConfig, BertModel, Capture, Error, Hooks, LlamaModel, Overrides, ResidualPatch,
};
use claimlab_testkit::rand::RngExt;

const TOKENS: [u32; 7] = [3, 17, 5, 29, 11, 2, 8];

fn bert_cfg() -> BertConfig {
    BertConfig {
        n_layers: 3,
        d_model: 12,
        n_heads: 3,
        d_ff: 20,
        vocab_size: 30,
        max_positions: 16,
        type_vocab_size: 2,
        norm_eps: 1e-12,
    }
}

/// Random values for a tensor of `len` values; norm weights (names with `norm`/`LayerNorm` and
/// `.weight`) near 1.
fn random(name: &str, len: usize, rng: &mut impl RngExt) -> Vec<f32> {
    let is_gain = name.ends_with("norm.weight") || name.ends_with("LayerNorm.weight");
    (0..len)
        .map(|_| {
            let r = rng.random::<f32>() * 2.0 - 1.0;
            if is_gain {
                1.0 + 0.3 * r
            } else {
                0.5 * r
            }
        })
        .collect()
}

fn llama() -> LlamaModel {
    let c = common::tiny_llama_config(3, true);
    common::tiny_llama(&c, &common::tiny_llama_tensors(&c, 41))
}

fn bert() -> BertModel {
    let c = bert_cfg();
    let mut rng = claimlab_testkit::rng(42);
    let (d, ff) = (c.d_model, c.d_ff);
    BertModel::from_tensors(c.clone(), |name| {
        let bias = name.ends_with(".bias");
        let len = if name.contains("word_embeddings") {
            c.vocab_size * d
        } else if name.contains("position_embeddings") {
            c.max_positions * d
        } else if name.contains("token_type") {
            c.type_vocab_size * d
        } else if name.contains("intermediate.dense") {
            if bias {
                ff
            } else {
                ff * d
            }
        } else if name.contains("LayerNorm") || bias {
            d
        } else if name.contains("output.dense") && !name.contains("attention") {
            d * ff
        } else {
            d * d
        };
        Ok(random(name, len, &mut rng))
    })
    .expect("tiny bert")
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

fn rows_equal(a: &[f32], b: &[f32], d: usize, row: usize) -> bool {
    a[row * d..(row + 1) * d] == b[row * d..(row + 1) * d]
}

/// A vector far from any residual row.
fn foreign(d: usize) -> Vec<f32> {
    (0..d).map(|j| 3.0 * ((j as f32) * 0.7).sin()).collect()
}

#[test]
fn llama_own_residual_reproduces_the_run() {
    let m = llama();
    let d = m.config().d_model;
    let clean = m.forward(&TOKENS, &residual_hooks()).expect("clean");
    let res = residuals(&clean.captures);
    for (l, r) in res.iter().enumerate() {
        let patches: Vec<ResidualPatch> = (0..TOKENS.len())
            .map(|t| ResidualPatch {
                layer: l,
                position: t,
                values: r[t * d..(t + 1) * d].to_vec(),
            })
            .collect();
        let out = m
            .forward_patched(&TOKENS, &residual_hooks(), &patches)
            .expect("patched");
        assert_eq!(out.logits, clean.logits, "layer {l}");
        assert_eq!(residuals(&out.captures), res, "layer {l}");
    }
    // No patches: same as forward.
    let none = m
        .forward_patched(&TOKENS, &Hooks::none(), &[])
        .expect("none");
    assert_eq!(none.logits, clean.logits);
}

#[test]
fn llama_patch_changes_only_downstream() {
    let m = llama();
    let (d, v) = (m.config().d_model, m.config().vocab_size);
    let clean = m.forward(&TOKENS, &residual_hooks()).expect("clean");
    let res = residuals(&clean.captures);
    let (layer, pos) = (1, 3);
    let patch = ResidualPatch {
        layer,
        position: pos,
        values: foreign(d),
    };
    let out = m
        .forward_patched(&TOKENS, &residual_hooks(), std::slice::from_ref(&patch))
        .expect("patched");
    let pres = residuals(&out.captures);
    for l in 0..m.config().n_layers {
        for t in 0..TOKENS.len() {
            let same = rows_equal(&res[l], &pres[l], d, t);
            // Earlier blocks, earlier positions (causal) and the patched block's other
            // positions are untouched.
            let upstream = l < layer || t < pos || (l == layer && t != pos);
            assert_eq!(same, upstream, "layer {l} position {t}");
        }
    }
    assert_eq!(&pres[layer][pos * d..(pos + 1) * d], &patch.values[..]);
    for t in 0..TOKENS.len() {
        assert_eq!(
            rows_equal(&clean.logits, &out.logits, v, t),
            t < pos,
            "row {t}"
        );
    }
}

#[test]
fn bert_own_residual_reproduces_the_run() {
    let m = bert();
    let d = m.config().d_model;
    let clean = m.forward(&TOKENS, &residual_hooks()).expect("clean");
    let res = residuals(&clean.captures);
    for (l, r) in res.iter().enumerate() {
        let patches: Vec<ResidualPatch> = (0..TOKENS.len())
            .map(|t| ResidualPatch {
                layer: l,
                position: t,
                values: r[t * d..(t + 1) * d].to_vec(),
            })
            .collect();
        let out = m
            .forward_patched(&TOKENS, &residual_hooks(), &patches)
            .expect("patched");
        assert_eq!(out.hidden, clean.hidden, "layer {l}");
        assert_eq!(residuals(&out.captures), res, "layer {l}");
    }
}

#[test]
fn bert_patch_changes_only_later_blocks() {
    let m = bert();
    let d = m.config().d_model;
    let clean = m.forward(&TOKENS, &residual_hooks()).expect("clean");
    let res = residuals(&clean.captures);
    let (layer, pos) = (0, 4);
    let patch = ResidualPatch {
        layer,
        position: pos,
        values: foreign(d),
    };
    let out = m
        .forward_patched(&TOKENS, &residual_hooks(), std::slice::from_ref(&patch))
        .expect("patched");
    let pres = residuals(&out.captures);
    for l in 0..m.config().n_layers {
        for t in 0..TOKENS.len() {
            let same = rows_equal(&res[l], &pres[l], d, t);
            // Bidirectional: after the patched block every position sees the patch.
            let upstream = l < layer || (l == layer && t != pos);
            assert_eq!(same, upstream, "layer {l} position {t}");
        }
    }
    assert_ne!(out.hidden, clean.hidden);
    // Patching the last block changes only that row of the output.
    let last = m.config().n_layers - 1;
    let out = m
        .forward_patched(
            &TOKENS,
            &Hooks::none(),
            &[ResidualPatch {
                layer: last,
                position: 2,
                values: foreign(d),
            }],
        )
        .expect("patched");
    for t in 0..TOKENS.len() {
        assert_eq!(rows_equal(&clean.hidden, &out.hidden, d, t), t != 2);
    }
}

#[test]
fn bad_patches_are_errors() {
    let m = llama();
    let b = bert();
    let d = m.config().d_model;
    let p = |layer, position, values: Vec<f32>| ResidualPatch {
        layer,
        position,
        values,
    };
    let cases = [
        (p(3, 0, vec![0.0; d]), "patch.layer"),
        (p(0, 7, vec![0.0; d]), "patch.position"),
        (p(0, 0, vec![0.0; d + 1]), "patch.values"),
    ];
    for (patch, want) in &cases {
        for err in [
            m.forward_patched(&TOKENS, &Hooks::none(), std::slice::from_ref(patch))
                .map(|_| ())
                .expect_err("llama"),
            b.forward_patched(&TOKENS, &Hooks::none(), std::slice::from_ref(patch))
                .map(|_| ())
                .expect_err("bert"),
        ] {
            assert!(
                matches!(&err, Error::InvalidParam { name, .. } if name == want),
                "{err:?}"
            );
        }
    }
    let mut nan = vec![0.0; d];
    nan[5] = f32::NAN;
    let err = m
        .forward_patched(&TOKENS, &Hooks::none(), &[p(0, 0, nan)])
        .map(|_| ())
        .expect_err("nan");
    assert!(matches!(
        err,
        Error::NonFinite {
            first_index: 5,
            count: 1,
            ..
        }
    ));
}
