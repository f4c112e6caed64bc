//! Claims of the compression-pipelines document (`papers/pipe.md`).

pub(crate) mod claim_fisher;
pub(crate) mod claim_intensity;
pub(crate) mod claim_kv;
pub(crate) mod claim_lagrangian;
pub(crate) mod claim_latency;
pub(crate) mod claim_pareto;
pub(crate) mod claim_roofline;
pub(crate) mod claim_scale;
pub(crate) mod claim_smax;
pub(crate) mod claim_thm1;
pub(crate) mod claim_thm1_linear;
pub(crate) mod claim_thm2;
pub(crate) mod claim_thm3;
pub(crate) mod claim_thm4;
pub(crate) mod claim_thm5;
pub(crate) mod claim_thm6;
pub(crate) mod roofline_common;
