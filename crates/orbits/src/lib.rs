//! claimlab-orbits (placeholder until its issue lands).
