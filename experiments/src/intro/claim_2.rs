//! `intro-2`: the best compression is the smallest model whose loss rises by at most ε, and the
//! solutions form a Pareto frontier. Whole-model (size, loss) points of SmolLM2 and MiniLM from the
//! intro-scaling menu (quantisation and pruning of every block linear, real stored bits); for 20
//! values of ε the brute-force constrained optimum, checked against the brute-force Pareto front
//! and against `claimlab_budget::pareto_front`.

use anyhow::Result;
use claimlab_budget::pareto_front;
use serde_json::json;
use std::fmt::Write as _;

use super::claim_scaling::{measure_menu, menu};
use crate::aecl::common::{figure, start};
use crate::aecl::compress::{mean, Scorer};
use crate::plot::Series;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "intro-2";
/// Number of loss budgets ε.
const EPSILONS: usize = 20;

/// Indices of the points that no other point dominates (brute force, O(n²)): q dominates p when
/// `size_q ≤ size_p`, `loss_q ≤ loss_p` and one of them is strict.
pub(crate) fn pareto_brute(pts: &[(f64, f64)]) -> Vec<usize> {
    (0..pts.len())
        .filter(|&i| {
            !pts.iter()
                .any(|q| q.0 <= pts[i].0 && q.1 <= pts[i].1 && (q.0 < pts[i].0 || q.1 < pts[i].1))
        })
        .collect()
}

/// Every point of minimum size among those with `loss ≤ base + eps` (empty when none is feasible).
pub(crate) fn constrained_optima(pts: &[(f64, f64)], base: f64, eps: f64) -> Vec<usize> {
    let feasible: Vec<usize> = (0..pts.len()).filter(|&i| pts[i].1 <= base + eps).collect();
    let Some(min) = feasible.iter().map(|&i| pts[i].0).min_by(f64::total_cmp) else {
        return Vec::new();
    };
    feasible.into_iter().filter(|&i| pts[i].0 <= min).collect()
}

/// How one optimum stands against the front.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) enum Standing {
    /// On the front.
    OnFront,
    /// Weakly dominated, but tied in size with a front point.
    TiedInSize,
    /// Strictly dominated (smaller and less lossy point exists): only a bug can give this.
    StrictlyDominated,
    /// Dominated in another way (not tied in size, not strictly dominated).
    Dominated,
}

/// The standing of point `i` given the front.
pub(crate) fn standing(pts: &[(f64, f64)], front: &[usize], i: usize) -> Standing {
    let p = pts[i];
    if front.contains(&i) {
        Standing::OnFront
    } else if pts.iter().any(|q| q.0 < p.0 && q.1 < p.1) {
        Standing::StrictlyDominated
    } else if front.iter().any(|&j| (pts[j].0 - p.0).abs() <= 0.0) {
        Standing::TiedInSize
    } else {
        Standing::Dominated
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let (seed, models, figdir) = start(ctx, ID)?;
    let quick = ctx.opts.quick;
    let (windows, context, sentences, every) = if quick {
        (1, 64, 12, 3)
    } else {
        (1, 256, 60, 1)
    };
    let methods = menu(quick, false);
    let mut body = format!(
        "Points: the uncompressed model and every quantisation and pruning setting of the intro-scaling \
         menu ({} settings) applied to {}; size = stored bits of the block linears (f32 when uncompressed), \
         loss = SmolLM2 mean NLL on {} held-out Brown news tokens, MiniLM 1 − mean cosine on {sentences} \
         sentences. For {EPSILONS} budgets ε evenly spaced from 0 to the largest loss increase, every \
         minimum-size point with loss ≤ L + ε (brute force) is checked against the brute-force Pareto front \
         (which must equal `claimlab_budget::pareto_front`). Seed {seed} (the menu is deterministic).\n\n\
         | model | points | front size | front equals budget::pareto_front | optima | on front | tied in size | strictly dominated | other |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        methods.len(),
        if quick { "every third block (quick)" } else { "every block" },
        windows * context
    );
    let mut counts = [0usize; 4];
    let mut agree_all = true;
    let mut numbers = Vec::new();
    let mut series = Vec::new();
    for m in &models {
        let scorer = Scorer::new(ctx, m, windows, context, sentences)?;
        let (base, menu_pts) = measure_menu(ctx, m, &scorer, every, &methods)?;
        let l0 = mean(&base);
        let dense_bits = menu_pts
            .iter()
            .map(|p| p.stored_bits * p.ratio)
            .fold(0.0, f64::max);
        let mut pts: Vec<(f64, f64)> = vec![(dense_bits, l0)];
        let mut labels = vec!["uncompressed".to_string()];
        for p in &menu_pts {
            pts.push((p.stored_bits, p.loss));
            labels.push(p.label.clone());
        }
        let front = pareto_brute(&pts);
        let mut fast = pareto_front(&pts)?;
        fast.sort_unstable();
        let agree = fast == front;
        agree_all &= agree;
        let max_inc = pts.iter().map(|p| p.1 - l0).fold(0.0, f64::max);
        let mut local = [0usize; 4];
        let mut rows = Vec::new();
        for k in 0..EPSILONS {
            let eps = max_inc * k as f64 / (EPSILONS - 1) as f64;
            let opt = constrained_optima(&pts, l0, eps);
            let st: Vec<Standing> = opt.iter().map(|&i| standing(&pts, &front, i)).collect();
            for s in &st {
                let slot = match s {
                    Standing::OnFront => 0,
                    Standing::TiedInSize => 1,
                    Standing::StrictlyDominated => 2,
                    Standing::Dominated => 3,
                };
                local[slot] += 1;
                counts[slot] += 1;
            }
            rows.push(json!({"eps": eps, "optima": opt.iter().map(|&i| labels[i].clone()).collect::<Vec<_>>(),
                "standing": st}));
        }
        let _ = writeln!(
            body,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.name,
            pts.len(),
            front.len(),
            if agree { "yes" } else { "NO" },
            local.iter().sum::<usize>(),
            local[0],
            local[1],
            local[2],
            local[3]
        );
        let gb = |b: f64| b / 8e6;
        series.push(Series::points(
            format!("{} points", m.name),
            pts.iter().map(|p| (gb(p.0), p.1 - l0)).collect(),
        ));
        series.push(Series::line(
            format!("{} Pareto front", m.name),
            front
                .iter()
                .map(|&i| (gb(pts[i].0), pts[i].1 - l0))
                .collect(),
        ));
        numbers.push(json!({"model": m.name, "probe": scorer.probe.describe(), "base_loss": l0,
            "points": pts.iter().zip(&labels).map(|(p, l)| json!({"label": l, "bits": p.0, "loss": p.1})).collect::<Vec<_>>(),
            "front": front, "budget_front_agrees": agree, "budgets": rows}));
    }
    let verdict = if counts[2] > 0 || !agree_all {
        Verdict::Refuted
    } else if counts[3] == 0 {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    };
    let _ = writeln!(
        body,
        "\nThe statement is a definition plus the fact that a constrained optimum is weakly Pareto optimal: a \
         point both smaller and less lossy than a minimum-size feasible point would itself be feasible and \
         smaller. Ties in size (several settings with the same bits) are the only way a minimum-size solution \
         can sit off the front."
    );
    let total: usize = counts.iter().sum();
    let mut o = Outcome::new(
        ID,
        verdict,
        format!(
            "{total} constrained optima: {} on the front, {} tied in size, {} strictly dominated",
            counts[0], counts[1], counts[2]
        ),
        "constrained optima lie on the Pareto frontier",
        format!(
            "{EPSILONS} budgets × 2 models over {} menu points each: {} on the front, {} tied in size, {} strictly \
             dominated, {} otherwise dominated; brute-force front {} budget::pareto_front; seed {seed}",
            methods.len() + 1,
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            if agree_all { "equals" } else { "DIFFERS from" }
        ),
    );
    o.figures.push(figure(
        &figdir,
        ("intro-2_pareto", "Whole-model (size, loss increase) points of quantisation and pruning, with their Pareto fronts"),
        "Size against loss increase: menu points and Pareto fronts",
        ("stored size of the block linears (MB)", "loss increase over the uncompressed model"),
        (true, false),
        series,
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "counts": {"on_front": counts[0], "tied": counts[1],
        "strictly_dominated": counts[2], "other": counts[3]}, "models": numbers});
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_and_optima() {
        let pts = [(1.0, 5.0), (2.0, 3.0), (2.0, 4.0), (3.0, 3.0), (4.0, 1.0)];
        let front = pareto_brute(&pts);
        assert_eq!(front, vec![0, 1, 4]);
        let mut fast = pareto_front(&pts).unwrap();
        fast.sort_unstable();
        assert_eq!(fast, front);
        // Budget 3.5 over base 0: (2,3) and (2,4)? only loss ≤ 3.5 → (2,3),(3,3),(4,1); min size 2.
        assert_eq!(constrained_optima(&pts, 0.0, 3.5), vec![1]);
        // Budget 4: both size-2 points qualify; (2,4) is tied in size with a front point.
        let opt = constrained_optima(&pts, 0.0, 4.0);
        assert_eq!(opt, vec![1, 2]);
        assert_eq!(standing(&pts, &front, 2), Standing::TiedInSize);
        assert_eq!(standing(&pts, &front, 3), Standing::Dominated);
        assert_eq!(standing(&pts, &front, 1), Standing::OnFront);
        assert!(constrained_optima(&pts, 0.0, 0.5).is_empty());
        let bad = [(1.0, 1.0), (2.0, 2.0)];
        assert_eq!(
            standing(&bad, &pareto_brute(&bad), 1),
            Standing::StrictlyDominated
        );
    }
}
