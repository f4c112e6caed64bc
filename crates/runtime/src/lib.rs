//! claimlab-runtime (placeholder until its issue lands).
