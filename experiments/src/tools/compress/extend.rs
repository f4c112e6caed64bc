//! The extended menu: truncated SVD ([`super::svd`]), magnitude pruning ([`super::prune`]) and
//! row pruning ([`super::structured`]) options beside the GGUF block types, each with its real stored bytes and the same damage
//! proxy as the block types (`Σ_rj ΔW_rj² h_j`), so the allocator can weigh them against each
//! other at the same budget.
//!
//! Neither kind is a GGUF tensor type: a model that uses them is scored by our runtime with the
//! rebuilt dense matrices as overrides, and the written GGUF keeps the block-type allocation.
//!
//! The proxy was validated (Spearman against single-tensor loss) for quantisation noise only;
//! on SmolLM2 at 4.5 bpw it rates SVD and pruning far too kindly (the what-if allocation halves
//! the proxy and multiplies perplexity by 400), so the scored perplexity, not the proxy, is the
//! verdict on these options.

use anyhow::{Context as _, Result};
use claimlab_runtime::Overrides;
use claimlab_weights::{dequantize, quantize, DType, Model, Role, TensorInfo};

use super::calib::Calib;
use super::{site, TensorMenu};

use super::prune::{prune_bytes, prune_rebuild, KEEP_FRACTIONS, VALUE_TYPES};
use super::structured::{row_prune_bytes, row_prune_rebuild, ROW_KEEP_FRACTIONS};
use super::svd::{svd_bytes, WeightedSvd, FACTOR_TYPES, RANK_STEP};

/// SVD ranks are chosen so that the factors cost about these bits per weight of the matrix.
pub const SVD_BPW: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

/// How an extended option is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// Rank-`rank` weighted SVD, factors in `dt`.
    Svd {
        /// Rank.
        rank: usize,
        /// Factor storage type.
        dt: DType,
    },
    /// Keep `keep` weights per row (bitmap + values in `dt`).
    Prune {
        /// Kept weights per row.
        keep: usize,
        /// Value storage type.
        dt: DType,
    },
    /// Keep `keep_rows` whole rows (bitmap + rows in `dt`).
    RowPrune {
        /// Kept rows.
        keep_rows: usize,
        /// Row storage type.
        dt: DType,
    },
}

impl Recipe {
    /// The kind of option: `svd`, `prune` or `rowprune`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Recipe::Svd { .. } => "svd",
            Recipe::Prune { .. } => "prune",
            Recipe::RowPrune { .. } => "rowprune",
        }
    }
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipe::Svd { rank, dt } => write!(f, "svd-r{rank}-{dt}"),
            Recipe::Prune { keep, dt } => write!(f, "prune-keep{keep}-{dt}"),
            Recipe::RowPrune { keep_rows, dt } => write!(f, "rowprune-keep{keep_rows}-{dt}"),
        }
    }
}

/// One extended option with its cost and damage.
#[derive(Clone, Copy, Debug)]
pub struct ExtOption {
    /// How it is built.
    pub recipe: Recipe,
    /// Stored bytes (factors, or bitmap plus kept values).
    pub bytes: usize,
    /// Plain squared error (sum over elements).
    pub sq_error: f64,
    /// Column-weighted squared error `Σ_rj ΔW_rj² h_j`.
    pub weighted_error: f64,
}

/// The dense matrix an option stands for (row-major `[rows, cols]`).
///
/// # Errors
/// Bad shapes or parameters (see [`WeightedSvd::rebuild`], [`prune_rebuild`] and
/// [`row_prune_rebuild`]).
pub fn rebuild(
    recipe: Recipe,
    w: &[f32],
    rows: usize,
    cols: usize,
    hdiag: &[f64],
) -> Result<Vec<f32>> {
    match recipe {
        Recipe::Svd { rank, dt } => WeightedSvd::new(w, rows, cols, hdiag)?.rebuild(rank, dt),
        Recipe::Prune { keep, dt } => prune_rebuild(w, rows, cols, hdiag, keep, dt),
        Recipe::RowPrune { keep_rows, dt } => {
            row_prune_rebuild(w, rows, cols, hdiag, keep_rows, dt)
        }
    }
}

fn weighted(w: &[f32], back: &[f32], cols: usize, hdiag: &[f64]) -> (f64, f64) {
    let (mut s, mut ws) = (0.0, 0.0);
    for (i, (&a, &b)) in w.iter().zip(back).enumerate() {
        let d = f64::from(a) - f64::from(b);
        s += d * d;
        ws += d * d * hdiag[i % cols];
    }
    (s, ws)
}

/// The extended options of one `[rows, cols]` matrix that cost less than `max_bytes` (its most
/// expensive block type: dearer options could never be chosen).
///
/// # Errors
/// Bad shapes or non-finite values, or an SVD that does not converge.
pub fn extended_options(
    w: &[f32],
    rows: usize,
    cols: usize,
    hdiag: &[f64],
    max_bytes: usize,
) -> Result<Vec<ExtOption>> {
    let mut recipes = Vec::new();
    let n = rows * cols;
    for &dt in &FACTOR_TYPES {
        if !cols.is_multiple_of(dt.block_elems()) {
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let per_rank_bits = svd_bytes(rows, cols, RANK_STEP, dt) as f64 * 8.0 / RANK_STEP as f64;
        let mut last = 0;
        for &b in &SVD_BPW {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let r = ((b * n as f64 / per_rank_bits) as usize) / RANK_STEP * RANK_STEP;
            if r > last && r <= rows.min(cols) && svd_bytes(rows, cols, r, dt) < max_bytes {
                recipes.push(Recipe::Svd { rank: r, dt });
                last = r;
            }
        }
    }
    for &dt in &VALUE_TYPES {
        for &f in &KEEP_FRACTIONS {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let keep = ((f * cols as f64) as usize) / dt.block_elems() * dt.block_elems();
            if keep > 0 && prune_bytes(rows, cols, keep, dt) < max_bytes {
                recipes.push(Recipe::Prune { keep, dt });
            }
        }
        if !cols.is_multiple_of(dt.block_elems()) {
            continue;
        }
        for &f in &ROW_KEEP_FRACTIONS {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let keep_rows = (f * rows as f64) as usize;
            if keep_rows > 0 && row_prune_bytes(rows, cols, keep_rows, dt) < max_bytes {
                recipes.push(Recipe::RowPrune { keep_rows, dt });
            }
        }
    }
    let svd = if recipes.iter().any(|r| matches!(r, Recipe::Svd { .. })) {
        Some(WeightedSvd::new(w, rows, cols, hdiag)?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(recipes.len());
    for recipe in recipes {
        let (back, bytes) = match (recipe, &svd) {
            (Recipe::Svd { rank, dt }, Some(s)) => {
                (s.rebuild(rank, dt)?, svd_bytes(rows, cols, rank, dt))
            }
            (Recipe::Prune { keep, dt }, _) => (
                prune_rebuild(w, rows, cols, hdiag, keep, dt)?,
                prune_bytes(rows, cols, keep, dt),
            ),
            (Recipe::RowPrune { keep_rows, dt }, _) => (
                row_prune_rebuild(w, rows, cols, hdiag, keep_rows, dt)?,
                row_prune_bytes(rows, cols, keep_rows, dt),
            ),
            (Recipe::Svd { .. }, None) => unreachable!("the SVD exists when an SVD recipe does"),
        };
        let (sq_error, weighted_error) = weighted(w, &back, cols, hdiag);
        out.push(ExtOption {
            recipe,
            bytes,
            sq_error,
            weighted_error,
        });
    }
    Ok(out)
}

/// Indices of the points on the lower convex hull of `(bytes, damage)`: those some Lagrangian
/// allocation (`min damage + λ·bytes`, λ ≥ 0) picks for some λ.
#[must_use]
pub fn lower_hull(points: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[a].1.total_cmp(&points[b].1))
    });
    // Pareto front: strictly less damage than every cheaper point.
    let mut front: Vec<usize> = Vec::new();
    for i in idx {
        if front.last().is_none_or(|&j| points[i].1 < points[j].1) {
            front.push(i);
        }
    }
    let mut hull: Vec<usize> = Vec::new();
    for i in front {
        while hull.len() >= 2 {
            let (a, b) = (points[hull[hull.len() - 2]], points[hull[hull.len() - 1]]);
            let c = points[i];
            // b lies on or above the chord a..c: not on the strict lower hull.
            let cross = (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0);
            if cross <= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(i);
    }
    hull
}

/// Per tensor: the chosen index (block types first, then extended options) and the extended
/// option when one is chosen.
pub type Picks = Vec<(usize, Option<ExtOption>)>;

/// A matrix for the extended options: row-major weights, rows, columns, column weights.
pub type Matrix = (Vec<f32>, usize, usize, Vec<f64>);

/// One tensor whose extended option the allocator chose.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChosenExt {
    /// Tensor name.
    pub name: String,
    /// The option (`svd-r…-type`, `prune-keep…-type` or `rowprune-keep…-type`).
    pub option: String,
    /// Its stored bytes.
    pub bytes: usize,
    /// Its weighted error.
    pub weighted_error: f64,
}

/// The what-if allocation with the extended menu, beside the block-type one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WhatIf {
    /// Tensors that got extended options (all matrices but the token embedding, whose lookup
    /// error the head-input weighting does not cover).
    pub tensors: usize,
    /// Extended options evaluated in all.
    pub options: usize,
    /// Of those, how many of each kind ([`Recipe::kind`]).
    pub options_by_kind: std::collections::BTreeMap<&'static str, usize>,
    /// Tensors where an extended option at least as dear as the cheapest block type is on the
    /// lower convex hull of (bytes, damage): chosen by the Lagrangian allocator at some budget
    /// the block types also reach (options cheaper than every block type are on the hull
    /// trivially and not counted).
    pub tensors_with_ext_on_hull: usize,
    /// Total proxy damage of the block-type allocation.
    pub proxy_gguf: f64,
    /// Total proxy damage of the extended allocation at the same budget.
    pub proxy_extended: f64,
    /// Bytes of the extended allocation (tensor data of the matrices).
    pub bytes_extended: f64,
    /// Tensors whose chosen option is an extended one.
    pub chosen: Vec<ChosenExt>,
    /// Seconds spent.
    pub seconds: f64,
}

/// Per tensor, the block-type options `menu` (bytes, damage) and the extended options, and the
/// allocation of `budget` bytes over both: what the allocator does with the extended menu.
///
/// `mats[i]` is `Some((w, rows, cols, hdiag))` for a matrix that gets extended options.
/// Returns the summary and per tensor the chosen index into block types then extended options,
/// with the extended option when one is chosen.
///
/// # Errors
/// Failures of the option builders or the allocator.
pub fn what_if(
    menu: &[Vec<(usize, f64)>],
    gguf_choice: &[usize],
    names: &[String],
    mats: &[Option<Matrix>],
    budget: f64,
) -> Result<(WhatIf, Picks)> {
    use claimlab_budget::{allocate_bits, AllocateConfig, Item};
    use rayon::prelude::*;
    let t0 = std::time::Instant::now();
    let ext: Vec<Vec<ExtOption>> = mats
        .par_iter()
        .zip(menu)
        .map(|(m, opts)| match m {
            Some((w, rows, cols, h)) => {
                let cap = opts.iter().map(|o| o.0).max().unwrap_or(0);
                extended_options(w, *rows, *cols, h, cap)
            }
            None => Ok(Vec::new()),
        })
        .collect::<Result<_>>()?;
    let mut options_by_kind = std::collections::BTreeMap::new();
    for o in ext.iter().flatten() {
        *options_by_kind.entry(o.recipe.kind()).or_insert(0) += 1;
    }
    let mut on_hull = 0;
    #[allow(clippy::cast_precision_loss)]
    let items: Vec<Vec<Item>> = menu
        .iter()
        .zip(&ext)
        .map(|(m, e)| {
            let pts: Vec<(f64, f64)> = m
                .iter()
                .map(|&(b, d)| (b as f64, d))
                .chain(e.iter().map(|o| (o.bytes as f64, o.weighted_error)))
                .collect();
            let cheapest = m.iter().map(|o| o.0).min().unwrap_or(0) as f64;
            if lower_hull(&pts)
                .iter()
                .any(|&i| i >= m.len() && pts[i].0 >= cheapest)
            {
                on_hull += 1;
            }
            pts.iter().map(|&(b, d)| Item::new(b, d)).collect()
        })
        .collect();
    let rep = allocate_bits(&items, budget, &AllocateConfig::default())?;
    let choice = rep
        .exact
        .as_ref()
        .map_or(&rep.lagrangian.choice, |e| &e.choice)
        .clone();
    let mut chosen = Vec::new();
    let mut picks = Vec::with_capacity(menu.len());
    let (mut proxy_extended, mut bytes_extended) = (0.0, 0.0);
    for (i, &c) in choice.iter().enumerate() {
        proxy_extended += items[i][c].distortion;
        bytes_extended += items[i][c].cost;
        if c >= menu[i].len() {
            let o = ext[i][c - menu[i].len()];
            chosen.push(ChosenExt {
                name: names[i].clone(),
                option: o.recipe.to_string(),
                bytes: o.bytes,
                weighted_error: o.weighted_error,
            });
            picks.push((c, Some(o)));
        } else {
            picks.push((c, None));
        }
    }
    let proxy_gguf = menu.iter().zip(gguf_choice).map(|(m, &c)| m[c].1).sum();
    Ok((
        WhatIf {
            tensors: mats.iter().filter(|m| m.is_some()).count(),
            options: ext.iter().map(Vec::len).sum(),
            options_by_kind,
            tensors_with_ext_on_hull: on_hull,
            proxy_gguf,
            proxy_extended,
            bytes_extended,
            chosen,
            seconds: t0.elapsed().as_secs_f64(),
        },
        picks,
    ))
}

/// [`what_if`] on a model's matrices: their menus, weights and calibration column weights.
///
/// # Errors
/// Reading tensors, calibration statistics, or [`what_if`] failures.
pub fn what_if_model(
    model: &Model,
    menus: &[TensorMenu],
    gguf_choice: &[usize],
    targets: &[TensorInfo],
    cal: &Calib,
    budget: f64,
) -> Result<(WhatIf, Picks)> {
    let menu: Vec<Vec<(usize, f64)>> = menus
        .iter()
        .map(|m| {
            m.options
                .iter()
                .map(|o| (o.bytes, o.weighted_error))
                .collect()
        })
        .collect();
    let names: Vec<String> = menus.iter().map(|m| m.name.clone()).collect();
    let mats = menus
        .iter()
        .map(|m| {
            let t = targets
                .iter()
                .find(|t| t.name == m.name)
                .with_context(|| format!("no tensor {}", m.name))?;
            if t.role == Role::TokenEmbedding {
                return Ok(None);
            }
            let w = model.tensor_f32(&m.name)?;
            let h = cal.diag(site(t)?)?;
            Ok(Some((w, m.n_elems / m.row, m.row, h)))
        })
        .collect::<Result<Vec<_>>>()?;
    what_if(&menu, gguf_choice, &names, &mats, budget)
}

/// The dense overrides of the extended allocation: rebuilt matrices where an extended option
/// was chosen, rounded block types elsewhere.
///
/// # Errors
/// Reading tensors, calibration statistics, quantisers.
pub fn overrides(
    model: &Model,
    menus: &[TensorMenu],
    picks: &Picks,
    targets: &[TensorInfo],
    cal: &Calib,
) -> Result<Overrides> {
    use rayon::prelude::*;
    menus
        .par_iter()
        .zip(picks)
        .map(|(m, &pick)| {
            Ok((
                m.name.clone(),
                rebuilt_tensor(model, m, pick, targets, cal)?,
            ))
        })
        .collect()
}

/// One matrix of the extended allocation (menu `m`, its pick): rebuilt from its extended option
/// when one was chosen, else rounded to the chosen block type (one entry of [`overrides`], for
/// a caller that streams the model one tensor at a time).
///
/// # Errors
/// Reading the tensor, calibration statistics, quantisers.
pub fn rebuilt_tensor(
    model: &Model,
    m: &TensorMenu,
    pick: (usize, Option<ExtOption>),
    targets: &[TensorInfo],
    cal: &Calib,
) -> Result<Vec<f32>> {
    let (c, ext) = pick;
    let w = model.tensor_f32(&m.name)?;
    Ok(if let Some(o) = ext {
        let t = targets
            .iter()
            .find(|t| t.name == m.name)
            .with_context(|| format!("no tensor {}", m.name))?;
        rebuild(o.recipe, &w, m.n_elems / m.row, m.row, &cal.diag(site(t)?)?)?
    } else {
        let dt = m.options[c].dtype;
        dequantize(dt, &quantize(dt, &w)?, w.len())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn lower_hull_by_hand() {
        // (1,10) (2,4) (3,3) (4,1) (2.5,9): (3,3) lies above the chord (2,4)-(4,1); (2.5,9) is
        // dominated.
        let p = [(1.0, 10.0), (2.0, 4.0), (3.0, 3.0), (4.0, 1.0), (2.5, 9.0)];
        assert_eq!(lower_hull(&p), vec![0, 1, 3]);
        // (3, 2) lies below that chord and joins.
        let p = [(1.0, 10.0), (2.0, 4.0), (3.0, 2.0), (4.0, 1.0)];
        assert_eq!(lower_hull(&p), vec![0, 1, 2, 3]);
    }

    #[test]
    fn options_are_cheaper_than_the_cap_and_their_errors_match_a_rebuild() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let (rows, cols) = (64, 128);
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let h: Vec<f64> = (0..cols).map(|_| rng.random::<f64>() + 0.1).collect();
        let cap = rows * cols / 32 * 34; // Q8_0
        let opts = extended_options(&w, rows, cols, &h, cap).unwrap();
        assert!(opts.iter().any(|o| matches!(o.recipe, Recipe::Svd { .. })));
        assert!(opts
            .iter()
            .any(|o| matches!(o.recipe, Recipe::Prune { .. })));
        // Row pruning: half and three quarters of the rows, in both value types.
        let mut rp: Vec<String> = opts
            .iter()
            .filter(|o| matches!(o.recipe, Recipe::RowPrune { .. }))
            .map(|o| o.recipe.to_string())
            .collect();
        rp.sort();
        assert_eq!(
            rp,
            [
                "rowprune-keep32-Q4_0",
                "rowprune-keep32-Q8_0",
                "rowprune-keep48-Q4_0",
                "rowprune-keep48-Q8_0"
            ]
        );
        for o in &opts {
            assert!(o.bytes < cap, "{}", o.recipe);
            let back = rebuild(o.recipe, &w, rows, cols, &h).unwrap();
            let (s, ws) = weighted(&w, &back, cols, &h);
            assert!((ws - o.weighted_error).abs() <= 1e-9 * ws, "{}", o.recipe);
            assert!((s - o.sq_error).abs() <= 1e-9 * s, "{}", o.recipe);
        }
        // More bytes of the same kind and type never hurt here.
        for kind in 0..3 {
            for dt in [DType::Q4_0, DType::Q8_0] {
                let mut v: Vec<&ExtOption> = opts
                    .iter()
                    .filter(|o| match o.recipe {
                        Recipe::Svd { dt: d, .. } => kind == 0 && d == dt,
                        Recipe::Prune { dt: d, .. } => kind == 1 && d == dt,
                        Recipe::RowPrune { dt: d, .. } => kind == 2 && d == dt,
                    })
                    .collect();
                // Both pruning kinds have several sizes per type here.
                assert!(kind == 0 || v.len() >= 2, "kind {kind} {dt}");
                v.sort_by_key(|o| o.bytes);
                for p in v.windows(2) {
                    assert!(p[1].weighted_error < p[0].weighted_error);
                }
            }
        }
    }
}
