//! Integration tests of claimlab-topology: one binary, one module per area.

mod cocycles;
mod common;
mod crate_rules;
mod distances;
mod lower_star;
mod reference;
mod vr;
