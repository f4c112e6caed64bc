//! `sys-2.exhaustive`: no testable content; the inventory of the named levels and the measured
//! share of the identification pipeline's wall time spent in rayon-parallel sections.

use anyhow::Result;
use serde_json::json;

use super::claim_2_identify::{identify_cached, identify_seed};
use super::features::load_models;
use crate::plot::{Chart, Series};
use crate::report::{Outcome, Verdict};
use crate::Ctx;

const ID: &str = "sys-2.exhaustive";
/// Refuted for the testable part when the parallel share of wall time is below this.
const PARALLEL_MIN: f64 = 0.5;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    let seed = identify_seed(ctx);
    let models = load_models(ctx, None)?;
    let res = identify_cached(ctx, &models)?;
    let wall: f64 = res.iter().map(|m| m.wall_s).sum();
    let par: f64 = res.iter().map(|m| m.parallel_s).sum();
    let share = par / wall;
    let threads = rayon::current_num_threads();
    let verdict = if share < PARALLEL_MIN {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let mut o = Outcome::new(
        ID,
        verdict,
        format!("parallel share {:.0}% of {wall:.1} s; levels implemented: manifold yes, graph yes, quantum no", 100.0 * share),
        "exhaustive, fully parallel, manifold/graph/quantum levels",
        format!(
            "inconclusive by construction unless the parallel share ({:.0}%) is below {:.0}%; sys-2.identify pipeline on {threads} rayon threads, seed {seed}",
            100.0 * share,
            100.0 * PARALLEL_MIN
        ),
    );
    let mut body = String::from(
        "The document names levels of analysis without a procedure. Inventory of concrete counterparts in this \
         project:\n\n| level | counterpart | where |\n|---|---|---|\n\
         | manifold | persistent homology of the concept's class clouds (H0/H1, bottleneck) | sys-2.topology, claimlab-topology |\n\
         | graph | information-flow graph of concept directions between layers | sys-2.flow, claimlab-concepts |\n\
         | quantum | none: \"quantum structure analysis\" of a classical network is not defined | — |\n\
         | recursion to endpoints | none defined | — |\n\n",
    );
    body.push_str(
        "Parallel share: wall time of the sys-2.identify pipeline spent inside rayon-parallel sections (forward \
         passes over sentences, probes over layers, the ablation forward passes) over its total wall time \
         (tokenisation, matrix assembly, direction fits and the rest are sequential).\n\n\
         | model | wall s | parallel s | share |\n|---|---|---|---|\n",
    );
    let mut pts = Vec::new();
    let mut numbers = Vec::new();
    for (i, m) in res.iter().enumerate() {
        body.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.0}% |\n",
            m.name,
            m.wall_s,
            m.parallel_s,
            100.0 * m.parallel_s / m.wall_s
        ));
        pts.push((i as f64, m.parallel_s / m.wall_s));
        numbers.push(json!({"model": m.name, "wall_s": m.wall_s, "parallel_s": m.parallel_s}));
    }
    let chart = Chart {
        title: "Share of wall time in parallel sections".into(),
        x_label: "model (0 = SmolLM2, 1 = MiniLM)".into(),
        y_label: "share".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series::points("parallel share", pts),
            Series::reference("50%", vec![(0.0, PARALLEL_MIN), (1.0, PARALLEL_MIN)]),
        ],
    };
    o.figures.push(chart.save(
        &ctx.figures_dir(),
        "sys-2.exhaustive_parallel",
        "Share of the identification pipeline's wall time spent in rayon-parallel sections, per model",
    )?);
    o.body = body;
    o.numbers = json!({"seed": seed, "threads": threads, "share": share, "models": numbers,
        "levels": {"manifold": "persistence (sys-2.topology)", "graph": "flow graph (sys-2.flow)", "quantum": null}});
    Ok(o)
}
