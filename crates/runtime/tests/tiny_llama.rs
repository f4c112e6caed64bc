//! A tiny random llama model against a direct f64 implementation (Hugging Face layout: half-split
//! RoPE on unpermuted Q/K rows), plus hooks, overrides, perplexity windows and error paths.

mod common;

use claimlab_runtime::{
    generate, perplexity, Capture, Error, Hooks, LlamaConfig, LlamaModel, Overrides,
    PerplexityConfig,
};
use common::Tensors;

fn cfg() -> LlamaConfig {
    common::tiny_llama_config(2, true)
}

/// The shared tiny model's random tensors, read as Hugging Face layout (Q/K rows unpermuted).
fn hf_tensors(c: &LlamaConfig, seed: u64) -> Tensors {
    common::tiny_llama_tensors(c, seed)
}

/// llama.cpp's converter permutation of Q/K rows: within each head, row 2i ← i, 2i+1 ← i + hd/2.
fn to_gguf_rows(v: &[f32], n_heads: usize, hd: usize, d: usize) -> Vec<f32> {
    let mut out = v.to_vec();
    for h in 0..n_heads {
        for i in 0..hd / 2 {
            for (dst, src) in [(2 * i, i), (2 * i + 1, i + hd / 2)] {
                let (a, b) = ((h * hd + dst) * d, (h * hd + src) * d);
                out[a..a + d].copy_from_slice(&v[b..b + d]);
            }
        }
    }
    out
}

fn model_from(c: &LlamaConfig, hf: &Tensors) -> LlamaModel {
    LlamaModel::from_tensors(c.clone(), |name| {
        let (_, v) = &hf[name];
        Ok(if name.ends_with("attn_q.weight") {
            to_gguf_rows(v, c.n_heads, c.head_dim, c.d_model)
        } else if name.ends_with("attn_k.weight") {
            to_gguf_rows(v, c.n_kv_heads, c.head_dim, c.d_model)
        } else {
            v.clone()
        })
    })
    .expect("tiny model")
}

/// Direct f64 llama forward, Hugging Face conventions.
fn reference_logits(c: &LlamaConfig, t: &Tensors, tokens: &[u32]) -> Vec<Vec<f64>> {
    let g = |name: &str| -> Vec<f64> { t[name].1.iter().map(|&x| f64::from(x)).collect() };
    let (n, d, hd, ff) = (tokens.len(), c.d_model, c.head_dim, c.d_ff);
    let lin = |x: &[f64], w: &[f64], out: usize| -> Vec<f64> {
        (0..out)
            .map(|o| (0..x.len()).map(|i| x[i] * w[o * x.len() + i]).sum())
            .collect()
    };
    let rms = |x: &[f64], w: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        x.iter()
            .zip(w)
            .map(|(v, g)| v / (ms + c.norm_eps).sqrt() * g)
            .collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        for head in v.chunks_mut(hd) {
            for i in 0..hd / 2 {
                let a = pos as f64 * c.rope_theta.powf(-2.0 * i as f64 / hd as f64);
                let (x0, x1) = (head[i], head[i + hd / 2]);
                head[i] = x0 * a.cos() - x1 * a.sin();
                head[i + hd / 2] = x1 * a.cos() + x0 * a.sin();
            }
        }
    };
    let emb = g("token_embd.weight");
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&tk| emb[tk as usize * d..(tk as usize + 1) * d].to_vec())
        .collect();
    for l in 0..c.n_layers {
        let w = |s: &str| g(&format!("blk.{l}.{s}.weight"));
        let (qw, kw, vw, ow) = (w("attn_q"), w("attn_k"), w("attn_v"), w("attn_output"));
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (p, x) in xs.iter().enumerate() {
            let h = rms(x, &w("attn_norm"));
            let mut q = lin(&h, &qw, c.n_heads * hd);
            let mut k = lin(&h, &kw, c.n_kv_heads * hd);
            rope(&mut q, p);
            rope(&mut k, p);
            qs.push(q);
            ks.push(k);
            vs.push(lin(&h, &vw, c.n_kv_heads * hd));
        }
        for i in 0..n {
            let mut att = vec![0.0; c.n_heads * hd];
            for h in 0..c.n_heads {
                let kv = h / (c.n_heads / c.n_kv_heads);
                let s: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..hd)
                            .map(|e| qs[i][h * hd + e] * ks[j][kv * hd + e])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for (j, sv) in s.iter().enumerate() {
                    for e in 0..hd {
                        att[h * hd + e] += (sv - m).exp() / z * vs[j][kv * hd + e];
                    }
                }
            }
            let o = lin(&att, &ow, d);
            for e in 0..d {
                xs[i][e] += o[e];
            }
            let h = rms(&xs[i], &w("ffn_norm"));
            let gt = lin(&h, &w("ffn_gate"), ff);
            let up = lin(&h, &w("ffn_up"), ff);
            let act: Vec<f64> = gt
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let y = lin(&act, &w("ffn_down"), d);
            for e in 0..d {
                xs[i][e] += y[e];
            }
        }
    }
    xs.iter()
        .map(|x| lin(&rms(x, &g("output_norm.weight")), &emb, c.vocab_size))
        .collect()
}

const TOKENS: [u32; 9] = [3, 17, 29, 0, 5, 5, 12, 8, 21];

#[test]
fn forward_matches_f64_reference_with_gguf_permutation() {
    let c = cfg();
    let hf = hf_tensors(&c, 11);
    let m = model_from(&c, &hf);
    let out = m.forward(&TOKENS, &Hooks::none()).expect("forward");
    let want = reference_logits(&c, &hf, &TOKENS);
    for (t, w) in want.iter().enumerate() {
        let got: Vec<f64> = out.row(t).iter().map(|&v| f64::from(v)).collect();
        // f32 activations through 2 blocks of width 12: agreement to ~1e-5 relative.
        claimlab_testkit::assert_slice_close(&got, w, 1e-4, 1e-4);
    }
}

#[test]
fn forward_is_causal() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 12));
    let full = m.forward(&TOKENS, &Hooks::none()).expect("forward");
    let pre = m.forward(&TOKENS[..4], &Hooks::none()).expect("forward");
    for t in 0..4 {
        for (a, b) in full.row(t).iter().zip(pre.row(t)) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

#[test]
fn captures_are_consistent() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 13));
    let hooks = Hooks {
        capture: Capture::all(),
        overrides: Overrides::new(),
    };
    let out = m.forward(&TOKENS, &hooks).expect("forward");
    let n = TOKENS.len();
    let cap = &out.captures;
    assert_eq!(cap.layers.len(), c.n_layers);
    assert_eq!(cap.embeddings.as_ref().map(Vec::len), Some(n * c.d_model));
    for lc in &cap.layers {
        let a = lc.attention.as_ref().expect("attention");
        assert_eq!(a.len(), c.n_heads * n * n);
        for (r, row) in a.chunks_exact(n).enumerate() {
            let i = r % n;
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
            assert!(row[i + 1..].iter().all(|&p| p.abs() < f32::MIN_POSITIVE));
        }
        let pre = lc.mlp_pre.as_ref().expect("pre");
        let post = lc.mlp_post.as_ref().expect("post");
        assert_eq!(pre.len(), n * c.d_ff);
        assert_eq!(post.len(), n * c.d_ff);
        assert_eq!(lc.residual.as_ref().map(Vec::len), Some(n * c.d_model));
    }
    // Row 0 attends only to itself.
    let a0 = cap.layers[0].attention.as_ref().expect("attention");
    assert!((a0[0] - 1.0).abs() < 1e-6);
    // Only the requested layer, only attention.
    let only = Hooks {
        capture: Capture {
            attention: true,
            layers: Some(vec![1]),
            ..Capture::default()
        },
        overrides: Overrides::new(),
    };
    let out2 = m.forward(&TOKENS, &only).expect("forward");
    assert_eq!(out2.captures.layers.len(), 1);
    assert_eq!(out2.captures.layers[0].layer, 1);
    assert!(out2.captures.layers[0].mlp_pre.is_none());
    assert!(out2.captures.embeddings.is_none());
    // Capturing does not change the logits.
    for (a, b) in out.logits.iter().zip(&out2.logits) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn overrides_substitute_weights() {
    let c = cfg();
    let hf = hf_tensors(&c, 14);
    let m = model_from(&c, &hf);
    let base = m.forward(&TOKENS, &Hooks::none()).expect("forward");
    // Same values: same logits.
    let name = "blk.1.ffn_down.weight";
    let same = m.param(name).expect("param").1.to_vec();
    let ov: Overrides = [(name.to_string(), same)].into_iter().collect();
    let out = m
        .forward(&TOKENS, &Hooks::with_overrides(ov))
        .expect("forward");
    assert!(out
        .logits
        .iter()
        .zip(&base.logits)
        .all(|(a, b)| (a - b).abs() < 1e-7));
    // Substituting a tensor equals building the model with it.
    let mut hf2 = hf.clone();
    let changed: Vec<f32> = hf[name].1.iter().map(|v| v * 0.5 + 0.01).collect();
    hf2.get_mut(name).expect("tensor").1 = changed.clone();
    let m2 = model_from(&c, &hf2);
    let want = m2.forward(&TOKENS, &Hooks::none()).expect("forward");
    let ov: Overrides = [(name.to_string(), changed)].into_iter().collect();
    let got = m
        .forward(&TOKENS, &Hooks::with_overrides(ov))
        .expect("forward");
    assert!(got
        .logits
        .iter()
        .zip(&want.logits)
        .all(|(a, b)| (a - b).abs() < 1e-6));
    assert!(got
        .logits
        .iter()
        .zip(&base.logits)
        .any(|(a, b)| (a - b).abs() > 1e-3));
    // Bad overrides.
    let bad: Overrides = [("blk.9.ffn_down.weight".to_string(), vec![0.0; 3])]
        .into_iter()
        .collect();
    assert!(matches!(
        m.forward(&TOKENS, &Hooks::with_overrides(bad)),
        Err(Error::BadOverride { .. })
    ));
    let short: Overrides = [(name.to_string(), vec![0.0; 3])].into_iter().collect();
    assert!(matches!(
        m.forward(&TOKENS, &Hooks::with_overrides(short)),
        Err(Error::BadOverride { .. })
    ));
}

#[test]
fn perplexity_windows() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 15));
    let tokens: Vec<u32> = (0..40).map(|i| (i * 7 % 30) as u32).collect();
    // One window covering everything equals the forward pass's own NLL.
    let out = m.forward(&tokens, &Hooks::none()).expect("forward");
    let direct: Vec<f64> = (1..tokens.len())
        .map(|t| {
            let row = out.row(t - 1);
            let mx = row
                .iter()
                .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
            let z: f64 = row.iter().map(|&v| (f64::from(v) - mx).exp()).sum();
            mx + z.ln() - f64::from(row[tokens[t] as usize])
        })
        .collect();
    let none = Overrides::new();
    let p = perplexity(
        &m,
        &tokens,
        &PerplexityConfig {
            context: 64,
            stride: 64,
        },
        &none,
    )
    .expect("ppl");
    assert_eq!(p.n_windows, 1);
    assert_eq!(p.positions, (1..40).collect::<Vec<_>>());
    claimlab_testkit::assert_slice_close(&p.per_token_nll, &direct, 1e-5, 1e-6);
    let mean = direct.iter().sum::<f64>() / direct.len() as f64;
    assert!((p.mean_nll_nats - mean).abs() < 1e-5);
    // Overlapping windows: each token scored once, in order; the later tokens see a shorter context.
    let q = perplexity(
        &m,
        &tokens,
        &PerplexityConfig {
            context: 16,
            stride: 8,
        },
        &none,
    )
    .expect("ppl");
    assert_eq!(q.positions, (1..40).collect::<Vec<_>>());
    assert_eq!(q.n_windows, 4);
    // Token 20 is scored in window [8, 24) with context tokens 8..20.
    let w = m.forward(&tokens[8..24], &Hooks::none()).expect("forward");
    let row = w.row(20 - 8 - 1);
    let mx = row
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
    let z: f64 = row.iter().map(|&v| (f64::from(v) - mx).exp()).sum();
    let want = mx + z.ln() - f64::from(row[tokens[20] as usize]);
    assert!((q.per_token_nll[19] - want).abs() < 1e-5);
    // Disjoint windows skip the first token of each window.
    let r = perplexity(
        &m,
        &tokens,
        &PerplexityConfig {
            context: 16,
            stride: 16,
        },
        &none,
    )
    .expect("ppl");
    assert_eq!(r.n_tokens, 40 - 3);
    assert!(!r.positions.contains(&16) && !r.positions.contains(&32));
    // Errors.
    for bad in [
        PerplexityConfig {
            context: 1,
            stride: 1,
        },
        PerplexityConfig {
            context: 8,
            stride: 0,
        },
        PerplexityConfig {
            context: 8,
            stride: 9,
        },
    ] {
        assert!(matches!(
            perplexity(&m, &tokens, &bad, &none),
            Err(Error::InvalidParam { .. })
        ));
    }
    assert!(matches!(
        perplexity(&m, &tokens[..1], &PerplexityConfig::default(), &none),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn kv_cache_gives_the_full_forward_logits() {
    let c = cfg();
    let hf = hf_tensors(&c, 17);
    let m = model_from(&c, &hf);
    let full = m.forward(&TOKENS, &Hooks::none()).expect("forward");
    let none = Overrides::new();
    // Prefill three tokens, then one at a time, then the rest at once.
    let mut cache = m.new_cache();
    let splits = [0, 3, 4, 5, TOKENS.len()];
    for w in splits.windows(2) {
        let logits = m
            .forward_cached(&mut cache, &TOKENS[w[0]..w[1]], &none)
            .expect("cached forward");
        assert_eq!(cache.len(), w[1]);
        for (i, t) in (w[0]..w[1]).enumerate() {
            let got: Vec<f64> = logits[i * c.vocab_size..(i + 1) * c.vocab_size]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let want: Vec<f64> = full.row(t).iter().map(|&v| f64::from(v)).collect();
            claimlab_testkit::assert_slice_close(&got, &want, 1e-5, 1e-5);
        }
    }
    // Truncating and re-feeding reproduces the same logits.
    cache.truncate(3);
    let again = m
        .forward_cached(&mut cache, &TOKENS[3..4], &none)
        .expect("cached forward");
    let want: Vec<f64> = full.row(3).iter().map(|&v| f64::from(v)).collect();
    let got: Vec<f64> = again.iter().map(|&v| f64::from(v)).collect();
    claimlab_testkit::assert_slice_close(&got, &want, 1e-5, 1e-5);
    // A cache from a model of another shape is refused and left alone.
    let mut other = c.clone();
    other.n_layers = 1;
    let small = model_from(&other, &hf_tensors(&other, 18));
    let mut foreign = small.new_cache();
    small
        .forward_cached(&mut foreign, &TOKENS[..2], &none)
        .expect("cached forward");
    assert!(matches!(
        m.forward_cached(&mut foreign, &TOKENS[2..3], &none),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(foreign.len(), 2);
}

#[test]
fn generate_is_greedy() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 16));
    let none = Overrides::new();
    let out = generate(&m, &TOKENS[..3], 4, &[], &none).expect("generate");
    assert_eq!(out.len(), 4);
    let mut seq = TOKENS[..3].to_vec();
    for &t in &out {
        let f = m.forward(&seq, &Hooks::none()).expect("forward");
        let row = f.row(seq.len() - 1);
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
        assert_eq!(t as usize, best);
        seq.push(t);
    }
    // A stop token ends generation and is included.
    let stopped = generate(&m, &TOKENS[..3], 4, &[out[0]], &none).expect("generate");
    assert_eq!(stopped, vec![out[0]]);
    assert!(matches!(
        generate(&m, &[], 4, &[], &none),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn input_errors() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 17));
    assert!(matches!(
        m.forward(&[], &Hooks::none()),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        m.forward(&[1, 30], &Hooks::none()),
        Err(Error::TokenOutOfRange {
            index: 1,
            token: 30,
            vocab_size: 30
        })
    ));
    assert!(matches!(
        m.forward(&[1; 65], &Hooks::none()),
        Err(Error::TooLong { len: 65, max: 64 })
    ));
    let mut bad = cfg();
    bad.n_kv_heads = 3;
    assert!(matches!(
        LlamaModel::from_tensors(bad, |_| Ok(vec![])),
        Err(Error::InvalidParam {
            name: "n_kv_heads",
            ..
        })
    ));
    let hf = hf_tensors(&c, 18);
    let r = LlamaModel::from_tensors(c.clone(), |name| {
        let v = &hf[name].1;
        Ok(if name == "blk.0.ffn_up.weight" {
            v[1..].to_vec()
        } else {
            v.clone()
        })
    });
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })));
    let r = LlamaModel::from_tensors(c, |name| {
        let mut v = hf[name].1.clone();
        if name == "output_norm.weight" {
            v[2] = f32::NAN;
        }
        Ok(v)
    });
    assert!(matches!(r, Err(Error::NonFinite { first_index: 2, .. })));
}

fn log_probs(m: &LlamaModel, tokens: &[u32], ys: &[u32], ov: Overrides) -> Vec<f64> {
    let out = m
        .forward(tokens, &Hooks::with_overrides(ov))
        .expect("forward");
    ys.iter()
        .enumerate()
        .map(|(t, &y)| {
            let row = out.row(t);
            let mx = row
                .iter()
                .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
            let z: f64 = row.iter().map(|&v| (f64::from(v) - mx).exp()).sum();
            f64::from(row[y as usize]) - mx - z.ln()
        })
        .collect()
}

/// Hutchinson + finite differences against the brute-force squared gradient norm (central
/// differences coordinate by coordinate, with the same sampled labels).
#[test]
fn fisher_trace_matches_brute_force() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 19));
    let tokens = &TOKENS[..6];
    let est = claimlab_runtime::fisher_trace(
        &m,
        tokens,
        &claimlab_runtime::FisherConfig {
            n_directions: 300,
            rel_step: 1e-3,
            seed: 5,
        },
    )
    .expect("fisher");
    assert_eq!(est.layers.len(), c.n_layers);
    assert_eq!(est.sampled.len(), tokens.len());
    for layer in &est.layers {
        let prefix = format!("blk.{}.", layer.layer);
        let names: Vec<String> = m
            .param_names()
            .filter(|n| n.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        let h = 1e-2f32;
        let mut exact = 0.0f64;
        let mut n_params = 0;
        for name in &names {
            let base = m.param(name).expect("param").1.to_vec();
            n_params += base.len();
            for i in 0..base.len() {
                let mut p = base.clone();
                p[i] += h;
                let mut q = base.clone();
                q[i] -= h;
                let lp = log_probs(&m, tokens, &est.sampled, [(name.clone(), p)].into());
                let lq = log_probs(&m, tokens, &est.sampled, [(name.clone(), q)].into());
                let step = f64::from(base[i] + h) - f64::from(base[i] - h);
                exact += lp
                    .iter()
                    .zip(&lq)
                    .map(|(a, b)| ((a - b) / step).powi(2))
                    .sum::<f64>();
            }
        }
        exact /= tokens.len() as f64;
        assert_eq!(layer.n_params, n_params);
        // Seeded and deterministic; for a fresh seed a 4-standard-error band fails with
        // probability about 6e-5 (normal approximation over 300 directions).
        let z = (layer.trace - exact) / layer.std_error;
        assert!(
            z.abs() < 4.0,
            "layer {}: estimate {} ± {}, brute force {exact}",
            layer.layer,
            layer.trace,
            layer.std_error
        );
        assert!(layer.std_error < 0.2 * exact, "{layer:?} vs {exact}");
    }
    // Deterministic for a fixed seed.
    let small = claimlab_runtime::FisherConfig {
        n_directions: 3,
        rel_step: 1e-3,
        seed: 9,
    };
    let a = claimlab_runtime::fisher_trace(&m, tokens, &small).expect("fisher");
    let b = claimlab_runtime::fisher_trace(&m, tokens, &small).expect("fisher");
    assert_eq!(a.sampled, b.sampled);
    assert!(a
        .layers
        .iter()
        .zip(&b.layers)
        .all(|(x, y)| (x.trace - y.trace).abs() < 1e-12));
    let bad = claimlab_runtime::FisherConfig {
        n_directions: 1,
        ..small
    };
    assert!(matches!(
        claimlab_runtime::fisher_trace(&m, tokens, &bad),
        Err(Error::InvalidParam {
            name: "n_directions",
            ..
        })
    ));
}

/// `KvCache::bytes` covers at least the cached keys and values (2 · layers · tokens · kv width
/// floats), at most twice that plus the per-layer headers (amortised growth), grows with the
/// tokens, and keeps counting the capacity that `truncate` leaves allocated.
#[test]
fn kv_cache_bytes_counts_the_buffers() {
    let c = cfg();
    let m = model_from(&c, &hf_tensors(&c, 19));
    let none = Overrides::new();
    let per_token = 2 * c.n_layers * c.n_kv_heads * c.head_dim * std::mem::size_of::<f32>();
    let headers = 2 * c.n_layers * std::mem::size_of::<Vec<f32>>();
    let mut cache = m.new_cache();
    assert!(
        cache.bytes() <= headers,
        "empty cache: {} bytes",
        cache.bytes()
    );
    let mut last = cache.bytes();
    for step in [&TOKENS[..3], &TOKENS[3..4], &TOKENS[4..]] {
        m.forward_cached(&mut cache, step, &none)
            .expect("cached forward");
        let payload = cache.len() * per_token;
        let b = cache.bytes();
        assert!(
            b >= payload + headers && b <= 2 * payload + headers,
            "{} tokens: {b} bytes against payload {payload} + headers {headers}",
            cache.len()
        );
        assert!(b > last, "bytes did not grow: {b} after {last}");
        last = b;
    }
    cache.truncate(1);
    assert_eq!(cache.bytes(), last, "truncate keeps the allocation");
}
