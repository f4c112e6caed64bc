//! The layer-streaming Fisher diagonal (`fisher_diag_streaming`) against the whole-model
//! reference (`GradModel::loss_gradient` window by window, accumulated as `compress`'s
//! `fisher_diag` does), on the tiny random llama (tied and untied) and, `#[ignore]`d, on the real
//! SmolLM2; `block_backward` against central differences of the f32 `block_forward`; and every
//! error path.
//!
//! Tolerances. The streamed pass runs the same f64 per-block functions as `GradModel` in the same
//! order, so with the same f32 accumulation the diagonals are expected to be bit-identical; the
//! test asserts 1e-6 relative against an f64 accumulation (the f32 sums of a few squares round at
//! 6e-8 relative each) and reports the number of elements that are not bit-identical to the f32
//! accumulation, asserting it is zero on the tiny model.

mod common;

use std::collections::HashMap;

use claimlab_runtime::{
    block_backward, block_forward, fisher_diag_streaming, BlockWeights, Error, FisherTensor,
    GradModel, GradSpec, LlamaConfig, LlamaModel, BLOCK_TENSORS,
};
use claimlab_testkit::rand::RngExt;

fn tokens(c: &LlamaConfig, n: usize, seed: u64) -> Vec<u32> {
    let mut rng = claimlab_testkit::rng(seed);
    (0..n)
        .map(|_| rng.random_range(0..c.vocab_size as u32))
        .collect()
}

/// Reference diagonals (f64 and f32 sums) and the mean loss.
struct Reference {
    f64_sums: HashMap<String, Vec<f64>>,
    f32_sums: HashMap<String, Vec<f32>>,
    mean_nll: f64,
}

/// The reference: per window `n_w·g_w²` from `GradModel`, summed in f64 and in f32 (as
/// `compress::damage::fisher_diag`), then divided by the number of windows.
fn reference(m: &LlamaModel, toks: &[u32], window: usize) -> Reference {
    let gm = GradModel::new(m, &GradSpec::all(m.config().n_layers)).expect("grad model");
    let mut a64: HashMap<String, Vec<f64>> = HashMap::new();
    let mut a32: HashMap<String, Vec<f32>> = HashMap::new();
    let (mut k, mut nll, mut pos) = (0usize, 0.0, 0usize);
    for win in toks.chunks(window).filter(|w| w.len() >= 2) {
        let g = gm.loss_gradient(win, None).expect("gradient");
        let nw = g.positions.len() as f64;
        nll += g.mean_nll * nw;
        pos += g.positions.len();
        for pg in &g.grads {
            let e64 = a64
                .entry(pg.name.clone())
                .or_insert_with(|| vec![0.0; pg.grad.len()]);
            let e32 = a32
                .entry(pg.name.clone())
                .or_insert_with(|| vec![0.0; pg.grad.len()]);
            for ((s, t), &v) in e64.iter_mut().zip(e32.iter_mut()).zip(&pg.grad) {
                *s += nw * v * v;
                *t += (nw * v * v) as f32;
            }
        }
        k += 1;
    }
    let inv32 = (1.0 / k as f64) as f32;
    for v in a64.values_mut() {
        v.iter_mut().for_each(|x| *x /= k as f64);
    }
    for v in a32.values_mut() {
        v.iter_mut().for_each(|x| *x *= inv32);
    }
    Reference {
        f64_sums: a64,
        f32_sums: a32,
        mean_nll: nll / pos as f64,
    }
}

/// Runs the streamed pass from a tensor map; returns the diagonals in the order received.
fn streamed(
    c: &LlamaConfig,
    t: &common::Tensors,
    toks: &[u32],
    window: usize,
) -> (Vec<Vec<FisherTensor>>, claimlab_runtime::StreamFisher) {
    let mut got = Vec::new();
    let mut steps = Vec::new();
    let s = fisher_diag_streaming(
        c,
        toks,
        window,
        |name| Ok(t[name].1.clone()),
        |batch| got.push(batch),
        |done, total| steps.push((done, total)),
    )
    .expect("streamed Fisher");
    let total = 2 * c.n_layers + 2;
    assert_eq!(steps, (1..=total).map(|i| (i, total)).collect::<Vec<_>>());
    (got, s)
}

fn check_against_reference(tied: bool, n_tokens: usize, window: usize) {
    let c = common::tiny_llama_config(3, tied);
    let t = common::tiny_llama_tensors(&c, 17);
    let m = common::tiny_llama(&c, &t);
    let toks = tokens(&c, n_tokens, 5);
    let Reference {
        f64_sums: want64,
        f32_sums: want32,
        mean_nll: want_nll,
    } = reference(&m, &toks, window);
    let (got, summary) = streamed(&c, &t, &toks, window);
    assert!(
        (summary.mean_nll - want_nll).abs() <= 1e-12 * want_nll,
        "{} {want_nll}",
        summary.mean_nll
    );
    assert_eq!(
        summary.windows,
        toks.chunks(window).filter(|w| w.len() >= 2).count()
    );
    // Order: the head's tensors, the blocks top-down, the embedding.
    let names: Vec<Vec<String>> = got
        .iter()
        .map(|b| b.iter().map(|f| f.name.clone()).collect())
        .collect();
    let mut head = vec!["output_norm.weight".to_string()];
    if !tied {
        head.push("output.weight".into());
    }
    let mut order = vec![head];
    for l in (0..c.n_layers).rev() {
        order.push(
            BLOCK_TENSORS
                .iter()
                .map(|s| format!("blk.{l}.{s}.weight"))
                .collect(),
        );
    }
    order.push(vec!["token_embd.weight".into()]);
    assert_eq!(names, order);
    let mut seen = 0;
    let mut not_bit_identical = 0;
    for f in got.iter().flatten() {
        let w64 = &want64[&f.name];
        let w32 = &want32[&f.name];
        assert_eq!(f.shape, t[&f.name].0, "{}", f.name);
        assert_eq!(f.diag.len(), w64.len(), "{}", f.name);
        let scale = w64.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        assert!(scale > 0.0, "{}: zero Fisher", f.name);
        for (i, (&a, &b)) in f.diag.iter().zip(w64).enumerate() {
            assert!(
                (f64::from(a) - b).abs() <= 1e-6 * b.abs() + 1e-12 * scale,
                "{}[{i}]: streamed {a}, reference {b}",
                f.name
            );
        }
        not_bit_identical += f
            .diag
            .iter()
            .zip(w32)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        seen += 1;
    }
    assert_eq!(seen, want64.len(), "every tensor of the reference streamed");
    assert_eq!(
        not_bit_identical, 0,
        "the same f64 arithmetic in the same order"
    );
}

#[test]
fn streamed_fisher_equals_grad_model_tied() {
    // 25 tokens in windows of 6: four windows of 6 and a last one of 1, skipped.
    check_against_reference(true, 25, 6);
    // A shorter last window (5 tokens).
    check_against_reference(true, 23, 6);
}

#[test]
fn streamed_fisher_equals_grad_model_untied() {
    check_against_reference(false, 23, 6);
}

fn block_of<'a>(t: &'a common::Tensors, l: usize) -> BlockWeights<'a> {
    let p = |s: &str| t[&format!("blk.{l}.{s}.weight")].1.as_slice();
    BlockWeights {
        attn_norm: p("attn_norm"),
        wq: p("attn_q"),
        wk: p("attn_k"),
        wv: p("attn_v"),
        wo: p("attn_output"),
        ffn_norm: p("ffn_norm"),
        gate: p("ffn_gate"),
        up: p("ffn_up"),
        down: p("ffn_down"),
    }
}

/// `block_backward`'s gradients predict the change of `φ = Σ dy ⊙ y(W, x)` under a random ±h
/// perturbation of all nine tensors and/or the input, measured by central differences of the f32
/// `block_forward` (summed in f64), with the steps actually applied after f32 rounding. With
/// h = 1e-3 (weights ~0.5, ~2000 entries moved at once) the change is ~0.1; the truncation error,
/// cubic in h, measured 4e-3 at h = 1e-2 and so is ~4e-6 here, and the f32 rounding of `y`
/// (~1e-7 per entry over 84 entries) ~1e-6; the tolerance is `1e-5 + 1e-3·|pred|`.
#[test]
fn block_backward_matches_central_differences() {
    let c = common::tiny_llama_config(2, true);
    let t = common::tiny_llama_tensors(&c, 23);
    let mut rng = claimlab_testkit::rng(29);
    let n = 7;
    let d = c.d_model;
    let x: Vec<f32> = (0..n * d)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let dy: Vec<f64> = (0..n * d)
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let w = block_of(&t, 1);
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let g = block_backward(&c, &w, &x64, &dy).expect("block backward");
    assert_eq!(g.input.len(), n * d);
    let base: [&[f32]; 9] = [
        w.attn_norm,
        w.wq,
        w.wk,
        w.wv,
        w.wo,
        w.ffn_norm,
        w.gate,
        w.up,
        w.down,
    ];
    for (gw, b) in g.weights.iter().zip(base) {
        assert_eq!(gw.len(), b.len());
    }
    let h = 1e-3f64;
    for trial in 0..3 {
        // Perturb: trial 0 the weights only, 1 the input only, 2 both.
        let (pw, px) = (trial != 1, trial != 0);
        let mut plus: Vec<Vec<f32>> = Vec::new();
        let mut minus: Vec<Vec<f32>> = Vec::new();
        let mut pred = 0.0;
        for (gw, b) in g.weights.iter().zip(base) {
            let (mut p, mut m) = (Vec::new(), Vec::new());
            for (&v, gr) in b.iter().zip(gw) {
                let s = if pw && rng.random::<bool>() {
                    h
                } else if pw {
                    -h
                } else {
                    0.0
                };
                let (a, bb) = ((f64::from(v) + s) as f32, (f64::from(v) - s) as f32);
                pred += gr * (f64::from(a) - f64::from(bb));
                p.push(a);
                m.push(bb);
            }
            plus.push(p);
            minus.push(m);
        }
        let (mut xp, mut xm) = (Vec::new(), Vec::new());
        for (&v, gr) in x.iter().zip(&g.input) {
            let s = if px && rng.random::<bool>() {
                h
            } else if px {
                -h
            } else {
                0.0
            };
            let (a, b) = ((f64::from(v) + s) as f32, (f64::from(v) - s) as f32);
            pred += gr * (f64::from(a) - f64::from(b));
            xp.push(a);
            xm.push(b);
        }
        let phi = |ws: &[Vec<f32>], xs: &[f32]| -> f64 {
            let bw = BlockWeights {
                attn_norm: &ws[0],
                wq: &ws[1],
                wk: &ws[2],
                wv: &ws[3],
                wo: &ws[4],
                ffn_norm: &ws[5],
                gate: &ws[6],
                up: &ws[7],
                down: &ws[8],
            };
            let mut y = xs.to_vec();
            block_forward(&c, &bw, &mut y, 0, false).expect("forward");
            y.iter().zip(&dy).map(|(&a, b)| f64::from(a) * b).sum()
        };
        let fd = phi(&plus, &xp) - phi(&minus, &xm);
        assert!(
            (fd - pred).abs() <= 1e-5 + 1e-3 * pred.abs(),
            "trial {trial}: finite difference {fd}, predicted {pred}"
        );
    }
}

#[test]
fn errors_are_reported() {
    let c = common::tiny_llama_config(2, true);
    let t = common::tiny_llama_tensors(&c, 3);
    let toks = tokens(&c, 12, 1);
    let run = |toks: &[u32], window: usize, t: &common::Tensors| {
        fisher_diag_streaming(
            &c,
            toks,
            window,
            |name| Ok(t[name].1.clone()),
            |_| {},
            |_, _| {},
        )
    };
    assert!(matches!(
        run(&toks, 1, &t),
        Err(Error::InvalidParam { name: "window", .. })
    ));
    assert!(matches!(run(&[], 4, &t), Err(Error::Empty { .. })));
    // One token: no window of two.
    assert!(matches!(run(&toks[..1], 4, &t), Err(Error::Empty { .. })));
    let mut bad = toks.clone();
    bad[3] = c.vocab_size as u32;
    assert!(matches!(
        run(&bad, 4, &t),
        Err(Error::TokenOutOfRange { index: 3, .. })
    ));
    let long = tokens(&c, 70, 2);
    assert!(matches!(
        run(&long, 70, &t),
        Err(Error::TooLong { len: 70, max: 64 })
    ));
    let mut short = t.clone();
    short.get_mut("blk.1.attn_q.weight").unwrap().1.pop();
    assert!(matches!(
        run(&toks, 4, &short),
        Err(Error::ShapeMismatch { ref tensor, .. }) if tensor == "blk.1.attn_q.weight"
    ));
    let mut short = t.clone();
    short.get_mut("token_embd.weight").unwrap().1.pop();
    assert!(matches!(
        run(&toks, 4, &short),
        Err(Error::ShapeMismatch { ref tensor, .. }) if tensor == "token_embd.weight"
    ));
    // The loader's own error is passed through.
    let e = fisher_diag_streaming(
        &c,
        &toks,
        4,
        |name| {
            if name == "output_norm.weight" {
                Err(Error::UnsupportedModel {
                    reason: "missing".into(),
                })
            } else {
                Ok(t[name].1.clone())
            }
        },
        |_| {},
        |_, _| {},
    );
    assert!(matches!(e, Err(Error::UnsupportedModel { .. })));

    // block_backward.
    let w = block_of(&t, 0);
    let d = c.d_model;
    let x = vec![0.1f64; 3 * d];
    assert!(matches!(
        block_backward(&c, &w, &[], &[]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        block_backward(&c, &w, &x[..d + 1], &x[..d + 1]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        block_backward(&c, &w, &x, &x[..2 * d]),
        Err(Error::ShapeMismatch { .. })
    ));
    let shortq = vec![0.0f32; 5];
    let mut wb = w;
    wb.wq = &shortq;
    assert!(matches!(
        block_backward(&c, &wb, &x, &x),
        Err(Error::ShapeMismatch { ref tensor, .. }) if tensor == "attn_q"
    ));
    assert!(block_backward(&c, &w, &x, &x).is_ok());
}

/// On the real SmolLM2: two windows of 32 tokens, every tensor against `GradModel`, 1e-6
/// relative (bit-identity reported). Needs the cached model and ~3 GiB; run with
/// `cargo test --release -p claimlab-runtime --test stream_grad -- --ignored`.
#[test]
#[ignore = "real SmolLM2 weights, ~3 GiB and about a minute"]
fn smollm2_streamed_fisher_equals_grad_model() {
    use claimlab_weights::{Cache, Model, Pinned};
    let path = Cache::new(None)
        .expect("claimlab cache")
        .model(Pinned::SmolLm2)
        .expect("fetch SmolLM2");
    let file = Model::open(&path).expect("open SmolLM2");
    let model = LlamaModel::load(&file).expect("load SmolLM2");
    let c = model.config().clone();
    let toks: Vec<u32> = (0..64u32).map(|i| (i * 7919 + 13) % 49_000).collect();
    let Reference {
        f64_sums: want64,
        f32_sums: want32,
        ..
    } = reference(&model, &toks, 32);
    let mut checked = 0usize;
    let mut not_bit_identical = 0usize;
    let mut worst = 0.0f64;
    fisher_diag_streaming(
        &c,
        &toks,
        32,
        |name| Ok(file.tensor_f32(name)?),
        |batch| {
            for f in batch {
                let w64 = &want64[&f.name];
                let scale = w64.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
                for (&a, &b) in f.diag.iter().zip(w64) {
                    let e = (f64::from(a) - b).abs() / (b.abs() + 1e-12 * scale).max(1e-300);
                    worst = worst.max(e);
                }
                not_bit_identical += f
                    .diag
                    .iter()
                    .zip(&want32[&f.name])
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                checked += 1;
            }
        },
        |_, _| {},
    )
    .expect("streamed");
    eprintln!("SmolLM2: {checked} tensors, worst relative error {worst:.2e}, {not_bit_identical} elements not bit-identical");
    assert_eq!(checked, want64.len());
    assert!(worst <= 1e-6, "worst relative error {worst}");
}
