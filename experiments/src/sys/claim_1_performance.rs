//! `sys-1.performance`: "compressed models keep performance within the proven bounds". The ccd-6.1
//! run (|ΔL| ≤ Kε judged as a predictor on real compressed variants) plus the loss of the models at
//! the sizes the document advertises (ccd-9.size), combined: refuted if either is refuted, supported
//! if both are supported, inconclusive otherwise.

use anyhow::Result;

use super::claim_3_bounds::{aggregate, Aggregate};
use crate::report::Outcome;
use crate::Ctx;

/// The two experiments the claim rests on; each refutes it alone.
const PARTS: [&str; 2] = ["ccd-6.1", "ccd-9.size"];

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    aggregate(
        ctx,
        &Aggregate {
            id: "sys-1.performance",
            parts: &PARTS,
            refuting: &PARTS,
            claimed: "performance within |ΔL| ≤ Kε (no number)",
            rule: "Refuted if either ccd-6.1 (the Lipschitz bound as a predictor of real loss \
                   changes) or ccd-9.size (the loss of the best model at the advertised 3-5 KB) is \
                   refuted; supported if both are supported; inconclusive otherwise.",
            with_figures: true,
        },
    )
}
