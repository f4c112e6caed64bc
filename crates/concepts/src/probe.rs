//! Linear probes: L2-regularised logistic regression fitted by L-BFGS, with held-out accuracy.

use faer::{Col, Mat, MatRef};

use crate::check::{both_classes, matrix_and_labels};
use crate::error::{Error, Result};
use crate::split::stratified_split;
use crate::stats::wilson_interval;
use crate::tol::ARMIJO;

/// Settings of [`fit_probe`] and [`probe_accuracy`].
///
/// The objective is scikit-learn's `LogisticRegression(C)` on standardised features (each column
/// centred and scaled to unit variance on the training rows; constant columns are dropped):
///
/// ```text
/// minimise  Σᵢ [log(1 + e^{sᵢ}) − yᵢ sᵢ] + ‖w‖²/(2C),   sᵢ = wᵀ x̃ᵢ + b   (b not penalised)
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProbeConfig {
    /// Inverse regularisation strength (scikit-learn's `C`, default 1.0).
    pub c: f64,
    /// Iteration cap of L-BFGS (default 1000).
    pub max_iter: usize,
    /// Stop when the largest gradient entry of the mean objective is below this (default 1e−6).
    pub grad_tol: f64,
    /// Held-out share of each class in [`probe_accuracy`] (default 0.2).
    pub test_fraction: f64,
    /// Seed of the split (default 0).
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            c: 1.0,
            max_iter: 1000,
            grad_tol: 1e-6,
            test_fraction: 0.2,
            seed: 0,
        }
    }
}

impl ProbeConfig {
    fn validate(&self) -> Result<()> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(Error::InvalidParam {
                name: "c",
                value: self.c,
                reason: "must be positive and finite",
            });
        }
        if self.max_iter == 0 {
            return Err(Error::InvalidParam {
                name: "max_iter",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        if self.grad_tol.is_nan() || self.grad_tol <= 0.0 {
            return Err(Error::InvalidParam {
                name: "grad_tol",
                value: self.grad_tol,
                reason: "must be positive",
            });
        }
        Ok(())
    }
}

/// Why the optimiser stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Stop {
    /// The gradient fell below `grad_tol`.
    Converged,
    /// `max_iter` iterations were spent first.
    MaxIter,
    /// The line search could not decrease the objective (at the limit of f64 precision).
    LineSearch,
}

/// A fitted linear probe, in the units of the input columns: `score(x) = weightsᵀ x + bias`,
/// positive class when `score > 0`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LinearProbe {
    /// One weight per input column (0 for constant columns).
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
    /// L-BFGS iterations spent.
    pub iterations: usize,
    /// Why it stopped.
    pub stop: Stop,
    /// Mean training log-loss in nats (without the penalty).
    pub train_log_loss: f64,
}

impl LinearProbe {
    /// Scores `weightsᵀ x + bias` of every row of `x`.
    ///
    /// # Panics
    /// When `x` has a different number of columns than the probe has weights (a caller bug).
    #[must_use]
    #[track_caller]
    pub fn scores(&self, x: MatRef<'_, f64>) -> Vec<f64> {
        assert_eq!(
            x.ncols(),
            self.weights.len(),
            "probe and data widths differ"
        );
        let w = Col::from_fn(self.weights.len(), |j| self.weights[j]);
        let s = x * &w;
        (0..x.nrows()).map(|i| s[i] + self.bias).collect()
    }

    /// Predicted labels (`score > 0`) of every row of `x`.
    ///
    /// # Panics
    /// As [`LinearProbe::scores`].
    #[must_use]
    #[track_caller]
    pub fn predict(&self, x: MatRef<'_, f64>) -> Vec<bool> {
        self.scores(x).into_iter().map(|s| s > 0.0).collect()
    }
}

fn softplus(s: f64) -> f64 {
    if s > 0.0 {
        s + (-s).exp().ln_1p()
    } else {
        s.exp().ln_1p()
    }
}

fn sigmoid(s: f64) -> f64 {
    if s >= 0.0 {
        1.0 / (1.0 + (-s).exp())
    } else {
        let e = s.exp();
        e / (1.0 + e)
    }
}

/// Objective and gradient of the mean-scaled problem at `theta = (w, b)`.
struct Problem {
    xs: Mat<f64>,
    y: Vec<f64>,
    lambda: f64,
}

impl Problem {
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        let (n, d) = (self.xs.nrows(), self.xs.ncols());
        let w = Col::from_fn(d, |j| theta[j]);
        let b = theta[d];
        let s = &self.xs * &w;
        let mut loss = 0.0;
        let mut r = Col::<f64>::zeros(n);
        let mut gb = 0.0;
        for i in 0..n {
            let si = s[i] + b;
            loss += softplus(si) - self.y[i] * si;
            r[i] = sigmoid(si) - self.y[i];
            gb += r[i];
        }
        let nf = n as f64;
        let g = self.xs.transpose() * &r;
        let mut pen = 0.0;
        for j in 0..d {
            grad[j] = g[j] / nf + self.lambda * theta[j];
            pen += theta[j] * theta[j];
        }
        grad[d] = gb / nf;
        (loss / nf + 0.5 * self.lambda * pen, loss / nf)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// L-BFGS (memory 10) with Armijo backtracking; returns `(theta, iterations, stop, data loss)`.
fn lbfgs(p: &Problem, max_iter: usize, grad_tol: f64) -> (Vec<f64>, usize, Stop, f64) {
    const MEM: usize = 10;
    let m = p.xs.ncols() + 1;
    let mut x = vec![0.0; m];
    let mut g = vec![0.0; m];
    let (mut f, mut data) = p.eval(&x, &mut g);
    let mut ss: Vec<Vec<f64>> = Vec::new();
    let mut ys: Vec<Vec<f64>> = Vec::new();
    let mut xn = vec![0.0; m];
    let mut gn = vec![0.0; m];
    for it in 0..max_iter {
        let gmax = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if gmax < grad_tol {
            return (x, it, Stop::Converged, data);
        }
        // Two-loop recursion: dir = −H g.
        let mut q = g.clone();
        let k = ss.len();
        let mut alpha = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / dot(&ys[i], &ss[i]);
            alpha[i] = rho * dot(&ss[i], &q);
            for (qj, yj) in q.iter_mut().zip(&ys[i]) {
                *qj -= alpha[i] * yj;
            }
        }
        let gamma = if k > 0 {
            dot(&ss[k - 1], &ys[k - 1]) / dot(&ys[k - 1], &ys[k - 1])
        } else {
            1.0 / g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300)
        };
        for qj in &mut q {
            *qj *= gamma;
        }
        for i in 0..k {
            let rho = 1.0 / dot(&ys[i], &ss[i]);
            let beta = rho * dot(&ys[i], &q);
            for (qj, sj) in q.iter_mut().zip(&ss[i]) {
                *qj += (alpha[i] - beta) * sj;
            }
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &dir);
        if slope >= 0.0 {
            // Not a descent direction (curvature pairs went stale): restart with steepest descent.
            ss.clear();
            ys.clear();
            dir = g.iter().map(|v| -v).collect();
            slope = dot(&g, &dir);
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            for j in 0..m {
                xn[j] = x[j] + step * dir[j];
            }
            let (fnew, dnew) = p.eval(&xn, &mut gn);
            if fnew <= f + ARMIJO * step * slope {
                let s: Vec<f64> = (0..m).map(|j| xn[j] - x[j]).collect();
                let y: Vec<f64> = (0..m).map(|j| gn[j] - g[j]).collect();
                if dot(&s, &y) > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
                    if ss.len() == MEM {
                        ss.remove(0);
                        ys.remove(0);
                    }
                    ss.push(s);
                    ys.push(y);
                }
                std::mem::swap(&mut x, &mut xn);
                std::mem::swap(&mut g, &mut gn);
                f = fnew;
                data = dnew;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            return (x, it + 1, Stop::LineSearch, data);
        }
    }
    let gmax = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let stop = if gmax < grad_tol {
        Stop::Converged
    } else {
        Stop::MaxIter
    };
    (x, max_iter, stop, data)
}

/// Fits an L2-regularised logistic-regression probe on all rows of `x` (rows are examples).
///
/// # Arguments
/// * `x` — activations, `n × d`, finite.
/// * `labels` — one class per row; both classes must occur.
/// * `cfg` — see [`ProbeConfig`] (only `c`, `max_iter`, `grad_tol` are used here).
///
/// # Returns
/// The probe in the input's units, with its iterations and stop reason (check
/// [`LinearProbe::stop`]: a probe that hit `max_iter` is still returned, flagged as such).
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::DimensionMismatch`] for bad input,
/// [`Error::OneClass`] when a class is missing, [`Error::InvalidParam`] for a bad config.
///
/// # Complexity
/// O(n·d) per L-BFGS iteration; O(n·d) extra memory (the standardised copy).
///
/// # References
/// D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large scale optimization",
/// Math. Programming 45 (1989) 503–528.
///
/// # Example
/// ```
/// use claimlab_concepts::{fit_probe, ProbeConfig, faer::Mat};
/// let x = Mat::from_fn(40, 2, |i, j| if j == 0 { i as f64 } else { (i % 3) as f64 });
/// let labels: Vec<bool> = (0..40).map(|i| i >= 20).collect();
/// let p = fit_probe(x.as_ref(), &labels, &ProbeConfig::default()).unwrap();
/// assert_eq!(p.predict(x.as_ref()), labels);
/// ```
pub fn fit_probe(x: MatRef<'_, f64>, labels: &[bool], cfg: &ProbeConfig) -> Result<LinearProbe> {
    cfg.validate()?;
    matrix_and_labels(x, labels)?;
    both_classes(labels, "the training labels")?;
    let (n, d) = (x.nrows(), x.ncols());
    let nf = n as f64;
    let mut mean = vec![0.0; d];
    let mut sd = vec![0.0; d];
    for j in 0..d {
        let m = (0..n).map(|i| x[(i, j)]).sum::<f64>() / nf;
        let v = (0..n).map(|i| (x[(i, j)] - m).powi(2)).sum::<f64>() / nf;
        mean[j] = m;
        sd[j] = v.sqrt();
    }
    let xs = Mat::from_fn(n, d, |i, j| {
        if sd[j] > 0.0 {
            (x[(i, j)] - mean[j]) / sd[j]
        } else {
            0.0
        }
    });
    let prob = Problem {
        xs,
        y: labels.iter().map(|&b| f64::from(u8::from(b))).collect(),
        lambda: 1.0 / (cfg.c * nf),
    };
    let (theta, iterations, stop, train_log_loss) = lbfgs(&prob, cfg.max_iter, cfg.grad_tol);
    let mut weights = vec![0.0; d];
    let mut bias = theta[d];
    for j in 0..d {
        if sd[j] > 0.0 {
            weights[j] = theta[j] / sd[j];
            bias -= theta[j] * mean[j] / sd[j];
        }
    }
    Ok(LinearProbe {
        weights,
        bias,
        iterations,
        stop,
        train_log_loss,
    })
}

/// Held-out accuracy of a linear probe, with its Wilson 95% interval and the majority-class rate.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ProbeReport {
    /// Accuracy on the held-out rows.
    pub test_accuracy: f64,
    /// Wilson 95% interval of `test_accuracy`.
    pub test_ci95: (f64, f64),
    /// Correctly classified held-out rows.
    pub test_correct: usize,
    /// Held-out rows.
    pub n_test: usize,
    /// Accuracy on the training rows.
    pub train_accuracy: f64,
    /// Training rows.
    pub n_train: usize,
    /// Share of the larger class among the held-out rows (the accuracy of always guessing it).
    pub majority_rate: f64,
    /// The probe (fitted on the training rows).
    pub probe: LinearProbe,
}

fn rows(x: MatRef<'_, f64>, idx: &[usize]) -> Mat<f64> {
    Mat::from_fn(idx.len(), x.ncols(), |i, j| x[(idx[i], j)])
}

fn accuracy(pred: &[bool], truth: &[bool]) -> usize {
    pred.iter().zip(truth).filter(|(a, b)| a == b).count()
}

/// Fits a probe on a seeded stratified split ([`crate::stratified_split`] with
/// `cfg.test_fraction`, `cfg.seed`) and scores it on the held-out rows.
///
/// # Errors
/// As [`fit_probe`] and [`crate::stratified_split`].
///
/// # Complexity
/// As [`fit_probe`].
///
/// # Example
/// ```
/// use claimlab_concepts::{probe_accuracy, ProbeConfig, faer::Mat};
/// let x = Mat::from_fn(100, 1, |i, _| if i % 2 == 0 { 1.0 + (i as f64) * 0.01 } else { -1.0 });
/// let labels: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
/// let r = probe_accuracy(x.as_ref(), &labels, &ProbeConfig::default()).unwrap();
/// assert_eq!(r.test_correct, r.n_test);
/// ```
pub fn probe_accuracy(
    x: MatRef<'_, f64>,
    labels: &[bool],
    cfg: &ProbeConfig,
) -> Result<ProbeReport> {
    cfg.validate()?;
    matrix_and_labels(x, labels)?;
    let split = stratified_split(labels, cfg.test_fraction, cfg.seed)?;
    let xtr = rows(x, &split.train);
    let ytr: Vec<bool> = split.train.iter().map(|&i| labels[i]).collect();
    let xte = rows(x, &split.test);
    let yte: Vec<bool> = split.test.iter().map(|&i| labels[i]).collect();
    probe_accuracy_split(xtr.as_ref(), &ytr, xte.as_ref(), &yte, cfg)
}

/// As [`probe_accuracy`], on a split the caller made (for example an eraser fitted on the same
/// training rows).
///
/// # Errors
/// As [`fit_probe`]; [`Error::DimensionMismatch`] when the two parts differ in width;
/// [`Error::Empty`] when the test part is empty.
pub fn probe_accuracy_split(
    x_train: MatRef<'_, f64>,
    labels_train: &[bool],
    x_test: MatRef<'_, f64>,
    labels_test: &[bool],
    cfg: &ProbeConfig,
) -> Result<ProbeReport> {
    matrix_and_labels(x_test, labels_test)?;
    if x_test.ncols() != x_train.ncols() {
        return Err(Error::DimensionMismatch {
            what: "columns of the test part",
            expected: x_train.ncols(),
            got: x_test.ncols(),
        });
    }
    let probe = fit_probe(x_train, labels_train, cfg)?;
    let test_correct = accuracy(&probe.predict(x_test), labels_test);
    let train_correct = accuracy(&probe.predict(x_train), labels_train);
    let n_test = labels_test.len();
    let pos = labels_test.iter().filter(|&&b| b).count();
    Ok(ProbeReport {
        test_accuracy: test_correct as f64 / n_test as f64,
        test_ci95: wilson_interval(test_correct, n_test)?,
        test_correct,
        n_test,
        train_accuracy: train_correct as f64 / labels_train.len() as f64,
        n_train: labels_train.len(),
        majority_rate: pos.max(n_test - pos) as f64 / n_test as f64,
        probe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rng;
    use rand::RngExt;

    fn gaussian(r: &mut impl rand::Rng) -> f64 {
        // Box-Muller.
        let u: f64 = r.random::<f64>().max(1e-300);
        let v: f64 = r.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    #[test]
    fn separable_data_gives_accuracy_near_one() {
        let mut r = rng(1);
        let (n, d) = (400, 20);
        let labels: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let x = Mat::from_fn(n, d, |i, j| {
            let shift = if j == 3 {
                if labels[i] {
                    3.0
                } else {
                    -3.0
                }
            } else {
                0.0
            };
            shift + gaussian(&mut r)
        });
        let rep = probe_accuracy(x.as_ref(), &labels, &ProbeConfig::default()).unwrap();
        assert_eq!(rep.probe.stop, Stop::Converged);
        // Bayes accuracy Φ(3) = 0.99865; 80 test rows.
        assert!(rep.test_accuracy >= 0.975, "{rep:?}");
        assert!(rep.train_accuracy >= 0.98);
        assert!((rep.majority_rate - 0.5).abs() < 1e-12);
    }

    #[test]
    fn random_labels_stay_near_chance() {
        // Labels independent of x: held-out accuracy inside the Wilson interval of 0.5 widened
        // for the test; false-alarm rate of |acc − 0.5| > 0.1 at n_test = 400 is ≈ 6e−5.
        let mut r = rng(2);
        let (n, d) = (2000, 10);
        let x = Mat::from_fn(n, d, |_, _| gaussian(&mut r));
        let labels: Vec<bool> = (0..n).map(|_| r.random::<bool>()).collect();
        let rep = probe_accuracy(x.as_ref(), &labels, &ProbeConfig::default()).unwrap();
        assert!(
            (rep.test_accuracy - 0.5).abs() < 0.1,
            "{}",
            rep.test_accuracy
        );
    }

    #[test]
    fn gradient_vanishes_at_the_optimum_and_matches_finite_differences() {
        let mut r = rng(3);
        let (n, d) = (60, 4);
        let xs = Mat::from_fn(n, d, |_, _| gaussian(&mut r));
        let y: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from(xs[(i, 0)] + 0.5 * gaussian(&mut r) > 0.0)))
            .collect();
        let p = Problem {
            xs,
            y,
            lambda: 0.05,
        };
        // Finite differences at a random point.
        let theta: Vec<f64> = (0..=d).map(|_| gaussian(&mut r)).collect();
        let mut g = vec![0.0; d + 1];
        p.eval(&theta, &mut g);
        let mut scratch = vec![0.0; d + 1];
        for j in 0..=d {
            let h = 1e-6;
            let mut tp = theta.clone();
            tp[j] += h;
            let mut tm = theta.clone();
            tm[j] -= h;
            let fd = (p.eval(&tp, &mut scratch).0 - p.eval(&tm, &mut scratch).0) / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-7, "{j}: {fd} vs {}", g[j]);
        }
        let (opt, _, stop, _) = lbfgs(&p, 1000, 1e-10);
        assert_eq!(stop, Stop::Converged);
        p.eval(&opt, &mut g);
        assert!(g.iter().all(|v| v.abs() < 1e-10));
        // The optimum beats random perturbations of it (strict convexity).
        let f0 = p.eval(&opt, &mut scratch).0;
        for _ in 0..20 {
            let t: Vec<f64> = opt.iter().map(|v| v + 0.01 * gaussian(&mut r)).collect();
            assert!(p.eval(&t, &mut scratch).0 > f0);
        }
    }

    #[test]
    fn constant_columns_get_zero_weight() {
        let x = Mat::from_fn(30, 2, |i, j| if j == 0 { 5.0 } else { i as f64 });
        let labels: Vec<bool> = (0..30).map(|i| i >= 15).collect();
        let p = fit_probe(x.as_ref(), &labels, &ProbeConfig::default()).unwrap();
        assert!(p.weights[0].abs() < 1e-300);
        assert_eq!(p.predict(x.as_ref()), labels);
    }

    #[test]
    fn probe_errors() {
        let x = Mat::from_fn(4, 2, |i, j| (i + j) as f64);
        let cfg = ProbeConfig::default();
        assert!(matches!(
            fit_probe(x.as_ref(), &[true, true, true, true], &cfg),
            Err(Error::OneClass(_))
        ));
        assert!(matches!(
            fit_probe(x.as_ref(), &[true, false], &cfg),
            Err(Error::DimensionMismatch { .. })
        ));
        let mut y = x.clone();
        y[(1, 1)] = f64::NAN;
        assert!(matches!(
            fit_probe(y.as_ref(), &[true, false, true, false], &cfg),
            Err(Error::NonFinite { index: 3, count: 1 })
        ));
        let e = Mat::<f64>::zeros(0, 2);
        assert!(matches!(
            fit_probe(e.as_ref(), &[], &cfg),
            Err(Error::Empty)
        ));
        let bad = ProbeConfig {
            c: -1.0,
            ..ProbeConfig::default()
        };
        assert!(matches!(
            fit_probe(x.as_ref(), &[true, false, true, false], &bad),
            Err(Error::InvalidParam { name: "c", .. })
        ));
    }
}
