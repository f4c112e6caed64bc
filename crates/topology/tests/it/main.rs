//! Integration tests of claimlab-topology: one binary, one module per area.

mod common;
mod reference;
mod vr;
