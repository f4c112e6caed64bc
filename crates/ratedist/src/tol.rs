//! Named tolerances and constants.

/// Default stopping tolerance of Blahut-Arimoto on the certified gap between the upper and lower
/// bounds on R, in nats.
pub const BA_GAP_NATS: f64 = 1e-9;
/// Default iteration cap of Blahut-Arimoto.
pub const BA_MAX_ITER: usize = 100_000;
/// How far a probability vector's sum may be from 1 before it is rejected (it is then renormalised).
pub const PROB_SUM: f64 = 1e-6;
/// Relative tolerance on the water level of reverse water-filling (bisection stops below it).
pub const WATER_LEVEL_REL: f64 = 1e-15;
/// Default Lloyd-Max stopping tolerance on the largest change of a reconstruction level.
pub const LLOYD_STEP: f64 = 1e-12;
/// Default absolute tolerance of the adaptive Simpson quadrature used for densities.
pub const QUAD_ABS: f64 = 1e-13;
/// ln 2.
pub const LN_2: f64 = std::f64::consts::LN_2;
