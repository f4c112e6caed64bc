//! claimlab-ratedist (placeholder until its issue lands).
