//! claimlab-budget (placeholder until its issue lands).
