//! The registry of claims: every id of `papers/`, with its experiment where one exists.
//!
//! The list is written out here (not derived from `papers/`) so that a test can catch the two
//! drifting apart: an id in one and not the other fails `registry_matches_papers`.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

#[allow(unused_imports)] // a document module is listed here before its first claim lands
use crate::{aecl, ccd, intro, pipe, sys, Ctx, Outcome};

/// A claim's experiment.
pub type RunFn = fn(&mut Ctx) -> Result<Outcome>;

/// One entry of the registry.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    /// Stable id (as in `papers/`).
    pub id: &'static str,
    /// The experiment, or `None` while it is not implemented.
    pub run: Option<RunFn>,
}

impl Claim {
    /// The document prefix of the id (`ccd`, `pipe`, `sys`, `intro`, `aecl`).
    #[must_use]
    pub fn prefix(&self) -> &'static str {
        self.id.split_once('-').map_or(self.id, |(p, _)| p)
    }
}

const fn done(id: &'static str, run: RunFn) -> Claim {
    Claim { id, run: Some(run) }
}

/// Every claim, in document order.
pub const CLAIMS: &[Claim] = &[
    // CLAIM-LIST-START
    // ccd
    done("ccd-1.1", ccd::claim_1_1::run),
    done("ccd-1.2", ccd::claim_1_2::run),
    done("ccd-2.1", ccd::claim_2_1::run),
    done("ccd-3.1", ccd::claim_3_1::run),
    done("ccd-4.1", ccd::claim_4_1::run),
    done("ccd-5.1", ccd::claim_5_1::run),
    done("ccd-6.1", ccd::claim_6_1::run),
    done("ccd-7.1", ccd::claim_7_1::run),
    done("ccd-7.2", ccd::claim_7_2::run),
    done("ccd-8.1", ccd::claim_8_1::run),
    done("ccd-9.ratio", ccd::claim_9_ratio::run),
    done("ccd-9.size", ccd::claim_9_size::run),
    done("ccd-9.memory", ccd::claim_9_memory::run),
    done("ccd-9.runtime", ccd::claim_9_runtime::run),
    // pipe
    done("pipe-thm1", pipe::claim_thm1::run),
    done("pipe-thm1.linear", pipe::claim_thm1_linear::run),
    done("pipe-thm2", pipe::claim_thm2::run),
    done("pipe-pareto", pipe::claim_pareto::run),
    done("pipe-thm3", pipe::claim_thm3::run),
    done("pipe-lagrangian", pipe::claim_lagrangian::run),
    done("pipe-thm4", pipe::claim_thm4::run),
    done("pipe-scale", pipe::claim_scale::run),
    done("pipe-thm5", pipe::claim_thm5::run),
    done("pipe-fisher", pipe::claim_fisher::run),
    done("pipe-thm6", pipe::claim_thm6::run),
    done("pipe-kv", pipe::claim_kv::run),
    done("pipe-smax", pipe::claim_smax::run),
    done("pipe-latency", pipe::claim_latency::run),
    done("pipe-roofline", pipe::claim_roofline::run),
    done("pipe-intensity", pipe::claim_intensity::run),
    // sys
    done("sys-1.topology", sys::claim_1_topology::run),
    done("sys-1.algebra", sys::claim_1_algebra::run),
    done("sys-1.rd", sys::claim_1_rd::run),
    done("sys-1.memory", sys::claim_1_memory::run),
    done("sys-1.runtime", sys::claim_1_runtime::run),
    done("sys-1.ratio", sys::claim_1_ratio::run),
    done("sys-1.size", sys::claim_1_size::run),
    done("sys-1.hours", sys::claim_1_hours::run),
    done("sys-1.performance", sys::claim_1_performance::run),
    done("sys-2.identify", sys::claim_2_identify::run),
    done("sys-2.flow", sys::claim_2_flow::run),
    done("sys-2.topology", sys::claim_2_topology::run),
    done("sys-2.llm", sys::claim_2_llm::run),
    done("sys-2.data-influence", sys::claim_2_data_influence::run),
    done("sys-2.remove", sys::claim_2_remove::run),
    done("sys-2.cost", sys::claim_2_cost::run),
    done("sys-2.exhaustive", sys::claim_2_exhaustive::run),
    done("sys-3.bounds", sys::claim_3_bounds::run),
    done("sys-conclusion", sys::claim_conclusion::run),
    // intro
    done("intro-1", intro::claim_1::run),
    done("intro-2", intro::claim_2::run),
    done("intro-3", intro::claim_3::run),
    done("intro-entropy", intro::claim_entropy::run),
    done("intro-4.memory", intro::claim_4_memory::run),
    done("intro-4.flops", intro::claim_4_flops::run),
    done("intro-4.roofline", intro::claim_4_roofline::run),
    done("intro-4.membound", intro::claim_4_membound::run),
    done("intro-5.quant", intro::claim_5_quant::run),
    done("intro-5.prune", intro::claim_5_prune::run),
    done("intro-5.lowrank", intro::claim_5_lowrank::run),
    done("intro-5.distill", intro::claim_5_distill::run),
    done("intro-sizes", intro::claim_sizes::run),
    done("intro-adam", intro::claim_adam::run),
    done("intro-distilbert", intro::claim_distilbert::run),
    done("intro-stack", intro::claim_stack::run),
    done("intro-scaling", intro::claim_scaling::run),
    // aecl
    done("aecl-1", aecl::claim_1::run),
    done("aecl-1.lowrank", aecl::claim_1_lowrank::run),
    done("aecl-2", aecl::claim_2::run),
    done("aecl-2.adaptive", aecl::claim_2_adaptive::run),
    done("aecl-3", aecl::claim_3::run),
    done("aecl-3.concentration", aecl::claim_3_concentration::run),
    done("aecl-3.variance", aecl::claim_3_variance::run),
    done("aecl-3.energy", aecl::claim_3_energy::run),
    done("aecl-fig1", aecl::claim_fig1::run),
    done("aecl-fig2", aecl::claim_fig2::run),
    done("aecl-abstract", aecl::claim_abstract::run),
    // CLAIM-LIST-END
];

/// Resolves command-line selectors (ids or document prefixes) to claims, in registry order.
///
/// # Errors
/// When a selector matches nothing; the message lists the known prefixes and near ids.
pub fn select(selectors: &[String]) -> Result<Vec<Claim>> {
    let mut chosen = BTreeSet::new();
    for sel in selectors {
        let sel = sel.trim().to_ascii_lowercase();
        let hits: Vec<usize> = CLAIMS
            .iter()
            .enumerate()
            .filter(|(_, c)| c.id == sel || c.prefix() == sel)
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let near: Vec<&str> = CLAIMS
                .iter()
                .filter(|c| c.id.starts_with(&sel) || sel.starts_with(c.prefix()))
                .map(|c| c.id)
                .take(8)
                .collect();
            bail!(
                "unknown claim or document {sel:?}; documents: ccd, pipe, sys, intro, aecl{}",
                if near.is_empty() {
                    String::new()
                } else {
                    format!("; close ids: {}", near.join(", "))
                }
            );
        }
        chosen.extend(hits);
    }
    Ok(chosen.into_iter().map(|i| CLAIMS[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::papers;

    #[test]
    fn registry_matches_papers() {
        let ours: BTreeSet<&str> = CLAIMS.iter().map(|c| c.id).collect();
        assert_eq!(ours.len(), CLAIMS.len(), "duplicate id in the registry");
        let theirs: Vec<String> = papers::all_claims().into_iter().map(|c| c.id).collect();
        let theirs: BTreeSet<&str> = theirs.iter().map(String::as_str).collect();
        let only_ours: Vec<_> = ours.difference(&theirs).collect();
        let only_papers: Vec<_> = theirs.difference(&ours).collect();
        assert!(
            only_ours.is_empty() && only_papers.is_empty(),
            "registry and papers/ disagree: only in registry {only_ours:?}, only in papers {only_papers:?}"
        );
    }

    #[test]
    fn select_by_id_and_prefix() {
        let by_id = select(&["intro-1".to_string()]).unwrap();
        assert_eq!(by_id.len(), 1);
        let by_prefix = select(&["intro".to_string()]).unwrap();
        assert!(by_prefix.len() >= 2 && by_prefix.iter().all(|c| c.prefix() == "intro"));
        let err = select(&["nope-3".to_string()]).unwrap_err().to_string();
        assert!(err.contains("unknown claim"), "{err}");
    }
}
