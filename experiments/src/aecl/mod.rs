//! Claims of the attention energy concentration preprint (`papers/aecl.md`).
