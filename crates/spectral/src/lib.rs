//! claimlab-spectral (placeholder until its issue lands).
