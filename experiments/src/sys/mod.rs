//! Claims of the two-system overview (`papers/sys.md`).
