//! `sys-1.runtime`: "runtime is O(n log n)". The ccd-7.2 experiment (wall time of our pipeline on
//! growing n, fitted log-log slopes), reported under this id (rule: the ccd-7.2 verdict and its
//! numbers, unchanged).

use anyhow::Result;

use super::claim_3_bounds::restated;
use crate::report::Outcome;
use crate::Ctx;

pub(crate) fn run(ctx: &mut Ctx) -> Result<Outcome> {
    restated(ctx, "sys-1.runtime", "ccd-7.2", "")
}
