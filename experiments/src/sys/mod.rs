//! Claims of the two-system overview (`papers/sys.md`).

pub(crate) mod claim_1_algebra;
pub(crate) mod claim_1_hours;
pub(crate) mod claim_1_memory;
pub(crate) mod claim_1_performance;
pub(crate) mod claim_1_ratio;
pub(crate) mod claim_1_rd;
pub(crate) mod claim_1_runtime;
pub(crate) mod claim_1_size;
pub(crate) mod claim_1_topology;
pub(crate) mod claim_2_cost;
pub(crate) mod claim_2_data_influence;
pub(crate) mod claim_2_exhaustive;
pub(crate) mod claim_2_flow;
pub(crate) mod claim_2_identify;
pub(crate) mod claim_2_llm;
pub(crate) mod claim_2_remove;
pub(crate) mod claim_2_topology;
pub(crate) mod claim_3_bounds;
pub(crate) mod claim_conclusion;
pub(crate) mod features;
pub(crate) mod patching;
