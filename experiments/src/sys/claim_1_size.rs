//! `sys-1.size`: "in practice a 30 GB transformer compresses to about 3-5 KB". The ccd-9.size
//! experiment (best 5 KB models of SmolLM2 and MiniLM, their loss against the baseline and chance),
//! reported under this id (rule: the ccd-9.size verdict and its numbers, unchanged).

use anyhow::Result;

use super::claim_3_bounds::restated;
use crate::report::Outcome;
use crate::Ctx;

/// What the overview adds to ccd-9.size.
const NOTE: &str = "The overview presents the figure as a practical result, which implies that a run \
                    was done; it cites no artefact, model or measurement, so the only evidence is the \
                    run below.";

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    restated(ctx, "sys-1.size", "ccd-9.size", NOTE)
}
