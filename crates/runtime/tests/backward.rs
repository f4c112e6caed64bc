//! The exact gradient of `GradModel` against central finite differences on a tiny random llama
//! (per parameter on a subset, and along random directions), against the runtime's own f32
//! forward pass, and on the real SmolLM2 (last block).
//!
//! Tolerances. The finite differences use the f64 loss `GradModel::loss`, which is the function
//! the gradient differentiates. A perturbed weight is stored in f32, so the step really applied is
//! `δ± = f32(θ ± h·v) − θ`, computed exactly and used in the linear prediction `g·(δ+ − δ−)`.
//! What is left is the central difference's truncation error `≈ h²·|∂³L|/6` (h = 1e-4 relative
//! to weights of size ~0.5, third derivatives of order 10 on this model: ~2e-8) and the f64
//! rounding of the loss divided by the step (`3·1e-16/1e-4 ≈ 3e-12`). The tests allow
//! `1e-6 + 1e-5·|g|`, 50× the truncation estimate, and check that halving the step shrinks the
//! error about fourfold (the signature of truncation, which a wrong gradient would not have).

mod common;

use std::collections::HashMap;

use claimlab_runtime::{
    loss_gradient, Error, FisherConfig, GradModel, GradSpec, Hooks, LlamaConfig, LlamaModel,
    BLOCK_TENSORS,
};
use claimlab_testkit::rand::{Rng, RngExt};

fn cfg(tied: bool) -> LlamaConfig {
    common::tiny_llama_config(2, tied)
}

/// Tensor values by GGUF name (the perturbations below edit them in place).
type Tensors = HashMap<String, Vec<f32>>;

/// The shared tiny model's random tensors, values only.
fn tensors(c: &LlamaConfig, seed: u64) -> Tensors {
    common::tiny_llama_tensors(c, seed)
        .into_iter()
        .map(|(name, (_, v))| (name, v))
        .collect()
}

fn build(c: &LlamaConfig, t: &Tensors) -> LlamaModel {
    LlamaModel::from_tensors(c.clone(), |name| Ok(t[name].clone())).expect("tiny model")
}

fn tokens(c: &LlamaConfig, n: usize, seed: u64) -> Vec<u32> {
    let mut rng = claimlab_testkit::rng(seed);
    (0..n)
        .map(|_| rng.random_range(0..c.vocab_size as u32))
        .collect()
}

/// f64 loss of the model with `t` perturbed by `±h·dir` (dir: tensor name → direction), and the
/// step actually applied after f32 rounding, `(δ+ − δ−)` per tensor.
struct Fd {
    plus: f64,
    minus: f64,
    applied: HashMap<String, Vec<f64>>,
}

/// The model, the parameters differentiated and the loss's inputs.
struct Case<'a> {
    c: &'a LlamaConfig,
    t: &'a Tensors,
    spec: &'a GradSpec,
    toks: &'a [u32],
    targets: Option<&'a [u32]>,
}

fn fd(case: &Case<'_>, dir: &HashMap<String, Vec<f64>>, h: f64) -> Fd {
    let Case {
        c,
        t,
        spec,
        toks,
        targets,
    } = *case;
    let mut tp = t.clone();
    let mut tm = t.clone();
    let mut applied = HashMap::new();
    for (name, v) in dir {
        let base = &t[name];
        let p: Vec<f32> = base
            .iter()
            .zip(v)
            .map(|(&x, &d)| (f64::from(x) + h * d) as f32)
            .collect();
        let m: Vec<f32> = base
            .iter()
            .zip(v)
            .map(|(&x, &d)| (f64::from(x) - h * d) as f32)
            .collect();
        applied.insert(
            name.clone(),
            p.iter()
                .zip(&m)
                .map(|(&a, &b)| f64::from(a) - f64::from(b))
                .collect(),
        );
        tp.insert(name.clone(), p);
        tm.insert(name.clone(), m);
    }
    let loss = |tt: &Tensors| {
        let m = build(c, tt);
        GradModel::new(&m, spec)
            .expect("grad model")
            .loss(toks, targets)
            .expect("loss")
    };
    Fd {
        plus: loss(&tp),
        minus: loss(&tm),
        applied,
    }
}

/// `(finite difference, gradient prediction)`, both divided by `2h`.
fn compare(
    case: &Case<'_>,
    g: &claimlab_runtime::LossGradient,
    dir: &HashMap<String, Vec<f64>>,
    h: f64,
) -> (f64, f64) {
    let f = fd(case, dir, h);
    let pred: f64 = f
        .applied
        .iter()
        .map(|(name, d)| {
            let gr = &g.get(name).expect("tracked tensor").grad;
            gr.iter().zip(d).map(|(a, b)| a * b).sum::<f64>()
        })
        .sum();
    ((f.plus - f.minus) / (2.0 * h), pred / (2.0 * h))
}

const H: f64 = 1e-4;
const ABS_TOL: f64 = 1e-6;
const REL_TOL: f64 = 1e-5;

#[test]
fn f64_loss_matches_runtime_forward() {
    for tied in [true, false] {
        let c = cfg(tied);
        let t = tensors(&c, 11);
        let m = build(&c, &t);
        let toks = tokens(&c, 9, 12);
        let out = m.forward(&toks, &Hooks::none()).expect("forward");
        let want: f64 = (0..toks.len() - 1)
            .map(|i| {
                let row: Vec<f64> = out.row(i).iter().map(|&x| f64::from(x)).collect();
                let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = row.iter().map(|v| (v - mx).exp()).sum();
                mx + z.ln() - row[toks[i + 1] as usize]
            })
            .sum::<f64>()
            / (toks.len() - 1) as f64;
        for spec in [
            GradSpec::all(2),
            GradSpec::blocks([1]),
            GradSpec::blocks([0]),
        ] {
            let g = GradModel::new(&m, &spec).expect("grad model");
            let got = g.loss(&toks, None).expect("loss");
            let lg = g.loss_gradient(&toks, None).expect("gradient");
            assert!(
                (got - want).abs() < 1e-5 * want.abs(),
                "tied {tied}: f64 loss {got} vs runtime {want}"
            );
            assert!((lg.mean_nll - got).abs() < 1e-12);
        }
    }
}

#[test]
fn gradient_matches_central_differences_per_parameter() {
    for tied in [true, false] {
        let c = cfg(tied);
        let t = tensors(&c, 21);
        let m = build(&c, &t);
        let toks = tokens(&c, 10, 22);
        let spec = GradSpec::all(c.n_layers);
        let g = loss_gradient(&m, &toks, None, &spec).expect("gradient");
        let mut rng = claimlab_testkit::rng(23);
        let mut checked = 0;
        let mut worst = 0.0f64;
        for pg in &g.grads {
            assert_eq!(pg.grad.len(), t[&pg.name].len(), "{}", pg.name);
            // Three random entries of every tensor, plus the largest gradient entry.
            let mut idx: Vec<usize> = (0..3).map(|_| rng.random_range(0..pg.grad.len())).collect();
            let amax = (0..pg.grad.len())
                .max_by(|&a, &b| pg.grad[a].abs().total_cmp(&pg.grad[b].abs()))
                .expect("non-empty");
            idx.push(amax);
            for i in idx {
                let mut e = vec![0.0; pg.grad.len()];
                e[i] = 1.0;
                let dir = HashMap::from([(pg.name.clone(), e)]);
                let case = Case {
                    c: &c,
                    t: &t,
                    spec: &spec,
                    toks: &toks,
                    targets: None,
                };
                let (num, pred) = compare(&case, &g, &dir, H);
                let err = (num - pred).abs();
                worst = worst.max(err / (ABS_TOL + REL_TOL * pred.abs()));
                assert!(
                    err <= ABS_TOL + REL_TOL * pred.abs(),
                    "tied {tied} {}[{i}]: finite difference {num:.9e}, gradient {pred:.9e}",
                    pg.name
                );
                checked += 1;
            }
        }
        assert!(checked >= 4 * 20, "checked {checked} entries");
        eprintln!("tied {tied}: worst error / tolerance = {worst:.3}");
        // The largest entries are not all zero: the test compares something.
        assert!(g.norm_sq() > 1e-4);
    }
}

fn random_direction(
    t: &Tensors,
    names: impl Iterator<Item = String>,
    rng: &mut impl Rng,
) -> HashMap<String, Vec<f64>> {
    names
        .map(|n| {
            let v: Vec<f64> = (0..t[&n].len())
                .map(|_| rng.random::<f64>() * 2.0 - 1.0)
                .collect();
            (n, v)
        })
        .collect()
}

#[test]
fn directional_derivatives_match_and_error_is_truncation() {
    let c = cfg(true);
    let t = tensors(&c, 31);
    let m = build(&c, &t);
    let toks = tokens(&c, 12, 32);
    let ys = tokens(&c, 12, 33);
    let mut rng = claimlab_testkit::rng(34);
    let specs = [
        GradSpec::all(c.n_layers),
        GradSpec {
            blocks: vec![1],
            output_norm: true,
            embedding: false,
        },
        GradSpec::blocks([0]),
    ];
    for spec in &specs {
        for targets in [None, Some(ys.as_slice())] {
            let g = loss_gradient(&m, &toks, targets, spec).expect("gradient");
            for _ in 0..3 {
                let dir = random_direction(&t, g.grads.iter().map(|p| p.name.clone()), &mut rng);
                let case = Case {
                    c: &c,
                    t: &t,
                    spec,
                    toks: &toks,
                    targets,
                };
                let (n1, p1) = compare(&case, &g, &dir, H);
                let e1 = (n1 - p1).abs();
                assert!(
                    e1 <= ABS_TOL + REL_TOL * p1.abs(),
                    "{spec:?} targets {}: directional fd {n1:.9e}, gradient {p1:.9e}",
                    targets.is_some()
                );
                // A larger step: the error must grow like h² (≈ 16× for 4h), i.e. it is the
                // difference quotient's truncation, not a gradient error.
                let (n4, p4) = compare(&case, &g, &dir, 4.0 * H);
                let e4 = (n4 - p4).abs();
                assert!(
                    e4 > 4.0 * e1 || e4 < 1e-10,
                    "{spec:?}: error {e1:.3e} at h, {e4:.3e} at 4h: not O(h²)"
                );
            }
        }
    }
}

/// The f64 gradient against a central difference of the runtime's own f32 loss (the model's
/// forward pass, an independent implementation). Every weight moves by up to 1e-3 (the direction
/// has about 3,000 entries, so the step has norm ~0.03): the loss changes by ~1e-2, its f32
/// rounding (~1e-6 absolute) contributes ~1e-4 relative and the O(h²) truncation less; the
/// tolerance is 2e-3 relative.
#[test]
fn gradient_matches_runtime_f32_loss() {
    let c = cfg(true);
    let t = tensors(&c, 41);
    let m = build(&c, &t);
    let toks = tokens(&c, 12, 42);
    let spec = GradSpec::all(c.n_layers);
    let g = loss_gradient(&m, &toks, None, &spec).expect("gradient");
    let runtime_loss = |tt: &Tensors| -> f64 {
        let mm = build(&c, tt);
        let out = mm.forward(&toks, &Hooks::none()).expect("forward");
        (0..toks.len() - 1)
            .map(|i| {
                let row: Vec<f64> = out.row(i).iter().map(|&x| f64::from(x)).collect();
                let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = row.iter().map(|v| (v - mx).exp()).sum();
                mx + z.ln() - row[toks[i + 1] as usize]
            })
            .sum::<f64>()
            / (toks.len() - 1) as f64
    };
    let mut rng = claimlab_testkit::rng(43);
    let h = 1e-3;
    for _ in 0..4 {
        let dir = random_direction(&t, g.grads.iter().map(|p| p.name.clone()), &mut rng);
        let (mut tp, mut tm) = (t.clone(), t.clone());
        let mut pred = 0.0;
        for (name, v) in &dir {
            let p: Vec<f32> = t[name]
                .iter()
                .zip(v)
                .map(|(&x, &d)| (f64::from(x) + h * d) as f32)
                .collect();
            let mm: Vec<f32> = t[name]
                .iter()
                .zip(v)
                .map(|(&x, &d)| (f64::from(x) - h * d) as f32)
                .collect();
            let gr = &g.get(name).expect("tracked").grad;
            pred += gr
                .iter()
                .zip(p.iter().zip(&mm))
                .map(|(a, (&u, &w))| a * (f64::from(u) - f64::from(w)))
                .sum::<f64>();
            tp.insert(name.clone(), p);
            tm.insert(name.clone(), mm);
        }
        let num = runtime_loss(&tp) - runtime_loss(&tm);
        eprintln!(
            "runtime f32 difference {num:.6e}, gradient {pred:.6e}, relative {:.1e}",
            ((num - pred) / pred).abs()
        );
        assert!(
            (num - pred).abs() <= 2e-3 * pred.abs() + 1e-6,
            "runtime f32 difference {num:.6e}, gradient {pred:.6e}"
        );
    }
}

/// Gradients of a block are the same whether the backward pass starts at that block (input from
/// the f32 forward pass below it) or runs through every block.
#[test]
fn partial_specs_agree_with_full() {
    let c = cfg(true);
    let t = tensors(&c, 51);
    let m = build(&c, &t);
    let toks = tokens(&c, 11, 52);
    let full = loss_gradient(&m, &toks, None, &GradSpec::all(2)).expect("full");
    let last = loss_gradient(
        &m,
        &toks,
        None,
        &GradSpec {
            blocks: vec![1],
            output_norm: true,
            embedding: false,
        },
    )
    .expect("last");
    assert_eq!(last.grads.len(), 10);
    for (i, pg) in last.grads.iter().enumerate() {
        if i < 9 {
            assert_eq!(pg.name, format!("blk.1.{}.weight", BLOCK_TENSORS[i]));
        }
        let f = full.get(&pg.name).expect("in full");
        for (a, b) in pg.grad.iter().zip(&f.grad) {
            // Input residual from f32 here, from f64 in the full run: f32 rounding differences.
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{}", pg.name);
        }
    }
}

#[test]
fn errors_are_reported() {
    let c = cfg(true);
    let t = tensors(&c, 61);
    let m = build(&c, &t);
    assert!(matches!(
        GradModel::new(&m, &GradSpec::blocks([2])),
        Err(Error::InvalidParam { name: "blocks", .. })
    ));
    assert!(matches!(
        GradModel::new(&m, &GradSpec::default()),
        Err(Error::InvalidParam { name: "spec", .. })
    ));
    let g = GradModel::new(&m, &GradSpec::blocks([1])).expect("grad model");
    assert!(matches!(
        g.loss_gradient(&[3], None),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        g.loss_gradient(&[], None),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        g.loss_gradient(&[1, 2, 3], Some(&[1, 2])),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        g.loss_gradient(&[1, 2, 3], Some(&[1, 2, 30])),
        Err(Error::TokenOutOfRange { index: 2, .. })
    ));
    assert!(matches!(
        g.loss_gradient(&[1, 99], None),
        Err(Error::TokenOutOfRange { index: 1, .. })
    ));
}

/// The exact Fisher trace against the Hutchinson estimate of `fisher_trace` (same sampled labels):
/// over 10 seeds × 2 blocks, the estimate must fall within 3 reported standard errors at least 18
/// times of 20 (a normal estimate would miss about 0.3% of the time; the standard error of a
/// mean of 8 skewed squares is itself noisy, hence the slack), and the mean ratio must be near 1.
#[test]
fn exact_fisher_trace_agrees_with_hutchinson() {
    let c = cfg(true);
    let t = tensors(&c, 71);
    let m = build(&c, &t);
    let toks = tokens(&c, 10, 72);
    let g = GradModel::new(&m, &GradSpec::blocks(0..2)).expect("grad model");
    let mut inside = 0;
    let mut ratios = Vec::new();
    for seed in 0..10 {
        let cfgf = FisherConfig {
            n_directions: 8,
            rel_step: 1e-3,
            seed,
        };
        let est = claimlab_runtime::fisher_trace(&m, &toks, &cfgf).expect("hutchinson");
        let exact = g.fisher_trace_exact(&toks, &est.sampled).expect("exact");
        for (l, tr) in exact {
            let e = &est.layers[l];
            assert!(tr > 0.0);
            if (e.trace - tr).abs() <= 3.0 * e.std_error {
                inside += 1;
            }
            ratios.push(e.trace / tr);
        }
    }
    let mean_ratio = ratios.iter().sum::<f64>() / ratios.len() as f64;
    eprintln!("inside 3 SE: {inside}/20, mean ratio {mean_ratio:.3}");
    assert!(inside >= 18, "only {inside}/20 within 3 standard errors");
    assert!((mean_ratio - 1.0).abs() < 0.25, "mean ratio {mean_ratio}");
}

/// SmolLM2's last block: the gradient's directional derivative along random ±1 directions
/// against a central difference of the runtime's real f32 loss (the weights substituted through
/// `Overrides`). Step: 1e-3 × the block's weight RMS per entry (norm ~0.1 over its 3.5M entries);
/// the loss moves by 1e-4 to 1e-2 and its f32 rounding (~1e-6) limits the agreement; the
/// tolerance is 2e-2 relative plus 2e-5 absolute. About 10 s in release (model load included).
#[test]
fn smollm2_last_block_directional_derivative() {
    use claimlab_runtime::{Overrides, TextTokenizer};
    use claimlab_weights::{Cache, Model, Pinned};
    let path = Cache::new(None)
        .expect("claimlab cache")
        .model(Pinned::SmolLm2)
        .expect("fetch SmolLM2");
    let file = Model::open(&path).expect("open SmolLM2");
    let model = LlamaModel::load(&file).expect("load SmolLM2");
    let tok = TextTokenizer::for_model(&file).expect("tokenizer");
    let toks = tok
        .encode("The jury said it did find that many of Georgia's registration and election laws are outmoded.")
        .expect("encode");
    let last = model.config().n_layers - 1;
    let spec = GradSpec::blocks([last]);
    let gm = GradModel::new(&model, &spec).expect("grad model");
    let g = gm.loss_gradient(&toks, None).expect("gradient");
    assert_eq!(g.grads.len(), 9);
    let real_loss = |ov: &Overrides| -> f64 {
        let out = model
            .forward(&toks, &Hooks::with_overrides(ov.clone()))
            .expect("forward");
        (0..toks.len() - 1)
            .map(|i| {
                let row: Vec<f64> = out.row(i).iter().map(|&x| f64::from(x)).collect();
                let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = row.iter().map(|v| (v - mx).exp()).sum();
                mx + z.ln() - row[toks[i + 1] as usize]
            })
            .sum::<f64>()
            / (toks.len() - 1) as f64
    };
    let base = real_loss(&Overrides::new());
    assert!(
        (base - g.mean_nll).abs() < 1e-4 * base,
        "f64 loss {} vs runtime {base}",
        g.mean_nll
    );
    let mut rng = claimlab_testkit::rng(81);
    // A random ±1 direction, then the gradient's sign pattern (a large, certain change).
    for along_gradient in [false, true] {
        let (mut plus, mut minus) = (Overrides::new(), Overrides::new());
        let mut pred = 0.0;
        for pg in &g.grads {
            let (_, w) = model.param(&pg.name).expect("tensor");
            let rms =
                (w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            let h = 1e-3 * rms;
            let mut p = Vec::with_capacity(w.len());
            let mut m = Vec::with_capacity(w.len());
            for (&x, gr) in w.iter().zip(&pg.grad) {
                let up = if along_gradient {
                    *gr > 0.0
                } else {
                    rng.random::<bool>()
                };
                let s = if up { h } else { -h };
                let (a, b) = ((f64::from(x) + s) as f32, (f64::from(x) - s) as f32);
                pred += gr * (f64::from(a) - f64::from(b));
                p.push(a);
                m.push(b);
            }
            plus.insert(pg.name.clone(), p);
            minus.insert(pg.name.clone(), m);
        }
        let num = real_loss(&plus) - real_loss(&minus);
        eprintln!(
            "SmolLM2 last block: real-loss difference {num:.6e}, gradient {pred:.6e}, relative {:.1e}",
            ((num - pred) / pred).abs()
        );
        assert!(pred.abs() > 1e-4, "the step moves the loss");
        assert!(
            (num - pred).abs() <= 2e-2 * pred.abs() + 2e-5,
            "real-loss difference {num:.6e}, gradient {pred:.6e}"
        );
    }
}

/// `GradModel::new_f32_head` (output projection in f32) against the f64 `GradModel::new`: same
/// loss to f32 rounding (1e-5 relative) and the same gradient up to it (worst entry within 1e-4
/// of the largest, cosine within 1e-8 of 1), tied and untied heads, with and without the
/// embedding tracked. A wrong head product (transposed, wrong rows) misses these by far.
#[test]
fn f32_head_matches_f64_head() {
    for tied in [true, false] {
        let c = cfg(tied);
        let t = tensors(&c, 23);
        let m = build(&c, &t);
        let toks = tokens(&c, 11, 24);
        let mut with_norm = GradSpec::blocks([1]);
        with_norm.output_norm = true;
        for spec in [GradSpec::all(2), with_norm] {
            let g64 = GradModel::new(&m, &spec)
                .expect("grad model")
                .loss_gradient(&toks, None)
                .expect("f64 gradient");
            let g32m = GradModel::new_f32_head(&m, &spec).expect("f32-head model");
            let g32 = g32m.loss_gradient(&toks, None).expect("f32-head gradient");
            assert!(
                (g32.mean_nll - g64.mean_nll).abs() < 1e-5 * g64.mean_nll.abs(),
                "tied {tied}: loss {} vs {}",
                g32.mean_nll,
                g64.mean_nll
            );
            let l32 = g32m.loss(&toks, None).expect("loss");
            assert!((l32 - g32.mean_nll).abs() < 1e-12);
            let (a, b) = (g64.flat(), g32.flat());
            assert_eq!(a.len(), b.len());
            let big = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(&b)
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let cos = dot / (g64.norm_sq() * g32.norm_sq()).sqrt();
            assert!(
                big > 0.0 && worst <= 1e-4 * big,
                "tied {tied}: {worst:e} vs {big:e}"
            );
            assert!((1.0 - cos).abs() < 1e-8, "tied {tied}: cosine {cos}");
        }
    }
}
