//! The layer-streaming perplexity against the whole-model one: on the tiny random llama (tied and
//! untied head, disjoint and overlapping windows, with a replaced tensor) and on the real
//! SmolLM2 file (memory map, with and without an override), plus its error paths.

mod common;

use claimlab_runtime::{
    perplexity, perplexity_streamed, perplexity_streamed_file, Error, LlamaModel, Overrides,
    Perplexity, PerplexityConfig, TextTokenizer,
};
use claimlab_weights::{Cache, Model, Pinned};

/// Same windows and scored tokens; mean NLL to `rel` relative and every token's NLL to `rel`
/// relative (plus 1e-6 absolute for tokens scored near zero).
fn assert_same(a: &Perplexity, b: &Perplexity, rel: f64) {
    assert_eq!(a.n_windows, b.n_windows);
    assert_eq!(a.n_tokens, b.n_tokens);
    assert_eq!(a.positions, b.positions);
    let (x, y) = (a.mean_nll_nats, b.mean_nll_nats);
    assert!((x - y).abs() <= rel * y.abs(), "mean NLL {x} vs {y}");
    for (i, (p, q)) in a.per_token_nll.iter().zip(&b.per_token_nll).enumerate() {
        assert!(
            (p - q).abs() <= rel * q.abs() + 1e-6,
            "token {i}: {p} vs {q}"
        );
    }
}

fn tokens(n: usize, vocab: u32) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 7 + 3) % vocab).collect()
}

#[test]
fn streamed_equals_whole_model_on_the_tiny_llama() {
    for tied in [true, false] {
        let c = common::tiny_llama_config(3, tied);
        let t = common::tiny_llama_tensors(&c, 11);
        let m = common::tiny_llama(&c, &t);
        let ids = tokens(50, 30);
        for (context, stride) in [(16, 16), (16, 5), (64, 64), (7, 7)] {
            let pc = PerplexityConfig { context, stride };
            let want = perplexity(&m, &ids, &pc, &Overrides::default()).unwrap();
            let got = perplexity_streamed(&c, &ids, &pc, |name| Ok(t[name].1.clone())).unwrap();
            assert_same(&got, &want, 1e-6);
        }
    }
}

#[test]
fn a_replaced_tensor_is_used_like_an_override() {
    let c = common::tiny_llama_config(2, true);
    let t = common::tiny_llama_tensors(&c, 5);
    let m = common::tiny_llama(&c, &t);
    let ids = tokens(40, 30);
    let pc = PerplexityConfig {
        context: 20,
        stride: 20,
    };
    for name in [
        "blk.1.ffn_down.weight",
        "token_embd.weight",
        "output_norm.weight",
    ] {
        let mut ov = Overrides::default();
        ov.insert(name.into(), t[name].1.iter().map(|v| v * 0.7).collect());
        let want = perplexity(&m, &ids, &pc, &ov).unwrap();
        let base = perplexity(&m, &ids, &pc, &Overrides::default()).unwrap();
        assert!(
            (want.mean_nll_nats - base.mean_nll_nats).abs() > 1e-4,
            "{name} changes nothing"
        );
        let got = perplexity_streamed(&c, &ids, &pc, |n| {
            Ok(ov.get(n).cloned().unwrap_or_else(|| t[n].1.clone()))
        })
        .unwrap();
        assert_same(&got, &want, 1e-6);
    }
}

/// The tensors are asked for in the documented order: embedding, each block's nine, the final
/// norm, then the (tied) head.
#[test]
fn tensors_are_fetched_block_by_block() {
    let c = common::tiny_llama_config(2, true);
    let t = common::tiny_llama_tensors(&c, 1);
    let mut asked = Vec::new();
    perplexity_streamed(&c, &tokens(10, 30), &PerplexityConfig::default(), |n| {
        asked.push(n.to_string());
        Ok(t[n].1.clone())
    })
    .unwrap();
    let mut want = vec!["token_embd.weight".to_string()];
    for l in 0..2 {
        for s in [
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ] {
            want.push(format!("blk.{l}.{s}.weight"));
        }
    }
    want.push("output_norm.weight".into());
    want.push("token_embd.weight".into());
    assert_eq!(asked, want);
}

#[test]
fn bad_inputs_are_errors() {
    let c = common::tiny_llama_config(2, true);
    let t = common::tiny_llama_tensors(&c, 2);
    let src = |n: &str| Ok(t[n].1.clone());
    let pc = PerplexityConfig {
        context: 8,
        stride: 8,
    };
    let ids = tokens(20, 30);
    assert!(matches!(
        perplexity_streamed(&c, &ids[..1], &pc, src),
        Err(Error::Empty { .. })
    ));
    let bad = PerplexityConfig {
        context: 8,
        stride: 9,
    };
    assert!(matches!(
        perplexity_streamed(&c, &ids, &bad, src),
        Err(Error::InvalidParam { name: "stride", .. })
    ));
    let one = PerplexityConfig {
        context: 1,
        stride: 1,
    };
    assert!(matches!(
        perplexity_streamed(&c, &ids, &one, src),
        Err(Error::InvalidParam {
            name: "context",
            ..
        })
    ));
    let mut oob = ids.clone();
    oob[13] = 30;
    assert!(matches!(
        perplexity_streamed(&c, &oob, &pc, src),
        Err(Error::TokenOutOfRange {
            index: 13,
            token: 30,
            ..
        })
    ));
    let long = PerplexityConfig {
        context: 65,
        stride: 65,
    };
    assert!(matches!(
        perplexity_streamed(&c, &tokens(70, 30), &long, src),
        Err(Error::TooLong { len: 65, max: 64 })
    ));
    let short = perplexity_streamed(&c, &ids, &pc, |n| {
        let mut v = t[n].1.clone();
        if n == "blk.1.attn_k.weight" {
            v.pop();
        }
        Ok(v)
    });
    assert!(
        matches!(short, Err(Error::ShapeMismatch { ref tensor, .. }) if tensor == "blk.1.attn_k.weight"),
        "{short:?}"
    );
    let nan = perplexity_streamed(&c, &ids, &pc, |n| {
        let mut v = t[n].1.clone();
        if n == "blk.0.ffn_up.weight" {
            v[3] = f32::NAN;
        }
        Ok(v)
    });
    assert!(
        matches!(nan, Err(Error::NonFinite { first_index: 3, .. })),
        "{nan:?}"
    );
    let failing = perplexity_streamed(&c, &ids, &pc, |n| {
        if n == "output_norm.weight" {
            Err(Error::Empty {
                what: "from the source",
            })
        } else {
            Ok(t[n].1.clone())
        }
    });
    assert!(matches!(
        failing,
        Err(Error::Empty {
            what: "from the source"
        })
    ));
}

/// Real SmolLM2 (the cached Q4_1 GGUF) read from its memory map block by block, against the
/// loaded model, on Brown news with overlapping windows; then with one tensor replaced.
#[test]
fn smollm2_streamed_equals_loaded() {
    let path = Cache::new(None)
        .expect("cache")
        .model(Pinned::SmolLm2)
        .expect("fetch SmolLM2");
    let file = Model::open(&path).expect("open SmolLM2");
    let tok = TextTokenizer::for_model(&file).expect("tokenizer");
    let dir = Cache::new(None).expect("cache").brown().expect("Brown");
    let docs = claimlab_weights::brown_documents(&dir).expect("Brown documents");
    let text: String = docs
        .iter()
        .filter(|d| d.genre == "news")
        .take(2)
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut ids = tok.encode(&text).expect("encode");
    ids.truncate(200);
    let m = LlamaModel::load(&file).expect("load");
    let pc = PerplexityConfig {
        context: 120,
        stride: 80,
    };
    let want = perplexity(&m, &ids, &pc, &Overrides::default()).unwrap();
    let got = perplexity_streamed_file(&file, &ids, &pc, &Overrides::default()).unwrap();
    assert!(want.ppl > 5.0 && want.ppl < 100.0, "{}", want.ppl);
    assert_same(&got, &want, 1e-5);
    let name = "blk.7.ffn_gate.weight";
    let mut ov = Overrides::default();
    ov.insert(
        name.into(),
        file.tensor_f32(name)
            .unwrap()
            .iter()
            .map(|v| v * 1.5)
            .collect(),
    );
    let want = perplexity(&m, &ids, &pc, &ov).unwrap();
    let got = perplexity_streamed_file(&file, &ids, &pc, &ov).unwrap();
    assert_same(&got, &want, 1e-5);
    ov.insert("blk.99.attn_q.weight".into(), vec![0.0; 4]);
    assert!(matches!(
        perplexity_streamed_file(&file, &ids, &pc, &ov),
        Err(Error::BadOverride { ref tensor, .. }) if tensor == "blk.99.attn_q.weight"
    ));
}

/// Time of the streamed perplexity against loading the model and scoring it, interleaved
/// (prints the ratio; a timing, not a check). Run by hand:
/// `cargo test --release -p claimlab-runtime --test stream_eval -- --ignored --nocapture`
#[test]
#[ignore = "a timing on real SmolLM2; run by hand"]
fn smollm2_streamed_timing() {
    let path = Cache::new(None)
        .expect("cache")
        .model(Pinned::SmolLm2)
        .expect("fetch SmolLM2");
    let file = Model::open(&path).expect("open SmolLM2");
    let ids = tokens(512, 40000);
    let pc = PerplexityConfig::default();
    let (mut loaded, mut streamed) = (0.0, 0.0);
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let m = LlamaModel::load(&file).expect("load");
        let a = perplexity(&m, &ids, &pc, &Overrides::default()).unwrap();
        drop(m);
        loaded += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let b = perplexity_streamed_file(&file, &ids, &pc, &Overrides::default()).unwrap();
        streamed += t.elapsed().as_secs_f64();
        assert_same(&b, &a, 1e-5);
    }
    println!(
        "load + perplexity {:.2} s, streamed {:.2} s (two rounds each, interleaved): ratio {:.3}",
        loaded,
        streamed,
        streamed / loaded
    );
}
