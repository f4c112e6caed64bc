//! Claims of the two-system overview (`papers/sys.md`).

pub(crate) mod claim_1_algebra;
