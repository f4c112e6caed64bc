//! Tests that cross crates: one test binary, one module per concern.

mod layering;
