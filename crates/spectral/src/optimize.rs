//! Small derivative-free optimiser for the 2-parameter alternatives (Nelder-Mead with restarts).

use crate::tol::{NM_FTOL, NM_MAX_ITER, NM_MAX_TOTAL, NM_XTOL};

/// Outcome of [`nelder_mead`].
#[derive(Debug, Clone)]
pub(crate) struct NmResult {
    pub(crate) x: Vec<f64>,
    pub(crate) f: f64,
    pub(crate) iterations: usize,
    pub(crate) converged: bool,
}

fn nm_once(f: &impl Fn(&[f64]) -> f64, x0: &[f64], step: &[f64]) -> NmResult {
    let n = x0.len();
    let eval = |x: &[f64]| {
        let v = f(x);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    let mut pts: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += step[i];
        pts.push(p);
    }
    let mut vals: Vec<f64> = pts.iter().map(|p| eval(p)).collect();
    let mut it = 0;
    let mut converged = false;
    while it < NM_MAX_ITER {
        it += 1;
        // order: best first; ties by index keep it deterministic
        let mut idx: Vec<usize> = (0..=n).collect();
        idx.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]).then(a.cmp(&b)));
        pts = idx.iter().map(|&i| pts[i].clone()).collect();
        vals = idx.iter().map(|&i| vals[i]).collect();
        let spread_f = vals[n] - vals[0];
        let spread_x = pts[1..]
            .iter()
            .flat_map(|p| p.iter().zip(&pts[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if spread_f <= NM_FTOL * vals[0].abs().max(1.0)
            && spread_x <= NM_XTOL * (1.0 + pts[0].iter().map(|v| v.abs()).fold(0.0, f64::max))
        {
            converged = true;
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| pts[..n].iter().map(|p| p[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + t * (pts[n][j] - centroid[j]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = eval(&xr);
        if fr < vals[0] {
            let xe = along(-2.0);
            let fe = eval(&xe);
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            let (xc, fc) = if fr < vals[n] {
                let xc = along(-0.5);
                let fc = eval(&xc);
                (xc, fc)
            } else {
                let xc = along(0.5);
                let fc = eval(&xc);
                (xc, fc)
            };
            if fc < vals[n].min(fr) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                // shrink towards the best point
                for i in 1..=n {
                    let p: Vec<f64> = (0..n)
                        .map(|j| pts[0][j] + 0.5 * (pts[i][j] - pts[0][j]))
                        .collect();
                    vals[i] = eval(&p);
                    pts[i] = p;
                }
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| vals[a].total_cmp(&vals[b]).then(a.cmp(&b)))
        .unwrap_or(0);
    NmResult {
        x: pts[best].clone(),
        f: vals[best],
        iterations: it,
        converged,
    }
}

/// Minimises `f` from `x0` with an initial simplex of steps `step`, restarting from the best point
/// until a restart no longer improves the value.
pub(crate) fn nelder_mead(f: impl Fn(&[f64]) -> f64, x0: &[f64], step: &[f64]) -> NmResult {
    let mut best = nm_once(&f, x0, step);
    let mut total = best.iterations;
    for _ in 0..20 {
        if total >= NM_MAX_TOTAL || !best.f.is_finite() {
            break;
        }
        let next = nm_once(&f, &best.x, step);
        total += next.iterations;
        let improved = next.f < best.f - NM_FTOL * best.f.abs().max(1.0);
        if next.f <= best.f {
            best = NmResult {
                iterations: total,
                ..next
            };
        }
        if !improved {
            break;
        }
    }
    best.iterations = total;
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock() {
        let r = nelder_mead(
            |x| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2),
            &[-1.2, 1.0],
            &[0.1, 0.1],
        );
        assert!(r.converged);
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            r.x
        );
    }
}
