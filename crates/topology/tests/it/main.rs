//! Integration tests of claimlab-topology: one binary, one module per area.

mod cocycles;
mod common;
mod distances;
mod reference;
mod vr;
