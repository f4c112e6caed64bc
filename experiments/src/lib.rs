//! The claim runner behind the `claimlab` binary.
//!
//! Every claim of the five source documents (restated with stable ids in `papers/`) is an entry of
//! [`registry::CLAIMS`]. A claim with an implementation runs on real weights through a [`Ctx`] and
//! returns an [`Outcome`]: a verdict (supported, refuted, inconclusive), the measured figure against
//! the claimed one, one line of why, sections of numbers, figures, and a JSON record. The
//! [`report`] module writes `report.md` and `report.json` with provenance.
//!
//! This crate owns everything the area crates must not: the command line, files, environment
//! variables, progress bars and thread pools.

pub mod ctx;
pub mod inspect;
pub mod papers;
pub mod plot;
pub mod registry;
pub mod report;
pub mod stats;
pub mod tools;

mod aecl;
mod ccd;
mod intro;
mod pipe;
mod sys;

pub use ctx::{Ctx, CtxOptions};
pub use report::{Outcome, Verdict};
