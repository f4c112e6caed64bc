//! The crate's one error type.

/// Everything that can go wrong in `claimlab-budget`.
///
/// Data can cause every variant; none of them is a caller bug (those panic, and say so under
/// `# Panics`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input has no elements (no layers, no points, no stages).
    #[error("empty input: {what}")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// A layer's menu has no options.
    #[error("layer {layer} has an empty menu")]
    EmptyMenu {
        /// The offending layer.
        layer: usize,
    },
    /// A menu item has a NaN or infinite cost or distortion.
    #[error("layer {layer}, option {option}: {field} is not finite")]
    NonFiniteItem {
        /// The offending layer.
        layer: usize,
        /// The offending option within the layer.
        option: usize,
        /// `"cost"` or `"distortion"`.
        field: &'static str,
    },
    /// A slice holds NaN or infinite values.
    #[error("{count} non-finite value(s), the first at index {index}")]
    NonFinite {
        /// The first offending index.
        index: usize,
        /// How many values are non-finite.
        count: usize,
    },
    /// A value is outside its allowed range (for example a negative error or Lipschitz constant).
    #[error("value {value} at index {index} is out of range: {reason}")]
    OutOfRange {
        /// The offending index.
        index: usize,
        /// The offending value.
        value: f64,
        /// What the allowed range is.
        reason: &'static str,
    },
    /// A parameter or configuration field is invalid.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Two inputs that must have the same length do not.
    #[error("length mismatch: {what} ({left} vs {right})")]
    LengthMismatch {
        /// Which inputs disagree.
        what: &'static str,
        /// The first length.
        left: usize,
        /// The second length.
        right: usize,
    },
    /// The budget is below the cheapest possible total cost.
    #[error("infeasible budget {budget}: the cheapest allocation costs {min_cost}")]
    Infeasible {
        /// The requested budget.
        budget: f64,
        /// The least achievable total cost.
        min_cost: f64,
    },
    /// A cost is not an integer multiple of the dynamic programme's cost quantum.
    #[error(
        "layer {layer}, option {option}: cost {cost} is not a multiple of the quantum {quantum}"
    )]
    NotOnGrid {
        /// The offending layer.
        layer: usize,
        /// The offending option.
        option: usize,
        /// Its cost.
        cost: f64,
        /// The quantum in force.
        quantum: f64,
    },
    /// An exact solver would need more memory or work than its configured limit.
    #[error("{what}: needs {needed}, limit is {limit}")]
    TooLarge {
        /// What would be too large.
        what: &'static str,
        /// What the problem needs.
        needed: u128,
        /// The configured limit.
        limit: u128,
    },
    /// Branch and bound hit its node limit before proving optimality.
    #[error(
        "branch and bound stopped after {nodes} nodes: best {best}, lower bound {lower_bound}"
    )]
    NodeLimit {
        /// Nodes expanded.
        nodes: u64,
        /// Distortion of the best allocation found (not proven optimal).
        best: f64,
        /// The smallest lower bound still open.
        lower_bound: f64,
    },
    /// An iterative solver did not reach its tolerance.
    #[error("did not converge after {iterations} iterations: {reason}")]
    NotConverged {
        /// Iterations run.
        iterations: u64,
        /// Why it stopped.
        reason: String,
    },
    /// A user-supplied function returned a NaN or infinite value.
    #[error("the user function returned a non-finite value ({what})")]
    UserFunction {
        /// Which function.
        what: &'static str,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
/// Checks that every value is finite, reporting the first offender and the count.
pub(crate) fn check_finite(xs: &[f64]) -> Result<()> {
    let mut first = None;
    let mut count = 0;
    for (i, x) in xs.iter().enumerate() {
        if !x.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        Some(index) => Err(Error::NonFinite { index, count }),
        None => Ok(()),
    }
}
