//! Claims of the introduction to model compression (`papers/intro.md`).

pub(crate) mod claim_1;
pub(crate) mod claim_2;
pub(crate) mod claim_3;
pub(crate) mod claim_4_flops;
pub(crate) mod claim_4_membound;
pub(crate) mod claim_4_memory;
pub(crate) mod claim_4_roofline;
pub(crate) mod claim_5_distill;
pub(crate) mod claim_5_lowrank;
pub(crate) mod claim_5_prune;
pub(crate) mod claim_5_quant;
pub(crate) mod claim_adam;
pub(crate) mod claim_distilbert;
pub(crate) mod claim_entropy;
pub(crate) mod claim_scaling;
pub(crate) mod claim_sizes;
pub(crate) mod claim_stack;
