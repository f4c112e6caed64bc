//! `ccd-3.1`: "with symmetry group G, the compression ratio is r >= |G| / |Orb(G)|" (Burnside).
//!
//! Measured: the function-preserving group of MiniLM and SmolLM2 read from their configurations
//! (claimlab-orbits), `log2 |G|`, the stabiliser of the real (dequantised) weights in the MLP
//! unit permutations (exactly repeated units, up to sign where the group has signs), the bits a
//! canonical ordering saves, and the real ratio `B / (B - saved)` against the claimed bound. A
//! brute-force check of the proof's step `|Orb| <= max_g |Fix(g)|` on small actions, and a check
//! that MiniLM canonicalised (MLP units sorted) embeds Brown sentences as before.

use std::fmt::Write as _;

use anyhow::{bail, Context as _, Result};
use claimlab_orbits::num_bigint::BigUint;
use claimlab_orbits::{
    brute_force_colouring_orbits, burnside_count, canonical_savings, canonical_unit_permutation,
    factorial, log2_big, permute_cols, permute_rows, unit_stabiliser_by_key,
    unit_stabiliser_of_rows, weight_space_symmetry, Perm, PermGroup, SymmetryReport,
};
use claimlab_runtime::{BertModel, Hooks, LlamaModel, Overrides, TextTokenizer};
use claimlab_weights::{Architecture, Model, Param, Role, TensorInfo};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde_json::json;

use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::tools::orbits::{network_shape, report_json};
use crate::Ctx;

/// Sentences for the function check of the canonical MiniLM (quick: fewer).
const CHECK_SENTENCES: usize = 20;
/// Sentences in `--quick` mode.
const CHECK_SENTENCES_QUICK: usize = 6;
/// Largest relative difference of outputs that counts as "the same function".
pub(crate) const FUNCTION_TOL_REL: f64 = 1e-5;
/// Degrees of the exhaustive part of the Burnside check (all 1- and 2-generated subgroups).
const SMALL_DEGREES: [usize; 3] = [2, 3, 4];
/// Degrees of the sampled part (random 1- and 2-generated subgroups of order at most 24).
const SAMPLED_DEGREES: [usize; 2] = [5, 6];
/// Largest group order in the small-action check.
const SMALL_ORDER_MAX: usize = 24;
/// Random subgroups per sampled degree (and of S_8), full mode.
const RANDOM_SUBGROUPS: usize = 200;
/// Random subgroups per sampled degree, `--quick`.
const RANDOM_SUBGROUPS_QUICK: usize = 40;
/// Colours of the colourings the groups act on.
const COLOURS: u32 = 2;

/// The MLP stabiliser of one layer.
#[derive(Clone, Debug)]
pub(crate) struct LayerStab {
    pub(crate) layer: usize,
    pub(crate) d_ff: usize,
    pub(crate) log2_group: f64,
    pub(crate) log2_stab: f64,
    pub(crate) duplicated_units: usize,
}

/// The symmetry of one model and what a canonical form saves.
#[derive(Clone, Debug)]
pub(crate) struct ModelSymmetry {
    pub(crate) label: String,
    pub(crate) path: String,
    pub(crate) report: SymmetryReport,
    pub(crate) layers: Vec<LayerStab>,
    pub(crate) log2_stab: f64,
    pub(crate) bits_saved: f64,
    pub(crate) total_bits: f64,
    /// log2 of the real ratio B / (B - saved).
    pub(crate) log2_ratio: f64,
    /// Orbits of G on the units it moves (one per nontrivial component).
    pub(crate) unit_orbits: usize,
    /// log2 of the claimed bound |G| / (orbits on units).
    pub(crate) claimed_log2: f64,
}

fn find(m: &Model, role: Role, param: Param, layer: usize) -> Result<&TensorInfo> {
    m.tensors()
        .iter()
        .find(|t| t.role == role && t.param == param && t.layer == Some(layer))
        .with_context(|| {
            format!(
                "{}: no {role:?} {param:?} in layer {layer}",
                m.path().display()
            )
        })
}

fn f64s(m: &Model, t: &TensorInfo) -> Result<Vec<f64>> {
    Ok(m.tensor_f32(&t.name)?.into_iter().map(f64::from).collect())
}

/// The MLP tensors of a layer: (input rows [d_ff x d_model] per input matrix, optional bias,
/// output [d_model x d_ff]) with their tensor infos.
struct Mlp<'a> {
    gate: Option<&'a TensorInfo>,
    up: &'a TensorInfo,
    up_bias: Option<&'a TensorInfo>,
    down: &'a TensorInfo,
}

fn mlp_of(m: &Model, layer: usize) -> Result<Mlp<'_>> {
    let gated = m.config().arch == Architecture::LlamaDecoder;
    Ok(Mlp {
        gate: if gated {
            Some(find(m, Role::MlpGate, Param::Weight, layer)?)
        } else {
            None
        },
        up: find(m, Role::MlpUp, Param::Weight, layer)?,
        up_bias: if gated {
            None
        } else {
            find(m, Role::MlpUp, Param::Bias, layer).ok()
        },
        down: find(m, Role::MlpDown, Param::Weight, layer)?,
    })
}

/// Per-unit parameter vectors of a layer: [gate row] ++ up row ++ [bias] ++ down column, and the
/// length of the leading part that sign flips leave alone (the gate row).
fn unit_vectors(m: &Model, layer: usize) -> Result<(Vec<Vec<f64>>, usize)> {
    let c = m.config();
    let (d, f) = (c.d_model, c.d_ff);
    let mlp = mlp_of(m, layer)?;
    let gate = mlp.gate.map(|t| f64s(m, t)).transpose()?;
    let up = f64s(m, mlp.up)?;
    let bias = mlp.up_bias.map(|t| f64s(m, t)).transpose()?;
    let down = f64s(m, mlp.down)?;
    if up.len() != d * f || down.len() != d * f || gate.as_ref().is_some_and(|g| g.len() != d * f) {
        bail!(
            "{}: layer {layer} MLP shapes disagree with d_model {d}, d_ff {f}",
            m.path().display()
        );
    }
    let fixed = if gate.is_some() { d } else { 0 };
    let units = (0..f)
        .map(|j| {
            let mut u = Vec::with_capacity(3 * d + 1);
            if let Some(g) = &gate {
                u.extend_from_slice(&g[j * d..(j + 1) * d]);
            }
            u.extend_from_slice(&up[j * d..(j + 1) * d]);
            if let Some(b) = &bias {
                u.push(b[j]);
            }
            u.extend((0..d).map(|i| down[i * f + j]));
            u
        })
        .collect();
    Ok((units, fixed))
}

/// Stabiliser of one layer's units. Without a gate: units exactly equal. With a gate (SwiGLU:
/// the group has a sign flip of the up row and down column per unit): units with equal gate rows
/// and up/down parts equal up to sign; a unit whose up/down part is all zero is also fixed by its
/// own sign flip.
fn layer_stabiliser(units: &[Vec<f64>], fixed: usize) -> Result<(BigUint, usize)> {
    let refs: Vec<&[f64]> = units.iter().map(Vec::as_slice).collect();
    if fixed == 0 {
        let s = unit_stabiliser_of_rows(&refs)?;
        return Ok((s.order, s.duplicated_units));
    }
    let keys: Vec<Vec<u64>> = units
        .iter()
        .map(|u| {
            let (g, rest) = u.split_at(fixed);
            let s = rest.iter().find(|x| **x != 0.0).map_or(1.0, |x| x.signum());
            g.iter()
                .map(|x| (x + 0.0).to_bits())
                .chain(rest.iter().map(|x| (s * x + 0.0).to_bits()))
                .collect()
        })
        .collect();
    let st = unit_stabiliser_by_key(&keys)?;
    let mut order = BigUint::from(1u32);
    for c in &st.classes {
        order *= factorial(c.len());
        if units[c[0]][fixed..].iter().all(|x| *x == 0.0) {
            order <<= c.len();
        }
    }
    Ok((order, st.duplicated_units))
}

/// The symmetry group of a model, the stabiliser of its weights and the bits a canonical form saves.
pub(crate) fn model_symmetry(m: &Model, label: &str) -> Result<ModelSymmetry> {
    let shape = network_shape(m.config());
    let report = weight_space_symmetry(&shape)
        .with_context(|| format!("symmetry of {}", m.path().display()))?;
    let n_layers = m.config().n_layers;
    let per: Vec<(BigUint, usize)> = (0..n_layers)
        .into_par_iter()
        .map(|l| {
            let (units, fixed) = unit_vectors(m, l)?;
            layer_stabiliser(&units, fixed)
        })
        .collect::<Result<_>>()?;
    let mlp_log2: Vec<f64> = report
        .components
        .iter()
        .filter(|c| matches!(c.space, claimlab_orbits::SpaceKind::MlpHidden { .. }))
        .map(|c| c.log2_order)
        .collect();
    let mut stab = BigUint::from(1u32);
    let mut layers = Vec::new();
    for (l, (o, dup)) in per.iter().enumerate() {
        stab *= o;
        layers.push(LayerStab {
            layer: l,
            d_ff: m.config().d_ff,
            log2_group: mlp_log2.get(l).copied().unwrap_or(f64::NAN),
            log2_stab: log2_big(o),
            duplicated_units: *dup,
        });
    }
    let total_bits = m.tensor_bytes() as f64 * 8.0;
    let sav = canonical_savings(&report.order, &stab, total_bits)?;
    let log2_ratio = -(1.0 - sav.fraction).log2();
    let unit_orbits = report
        .components
        .iter()
        .filter(|c| c.order > BigUint::from(1u32))
        .count();
    let claimed_log2 = report.log2_order - (unit_orbits.max(1) as f64).log2();
    Ok(ModelSymmetry {
        label: label.to_string(),
        path: m.path().display().to_string(),
        log2_stab: log2_big(&stab),
        bits_saved: sav.bits_saved,
        total_bits,
        log2_ratio,
        unit_orbits,
        claimed_log2,
        layers,
        report,
    })
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Overrides that put every MLP layer's units in canonical order, and how many units moved.
pub(crate) fn canonical_overrides(m: &Model) -> Result<(Overrides, usize)> {
    let c = m.config();
    let (d, f) = (c.d_model, c.d_ff);
    let mut ov = Overrides::new();
    let mut moved = 0;
    for l in 0..c.n_layers {
        let (units, _) = unit_vectors(m, l)?;
        let refs: Vec<&[f64]> = units.iter().map(Vec::as_slice).collect();
        let p: Perm = canonical_unit_permutation(&refs)?;
        moved += (0..f).filter(|&i| p.image(i) != i).count();
        let mlp = mlp_of(m, l)?;
        for t in mlp.gate.into_iter().chain(std::iter::once(mlp.up)) {
            ov.insert(
                t.name.clone(),
                to_f32(&permute_rows(&f64s(m, t)?, f, d, &p)?),
            );
        }
        if let Some(t) = mlp.up_bias {
            ov.insert(
                t.name.clone(),
                to_f32(&permute_rows(&f64s(m, t)?, f, 1, &p)?),
            );
        }
        ov.insert(
            mlp.down.name.clone(),
            to_f32(&permute_cols(&f64s(m, mlp.down)?, d, f, &p)?),
        );
    }
    Ok((ov, moved))
}

/// Brown sentences for the function checks (first `n` of 6..30 words, news first).
pub(crate) fn brown_sentences(ctx: &mut Ctx, n: usize) -> Result<Vec<String>> {
    let docs = ctx.brown_documents()?;
    let text: String = docs
        .iter()
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let s = claimlab_runtime::split_sentences(&text, n, 6, 30);
    if s.len() < n {
        bail!("only {} Brown sentences of 6..30 words", s.len());
    }
    Ok(s)
}

/// Result of running a model before and after canonicalisation.
#[derive(Clone, Debug)]
pub(crate) struct FunctionCheck {
    pub(crate) sentences: usize,
    pub(crate) moved_units: usize,
    pub(crate) max_abs_diff: f64,
    pub(crate) max_rel_diff: f64,
}

fn diffs(a: &[f32], b: &[f32]) -> (f64, f64) {
    let scale = a.iter().fold(0.0f64, |s, &x| s.max(f64::from(x).abs()));
    let d = a.iter().zip(b).fold(0.0f64, |s, (&x, &y)| {
        s.max((f64::from(x) - f64::from(y)).abs())
    });
    (d, if scale > 0.0 { d / scale } else { d })
}

/// MiniLM embeddings of `sentences` with and without canonical MLP order.
pub(crate) fn encoder_check(m: &Model, sentences: &[String]) -> Result<FunctionCheck> {
    let tok = TextTokenizer::for_model(m)?;
    let bert = BertModel::load(m)?;
    let (ov, moved) = canonical_overrides(m)?;
    let none = Overrides::default();
    let per: Vec<(f64, f64)> = sentences
        .par_iter()
        .map(|s| -> Result<(f64, f64)> {
            let ids = tok.encode(s)?;
            let a = bert.embed(&ids, &none)?;
            let b = bert.embed(&ids, &ov)?;
            Ok(diffs(&a, &b))
        })
        .collect::<Result<_>>()?;
    Ok(FunctionCheck {
        sentences: sentences.len(),
        moved_units: moved,
        max_abs_diff: per.iter().fold(0.0, |s, p| s.max(p.0)),
        max_rel_diff: per.iter().fold(0.0, |s, p| s.max(p.1)),
    })
}

/// SmolLM2 logits of `sentences` with and without canonical MLP order.
pub(crate) fn decoder_check(m: &Model, sentences: &[String]) -> Result<FunctionCheck> {
    let tok = TextTokenizer::for_model(m)?;
    let llama = LlamaModel::load(m)?;
    let (ov, moved) = canonical_overrides(m)?;
    let hooks = Hooks::with_overrides(ov);
    let none = Hooks::none();
    let mut per = Vec::new();
    for s in sentences {
        let ids = tok.encode(s)?;
        let a = llama.forward(&ids, &none)?;
        let b = llama.forward(&ids, &hooks)?;
        per.push(diffs(&a.logits, &b.logits));
    }
    Ok(FunctionCheck {
        sentences: sentences.len(),
        moved_units: moved,
        max_abs_diff: per.iter().fold(0.0, |s, p| s.max(p.0)),
        max_rel_diff: per.iter().fold(0.0, |s, p| s.max(p.1)),
    })
}

/// Outcome of the brute-force check of `|Orb| <= max_g |Fix(g)|` on colourings.
#[derive(Clone, Debug, Default)]
pub(crate) struct BurnsideCheck {
    pub(crate) groups: usize,
    pub(crate) counterexamples: usize,
    /// Burnside count disagreeing with brute force (a bug in our code if nonzero).
    pub(crate) burnside_mismatches: usize,
    /// Groups where |Orb| exceeds the largest fixed-point count of a non-identity element (the
    /// step only holds thanks to the identity).
    pub(crate) identity_needed: usize,
}

fn random_perm(n: usize, rng: &mut Xoshiro256PlusPlus) -> Perm {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    Perm::from_images(v).unwrap_or_else(|_| Perm::identity(n))
}

fn check_group(gens: Vec<Perm>, n: usize, max_order: usize, out: &mut BurnsideCheck) -> Result<()> {
    let g = PermGroup::new(n, gens)?;
    if g.order() > &BigUint::from(max_order) {
        return Ok(());
    }
    let els = g.elements(max_order as u64)?;
    let fix = |p: &Perm| BigUint::from(COLOURS).pow(p.cycles_with_fixed_points() as u32);
    let orbits = burnside_count(&els, |p: &&Perm| fix(p))?;
    let brute = brute_force_colouring_orbits(&els, COLOURS)?;
    let max_fix = els.iter().map(fix).max().unwrap_or_default();
    let max_fix_nonid = els
        .iter()
        .filter(|p| !p.is_identity())
        .map(fix)
        .max()
        .unwrap_or_default();
    out.groups += 1;
    if orbits != BigUint::from(brute) {
        out.burnside_mismatches += 1;
    }
    if orbits > max_fix {
        out.counterexamples += 1;
    }
    if els.len() > 1 && orbits > max_fix_nonid {
        out.identity_needed += 1;
    }
    Ok(())
}

/// Brute force of the proof's step on groups acting on colourings of up to 8 points.
pub(crate) fn burnside_step_check(seed: u64, quick: bool) -> Result<BurnsideCheck> {
    let mut out = BurnsideCheck::default();
    for &n in &SMALL_DEGREES {
        let all: Vec<Perm> =
            claimlab_orbits::symmetric_group(n)?.elements(SMALL_ORDER_MAX as u64)?;
        for a in &all {
            for b in &all {
                check_group(vec![a.clone(), b.clone()], n, SMALL_ORDER_MAX, &mut out)?;
            }
        }
    }
    let per = if quick {
        RANDOM_SUBGROUPS_QUICK
    } else {
        RANDOM_SUBGROUPS
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for &n in &SAMPLED_DEGREES {
        for i in 0..per {
            let mut gens = vec![random_perm(n, &mut rng)];
            if i % 2 == 1 {
                gens.push(random_perm(n, &mut rng));
            }
            check_group(gens, n, SMALL_ORDER_MAX, &mut out)?;
        }
    }
    // Random subgroups of S_8: one random element and, every other time, a random involution-ish
    // second generator; kept when the group is small enough to enumerate with its colourings.
    for i in 0..per {
        let mut gens = vec![random_perm(8, &mut rng)];
        if i % 2 == 1 {
            gens.push(random_perm(8, &mut rng));
        }
        check_group(gens, 8, 5040, &mut out)?;
    }
    Ok(out)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let quick = ctx.opts.quick;
    let seed = ctx.opts.seed;
    let bar = ctx.bar(4, "ccd-3.1: symmetry groups and stabilisers");
    let enc = model_symmetry(ctx.encoder()?, "MiniLM")?;
    bar.inc(1);
    let dec = model_symmetry(ctx.decoder()?, "SmolLM2")?;
    bar.inc(1);
    let burn = burnside_step_check(seed, quick)?;
    bar.inc(1);
    let n_sent = if quick {
        CHECK_SENTENCES_QUICK
    } else {
        CHECK_SENTENCES
    };
    let sentences = brown_sentences(ctx, n_sent)?;
    let fcheck = encoder_check(ctx.encoder()?, &sentences)?;
    bar.inc(1);
    bar.finish_and_clear();
    let mut o = symmetry_outcome("ccd-3.1", &[&enc, &dec], &burn, ctx)?;
    let _ = writeln!(
        o.body,
        "\nCanonical form preserves the function: MiniLM with every layer's MLP units sorted \
         (up rows, biases, down columns permuted together; {} units moved) embeds {} Brown sentences \
         with max |Δ| = {:.2e} (relative {:.2e}; tolerance {FUNCTION_TOL_REL:e}).",
        fcheck.moved_units, fcheck.sentences, fcheck.max_abs_diff, fcheck.max_rel_diff
    );
    o.numbers["function_check"] = json!({"model": "MiniLM", "sentences": fcheck.sentences,
        "moved_units": fcheck.moved_units, "max_abs_diff": fcheck.max_abs_diff,
        "max_rel_diff": fcheck.max_rel_diff, "tolerance_rel": FUNCTION_TOL_REL,
        "passed": fcheck.max_rel_diff <= FUNCTION_TOL_REL});
    Ok(o)
}

/// The ccd-3.1 verdict, body, figure and numbers for the given models (shared with sys-1.algebra).
pub(crate) fn symmetry_outcome(
    id: &str,
    models: &[&ModelSymmetry],
    burn: &BurnsideCheck,
    ctx: &Ctx,
) -> Result<Outcome> {
    // Refuted if any model's real ratio is below the claimed bound (reading: orbits of G on the
    // hidden units and heads); both sides are compared in log2.
    let below: Vec<&&ModelSymmetry> = models
        .iter()
        .filter(|m| m.log2_ratio < m.claimed_log2)
        .collect();
    let finite = models.iter().all(|m| m.claimed_log2.is_finite());
    let verdict = if !finite {
        Verdict::Inconclusive
    } else if below.is_empty() {
        Verdict::Supported
    } else {
        Verdict::Refuted
    };
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Groups read from the model configurations (claimlab-orbits `weight_space_symmetry`); the \
         stabiliser is computed on the real dequantised MLP weights of every layer (units \
         interchangeable when their parameters are bit-identical, up to sign for SwiGLU's linear \
         up/down pair); the other components (heads, residual basis) are assumed to have trivial \
         stabiliser, which can only overstate the saving. B is the size of the stored tensors.\n"
    );
    let _ = writeln!(body, "| model | log2 \\|G\\| | log2 \\|Stab(θ)\\| | duplicated MLP units | bits saved | B (bits) | saved / B | real ratio B/(B−saved) | claimed log2 r (\\|G\\|/orbits on units) |");
    let _ = writeln!(body, "|---|---|---|---|---|---|---|---|---|");
    for m in models {
        let dup: usize = m.layers.iter().map(|l| l.duplicated_units).sum();
        let _ = writeln!(
            body,
            "| {} | {:.1} | {:.1} | {dup} | {:.1} ({:.2} KiB) | {:.4e} | {:.3e} | {:.6} | {:.1} (= 2^{:.0}) |",
            m.label,
            m.report.log2_order,
            m.log2_stab,
            m.bits_saved,
            m.bits_saved / 8192.0,
            m.total_bits,
            m.bits_saved / m.total_bits,
            m.log2_ratio.exp2(),
            m.claimed_log2,
            m.claimed_log2
        );
    }
    for m in models {
        let _ = writeln!(
            body,
            "\n**{}** ({}), by kind of component:\n",
            m.label, m.path
        );
        let _ = writeln!(
            body,
            "| kind | components | log2 order | Lie dim |\n|---|---|---|---|"
        );
        for k in m.report.by_kind() {
            let _ = writeln!(
                body,
                "| {} | {} | {:.1} | {} |",
                k.kind, k.count, k.log2_order, k.lie_dim
            );
        }
    }
    let _ = writeln!(
        body,
        "\nReadings of |G|/|Orb|: (a) orbits of G on the hidden units and heads it permutes (one \
         orbit per nontrivial component): the bound is |G|/{} for MiniLM, astronomically large; \
         (b) the count ratio |X|/|Orb(X)| of a finite stored weight space X, which is about \
         |G|/|Stab(θ)| (same size); (c) the literal |G|/|Orb(X)|, about |G|²/|X| = 2^(2·log2|G| − B), \
         far below 1 for both models and so satisfied by any storage, which makes it no statement \
         about compression. A canonical form saves log2|G| − log2|Stab| bits, it does not divide \
         the size by |G|; for continuous weights the number of orbits is infinite.",
        models.first().map_or(0, |m| m.unit_orbits)
    );
    let _ = writeln!(
        body,
        "\nBurnside step |Orb| ≤ max_g |Fix(g)| by brute force on {} groups (all 2-generated \
         subgroups of S_2..S_4, random ones of S_5, S_6 of order ≤ {SMALL_ORDER_MAX}, random \
         subgroups of S_8 of order ≤ 5040; acting on {COLOURS}-colourings): {} counterexamples, \
         {} Burnside-vs-brute-force mismatches. The step holds only because the identity fixes \
         everything: in {} of the nontrivial groups |Orb| exceeds every non-identity element's \
         fixed-point count.",
        burn.groups, burn.counterexamples, burn.burnside_mismatches, burn.identity_needed
    );
    let worst = models
        .iter()
        .map(|m| (m.log2_ratio, m.claimed_log2))
        .fold((f64::INFINITY, f64::INFINITY), |a, b| {
            (a.0.min(b.0), a.1.min(b.1))
        });
    let why = format!(
        "real ratio B/(B−saved): {}; claimed r ≥ |G|/|Orb| = 2^{:.0} or more (orbits on units); \
         measured below claimed by 2^{:.0}; Burnside step: {} counterexamples in {} groups",
        models
            .iter()
            .map(|m| format!(
                "{} {:.6} ({:.0} of {:.3e} bits)",
                m.label,
                m.log2_ratio.exp2(),
                m.bits_saved,
                m.total_bits
            ))
            .collect::<Vec<_>>()
            .join(", "),
        worst.1,
        worst.1 - worst.0,
        burn.counterexamples,
        burn.groups
    );
    let mut o = Outcome::new(
        id,
        verdict,
        models
            .iter()
            .map(|m| {
                format!(
                    "{}: r = {:.6}, saves {:.0} bits",
                    m.label,
                    m.log2_ratio.exp2(),
                    m.bits_saved
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        "r ≥ |G|/|Orb(G)| ≥ |G| / max_g |Fix(g)|".to_string(),
        why,
    );
    // Figure: bits saved (per MLP layer and total) against the model's size, log-log.
    let mut series = Vec::new();
    for m in models {
        series.push(Series::points(
            format!("{}: bits saved per MLP layer", m.label),
            m.layers
                .iter()
                .map(|l| (m.total_bits, (l.log2_group - l.log2_stab).max(1.0)))
                .collect(),
        ));
        series.push(Series::points(
            format!("{}: bits saved, whole model", m.label),
            vec![(m.total_bits, m.bits_saved.max(1.0))],
        ));
    }
    let lo = models
        .iter()
        .map(|m| m.total_bits)
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    let hi = models.iter().map(|m| m.total_bits).fold(0.0, f64::max) * 2.0;
    series.push(Series::reference(
        "model size B (saving everything)",
        vec![(lo, lo), (hi, hi)],
    ));
    let chart = Chart {
        title: "Canonical form saves kilobytes of a model of megabytes".into(),
        x_label: "model size B (bits)".into(),
        y_label: "bits saved by a canonical form".into(),
        log_x: true,
        log_y: true,
        series,
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        &format!("{id}_bits_saved"),
        "Bits a canonical ordering saves (log2|G| − log2|Stab(θ)|), per MLP layer and in total, against the model's size in bits",
    )?);
    o.body = body;
    o.numbers = json!({
        "models": models.iter().map(|m| json!({
            "label": m.label, "path": m.path, "log2_group": m.report.log2_order,
            "log2_stabiliser": m.log2_stab, "bits_saved": m.bits_saved, "total_bits": m.total_bits,
            "ratio": m.log2_ratio.exp2(), "log2_ratio": m.log2_ratio, "unit_orbits": m.unit_orbits,
            "claimed_log2_ratio": m.claimed_log2,
            "layers": m.layers.iter().map(|l| json!({"layer": l.layer, "d_ff": l.d_ff,
                "log2_group": l.log2_group, "log2_stab": l.log2_stab,
                "duplicated_units": l.duplicated_units})).collect::<Vec<_>>(),
            "symmetry": report_json(&m.report),
        })).collect::<Vec<_>>(),
        "burnside_step": {"groups": burn.groups, "counterexamples": burn.counterexamples,
            "burnside_mismatches": burn.burnside_mismatches, "identity_needed": burn.identity_needed,
            "colours": COLOURS},
    });
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_stabiliser_counts_sign_twins_and_dead_units() {
        // gate part length 1; units 0 and 1 are sign twins (same gate, opposite up/down),
        // unit 2 is different, units 3 and 4 are dead (zero up/down, same gate).
        let units = vec![
            vec![1.0, 2.0, -3.0],
            vec![1.0, -2.0, 3.0],
            vec![1.0, 2.0, 3.0],
            vec![5.0, 0.0, 0.0],
            vec![5.0, 0.0, -0.0],
        ];
        let (order, dup) = layer_stabiliser(&units, 1).unwrap();
        // 2! for the twins, 2! · 2^2 for the dead pair.
        assert_eq!(order, BigUint::from(16u32));
        assert_eq!(dup, 4);
        // Without a gate only exact repeats count.
        let (order, dup) = layer_stabiliser(&units, 0).unwrap();
        assert_eq!(order, BigUint::from(2u32));
        assert_eq!(dup, 2);
    }

    #[test]
    fn burnside_check_finds_no_counterexample_and_agrees_with_brute_force() {
        let b = burnside_step_check(7, true).unwrap();
        assert!(b.groups > 100, "{}", b.groups);
        assert_eq!(b.counterexamples, 0);
        assert_eq!(b.burnside_mismatches, 0);
        // Cyclic groups of order 2 acting on 2 points: one orbit pair... the identity is needed
        // for some group (e.g. S_2 on 2-colourings: 3 orbits, the swap fixes 2).
        assert!(b.identity_needed > 0);
    }

    #[test]
    fn diffs_are_relative_to_the_largest_entry() {
        let (a, r) = diffs(&[2.0, -4.0], &[2.0, -3.0]);
        assert!((a - 1.0).abs() < 1e-12, "{a}");
        assert!((r - 0.25).abs() < 1e-12, "{r}");
    }
}
