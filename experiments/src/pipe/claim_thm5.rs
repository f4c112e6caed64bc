//! `pipe-thm5`: "the optimal per-layer error budget is ε_l* ∝ 1/S_l".
//!
//! SmolLM2, block linears in the groups of `pipe-lagrangian`. Sensitivity S_g is measured as in
//! the source's definition, a slope of loss against error norm: the NLL increase of the group at
//! 4 bits (from the shared menus) over the Frobenius norm of its 4-bit weight error. Three
//! allocations of per-row quantisation bit widths at the size of uniform 3-bit are compared on
//! held-out perplexity: uniform 3 bits; ε_g ∝ 1/S_g (each group gets the cheapest width whose error
//! norm is within its budget, the constant bisected to fit the size); and the Lagrangian on the
//! measured menus.

use anyhow::{bail, Result};
use claimlab_budget::{lagrangian_allocation, Item};
use serde_json::json;
use std::fmt::Write as _;

use crate::aecl::common::claim_seed;
use crate::pipe::claim_lagrangian::{
    block_linears, compress, group_overrides, mean_and_chunk_se, menu_run, Evaluator, Opt, CHUNKS,
};
use crate::pipe::claim_thm1::dist;
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// Bit widths the ε ∝ 1/S allocation may use (3, 4 and 5 with `--quick`).
const WIDTHS: [u32; 6] = [2, 3, 4, 5, 6, 8];
/// The uniform reference width (its size is the budget of all three). The papers entry says
/// about 3.5 bits per weight; integer widths force 3 or 4, and uniform 3-bit per-row quantisation
/// of every block linear destroys SmolLM2 (perplexity in the thousands), so 4.
const UNIFORM_BITS: u32 = 4;
/// Differences beyond this many standard errors decide.
const SE_MULT: f64 = 2.0;

/// For each group the cheapest width whose error norm is at most `c / s[g]`, given per-group
/// (bits, error norm) options sorted by bits; the largest width when none is within budget.
pub(crate) fn widths_for(c: f64, s: &[f64], opts: &[Vec<(u64, f64)>]) -> Vec<usize> {
    s.iter()
        .zip(opts)
        .map(|(&sg, o)| {
            let budget = c / sg;
            o.iter()
                .position(|&(_, e)| e <= budget)
                .unwrap_or(o.len() - 1)
        })
        .collect()
}

/// The least constant c (bisection in log space) whose allocation fits `target` bits.
pub(crate) fn fit_constant(s: &[f64], opts: &[Vec<(u64, f64)>], target: u64) -> Option<Vec<usize>> {
    let size = |ch: &[usize]| -> u64 { ch.iter().zip(opts).map(|(&k, o)| o[k].0).sum() };
    let (mut lo, mut hi) = (1e-12f64, 1e12f64);
    if size(&widths_for(hi, s, opts)) > target {
        return None;
    }
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if size(&widths_for(mid, s, opts)) <= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(widths_for(hi, s, opts))
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = claim_seed(ctx.opts.seed, "pipe-thm5");
    let quick = ctx.opts.quick;
    let figdir = ctx.figures_dir();
    let mr = menu_run(ctx)?;
    let (windows, window) = if quick { (1, 64) } else { (4, 256) };
    let ev = Evaluator::new(ctx, windows, window)?;
    let bar = ctx.bar(3, "pipe-thm5: allocations");
    let dec = ctx.decoder()?;
    let linears = block_linears(dec);
    let ng = mr.groups.len();
    // Per group and width: stored bits and error norm.
    let widths: &[u32] = if quick { &WIDTHS[1..4] } else { &WIDTHS };
    let mut acc: Vec<Vec<(u64, f64)>> = vec![vec![(0, 0.0); widths.len()]; ng];
    for lin in &linears {
        let Some(g) = mr.groups.iter().position(|b| b.contains(&lin.layer)) else {
            continue;
        };
        let w = dec.tensor_f32(&lin.name)?;
        for (k, &b) in widths.iter().enumerate() {
            let (c, nb) = compress(&w, lin, Opt::Quant(b))?;
            acc[g][k].0 += nb;
            acc[g][k].1 += dist(&w, &c).powi(2);
        }
    }
    let opts: Vec<Vec<(u64, f64)>> = acc
        .into_iter()
        .map(|o| o.into_iter().map(|(b, sq)| (b, sq.sqrt())).collect())
        .collect();
    let k4 = mr
        .options
        .iter()
        .position(|&o| o == Opt::Quant(4))
        .ok_or_else(|| anyhow::anyhow!("the shared menus lack the 4-bit option"))?;
    let w4 = widths
        .iter()
        .position(|&b| b == 4)
        .ok_or_else(|| anyhow::anyhow!("4-bit is not among the widths"))?;
    // S_g = ΔL(4-bit) / ‖ΔW(4-bit)‖, floored at a tenth of the smallest positive value.
    let raw: Vec<f64> = (0..ng).map(|g| mr.menus[g][k4].1 / opts[g][w4].1).collect();
    let floor = raw
        .iter()
        .copied()
        .filter(|&x| x > 0.0)
        .fold(f64::INFINITY, f64::min)
        / 10.0;
    if !floor.is_finite() {
        bail!("no group has a positive measured sensitivity");
    }
    let floored = raw.iter().filter(|&&x| x <= 0.0).count();
    let sens: Vec<f64> = raw.iter().map(|&x| x.max(floor)).collect();
    let wu = widths
        .iter()
        .position(|&b| b == UNIFORM_BITS)
        .ok_or_else(|| anyhow::anyhow!("the uniform width is not among the widths"))?;
    let uniform: Vec<usize> = vec![wu; ng];
    let target: u64 = opts.iter().map(|o| o[wu].0).sum();
    let inv = fit_constant(&sens, &opts, target)
        .ok_or_else(|| anyhow::anyhow!("ε ∝ 1/S cannot fit the uniform size"))?;
    // Lagrangian on the measured menus (quantisation options only).
    let qopts: Vec<(usize, u32)> = mr
        .options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Opt::Quant(b) => Some((i, *b)),
            _ => None,
        })
        .collect();
    let items: Vec<Vec<Item>> = (0..ng)
        .map(|g| {
            qopts
                .iter()
                .map(|&(i, _)| Item::new(mr.menus[g][i].0 as f64, mr.menus[g][i].1))
                .collect()
        })
        .collect();
    let lag = lagrangian_allocation(&items, target as f64)?;
    let lag_bits: Vec<u32> = lag.choice.iter().map(|&k| qopts[k].1).collect();
    let allocs: Vec<(&str, Vec<u32>)> = vec![
        ("uniform", uniform.iter().map(|&k| widths[k]).collect()),
        ("ε ∝ 1/S", inv.iter().map(|&k| widths[k]).collect()),
        ("Lagrangian", lag_bits),
    ];
    let mut results = Vec::new();
    for (name, bits) in &allocs {
        let o: Vec<Option<Opt>> = bits.iter().map(|&b| Some(Opt::Quant(b))).collect();
        let (ov, size) = group_overrides(dec, &linears, &mr.groups, &o)?;
        let v = ev.nll(&ov)?;
        bar.inc(1);
        results.push((name.to_string(), bits.clone(), size, v));
    }
    bar.finish_and_clear();
    let n_w = mr.n_weights as f64;
    let (d_inv, se_inv) = mean_and_chunk_se(&results[1].3, &results[0].3);
    let (d_lag, se_lag) = mean_and_chunk_se(&results[2].3, &results[0].3);
    let verdict = if d_inv < -SE_MULT * se_inv {
        Verdict::Supported
    } else if d_inv > SE_MULT * se_inv {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let ppl = |v: &[f64]| (v.iter().sum::<f64>() / v.len() as f64).exp();
    let measured = format!(
        "ε ∝ 1/S minus uniform: {d_inv:+.4} nats/token (SE {se_inv:.4}); Lagrangian minus uniform {d_lag:+.4} (SE {se_lag:.4}); perplexity uniform {:.2}, 1/S {:.2}, Lagrangian {:.2}",
        ppl(&results[0].3),
        ppl(&results[1].3),
        ppl(&results[2].3)
    );
    let why = format!(
        "{measured}; all at ≤ {:.3} bits per weight (uniform {UNIFORM_BITS}-bit size), {} groups, {} held-out tokens, SE over {CHUNKS} token chunks, {floored} sensitivities floored; seed {}",
        target as f64 / n_w,
        ng,
        ev.tokens.len(),
        ctx.opts.seed
    );
    let mut o = Outcome::new("pipe-thm5", verdict, measured, "ε_l* ∝ 1/S_l", why);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Groups of blocks and their 4-bit loss increases come from pipe-lagrangian's menus \
         ({} tokens). pipe-fisher's sensitivities belong to another module and are not read; \
         S_g = ΔL_g(4-bit)/‖ΔW_g(4-bit)‖_F is the source's definition (a derivative of loss with \
         respect to error norm) as a finite slope. Non-positive measured slopes are floored at a \
         tenth of the smallest positive one ({floored} floored). The papers entry asks for 16 × 512 \
         evaluation tokens (quick 4 × 512); SmolLM2 on 2 shared cores allows {} here. The budget is \
         the size of uniform {UNIFORM_BITS}-bit per-row quantisation (the entry's 3.5 bits needs a \
         fractional width; uniform 3-bit destroys the model, perplexity in the thousands).\n",
        mr.tokens,
        ev.tokens.len()
    );
    let _ = writeln!(
        body,
        "| group (blocks) | S_g (nats per unit ‖ΔW‖) | uniform | ε ∝ 1/S | Lagrangian |\n|---|---|---|---|---|"
    );
    for (g, (blocks, s)) in mr.groups.iter().zip(&raw).enumerate() {
        let _ = writeln!(
            body,
            "| {blocks:?} | {s:.3e} | {} | {} | {} |",
            results[0].1[g], results[1].1[g], results[2].1[g]
        );
    }
    let _ = writeln!(
        body,
        "\n| allocation | bits per weight | mean NLL | perplexity |\n|---|---|---|---|"
    );
    for (name, _, size, v) in &results {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let _ = writeln!(
            body,
            "| {name} | {:.3} | {m:.4} | {:.2} |",
            *size as f64 / n_w,
            m.exp()
        );
    }
    let _ = writeln!(
        body,
        "\nMinimising Σ S_l ε_l (a linear loss model) under a size budget gives corner solutions, \
         not proportional ones; ε ∝ 1/S follows only with an unstated model of how size depends on \
         ε. The Lagrangian on measured menus needs no such model."
    );
    let chart = Chart {
        title: "pipe-thm5: bit widths per group under three allocations".into(),
        x_label: "group".into(),
        y_label: "bits per weight (index width)".into(),
        log_x: false,
        log_y: false,
        series: results
            .iter()
            .map(|(name, bits, ..)| {
                Series::line(
                    format!("{name} (ppl {:.2})", (r_mean(&results, name)).exp()),
                    bits.iter()
                        .enumerate()
                        .map(|(g, &b)| (g as f64, f64::from(b)))
                        .collect(),
                )
            })
            .collect(),
    };
    o.figures.push(chart.save(
        &figdir,
        "pipe-thm5_allocations",
        "Bit width per group of blocks for uniform, ε ∝ 1/S and Lagrangian allocations at the same \
         size, with each allocation's measured perplexity.",
    )?);
    o.body = body;
    o.numbers = json!({"seed": ctx.opts.seed, "claim_seed": seed, "groups": mr.groups,
        "sensitivity_raw": raw, "sensitivity_used": sens, "target_bits": target,
        "options_bits_errnorm": opts,
        "allocations": results.iter().map(|(n, b, s, v)| json!({"name": n, "bits": b, "size_bits": s,
            "mean_nll": v.iter().sum::<f64>() / v.len() as f64})).collect::<Vec<_>>(),
        "inv_minus_uniform": d_inv, "inv_minus_uniform_se": se_inv,
        "lagrangian_minus_uniform": d_lag, "lagrangian_minus_uniform_se": se_lag,
        "tokens": ev.tokens.len()});
    Ok(o)
}

fn r_mean(results: &[(String, Vec<u32>, u64, Vec<f64>)], name: &str) -> f64 {
    results
        .iter()
        .find(|r| r.0 == name)
        .map_or(f64::NAN, |r| r.3.iter().sum::<f64>() / r.3.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_sensitivity_gives_sensitive_groups_more_bits() {
        // Two groups with identical options (bits, error): errors halve per extra width.
        let o = vec![(100u64, 4.0), (200, 2.0), (300, 1.0)];
        let opts = vec![o.clone(), o];
        // Group 0 ten times as sensitive: budgets c/10 and c.
        let ch = fit_constant(&[10.0, 1.0], &opts, 400).unwrap();
        // c = 4 is the least that fits: group 0 cannot meet 0.4 and takes the widest option,
        // group 1 the cheapest (error 4 ≤ 4): 300 + 100 bits.
        assert_eq!(ch, vec![2, 0]);
        // At a budget too small for anything but the cheapest: both cheapest.
        assert_eq!(fit_constant(&[10.0, 1.0], &opts, 200).unwrap(), vec![0, 0]);
        assert!(fit_constant(&[10.0, 1.0], &opts, 100).is_none());
    }
}
