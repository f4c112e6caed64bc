//! claimlab-topology (placeholder until its issue lands).
