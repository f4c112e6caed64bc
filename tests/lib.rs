//! Host package for the cross-crate tests in `cross/`.
