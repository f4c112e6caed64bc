//! Claims of the compression-distillation document (`papers/ccd.md`).

pub(crate) mod claim_1_1;
pub(crate) mod claim_1_2;
pub(crate) mod claim_2_1;
pub(crate) mod claim_3_1;
pub(crate) mod claim_4_1;
pub(crate) mod claim_5_1;
pub(crate) mod claim_6_1;
pub(crate) mod claim_7_1;
pub(crate) mod claim_7_2;
pub(crate) mod claim_8_1;
pub(crate) mod claim_9_memory;
pub(crate) mod claim_9_ratio;
pub(crate) mod claim_9_runtime;
pub(crate) mod claim_9_size;
