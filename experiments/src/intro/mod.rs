//! Claims of the introduction to model compression (`papers/intro.md`).

pub(crate) mod claim_1;
pub(crate) mod claim_entropy;
