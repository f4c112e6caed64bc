//! `sys-conclusion`: "together the frameworks keep mathematical rigour and functional guarantees".
//! Combines sys-1.performance (Project 1's guarantee) and sys-2.remove (Project 2's selective
//! removal): supported if both are supported, refuted if either is refuted, inconclusive otherwise.

use anyhow::Result;

use super::claim_3_bounds::{aggregate, Aggregate};
use crate::report::Outcome;
use crate::Ctx;

/// The two claims the conclusion rests on; each refutes it alone.
const PARTS: [&str; 2] = ["sys-1.performance", "sys-2.remove"];

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    aggregate(
        ctx,
        &Aggregate {
            id: "sys-conclusion",
            parts: &PARTS,
            refuting: &PARTS,
            claimed: "rigour and guaranteed function (no number)",
            rule: "Supported if sys-1.performance and sys-2.remove are both supported; refuted if \
                   either is refuted; inconclusive otherwise.",
            with_figures: false,
        },
    )
}
