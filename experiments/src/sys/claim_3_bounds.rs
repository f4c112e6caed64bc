//! `sys-3.bounds`: "Project 1 has clear, mathematically proven performance bounds". Aggregates the
//! verdicts of the eight ccd theorems (2.1, 3.1, 4.1, 5.1, 6.1, 7.1, 7.2, 8.1), each computed by its
//! own experiment in this process.
//!
//! This file also holds what the other Project-1 summary claims share: [`outcome_of`] (another
//! claim's outcome, run once per context), [`restated`] (a claim that only repeats
//! another, reported under its own id) and [`aggregate`] (a verdict combined from several claims).

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use serde_json::json;

use crate::registry::CLAIMS;
use crate::report::{Outcome, Verdict};
use crate::Ctx;

/// The eight theorems the claim refers to.
const PARTS: [&str; 8] = [
    "ccd-2.1", "ccd-3.1", "ccd-4.1", "ccd-5.1", "ccd-6.1", "ccd-7.1", "ccd-7.2", "ccd-8.1",
];
/// The bounds that carry the performance promise: any of them refuted refutes the claim.
const REFUTING: [&str; 4] = ["ccd-4.1", "ccd-5.1", "ccd-6.1", "ccd-8.1"];

/// The outcome of claim `id` under the context's options: its registered experiment, run at most
/// once per context ([`Ctx::remember`]; `wall_s` holds the first run's time). A claim with no
/// experiment yet gives a `NotImplemented` outcome, never a guessed verdict.
///
/// # Errors
/// When `id` is not in the registry, or its experiment fails (with the id as context).
pub(crate) fn outcome_of(ctx: &mut Ctx, id: &str) -> Result<Outcome> {
    if let Some(o) = ctx.outcome(id) {
        return Ok(o.clone());
    }
    let claim = CLAIMS
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| anyhow!("{id} is not in the registry"))?;
    let Some(run) = claim.run else {
        return Ok(Outcome::new(
            id,
            Verdict::NotImplemented,
            "-",
            "-",
            "no experiment yet",
        ));
    };
    let t0 = Instant::now();
    let mut o = run(ctx).with_context(|| format!("running {id}"))?;
    o.wall_s = t0.elapsed().as_secs_f64();
    ctx.remember(&o);
    Ok(o)
}

/// A claim that only repeats `source` (rule: "the `source` verdict and its numbers, unchanged"):
/// `source`'s outcome under the id `id`, with a line saying so and `note` added to the body.
///
/// # Errors
/// As [`outcome_of`].
pub(crate) fn restated(ctx: &mut Ctx, id: &str, source: &str, note: &str) -> Result<Outcome> {
    let src = outcome_of(ctx, source)?;
    if src.verdict == Verdict::NotImplemented {
        return Ok(Outcome::new(
            id,
            Verdict::NotImplemented,
            "-",
            "-",
            format!("restates {source}, which has no experiment yet"),
        ));
    }
    let mut o = src.clone();
    o.id = id.to_string();
    o.why = format!("as {source}: {}", src.why);
    o.body = format!(
        "This claim restates {source}; the verdict and every number are that experiment's, unchanged \
         (run once in this process, {:.1} s).{}{note}\n\n{}",
        src.wall_s,
        if note.is_empty() { "" } else { " " },
        src.body
    );
    o.numbers = json!({"restates": source, "source_verdict": src.verdict, "source": src.numbers});
    Ok(o)
}

/// Combines part verdicts: refuted if a part named in `refuting` is refuted; otherwise not
/// implemented while some part has no experiment (the rule cannot be evaluated yet); supported if
/// every part is supported; inconclusive otherwise (a failed part never reaches here: it is an
/// error of the whole claim).
pub(crate) fn combine(parts: &[(&str, Verdict)], refuting: &[&str]) -> Verdict {
    if parts
        .iter()
        .any(|(id, v)| *v == Verdict::Refuted && refuting.contains(id))
    {
        Verdict::Refuted
    } else if parts.iter().any(|(_, v)| *v == Verdict::NotImplemented) {
        Verdict::NotImplemented
    } else if !parts.is_empty() && parts.iter().all(|(_, v)| *v == Verdict::Supported) {
        Verdict::Supported
    } else {
        Verdict::Inconclusive
    }
}

/// How [`aggregate`] reads its parts.
pub(crate) struct Aggregate<'a> {
    /// The claim's id.
    pub(crate) id: &'a str,
    /// The claims it aggregates.
    pub(crate) parts: &'a [&'a str],
    /// The parts whose refutation refutes it.
    pub(crate) refuting: &'a [&'a str],
    /// The claimed figure.
    pub(crate) claimed: &'a str,
    /// The rule, in words, for the body.
    pub(crate) rule: &'a str,
    /// Copy the parts' figures into the outcome.
    pub(crate) with_figures: bool,
}

/// An outcome whose verdict is [`combine`] of other claims' verdicts, with their measured figures
/// and reasons in a table.
///
/// # Errors
/// As [`outcome_of`].
pub(crate) fn aggregate(ctx: &mut Ctx, a: &Aggregate<'_>) -> Result<Outcome> {
    let mut outs = Vec::new();
    let bar = ctx.bar(a.parts.len() as u64, &format!("{}: parts", a.id));
    for &p in a.parts {
        outs.push(outcome_of(ctx, p)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let verdicts: Vec<(&str, Verdict)> = a
        .parts
        .iter()
        .zip(&outs)
        .map(|(&p, o)| (p, o.verdict))
        .collect();
    let verdict = combine(&verdicts, a.refuting);
    let count = |v: Verdict| verdicts.iter().filter(|(_, x)| *x == v).count();
    let list = |v: Verdict| -> String {
        let ids: Vec<&str> = verdicts
            .iter()
            .filter(|(_, x)| *x == v)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    };
    let measured = format!(
        "{} of {} parts supported, {} refuted ({}), {} inconclusive, {} without an experiment",
        count(Verdict::Supported),
        verdicts.len(),
        count(Verdict::Refuted),
        list(Verdict::Refuted),
        count(Verdict::Inconclusive),
        count(Verdict::NotImplemented)
    );
    let refuted_by: Vec<&str> = verdicts
        .iter()
        .filter(|(id, v)| *v == Verdict::Refuted && a.refuting.contains(id))
        .map(|(id, _)| *id)
        .collect();
    let why = match verdict {
        Verdict::Refuted => format!(
            "refuted by {} (decisive parts: {}); supported: {}; inconclusive: {}; no experiment: {}",
            refuted_by.join(", "),
            a.refuting.join(", "),
            list(Verdict::Supported),
            list(Verdict::Inconclusive),
            list(Verdict::NotImplemented)
        ),
        Verdict::NotImplemented => format!(
            "no decisive refutation yet and {} have no experiment, so the rule cannot be evaluated",
            list(Verdict::NotImplemented)
        ),
        _ => format!(
            "supported: {}; refuted (not decisive): {}; inconclusive: {}",
            list(Verdict::Supported),
            list(Verdict::Refuted),
            list(Verdict::Inconclusive)
        ),
    };
    let mut o = Outcome::new(a.id, verdict, measured, a.claimed, why);
    let mut body = format!(
        "**Rule.** {} Each part is its own experiment, run once in this process with the same seed \
         ({}) and mode ({}); their sections hold the method and samples.\n\n\
         | part | decisive | verdict | measured | why | wall s |\n|---|---|---|---|---|---|\n",
        a.rule,
        ctx.opts.seed,
        if ctx.opts.quick { "--quick" } else { "full" }
    );
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for (&p, out) in a.parts.iter().zip(&outs) {
        let _ = writeln!(
            body,
            "| {p} | {} | {} | {} | {} | {:.1} |",
            if a.refuting.contains(&p) { "yes" } else { "no" },
            out.verdict.label(),
            cell(&out.measured),
            cell(&out.why),
            out.wall_s
        );
        if a.with_figures {
            o.figures.extend(out.figures.iter().cloned());
        }
    }
    o.body = body;
    o.numbers = json!({
        "rule_refuting": a.refuting,
        "parts": a.parts.iter().zip(&outs).map(|(&p, out)| json!({
            "id": p, "verdict": out.verdict, "measured": out.measured, "why": out.why,
            "wall_s": out.wall_s, "decisive": a.refuting.contains(&p),
        })).collect::<Vec<_>>(),
    });
    Ok(o)
}

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    aggregate(
        ctx,
        &Aggregate {
            id: "sys-3.bounds",
            parts: &PARTS,
            refuting: &REFUTING,
            claimed: "clear, mathematically proven performance bounds (ccd-6.1, 7.1, 7.2, 8.1)",
            rule: "Supported if all eight theorems are supported; refuted if any of ccd-4.1, ccd-5.1, \
                   ccd-6.1 or ccd-8.1 (the bounds that carry the performance promise) is refuted; \
                   inconclusive otherwise; not implemented while a part has no experiment and no \
                   decisive part is refuted.",
            with_figures: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Inconclusive as I, NotImplemented as N, Refuted as R, Supported as S};

    #[test]
    fn combine_follows_the_rule() {
        let refuting = ["a", "b"];
        assert_eq!(combine(&[("a", S), ("b", S), ("c", S)], &refuting), S);
        // A refuted decisive part refutes even with parts missing or inconclusive.
        assert_eq!(combine(&[("a", R), ("b", N), ("c", I)], &refuting), R);
        // A refuted non-decisive part only makes it inconclusive.
        assert_eq!(combine(&[("a", S), ("b", S), ("c", R)], &refuting), I);
        assert_eq!(combine(&[("a", S), ("b", I), ("c", S)], &refuting), I);
        // Missing parts block every verdict but a decisive refutation.
        assert_eq!(combine(&[("a", S), ("b", S), ("c", N)], &refuting), N);
        assert_eq!(combine(&[], &refuting), I);
    }

    #[test]
    fn the_decisive_parts_are_among_the_parts() {
        assert!(REFUTING.iter().all(|r| PARTS.contains(r)));
        assert!(PARTS.iter().all(|p| CLAIMS.iter().any(|c| c.id == *p)));
    }

    #[test]
    fn outcomes_are_remembered_per_context() {
        let opts = crate::CtxOptions {
            out_dir: std::env::temp_dir().join("claimlab-sys3-memo"),
            ..Default::default()
        };
        let mut a = Ctx::new(opts.clone()).unwrap();
        let b = Ctx::new(opts).unwrap();
        assert!(a.outcome("ccd-9.ratio").is_none());
        let o = outcome_of(&mut a, "ccd-9.ratio").unwrap();
        assert_eq!(a.outcome("ccd-9.ratio").map(|r| r.why.clone()), Some(o.why));
        assert!(b.outcome("ccd-9.ratio").is_none());
    }

    #[test]
    fn unknown_and_unimplemented_claims() {
        let opts = crate::CtxOptions {
            out_dir: std::env::temp_dir().join("claimlab-sys3-unit"),
            ..Default::default()
        };
        let mut ctx = Ctx::new(opts).unwrap();
        assert!(outcome_of(&mut ctx, "nope-1").is_err());
        if let Some(todo) = CLAIMS.iter().find(|c| c.run.is_none()) {
            let o = outcome_of(&mut ctx, todo.id).unwrap();
            assert_eq!(o.verdict, N);
            let r = restated(&mut ctx, "sys-x", todo.id, "").unwrap();
            assert_eq!((r.id.as_str(), r.verdict), ("sys-x", N));
        }
    }

    #[test]
    fn restated_keeps_the_source_verdict_and_numbers() {
        // ccd-9.ratio is arithmetic only: no data needed.
        let opts = crate::CtxOptions {
            out_dir: std::env::temp_dir().join("claimlab-sys3-restated"),
            ..Default::default()
        };
        let mut ctx = Ctx::new(opts).unwrap();
        let src = outcome_of(&mut ctx, "ccd-9.ratio").unwrap();
        let r = restated(&mut ctx, "sys-y", "ccd-9.ratio", "A note.").unwrap();
        assert_eq!(r.id, "sys-y");
        assert_eq!(r.verdict, src.verdict);
        assert_eq!(r.measured, src.measured);
        assert_eq!(r.numbers["source"], src.numbers);
        assert_eq!(r.numbers["restates"], "ccd-9.ratio");
        assert!(r.body.contains("A note.") && r.why.contains(&src.why));
        // The second request is served from the memo: same recorded wall time.
        let again = outcome_of(&mut ctx, "ccd-9.ratio").unwrap();
        assert_eq!(again.wall_s.to_bits(), src.wall_s.to_bits());
    }
}
