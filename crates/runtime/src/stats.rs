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

/// Ranks 1..n with ties given their average rank (ties broken by value only, order-independent).
pub(crate) fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]).then(a.cmp(&b)));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]].total_cmp(&v[idx[i]]).is_eq() {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; `None` if either input is constant.
pub(crate) fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa.sqrt() * sbb.sqrt()))
}

/// Spearman rank correlation (Pearson on average ranks); `None` if either input is constant.
pub(crate) fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    pearson(&average_ranks(a), &average_ranks(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        let r = average_ranks(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(r.len(), 4);
        for (got, want) in r.iter().zip([3.5, 1.0, 3.5, 2.0]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn spearman_brute_force() {
        // Without ties Spearman = 1 − 6 Σ d² / (n(n² − 1)).
        let a = [0.1, 0.5, 0.3, 0.9, 0.7, 0.2];
        let b = [1.0, 3.0, 2.0, 4.0, 6.0, 5.0];
        let (ra, rb) = (average_ranks(&a), average_ranks(&b));
        let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
        let n = a.len() as f64;
        let want = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
        let got = spearman(&a, &b).expect("not constant");
        assert!((got - want).abs() < 1e-12);
        assert!((spearman(&a, &a).expect("nc") - 1.0).abs() < 1e-12);
        assert!(spearman(&a, &[1.0; 6]).is_none());
        assert!((mean_compensated(&[1e16, 1.0, -1e16, 1.0]) - 0.5).abs() < 1e-12);
    }
}
