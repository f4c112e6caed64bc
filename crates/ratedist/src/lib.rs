//! Rate-distortion theory with real numbers attached: closed-form bounds, Blahut-Arimoto with
//! certified gaps, operational quantizers on `f32` tensors and a real entropy coder.
//!
//! # What it computes
//! * Bounds: Gaussian R(D) and D(R) ([`gaussian_rate_bits`], [`gaussian_distortion_mse`]),
//!   reverse water-filling ([`reverse_water_filling`]), the Shannon lower bound
//!   ([`shannon_lower_bound_bits`]) fed by differential entropy estimators
//!   ([`kl_entropy_1d_bits`], [`kl_entropy_bits`], [`histogram_entropy_bits`]), and the binary
//!   source under Hamming distortion ([`binary_hamming_rate_bits`]).
//!
//! # Conventions
//! * **Units.** Rates are in **bits** unless a name ends in `_nats`. The Blahut-Arimoto slope
//!   `slope_nats` is in nats per unit distortion (the channel is q(y) e^(−s d(x,y)), natural
//!   exponent), as in Blahut (1972); the certified gap is reported in both units.
//! * Distortions are per sample (mean squared error for the Gaussian bounds), never totals,
//!   except `d_total` in reverse water-filling, which is the sum over components.
//! * Non-finite input is an [`Error::NonFinite`]; nothing is silently dropped.
//!
//! # Example
//! ```
//! use claimlab_ratedist as rd;
//! let wf = rd::reverse_water_filling(&[4.0, 2.0, 1.0, 0.5, 0.25], 1.0).unwrap();
//! assert!((wf.rate_total_bits - 5.804_820_237_218_405).abs() < 1e-9);
//! ```
//!
//! # Accuracy policy
//! Closed forms agree with `../shared/reference/rd/` to 1e-12; each function states its promise.
#![forbid(unsafe_code)]

mod blahut;
mod codebook;
mod curve;
mod ecsq;
mod entropy_est;
mod error;
mod gaussian;
mod lloyd;
mod quant;
mod rans;
mod special;
pub mod tol;
mod uniform;

pub use blahut::{
    blahut_arimoto, blahut_arimoto_sweep, BlahutConfig, BlahutPoint, BlahutStop, DistortionMatrix,
};
pub use codebook::{fixed_codebook_quantize, nf4_quantize, NF4_LEVELS};
pub use curve::{operational_curve, CurvePoint, EntropyEstimator, OperationalCurve};
pub use ecsq::{ecsq_quantize, uniform_ecsq_density, EcsqConfig, EcsqPoint, EcsqRecon};
pub use entropy_est::{
    histogram_entropy_bits, kl_entropy_1d_bits, kl_entropy_bits, HistogramEntropy,
};
pub use error::{Error, Result};
pub use gaussian::{
    binary_hamming_rate_bits, gaussian_distortion_mse, gaussian_rate_bits, reverse_water_filling,
    shannon_lower_bound_bits, WaterFilling,
};
pub use lloyd::{
    lloyd_fit_samples, lloyd_max_density, lloyd_quantize, LloydConfig, LloydFit, LloydInit,
};
pub use quant::{Quantized, CODEBOOK_VALUE_BITS, SCALE_BITS};
pub use rans::{
    coded_size, decode_symbols, empirical_entropy_bits, encode_symbols, CodedSize,
    MAX_DISTINCT_SYMBOLS, MAX_STREAM_SYMBOLS,
};
pub use uniform::{uniform_quantize, Granularity, UniformConfig, UniformMode};
