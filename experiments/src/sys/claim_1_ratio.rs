//! `sys-1.ratio`: "compression ratio is O(n / log n)". The ccd-8.1 experiment (best models within
//! 5 KB and their real loss), reported under this id (rule: the ccd-8.1 verdict and its numbers,
//! unchanged).

use anyhow::Result;

use super::claim_3_bounds::restated;
use crate::report::Outcome;
use crate::Ctx;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    restated(ctx, "sys-1.ratio", "ccd-8.1", "")
}
