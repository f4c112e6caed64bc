//! Claims of the attention energy concentration preprint (`papers/aecl.md`).

pub(crate) mod claim_1;
pub(crate) mod claim_1_lowrank;
pub(crate) mod claim_2;
pub(crate) mod claim_2_adaptive;
pub(crate) mod claim_3;
pub(crate) mod claim_3_concentration;
pub(crate) mod claim_3_energy;
pub(crate) mod claim_3_variance;
pub(crate) mod claim_abstract;
pub(crate) mod claim_fig1;
pub(crate) mod claim_fig2;
pub(crate) mod common;
pub(crate) mod compress;
