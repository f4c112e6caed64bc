//! `sys-1.memory`: "memory usage is O(n log n / k) for k compression stages". The ccd-7.1
//! experiment (peak memory of our pipeline on growing n, k = 1..3 stages), reported under this id
//! (rule: the ccd-7.1 verdict and its numbers, unchanged).

use anyhow::Result;

use super::claim_3_bounds::restated;
use crate::report::Outcome;
use crate::Ctx;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    restated(ctx, "sys-1.memory", "ccd-7.1", "")
}
