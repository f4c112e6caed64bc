//! Integration tests of claimlab-topology: one binary, one module per area.

mod common;
mod distances;
mod reference;
mod vr;
