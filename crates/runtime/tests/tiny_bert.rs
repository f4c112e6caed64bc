//! A tiny random BERT encoder against a direct f64 implementation, plus hooks and errors.

use std::collections::HashMap;

use claimlab_runtime::{cosine, BertConfig, BertModel, Capture, Error, Hooks, Overrides};
use claimlab_testkit::rand::RngExt;

fn cfg() -> BertConfig {
    BertConfig {
        n_layers: 2,
        d_model: 8,
        n_heads: 2,
        d_ff: 16,
        vocab_size: 20,
        max_positions: 12,
        type_vocab_size: 2,
        norm_eps: 1e-12,
    }
}

fn tensors(c: &BertConfig, seed: u64) -> HashMap<String, Vec<f32>> {
    let mut rng = claimlab_testkit::rng(seed);
    let mut t = HashMap::new();
    let mut add = |name: String, n: usize, scale: f32, offset: f32| {
        let v: Vec<f32> = (0..n)
            .map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0))
            .collect();
        t.insert(name, v);
    };
    let (d, ff) = (c.d_model, c.d_ff);
    add(
        "embeddings.word_embeddings.weight".into(),
        c.vocab_size * d,
        1.0,
        0.0,
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        c.max_positions * d,
        0.5,
        0.0,
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        c.type_vocab_size * d,
        0.5,
        0.0,
    );
    let norm = |t: &mut dyn FnMut(String, usize, f32, f32), name: &str| {
        t(format!("{name}.weight"), d, 0.2, 1.0);
        t(format!("{name}.bias"), d, 0.2, 0.0);
    };
    norm(&mut add, "embeddings.LayerNorm");
    for l in 0..c.n_layers {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", d, d),
            ("attention.self.key", d, d),
            ("attention.self.value", d, d),
            ("attention.output.dense", d, d),
            ("intermediate.dense", ff, d),
            ("output.dense", d, ff),
        ] {
            add(format!("{p}.{name}.weight"), out * inp, 0.6, 0.0);
            add(format!("{p}.{name}.bias"), out, 0.2, 0.0);
        }
        norm(&mut add, &format!("{p}.attention.output.LayerNorm"));
        norm(&mut add, &format!("{p}.output.LayerNorm"));
    }
    t
}

fn reference(c: &BertConfig, t: &HashMap<String, Vec<f32>>, tokens: &[u32]) -> Vec<Vec<f64>> {
    let g = |n: &str| -> Vec<f64> { t[n].iter().map(|&x| f64::from(x)).collect() };
    let d = c.d_model;
    let lin = |x: &[f64], name: &str, out: usize| -> Vec<f64> {
        let (w, b) = (g(&format!("{name}.weight")), g(&format!("{name}.bias")));
        (0..out)
            .map(|o| b[o] + (0..x.len()).map(|i| x[i] * w[o * x.len() + i]).sum::<f64>())
            .collect()
    };
    let ln = |x: &[f64], name: &str| -> Vec<f64> {
        let (w, b) = (g(&format!("{name}.weight")), g(&format!("{name}.bias")));
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64;
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - m) / (var + c.norm_eps).sqrt() * w[i] + b[i])
            .collect()
    };
    let erf = erf_ref;
    let (we, pe, te) = (
        g("embeddings.word_embeddings.weight"),
        g("embeddings.position_embeddings.weight"),
        g("embeddings.token_type_embeddings.weight"),
    );
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .enumerate()
        .map(|(p, &tk)| {
            let e: Vec<f64> = (0..d)
                .map(|j| we[tk as usize * d + j] + pe[p * d + j] + te[j])
                .collect();
            ln(&e, "embeddings.LayerNorm")
        })
        .collect();
    let hd = d / c.n_heads;
    for l in 0..c.n_layers {
        let p = format!("encoder.layer.{l}");
        let q: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| lin(x, &format!("{p}.attention.self.query"), d))
            .collect();
        let k: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| lin(x, &format!("{p}.attention.self.key"), d))
            .collect();
        let v: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| lin(x, &format!("{p}.attention.self.value"), d))
            .collect();
        let n = xs.len();
        let mut new = Vec::new();
        for i in 0..n {
            let mut att = vec![0.0; d];
            for h in 0..c.n_heads {
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..hd)
                            .map(|e| q[i][h * hd + e] * k[j][h * hd + e])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for j in 0..n {
                    for e in 0..hd {
                        att[h * hd + e] += (s[j] - m).exp() / z * v[j][h * hd + e];
                    }
                }
            }
            let o = lin(&att, &format!("{p}.attention.output.dense"), d);
            let r: Vec<f64> = o.iter().zip(&xs[i]).map(|(a, b)| a + b).collect();
            let x1 = ln(&r, &format!("{p}.attention.output.LayerNorm"));
            let hmid: Vec<f64> = lin(&x1, &format!("{p}.intermediate.dense"), c.d_ff)
                .iter()
                .map(|&u| 0.5 * u * (1.0 + erf(u / std::f64::consts::SQRT_2)))
                .collect();
            let y = lin(&hmid, &format!("{p}.output.dense"), d);
            let r2: Vec<f64> = y.iter().zip(&x1).map(|(a, b)| a + b).collect();
            new.push(ln(&r2, &format!("{p}.output.LayerNorm")));
        }
        xs = new;
    }
    xs
}

fn model(c: &BertConfig, t: &HashMap<String, Vec<f32>>) -> BertModel {
    BertModel::from_tensors(c.clone(), |n| Ok(t[n].clone())).expect("tiny bert")
}

const TOKENS: [u32; 7] = [1, 7, 19, 3, 3, 11, 2];

#[test]
fn forward_matches_f64_reference() {
    let c = cfg();
    let t = tensors(&c, 21);
    let m = model(&c, &t);
    let out = m.forward(&TOKENS, &Hooks::none()).expect("forward");
    let want = reference(&c, &t, &TOKENS);
    let want: Vec<f64> = want.into_iter().flatten().collect();
    let got: Vec<f64> = out.hidden.iter().map(|&v| f64::from(v)).collect();
    // f32 activations and a 1.5e-7 erf approximation: agreement to ~1e-5.
    claimlab_testkit::assert_slice_close(&got, &want, 1e-4, 1e-4);
    // embed = L2-normalised mean of the hidden states.
    let e = m.embed(&TOKENS, &Overrides::new()).expect("embed");
    let d = c.d_model;
    let mean: Vec<f32> = (0..d)
        .map(|j| {
            (0..TOKENS.len())
                .map(|i| out.hidden[i * d + j])
                .sum::<f32>()
                / TOKENS.len() as f32
        })
        .collect();
    assert!((cosine(&e, &mean) - 1.0).abs() < 1e-6);
    let norm: f32 = e.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[test]
fn captures_overrides_and_errors() {
    let c = cfg();
    let t = tensors(&c, 22);
    let m = model(&c, &t);
    let hooks = Hooks {
        capture: Capture::all(),
        overrides: Overrides::new(),
    };
    let out = m.forward(&TOKENS, &hooks).expect("forward");
    let n = TOKENS.len();
    assert_eq!(out.captures.layers.len(), c.n_layers);
    for lc in &out.captures.layers {
        let a = lc.attention.as_ref().expect("attention");
        assert_eq!(a.len(), c.n_heads * n * n);
        for row in a.chunks_exact(n) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            // Bidirectional: every key gets weight.
            assert!(row.iter().all(|&p| p > 0.0));
        }
        let pre = lc.mlp_pre.as_ref().expect("pre");
        let post = lc.mlp_post.as_ref().expect("post");
        for (&u, &v) in pre.iter().zip(post) {
            let want =
                0.5 * f64::from(u) * (1.0 + erf_ref(f64::from(u) / std::f64::consts::SQRT_2));
            assert!((f64::from(v) - want).abs() < 1e-5);
        }
    }
    let last = out.captures.layers[c.n_layers - 1]
        .residual
        .as_ref()
        .expect("residual");
    assert!(last
        .iter()
        .zip(&out.hidden)
        .all(|(a, b)| (a - b).abs() < 1e-7));
    // Override equals rebuilding.
    let name = "encoder.layer.0.intermediate.dense.weight";
    let changed: Vec<f32> = t[name].iter().map(|v| -v).collect();
    let mut t2 = t.clone();
    t2.insert(name.to_string(), changed.clone());
    let want = model(&c, &t2)
        .forward(&TOKENS, &Hooks::none())
        .expect("forward");
    let ov: Overrides = [(name.to_string(), changed)].into();
    let got = m
        .forward(&TOKENS, &Hooks::with_overrides(ov))
        .expect("forward");
    assert!(got
        .hidden
        .iter()
        .zip(&want.hidden)
        .all(|(a, b)| (a - b).abs() < 1e-6));
    assert!(got
        .hidden
        .iter()
        .zip(&out.hidden)
        .any(|(a, b)| (a - b).abs() > 1e-3));
    // Errors.
    assert!(matches!(
        m.forward(&[], &Hooks::none()),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        m.forward(&[0; 13], &Hooks::none()),
        Err(Error::TooLong { len: 13, max: 12 })
    ));
    assert!(matches!(
        m.embed(&[20], &Overrides::new()),
        Err(Error::TokenOutOfRange { token: 20, .. })
    ));
    let mut bad = cfg();
    bad.n_heads = 3;
    assert!(matches!(
        BertModel::from_tensors(bad, |n| Ok(t[n].clone())),
        Err(Error::InvalidParam {
            name: "n_heads",
            ..
        })
    ));
}

/// erf by its Maclaurin series; the alternating terms grow like e^(x²), so cancellation costs
/// about e^(x²)·1e-16: below 1e-9 for |x| < 4, the range of this tiny model's activations.
fn erf_ref(x: f64) -> f64 {
    assert!(x.abs() < 4.0, "erf_ref({x}) outside its accurate range");
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}
