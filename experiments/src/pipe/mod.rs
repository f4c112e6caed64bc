//! Claims of the compression-pipelines document (`papers/pipe.md`).

pub(crate) mod claim_fisher;
pub(crate) mod claim_intensity;
pub(crate) mod claim_thm1;
pub(crate) mod claim_thm1_linear;
pub(crate) mod claim_thm2;
