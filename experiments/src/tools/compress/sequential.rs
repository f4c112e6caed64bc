//! Layer-streaming calibration and sequential GPTQ for llama decoders.
//!
//! Both push the calibration tokens' hidden states through the model one decoder block at a time
//! ([`claimlab_runtime::block_forward`]), reading only that block's weights from the memory map,
//! so memory stays near one block's weights plus the activations of the calibration tokens
//! (`n · d_model` floats, and one window's intermediate activations) plus the Gram matrices kept.
//!
//! * [`calibrate_streaming`]: the clean model's `XᵀX` per site (the statistics of
//!   [`super::calib::calibrate`], without a loaded runtime or captured attention maps).
//! * [`sequential_gptq`]: GPTQ as its authors run it: the inputs of block `l`'s projections come
//!   from the blocks `< l` already quantised (and from the quantised token embedding), so each
//!   block's error feedback also corrects what the earlier blocks' quantisation did to its
//!   inputs. Within a block the seven matrices share the block's inputs computed with its clean
//!   weights (GPTQ's default, not its "true sequential" option); the block is then re-run with its
//!   quantised weights to produce the next block's inputs.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{block_forward, final_norm, BlockInputs, BlockWeights, LlamaConfig};
use claimlab_weights::{dequantize, quantize, DType, Model, Role};
use faer::Mat;
use rayon::prelude::*;

use super::calib::{add_gram, block_names, Calib, Keep, Site, KEEP_ALL};
use super::gptq::{self, GptqReport};

/// Names of a llama model's tensors by (role, layer).
type Names = HashMap<(Role, Option<usize>), String>;

/// One block's weights as owned f32 (dequantised from the file, or quantised copies).
struct BlockF32 {
    /// In the order of [`BLOCK_ROLES`].
    w: Vec<Vec<f32>>,
}

/// The nine block tensors, in the order [`BlockF32`] keeps them.
const BLOCK_ROLES: [Role; 9] = [
    Role::AttnNorm,
    Role::Query,
    Role::Key,
    Role::Value,
    Role::AttnOutput,
    Role::MlpNorm,
    Role::MlpGate,
    Role::MlpUp,
    Role::MlpDown,
];

fn name_of(names: &Names, role: Role, layer: Option<usize>) -> Result<&str> {
    names
        .get(&(role, layer))
        .map(String::as_str)
        .with_context(|| format!("no {role:?} weight for layer {layer:?}"))
}

impl BlockF32 {
    fn load(model: &Model, names: &Names, l: usize) -> Result<Self> {
        let w = BLOCK_ROLES
            .iter()
            .map(|&r| Ok(model.tensor_f32(name_of(names, r, Some(l))?)?))
            .collect::<Result<_>>()?;
        Ok(BlockF32 { w })
    }

    fn view(&self) -> BlockWeights<'_> {
        BlockWeights {
            attn_norm: &self.w[0],
            wq: &self.w[1],
            wk: &self.w[2],
            wv: &self.w[3],
            wo: &self.w[4],
            ffn_norm: &self.w[5],
            gate: &self.w[6],
            up: &self.w[7],
            down: &self.w[8],
        }
    }
}

/// The calibration site of each block role (norms have none).
fn block_site(role: Role, l: usize) -> Option<Site> {
    super::calib::site_of(role, Some(l))
}

fn config_of(model: &Model) -> Result<LlamaConfig> {
    LlamaConfig::from_model_config(model.config()).context("reading the llama configuration")
}

/// The residual stream entering block 0 for each window: rows of `table` (`[vocab, d]`).
fn embed(tokens: &[u32], window: usize, table: &[f32], d: usize) -> Result<Vec<Vec<f32>>> {
    tokens
        .chunks(window)
        .map(|win| {
            let mut x = Vec::with_capacity(win.len() * d);
            for &t in win {
                let at = t as usize * d;
                let row = table
                    .get(at..at + d)
                    .with_context(|| format!("token {t} outside the embedding table"))?;
                x.extend_from_slice(row);
            }
            Ok(x)
        })
        .collect()
}

fn add_inputs(gram: &mut HashMap<Site, Mat<f32>>, l: usize, inp: &BlockInputs, cfg: &LlamaConfig) {
    let n = inp.attn_in.len() / cfg.d_model;
    add_gram(gram, Site::AttnIn(l), &inp.attn_in, n, cfg.d_model);
    add_gram(gram, Site::OIn(l), &inp.o_in, n, cfg.n_heads * cfg.head_dim);
    add_gram(gram, Site::FfnIn(l), &inp.ffn_in, n, cfg.d_model);
    add_gram(gram, Site::DownIn(l), &inp.down_in, n, cfg.d_ff);
}

fn check(tokens: &[u32], window: usize) -> Result<()> {
    if tokens.is_empty() || window == 0 {
        bail!("no calibration tokens");
    }
    Ok(())
}

/// The clean model's Gram matrices `XᵀX` of every projection input over `tokens` (windows of
/// `window` tokens, each its own causal sequence), computed block by block from the file; every
/// site's full matrix is kept ([`calibrate_streaming_keeping`] keeps fewer).
///
/// # Errors
/// A model that is not a llama decoder, a missing tensor, runtime errors.
pub fn calibrate_streaming(
    model: &Model,
    tokens: &[u32],
    window: usize,
    progress: impl FnMut(),
) -> Result<Calib> {
    calibrate_streaming_keeping(model, tokens, window, KEEP_ALL, progress)
}

/// [`calibrate_streaming`] keeping the full Gram matrix only of the sites `keep` selects, and
/// the diagonal of every site's (the same values as the full matrix's diagonal). Each block's
/// four matrices are complete when the block is done, so at most one block's full matrices are
/// held beyond the kept ones.
///
/// # Errors
/// As [`calibrate_streaming`].
///
/// # Complexity
/// Memory: the calibration activations (`n · d_model` f32), one block's weights and its four
/// Gram matrices, the kept matrices, every site's diagonal.
pub fn calibrate_streaming_keeping(
    model: &Model,
    tokens: &[u32],
    window: usize,
    keep: Keep<'_>,
    mut progress: impl FnMut(),
) -> Result<Calib> {
    check(tokens, window)?;
    let cfg = config_of(model)?;
    let names = block_names(model);
    let d = cfg.d_model;
    let mut xs = {
        let table = model.tensor_f32(name_of(&names, Role::TokenEmbedding, None)?)?;
        embed(tokens, window, &table, d)?
    };
    let mut cal = Calib::keeping(tokens.len(), HashMap::new(), keep, 0.0);
    for l in 0..cfg.n_layers {
        let b = BlockF32::load(model, &names, l)?;
        let mut gram = HashMap::new();
        for x in &mut xs {
            let inp =
                block_forward(&cfg, &b.view(), x, 0, true)?.context("block inputs not captured")?;
            add_inputs(&mut gram, l, &inp, &cfg);
        }
        cal.absorb(gram, keep);
        progress();
    }
    let norm = model.tensor_f32(name_of(&names, Role::FinalNorm, None)?)?;
    let mut gram = HashMap::new();
    for x in &xs {
        let h = final_norm(&cfg, &norm, x)?;
        add_gram(&mut gram, Site::HeadIn, &h, x.len() / d, d);
    }
    cal.absorb(gram, keep);
    Ok(cal)
}

/// One tensor written by [`sequential_gptq`].
#[derive(Debug)]
pub struct SeqTensor {
    /// Tensor name.
    pub name: String,
    /// Block type.
    pub dtype: DType,
    /// GGML bytes.
    pub bytes: Vec<u8>,
    /// GPTQ beside rounding on the sequential statistics (`None`: rounded).
    pub report: Option<GptqReport>,
}

/// `XᵀX / n` as f64.
fn hessian(g: &Mat<f32>, n: usize) -> Mat<f64> {
    #[allow(clippy::cast_precision_loss)]
    let inv = 1.0 / n as f64;
    Mat::from_fn(g.nrows(), g.ncols(), |i, j| f64::from(g[(i, j)]) * inv)
}

/// Quantises one matrix to `dt`: GPTQ on `h` when it is given and GPTQ writes `dt`, else
/// rounding. Returns the bytes, their dequantised values and GPTQ's report.
fn quantise_one(
    name: &str,
    dt: DType,
    w: &[f32],
    cols: usize,
    h: Option<&Mat<f64>>,
    damp: f64,
) -> Result<(Vec<u8>, Vec<f32>, Option<GptqReport>)> {
    let (bytes, report) = match h {
        Some(h) if gptq::supports(dt) => {
            let (b, r) = gptq::gptq_with_report(dt, w, w.len() / cols, cols, h.as_ref(), damp)
                .with_context(|| format!("{name}: GPTQ"))?;
            (b, Some(r))
        }
        _ => (
            quantize(dt, w).with_context(|| format!("quantising {name} to {dt}"))?,
            None,
        ),
    };
    let back = dequantize(dt, &bytes, w.len())?;
    Ok((bytes, back, report))
}

/// Sequential GPTQ of a llama decoder onto the block types `choice` (tensor name → type; every
/// 2-D weight must be named): see the module doc. The token embedding (and a tied output head) is
/// rounded; an untied output head gets GPTQ on the final hidden states of the quantised model.
///
/// # Errors
/// A tensor missing from `choice` or from the file, non-finite weights, a Hessian that is not
/// positive definite after damping, runtime errors.
///
/// # Complexity
/// Two block passes over the calibration tokens per block (one capturing its inputs, one with
/// its quantised weights), plus GPTQ's `O(rows·cols²)` per matrix. Memory: one block's clean and
/// quantised weights, its four Gram matrices, the calibration activations.
pub fn sequential_gptq(
    model: &Model,
    choice: &HashMap<String, DType>,
    tokens: &[u32],
    window: usize,
    damp: f64,
    progress: impl FnMut(),
) -> Result<Vec<SeqTensor>> {
    sequential_impl(
        model,
        choice,
        tokens,
        window,
        damp,
        usize::MAX,
        progress,
        |_, _| {},
    )
}

/// [`sequential_gptq`] over the first `max_layers` blocks only (then no output head), calling
/// `inspect(l, H)` with each block's `XᵀX/n` per site (for tests).
#[allow(clippy::too_many_arguments)]
fn sequential_impl(
    model: &Model,
    choice: &HashMap<String, DType>,
    tokens: &[u32],
    window: usize,
    damp: f64,
    max_layers: usize,
    mut progress: impl FnMut(),
    mut inspect: impl FnMut(usize, &HashMap<Site, Mat<f64>>),
) -> Result<Vec<SeqTensor>> {
    check(tokens, window)?;
    let mut cfg = config_of(model)?;
    let full = cfg.n_layers >= max_layers;
    cfg.n_layers = cfg.n_layers.min(max_layers);
    let names = block_names(model);
    let d = cfg.d_model;
    let pick = |name: &str| -> Result<DType> {
        choice
            .get(name)
            .copied()
            .with_context(|| format!("no block type chosen for {name}"))
    };
    let mut out = Vec::new();
    // The token embedding, rounded; the calibration inputs come from its quantised rows.
    let emb_name = name_of(&names, Role::TokenEmbedding, None)?.to_string();
    let mut xs = {
        let w = model.tensor_f32(&emb_name)?;
        let dt = pick(&emb_name)?;
        let (bytes, back, _) = quantise_one(&emb_name, dt, &w, d, None, damp)?;
        out.push(SeqTensor {
            name: emb_name.clone(),
            dtype: dt,
            bytes,
            report: None,
        });
        embed(tokens, window, &back, d)?
    };
    for l in 0..cfg.n_layers {
        let clean = BlockF32::load(model, &names, l)?;
        let mut gram = HashMap::new();
        for x in &xs {
            let mut y = x.clone();
            let inp = block_forward(&cfg, &clean.view(), &mut y, 0, true)?
                .context("block inputs not captured")?;
            add_inputs(&mut gram, l, &inp, &cfg);
        }
        let hs: HashMap<Site, Mat<f64>> = gram
            .iter()
            .map(|(s, g)| (*s, hessian(g, tokens.len())))
            .collect();
        drop(gram);
        inspect(l, &hs);
        let done: Vec<(usize, SeqTensor, Vec<f32>)> = BLOCK_ROLES
            .par_iter()
            .enumerate()
            .filter_map(|(i, &role)| block_site(role, l).map(|s| (i, role, s)))
            .map(|(i, role, s)| {
                let name = name_of(&names, role, Some(l))?;
                let dt = pick(name)?;
                let cols = *model
                    .tensor_info(name)?
                    .shape
                    .last()
                    .context("tensor without shape")?;
                let (bytes, back, report) =
                    quantise_one(name, dt, &clean.w[i], cols, hs.get(&s), damp)?;
                Ok((
                    i,
                    SeqTensor {
                        name: name.to_string(),
                        dtype: dt,
                        bytes,
                        report,
                    },
                    back,
                ))
            })
            .collect::<Result<_>>()?;
        drop(hs);
        let mut quant = clean;
        for (i, t, back) in done {
            quant.w[i] = back;
            out.push(t);
        }
        for x in &mut xs {
            block_forward(&cfg, &quant.view(), x, 0, false)?;
        }
        progress();
    }
    // An untied output head: GPTQ on the quantised model's final hidden states.
    if let Some(head) = names.get(&(Role::LmHead, None)) {
        if head != &emb_name && full {
            let norm = model.tensor_f32(name_of(&names, Role::FinalNorm, None)?)?;
            let mut g = Mat::<f32>::zeros(d, d);
            let mut gm = HashMap::new();
            for x in &xs {
                let h = final_norm(&cfg, &norm, x)?;
                add_gram(&mut gm, Site::HeadIn, &h, x.len() / d, d);
            }
            if let Some(v) = gm.remove(&Site::HeadIn) {
                g = v;
            }
            let w = model.tensor_f32(head)?;
            let dt = pick(head)?;
            let h = hessian(&g, tokens.len());
            let (bytes, _, report) = quantise_one(head, dt, &w, d, Some(&h), damp)?;
            out.push(SeqTensor {
                name: head.clone(),
                dtype: dt,
                bytes,
                report,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::needless_range_loop
)]
mod tests {
    //! On the pinned SmolLM2 (a few tokens, the first blocks): the streamed clean statistics equal
    //! the hooked forward pass of the loaded runtime, and the sequential statistics of block `l`
    //! equal those of a runtime whose blocks `< l` and embedding hold the quantised weights.
    use super::*;
    use crate::tools::compress::calib::calibrate;
    use claimlab_runtime::LlamaModel;
    use claimlab_weights::Pinned;

    fn smol() -> Model {
        crate::tools::open_model(None, Pinned::SmolLm2, None).expect("pinned SmolLM2")
    }

    fn tokens() -> Vec<u32> {
        (0..24u32).map(|i| (i * 7919 + 13) % 40000 + 100).collect()
    }

    fn close(a: &Mat<f64>, b: &Mat<f64>, what: &str) {
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for i in 0..a.nrows() {
            for j in 0..a.ncols() {
                num += (a[(i, j)] - b[(i, j)]).powi(2);
                den += b[(i, j)].powi(2);
            }
        }
        let rel = (num / den).sqrt();
        assert!(rel < 1e-4, "{what}: relative difference {rel:.3e}");
    }

    #[test]
    fn streamed_clean_gram_equals_the_hooked_forward() {
        let m = smol();
        let rt = LlamaModel::load(&m).unwrap();
        let t = tokens();
        let hooked = calibrate(&m, &rt, &t, 12, || {}).unwrap();
        let streamed = calibrate_streaming(&m, &t, 12, || {}).unwrap();
        assert_eq!(hooked.gram.len(), streamed.gram.len());
        for s in hooked.gram.keys() {
            close(
                &streamed.hessian(*s).unwrap(),
                &hooked.hessian(*s).unwrap(),
                &format!("{s:?}"),
            );
        }
    }

    /// Keeping a few sites' full matrices changes no value: the kept matrices and every
    /// diagonal are bit-identical to the keep-all run's, and the dropped ones say so.
    #[test]
    fn keeping_fewer_grams_keeps_the_same_values() {
        let m = smol();
        let t = tokens();
        let all = calibrate_streaming(&m, &t, 12, || {}).unwrap();
        let keep = |s: Site| s == Site::DownIn(2) || s == Site::HeadIn;
        let few = calibrate_streaming_keeping(&m, &t, 12, &keep, || {}).unwrap();
        assert_eq!(few.gram.len(), 2);
        assert_eq!(few.gram_diag.len(), all.gram.len());
        for s in all.gram.keys() {
            let (a, b) = (all.diag(*s).unwrap(), few.diag(*s).unwrap());
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{s:?}"
            );
            if keep(*s) {
                let (a, b) = (all.hessian(*s).unwrap(), few.hessian(*s).unwrap());
                assert!((0..a.nrows())
                    .all(|i| (0..a.ncols()).all(|j| a[(i, j)].to_bits() == b[(i, j)].to_bits())));
            } else {
                let e = few.hessian(*s).unwrap_err().to_string();
                assert!(e.contains("not kept"), "{e}");
            }
        }
    }

    #[test]
    fn sequential_gram_equals_a_runtime_with_the_quantised_prefix() {
        let m = smol();
        let t = tokens();
        let choice: HashMap<String, DType> = super::super::targets_of(&m)
            .iter()
            .map(|ti| (ti.name.clone(), DType::Q4_0))
            .collect();
        let layers = 3;
        let mut seen: Vec<HashMap<Site, Mat<f64>>> = Vec::new();
        let out = sequential_impl(
            &m,
            &choice,
            &t,
            12,
            0.01,
            layers,
            || {},
            |_, h| {
                seen.push(h.clone());
            },
        )
        .unwrap();
        // Embedding plus seven matrices per block, GPTQ on the matrices only.
        assert_eq!(out.len(), 1 + 7 * layers);
        assert!(out[0].report.is_none() && out[1..].iter().all(|s| s.report.is_some()));
        let quant: HashMap<String, Vec<f32>> = out
            .iter()
            .map(|s| {
                let n = m.tensor_info(&s.name).unwrap().n_elems() as usize;
                (s.name.clone(), dequantize(s.dtype, &s.bytes, n).unwrap())
            })
            .collect();
        let l = layers - 1;
        let cfg = LlamaConfig::from_model_config(m.config()).unwrap();
        let own = format!("blk.{l}.");
        let rt = LlamaModel::from_tensors(cfg, |name| {
            Ok(match quant.get(name) {
                Some(q) if !name.starts_with(&own) => q.clone(),
                _ => m.tensor_f32(name)?,
            })
        })
        .unwrap();
        let direct = calibrate(&m, &rt, &t, 12, || {}).unwrap();
        for s in [
            Site::AttnIn(l),
            Site::OIn(l),
            Site::FfnIn(l),
            Site::DownIn(l),
        ] {
            close(&seen[l][&s], &direct.hessian(s).unwrap(), &format!("{s:?}"));
        }
        // And they differ from the clean model's (the prefix is really quantised).
        let clean = calibrate_streaming(&m, &t, 12, || {}).unwrap();
        let c = clean.hessian(Site::DownIn(l)).unwrap();
        let q = &seen[l][&Site::DownIn(l)];
        let diff: f64 = (0..c.nrows()).map(|i| (c[(i, i)] - q[(i, i)]).abs()).sum();
        assert!(diff > 0.0);
    }
}
