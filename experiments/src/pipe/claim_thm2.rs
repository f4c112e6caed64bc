//! `pipe-thm2`: "the best order of independent compressors sorts them by ε_i / (1 − ρ_i)".
//!
//! Every order of three compressors (magnitude pruning, truncated SVD, uniform quantisation) and of
//! four (adding row pruning) runs on real MiniLM and SmolLM2 block matrices. Each stage acts on the
//! stored form its predecessor left (dense, sparse, low-rank factors), so the final stored size is
//! real bytes: bitmasks, factor matrices, quantisation scales and zero points included. Every order
//! is tuned to the same target size by bisection on the level of its last stage that has a
//! continuous level (pruning fraction, rank, dropped rows); the quantiser's bit width is fixed,
//! since integer widths cannot match a size. The rule's order comes from each compressor's error and
//! ratio when applied alone; its rank among the orders and its regret are reported for two readings
//! of ρ (kept fraction < 1, compression ratio > 1).

use anyhow::{anyhow, Result};
use claimlab_budget as budget;
use claimlab_ratedist as rd;
use claimlab_weights::{DType, Param};
use rand::seq::SliceRandom as _;
use rayon::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write as _;

use crate::aecl::common::{claim_seed, rng};
use crate::pipe::claim_thm1::{dist, magnitude_prune};
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Fixed level of magnitude pruning (fraction of entries zeroed) when it is not the tuned stage.
const PRUNE_FRAC: f64 = 0.5;
/// Fixed bit width of the uniform quantiser.
const QUANT_BITS: u32 = 4;
/// Fixed fraction of rows dropped by row pruning when it is not the tuned stage.
const ROW_FRAC: f64 = 0.25;
/// Target stored size in bits per weight of the original matrix (f32 is 32).
const TARGET_BPW: f64 = 6.0;
/// Supported: the rule's order is best in at least this share of tensors …
const BEST_SHARE_SUPPORT: f64 = 0.5;
/// … and its median regret is at most this.
const REGRET_SUPPORT: f64 = 0.05;
/// Refuted when the median regret exceeds this.
const REGRET_REFUTE: f64 = 0.20;
/// Matrices per model (full; quick uses one MiniLM matrix only). The papers entry asks for 36
/// MiniLM and 60 SmolLM2; see the body for why fewer fit the time budget.
const PER_MODEL: (usize, usize) = (6, 1);

/// One compressor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Comp {
    Prune,
    Svd,
    Quant,
    RowPrune,
}

impl Comp {
    fn label(self) -> &'static str {
        match self {
            Comp::Prune => "prune",
            Comp::Svd => "svd",
            Comp::Quant => "quant4",
            Comp::RowPrune => "rowprune",
        }
    }
    fn tunable(self) -> bool {
        self != Comp::Quant
    }
}

/// How the current matrix is stored.
#[derive(Clone, Debug)]
pub(crate) enum Form {
    Dense,
    Sparse,
    /// `a` is rows × r, `b` is r × cols (row-major).
    LowRank {
        a: Vec<f32>,
        b: Vec<f32>,
        r: usize,
    },
}

/// A compressed matrix: its dense reconstruction and how it is stored.
#[derive(Clone, Debug)]
pub(crate) struct Rep {
    pub(crate) w: Vec<f32>,
    pub(crate) form: Form,
    /// Bits per stored value (32 until quantised).
    pub(crate) bits: u32,
    /// Quantisation side information in bits.
    pub(crate) side_bits: u64,
    /// Rows still stored (dense and low-rank forms; sparse forms use their bitmask).
    pub(crate) rows_kept: Vec<bool>,
    rows: usize,
    cols: usize,
}

impl Rep {
    pub(crate) fn dense(w: Vec<f32>, rows: usize, cols: usize) -> Rep {
        Rep {
            w,
            form: Form::Dense,
            bits: 32,
            side_bits: 0,
            rows_kept: vec![true; rows],
            rows,
            cols,
        }
    }

    /// The stored size in bits: payload, bitmask or row mask, and quantisation side information.
    pub(crate) fn size_bits(&self) -> u64 {
        let kept = self.rows_kept.iter().filter(|&&k| k).count() as u64;
        let mask = if kept < self.rows as u64 {
            self.rows as u64
        } else {
            0
        };
        let (rows, cols, b) = (self.rows as u64, self.cols as u64, u64::from(self.bits));
        match &self.form {
            Form::Dense => kept * cols * b + self.side_bits + mask,
            Form::Sparse => {
                let nnz = self.w.iter().filter(|&&v| v != 0.0).count() as u64;
                rows * cols + nnz * b + self.side_bits
            }
            Form::LowRank { r, .. } => {
                (kept * *r as u64 + *r as u64 * cols) * b + self.side_bits + mask
            }
        }
    }
}

/// `a (rows × r) · b (r × cols)`, rows with `keep[i] == false` set to zero.
fn product(a: &[f32], b: &[f32], rows: usize, r: usize, cols: usize, keep: &[bool]) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * cols];
    out.par_chunks_mut(cols).enumerate().for_each(|(i, row)| {
        if !keep[i] {
            return;
        }
        let mut acc = vec![0.0f64; cols];
        for k in 0..r {
            let aik = f64::from(a[i * r + k]);
            if aik != 0.0 {
                for (j, s) in acc.iter_mut().enumerate() {
                    *s += aik * f64::from(b[k * cols + j]);
                }
            }
        }
        for (o, s) in row.iter_mut().zip(acc) {
            *o = s as f32;
        }
    });
    out
}

/// Thin SVD factors of a row-major matrix, balanced: `U S^½` (rows × m) and `S^½ Vᵀ` (m × cols),
/// m = min(rows, cols); truncation to rank r keeps the first r columns / rows.
pub(crate) struct Factors {
    us: Vec<f32>,
    sv: Vec<f32>,
    m: usize,
}

fn factors(w: &[f32], rows: usize, cols: usize) -> Result<Factors> {
    let a = faer::Mat::<f64>::from_fn(rows, cols, |i, j| f64::from(w[i * cols + j]));
    let svd = a
        .thin_svd()
        .map_err(|e| anyhow!("SVD of a {rows}x{cols} matrix: {e:?}"))?;
    let m = rows.min(cols);
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let mut us = vec![0.0f32; rows * m];
    let mut sv = vec![0.0f32; m * cols];
    for k in 0..m {
        let h = s[k].max(0.0).sqrt();
        for i in 0..rows {
            us[i * m + k] = (u[(i, k)] * h) as f32;
        }
        for j in 0..cols {
            sv[k * cols + j] = (v[(j, k)] * h) as f32;
        }
    }
    Ok(Factors { us, sv, m })
}

fn truncate(f: &Factors, rows: usize, cols: usize, r: usize) -> (Vec<f32>, Vec<f32>) {
    let r = r.min(f.m);
    let mut a = vec![0.0f32; rows * r];
    for i in 0..rows {
        a[i * r..(i + 1) * r].copy_from_slice(&f.us[i * f.m..i * f.m + r]);
    }
    (a, f.sv[..r * cols].to_vec())
}

fn quantize(x: &[f32]) -> Result<rd::Quantized> {
    Ok(rd::uniform_quantize(
        x,
        &rd::UniformConfig {
            bits: QUANT_BITS,
            ..Default::default()
        },
    )?)
}

/// A stage's level: pruning fraction, rank, or rows dropped.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Level {
    Frac(f64),
    Rank(usize),
    Rows(usize),
    Bits,
}

fn default_level(c: Comp, rows: usize, cols: usize) -> Level {
    match c {
        Comp::Prune => Level::Frac(PRUNE_FRAC),
        Comp::Svd => Level::Rank((rows.min(cols) / 4).max(1)),
        Comp::Quant => Level::Bits,
        Comp::RowPrune => Level::Rows(((rows as f64) * ROW_FRAC).round() as usize),
    }
}

/// Applies compressor `c` at `level` to `x`; `fac` gives the SVD factors of `x.w` when `c` is SVD.
pub(crate) fn apply(c: Comp, level: Level, x: &Rep, fac: Option<&Factors>) -> Result<Rep> {
    let (rows, cols) = (x.rows, x.cols);
    let mut y = x.clone();
    match (c, level) {
        (Comp::Prune, Level::Frac(f)) => {
            y.w = magnitude_prune(&x.w, f);
            if let Form::LowRank { .. } = x.form {
                // The product of quantised factors is not on a grid: kept values are f32 again.
                y.bits = 32;
                y.side_bits = 0;
            }
            y.form = Form::Sparse;
            y.rows_kept = vec![true; rows];
        }
        (Comp::Svd, Level::Rank(r)) => {
            let owned;
            let f = match fac {
                Some(f) => f,
                None => {
                    owned = factors(&x.w, rows, cols)?;
                    &owned
                }
            };
            let r = r.min(f.m).max(1);
            let (a, b) = truncate(f, rows, cols, r);
            y.rows_kept = vec![true; rows];
            y.w = product(&a, &b, rows, r, cols, &y.rows_kept);
            y.form = Form::LowRank { a, b, r };
            y.bits = 32;
            y.side_bits = 0;
        }
        (Comp::Quant, _) => match &x.form {
            Form::Dense => {
                let idx: Vec<usize> = (0..rows * cols)
                    .filter(|&t| x.rows_kept[t / cols])
                    .collect();
                if !idx.is_empty() {
                    let vals: Vec<f32> = idx.iter().map(|&t| x.w[t]).collect();
                    let q = quantize(&vals)?;
                    for (&t, &v) in idx.iter().zip(&q.reconstruction) {
                        y.w[t] = v;
                    }
                    y.side_bits = q.side_bits;
                }
                y.bits = QUANT_BITS;
            }
            Form::Sparse => {
                let idx: Vec<usize> = (0..x.w.len()).filter(|&t| x.w[t] != 0.0).collect();
                if !idx.is_empty() {
                    let vals: Vec<f32> = idx.iter().map(|&t| x.w[t]).collect();
                    let q = quantize(&vals)?;
                    for (&t, &v) in idx.iter().zip(&q.reconstruction) {
                        y.w[t] = v;
                    }
                    y.side_bits = q.side_bits;
                }
                y.bits = QUANT_BITS;
            }
            Form::LowRank { a, b, r } => {
                let r = *r;
                let arows: Vec<f32> = (0..rows)
                    .filter(|&i| x.rows_kept[i])
                    .flat_map(|i| a[i * r..(i + 1) * r].iter().copied())
                    .collect();
                let qb = quantize(b)?;
                let mut a2 = a.clone();
                let mut side = qb.side_bits;
                if !arows.is_empty() {
                    let qa = quantize(&arows)?;
                    for (k, i) in (0..rows).filter(|&i| x.rows_kept[i]).enumerate() {
                        a2[i * r..(i + 1) * r]
                            .copy_from_slice(&qa.reconstruction[k * r..(k + 1) * r]);
                    }
                    side += qa.side_bits;
                }
                let b2 = qb.reconstruction.clone();
                y.w = product(&a2, &b2, rows, r, cols, &x.rows_kept);
                y.form = Form::LowRank { a: a2, b: b2, r };
                y.bits = QUANT_BITS;
                y.side_bits = side;
            }
        },
        (Comp::RowPrune, Level::Rows(k)) => {
            // Drop the k stored rows of smallest norm (ties by index).
            let norms: Vec<f64> =
                x.w.chunks(cols)
                    .map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>())
                    .collect();
            let mut live: Vec<usize> = (0..rows).filter(|&i| x.rows_kept[i]).collect();
            live.sort_by(|&p, &q| norms[p].total_cmp(&norms[q]).then(p.cmp(&q)));
            for &i in live.iter().take(k) {
                y.w[i * cols..(i + 1) * cols].fill(0.0);
                y.rows_kept[i] = false;
            }
            if let Form::Sparse = x.form {
                y.rows_kept = vec![true; rows];
            }
            if let Form::LowRank { a, r, .. } = &mut y.form {
                for (i, &kept) in y.rows_kept.iter().enumerate() {
                    if !kept {
                        a[i * *r..(i + 1) * *r].fill(0.0);
                    }
                }
            }
        }
        (c, l) => return Err(anyhow!("level {l:?} does not fit compressor {c:?}")),
    }
    Ok(y)
}

/// The result of one order on one matrix.
#[derive(Clone, Debug)]
pub(crate) struct OrderRun {
    pub(crate) order: Vec<Comp>,
    /// ‖W − Ŵ‖_F / ‖W‖_F (NaN when the target size cannot be reached).
    pub(crate) rel_error: f64,
    pub(crate) size_bits: u64,
    pub(crate) feasible: bool,
    /// The tuned level, as a number (fraction, rank or rows).
    pub(crate) tuned_level: f64,
}

/// Runs `order` on `w`, bisecting the level of its last tunable stage so the final size is at most
/// `target_bits` with the mildest level; `svd_cache` memoises SVD factors by the prefix before it.
pub(crate) fn run_order(
    w: &[f32],
    rows: usize,
    cols: usize,
    order: &[Comp],
    target_bits: u64,
    svd_cache: &mut HashMap<Vec<Comp>, Factors>,
) -> Result<OrderRun> {
    let tuned = order
        .iter()
        .rposition(|c| c.tunable())
        .ok_or_else(|| anyhow!("order {order:?} has no tunable stage"))?;
    let w_norm = dist(w, &vec![0.0; w.len()]);
    let mut x = Rep::dense(w.to_vec(), rows, cols);
    for (k, &c) in order[..tuned].iter().enumerate() {
        x = apply_cached(c, default_level(c, rows, cols), &x, &order[..k], svd_cache)?;
    }
    let finish = |lv: Level, cache: &mut HashMap<Vec<Comp>, Factors>| -> Result<Rep> {
        let mut y = apply_cached(order[tuned], lv, &x, &order[..tuned], cache)?;
        for &c in &order[tuned + 1..] {
            y = apply(c, default_level(c, rows, cols), &y, None)?;
        }
        Ok(y)
    };
    // Integer level t in lo..=hi, size non-increasing in t (more compression); find the least t
    // with size ≤ target.
    let n = rows * cols;
    let m = rows.min(cols);
    let (to_level, lo, hi): (Box<dyn Fn(usize) -> Level>, usize, usize) = match order[tuned] {
        Comp::Prune => (Box::new(move |t| Level::Frac(t as f64 / n as f64)), 0, n),
        // t = m − r: larger t, smaller rank.
        Comp::Svd => (Box::new(move |t| Level::Rank(m - t)), 0, m - 1),
        Comp::RowPrune => (Box::new(Level::Rows), 0, rows),
        Comp::Quant => return Err(anyhow!("quantisation is not tunable")),
    };
    let at_hi = finish(to_level(hi), svd_cache)?;
    if at_hi.size_bits() > target_bits {
        return Ok(OrderRun {
            order: order.to_vec(),
            rel_error: f64::NAN,
            size_bits: at_hi.size_bits(),
            feasible: false,
            tuned_level: f64::NAN,
        });
    }
    let (mut a, mut b) = (lo, hi);
    let mut best = at_hi;
    let mut best_t = hi;
    while a < b {
        let mid = a + (b - a) / 2;
        let y = finish(to_level(mid), svd_cache)?;
        if y.size_bits() <= target_bits {
            b = mid;
            best = y;
            best_t = mid;
        } else {
            a = mid + 1;
        }
    }
    if best_t != a {
        best = finish(to_level(a), svd_cache)?;
        best_t = a;
    }
    let level = match to_level(best_t) {
        Level::Frac(f) => f,
        Level::Rank(r) => r as f64,
        Level::Rows(k) => k as f64,
        Level::Bits => f64::NAN,
    };
    Ok(OrderRun {
        order: order.to_vec(),
        rel_error: dist(w, &best.w) / w_norm,
        size_bits: best.size_bits(),
        feasible: true,
        tuned_level: level,
    })
}

fn apply_cached(
    c: Comp,
    lv: Level,
    x: &Rep,
    prefix: &[Comp],
    cache: &mut HashMap<Vec<Comp>, Factors>,
) -> Result<Rep> {
    if c == Comp::Svd {
        if !cache.contains_key(prefix) {
            let f = factors(&x.w, x.rows, x.cols)?;
            cache.insert(prefix.to_vec(), f);
        }
        apply(c, lv, x, cache.get(prefix))
    } else {
        apply(c, lv, x, None)
    }
}

/// All permutations of `items`, in lexicographic order of positions.
pub(crate) fn permutations<T: Copy>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

/// Rank (1 = best) of `err` among the feasible errors, counting strictly better ones only.
pub(crate) fn rank_of(err: f64, all: &[f64]) -> usize {
    1 + all.iter().filter(|&&e| e.is_finite() && e < err).count()
}

/// Median that keeps infinite values (an infeasible rule order has infinite regret).
pub(crate) fn median_inf(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 || v[n / 2].is_infinite() {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Per-tensor, per-set result.
struct SetResult {
    tensor: String,
    model: &'static str,
    set: usize,
    eps: Vec<f64>,
    rho_kept: Vec<f64>,
    runs: Vec<OrderRun>,
    /// For each reading (kept, ratio): the rule's order, its rank and regret.
    rule: Vec<(Vec<Comp>, usize, f64)>,
}

fn analyse(
    name: &str,
    model: &'static str,
    w: &[f32],
    rows: usize,
    cols: usize,
    comps: &[Comp],
) -> Result<SetResult> {
    let target = (TARGET_BPW * (rows * cols) as f64).floor() as u64;
    let full = 32 * (rows * cols) as u64;
    let w_norm = dist(w, &vec![0.0; w.len()]);
    let base = Rep::dense(w.to_vec(), rows, cols);
    let mut eps = Vec::new();
    let mut rho_kept = Vec::new();
    for &c in comps {
        let y = apply(c, default_level(c, rows, cols), &base, None)?;
        eps.push(dist(w, &y.w) / w_norm);
        rho_kept.push(y.size_bits() as f64 / full as f64);
    }
    let mut cache = HashMap::new();
    let orders = permutations(comps);
    let runs = orders
        .iter()
        .map(|o| run_order(w, rows, cols, o, target, &mut cache))
        .collect::<Result<Vec<_>>>()?;
    let errs: Vec<f64> = runs.iter().map(|r| r.rel_error).collect();
    let best = errs
        .iter()
        .copied()
        .filter(|e| e.is_finite())
        .fold(f64::INFINITY, f64::min);
    let mut rule = Vec::new();
    let rho_ratio: Vec<f64> = rho_kept.iter().map(|r| 1.0 / r).collect();
    for rho in [&rho_kept, &rho_ratio] {
        let idx = budget::order_by_rule(&eps, rho)?;
        let o: Vec<Comp> = idx.iter().map(|&i| comps[i]).collect();
        let k = orders
            .iter()
            .position(|p| *p == o)
            .ok_or_else(|| anyhow!("rule order missing"))?;
        let e = errs[k];
        let (rank, regret) = if e.is_finite() {
            (rank_of(e, &errs), (e - best) / best)
        } else {
            (orders.len(), f64::INFINITY)
        };
        rule.push((o, rank, regret));
    }
    Ok(SetResult {
        tensor: name.to_string(),
        model,
        set: comps.len(),
        eps,
        rho_kept,
        runs,
        rule,
    })
}

fn label(o: &[Comp]) -> String {
    o.iter().map(|c| c.label()).collect::<Vec<_>>().join("→")
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, "pipe-thm2");
    let quick = ctx.opts.quick;
    let per = if quick { PER_MODEL.1 } else { PER_MODEL.0 };
    let figdir = ctx.figures_dir();
    let mut mats: Vec<(String, &'static str, usize, usize, Vec<f32>)> = Vec::new();
    let models: &[&'static str] = if quick {
        &["MiniLM"]
    } else {
        &["MiniLM", "SmolLM2"]
    };
    for (mi, &model) in models.iter().enumerate() {
        let m = if mi == 0 {
            ctx.encoder()?
        } else {
            ctx.decoder()?
        };
        let mut cands: Vec<_> = m
            .tensors()
            .iter()
            .filter(|t| {
                t.shape.len() == 2
                    && t.param == Param::Weight
                    && t.dtype != DType::I64
                    && t.layer.is_some()
            })
            .cloned()
            .collect();
        cands.sort_by(|a, b| a.name.cmp(&b.name));
        cands.shuffle(&mut rng(seed ^ mi as u64));
        for t in cands.into_iter().take(per) {
            let w = m.tensor_f32(&t.name)?;
            mats.push((t.name.clone(), model, t.shape[0], t.shape[1], w));
        }
    }
    let sets: [&[Comp]; 2] = [
        &[Comp::Prune, Comp::Svd, Comp::Quant],
        &[Comp::Prune, Comp::Svd, Comp::Quant, Comp::RowPrune],
    ];
    let jobs: Vec<(usize, usize)> = (0..mats.len())
        .flat_map(|i| (0..sets.len()).map(move |s| (i, s)))
        .collect();
    let bar = ctx.bar(jobs.len() as u64, "pipe-thm2: orders per matrix");
    let results: Vec<SetResult> = jobs
        .par_iter()
        .map(|&(i, s)| {
            let (name, model, rows, cols, w) = &mats[i];
            let r = analyse(name, model, w, *rows, *cols, sets[s]);
            bar.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();

    // Per set size and reading: share best, median regret.
    let readings = ["kept fraction ρ < 1", "compression ratio ρ > 1"];
    let mut summary = Vec::new();
    let mut set_verdicts = Vec::new();
    for (si, set) in sets.iter().enumerate() {
        let rs: Vec<&SetResult> = results.iter().filter(|r| r.set == set.len()).collect();
        let n = rs.len() as f64;
        let n_orders = permutations(set).len() as f64;
        let p0 = 1.0 / n_orders;
        let chance = p0 + 2.0 * (p0 * (1.0 - p0) / n).sqrt();
        let mut per_reading = Vec::new();
        for (ri, rname) in readings.iter().enumerate() {
            let best_share = rs.iter().filter(|r| r.rule[ri].1 == 1).count() as f64 / n;
            let regrets: Vec<f64> = rs.iter().map(|r| r.rule[ri].2).collect();
            let med = median_inf(&regrets);
            per_reading.push((best_share, med));
            summary.push(
                json!({"stages": set.len(), "reading": rname, "best_share": best_share,
                "median_regret": if med.is_finite() { json!(med) } else { json!("infinite") },
                "chance_threshold": chance, "tensors": rs.len()}),
            );
        }
        let better = match per_reading[0].0.total_cmp(&per_reading[1].0) {
            std::cmp::Ordering::Greater => 0,
            std::cmp::Ordering::Less => 1,
            std::cmp::Ordering::Equal => usize::from(per_reading[0].1 > per_reading[1].1),
        };
        let (share, med) = per_reading[better];
        let v = if share >= BEST_SHARE_SUPPORT && med <= REGRET_SUPPORT {
            Verdict::Supported
        } else if share <= chance || med > REGRET_REFUTE {
            Verdict::Refuted
        } else {
            Verdict::Inconclusive
        };
        set_verdicts.push((si, better, share, med, chance, v));
    }
    let verdict = if set_verdicts.iter().any(|s| s.5 == Verdict::Refuted) {
        Verdict::Refuted
    } else if set_verdicts.iter().all(|s| s.5 == Verdict::Supported) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let txt: Vec<String> = set_verdicts
        .iter()
        .map(|(si, b, share, med, chance, v)| {
            format!(
                "{} stages ({}): rule's order best in {:.0}% of {} matrices (chance bound {:.0}%), median regret {:.1}% → {}",
                sets[*si].len(),
                readings[*b],
                100.0 * share,
                mats.len(),
                100.0 * chance,
                100.0 * med,
                v.label()
            )
        })
        .collect();
    let measured = txt.join("; ");
    let why = format!(
        "{measured}; orders tuned to {TARGET_BPW} bits per weight of real storage; seed {}",
        ctx.opts.seed
    );
    let mut o = Outcome::new(
        "pipe-thm2",
        verdict,
        measured,
        "sort compressors by ε_i/(1−ρ_i) for the best order",
        why,
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Method: {} matrices ({} seeded block matrices of MiniLM and {} of SmolLM2; the papers entry \
         asks for 36 + 60, which at up to 16 SVDs and 30 bisections per matrix does not fit the ~2 \
         minute budget on 2 cores; with --quick one MiniLM matrix only). Compressors: magnitude pruning ({PRUNE_FRAC} when fixed; stored \
         as a 1-bit mask plus kept values), truncated SVD (rank min(rows, cols)/4 when fixed; stored as \
         balanced factors UΣ^½, Σ^½Vᵀ), uniform asymmetric {QUANT_BITS}-bit quantisation per stored \
         part (scale and zero point counted; after SVD it quantises the factors, after pruning the kept \
         values) and, in the four-stage set, row pruning (drops the rows of smallest norm, {ROW_FRAC} \
         when fixed; row mask counted). Each order is tuned to at most {TARGET_BPW} bits per weight by \
         bisection on its last stage with a continuous level (the mildest level that fits); orders that \
         cannot reach the target at any level are infeasible and rank last. ε_i = relative Frobenius \
         error of compressor i alone at its fixed level, ρ_i = its stored size / f32 size (kept \
         fraction) or the inverse (ratio); the rule's order is budget::order_by_rule (largest \
         ε/(1−ρ) first, atan2 extension for ρ ≥ 1). Model loss per compressed tensor is not measured \
         (forward passes do not fit the budget); the verdict uses the weight error.\n",
        mats.len(),
        per,
        if quick { 0 } else { per }
    );
    let _ = writeln!(
        body,
        "| matrix | stages | ε (alone) | ρ kept | best order (error) | rule order, kept reading (rank, regret) | rule order, ratio reading (rank, regret) | infeasible orders |\n|---|---|---|---|---|---|---|---|"
    );
    let mut rows_json = Vec::new();
    for r in &results {
        let bi = r
            .runs
            .iter()
            .enumerate()
            .filter(|(_, x)| x.feasible)
            .min_by(|a, b| a.1.rel_error.total_cmp(&b.1.rel_error))
            .map(|(i, _)| i);
        let best_txt = bi.map_or("none feasible".to_string(), |i| {
            format!("{} ({:.4})", label(&r.runs[i].order), r.runs[i].rel_error)
        });
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rr = |k: usize| {
            format!(
                "{} ({}, {:.1}%)",
                label(&r.rule[k].0),
                r.rule[k].1,
                100.0 * r.rule[k].2
            )
        };
        let infeasible = r.runs.iter().filter(|x| !x.feasible).count();
        let _ = writeln!(
            body,
            "| {} {} | {} | {} | {} | {} | {} | {} | {} |",
            r.model,
            r.tensor,
            r.set,
            f(&r.eps),
            f(&r.rho_kept),
            best_txt,
            rr(0),
            rr(1),
            infeasible
        );
        rows_json.push(json!({"model": r.model, "tensor": r.tensor, "stages": r.set,
            "eps_alone": r.eps, "rho_kept_alone": r.rho_kept,
            "orders": r.runs.iter().map(|x| json!({"order": label(&x.order),
                "rel_error": if x.feasible { json!(x.rel_error) } else { json!(null) },
                "size_bits": x.size_bits, "feasible": x.feasible,
                "tuned_level": if x.feasible { json!(x.tuned_level) } else { json!(null) }})).collect::<Vec<_>>(),
            "rule_kept": {"order": label(&r.rule[0].0), "rank": r.rule[0].1, "regret": if r.rule[0].2.is_finite() { json!(r.rule[0].2) } else { json!(null) }},
            "rule_ratio": {"order": label(&r.rule[1].0), "rank": r.rule[1].1, "regret": if r.rule[1].2.is_finite() { json!(r.rule[1].2) } else { json!(null) }}}));
    }
    let _ = writeln!(
        body,
        "\nThe key ε/(1−ρ) is negative for every compressor under the ratio reading (ρ > 1), so \
         that reading sorts by how little each compressor compresses; the kept-fraction reading puts \
         the least-compressing, most damaging stage first. Neither follows from minimising the final \
         error at a fixed size: what matters is which stored form survives (a dense SVD after \
         quantisation discards the quantised grid, pruning after SVD destroys the low-rank form)."
    );
    // Figure: rank of the rule's order per matrix (better reading per set), 3 and 4 stages.
    let mut series = Vec::new();
    for (si, b, ..) in &set_verdicts {
        let pts: Vec<(f64, f64)> = results
            .iter()
            .filter(|r| r.set == sets[*si].len())
            .enumerate()
            .map(|(k, r)| (k as f64 + 1.0, r.rule[*b].1 as f64))
            .collect();
        series.push(Series::points(
            format!("{} stages ({})", sets[*si].len(), readings[*b]),
            pts,
        ));
    }
    series.push(Series::reference(
        "best possible (rank 1)",
        vec![(1.0, 1.0), (mats.len() as f64, 1.0)],
    ));
    let chart = Chart {
        title: "pipe-thm2: rank of the ε/(1−ρ) order among all orders".into(),
        x_label: "matrix".into(),
        y_label: "rank by final error (1 = best; of 6 or 24)".into(),
        log_x: false,
        log_y: false,
        series,
    };
    o.figures.push(chart.save(
        &figdir,
        "pipe-thm2_rule_rank",
        "Rank of the order sorted by ε_i/(1−ρ_i) among all orders at the same stored size, per matrix.",
    )?);
    o.body = body;
    o.numbers = json!({"seed": ctx.opts.seed, "claim_seed": seed, "target_bpw": TARGET_BPW,
        "prune_frac": PRUNE_FRAC, "quant_bits": QUANT_BITS, "row_frac": ROW_FRAC,
        "summary": summary, "matrices": rows_json});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|t| (((t * 7919) % 1009) as f32 / 504.5 - 1.0) * (1.0 + (t / cols) as f32 / 8.0))
            .collect()
    }

    #[test]
    fn permutations_are_all_distinct() {
        let p = permutations(&[1, 2, 3, 4]);
        assert_eq!(p.len(), 24);
        let mut q = p.clone();
        q.sort();
        q.dedup();
        assert_eq!(q.len(), 24);
        assert_eq!(p[0], vec![1, 2, 3, 4]);
    }

    #[test]
    fn sizes_count_real_bits() {
        let (r, c) = (8, 16);
        let w = mat(r, c);
        let d = Rep::dense(w.clone(), r, c);
        assert_eq!(d.size_bits(), 32 * 128);
        let p = apply(Comp::Prune, Level::Frac(0.5), &d, None).unwrap();
        // bitmask 128 + 64 kept f32 values
        assert_eq!(p.size_bits(), 128 + 64 * 32);
        let q = apply(Comp::Quant, Level::Bits, &p, None).unwrap();
        // 64 kept values at 4 bits + scale (32) + 4-bit zero point
        assert_eq!(q.size_bits(), 128 + 64 * 4 + 32 + 4);
        let s = apply(Comp::Svd, Level::Rank(2), &d, None).unwrap();
        assert_eq!(s.size_bits(), (8 * 2 + 2 * 16) * 32);
        let rp = apply(Comp::RowPrune, Level::Rows(2), &d, None).unwrap();
        assert_eq!(rp.size_bits(), 6 * 16 * 32 + 8);
        assert_eq!(rp.rows_kept.iter().filter(|&&k| !k).count(), 2);
    }

    #[test]
    fn full_rank_svd_reconstructs_and_rank_truncation_matches_thm1() {
        let (r, c) = (6, 9);
        let w = mat(r, c);
        let d = Rep::dense(w.clone(), r, c);
        let s = apply(Comp::Svd, Level::Rank(6), &d, None).unwrap();
        assert!(dist(&w, &s.w) < 1e-4 * dist(&w, &vec![0.0; w.len()]));
        let s2 = apply(Comp::Svd, Level::Rank(2), &d, None).unwrap();
        let t = crate::pipe::claim_thm1::truncated_svd(&w, r, c, 2).unwrap();
        assert!(dist(&s2.w, &t) < 1e-4 * dist(&t, &vec![0.0; t.len()]));
    }

    #[test]
    fn tuning_meets_the_target_with_the_mildest_level() {
        let (r, c) = (16, 24);
        let w = mat(r, c);
        let mut cache = HashMap::new();
        let target = (3.0 * (r * c) as f64) as u64;
        let o = [Comp::Quant, Comp::Prune];
        let run = run_order(&w, r, c, &o, target, &mut cache).unwrap();
        assert!(run.feasible && run.size_bits <= target);
        // One fewer pruned entry would exceed the target: brute-force the threshold.
        let base = apply(Comp::Quant, Level::Bits, &Rep::dense(w.clone(), r, c), None).unwrap();
        let k = (run.tuned_level * (r * c) as f64).round() as usize;
        let milder = apply(
            Comp::Prune,
            Level::Frac((k - 1) as f64 / (r * c) as f64),
            &base,
            None,
        )
        .unwrap();
        assert!(milder.size_bits() > target);
        // SVD in f32 cannot reach 1 bit per weight: infeasible.
        let run2 = run_order(
            &w,
            r,
            c,
            &[Comp::Quant, Comp::Svd],
            (r * c) as u64 / 4,
            &mut cache,
        )
        .unwrap();
        assert!(!run2.feasible);
    }

    #[test]
    fn rank_counts_strictly_better_feasible_orders() {
        assert_eq!(rank_of(0.2, &[0.3, 0.1, f64::NAN, 0.2]), 2);
        assert_eq!(rank_of(0.1, &[0.3, 0.1, 0.2]), 1);
        assert!((median_inf(&[0.1, f64::INFINITY, 0.3]) - 0.3).abs() < 1e-15);
        assert!(median_inf(&[0.1, f64::INFINITY]).is_infinite());
        assert!((median_inf(&[0.1, 0.2]) - 0.15).abs() < 1e-15);
    }
}
