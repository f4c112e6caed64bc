//! Small numerical helpers: compensated sums, cosine, ranks and Spearman correlation.

/// Mean with Neumaier-compensated summation; `NaN` for an empty slice.
pub(crate) fn mean_compensated(v: &[f64]) -> f64 {
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    for &x in v {
        let t = sum + x;
        if sum.abs() >= x.abs() {
            comp += (sum - t) + x;
        } else {
            comp += (x - t) + sum;
        }
        sum = t;
    }
    (sum + comp) / v.len() as f64
}
