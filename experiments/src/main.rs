//! The `claimlab` binary.
fn main() {}
