//! Claims of the compression-pipelines document (`papers/pipe.md`).

pub(crate) mod claim_intensity;
