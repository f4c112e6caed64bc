//! Matrix–vector products for single-token decoding.
//!
//! Decoding one token multiplies every weight matrix by one activation vector: 538 MB of f32
//! weights stream from memory per token for SmolLM2-135M, so the speed is the memory bandwidth the
//! threads can draw. This module streams the rows of one or several matrices (stacked: q/k/v, or
//! gate/up, read in one pass and one rayon dispatch) in a few large contiguous blocks per thread.
//! Each row's dot product runs on AVX-512F, else AVX2 + FMA, when the CPU has them (detected at
//! run time, so the binary stays portable), with software prefetch ahead of the rows being read,
//! and on a plain 8-lane loop otherwise.
//!
//! # Accuracy
//! Each dot product sums in f32 over 8 (portable), 16 (AVX2) or 32 (AVX-512) interleaved partial
//! sums, so its
//! error is within the classical bound `k·ε·Σ|w_t x_t|` (ε = 2⁻²³, `k` the row length); the tests
//! check that bound against an f64 reference on random and odd-sized inputs.

use rayon::prelude::*;

/// Smallest number of rows in one parallel work unit (smaller products are not worth a split).
const MIN_BLOCK_ROWS: usize = 64;

/// Work units per rayon thread: a few per thread lets a thread that finishes early (the machine
/// may be shared) take over part of another's rows, while each unit stays one long contiguous read.
const BLOCKS_PER_THREAD: usize = 4;

/// The matrix–vector product `y = W·x` of the decoding kernel, for `W` row-major `[m, k]` (PyTorch
/// linear layout, `k = x.len()`, `m = w.len() / k`): what every weight matrix of a decoded token
/// goes through. Rows are split into a few contiguous blocks per thread of the global rayon pool;
/// each dot product uses AVX-512F or AVX2 + FMA when the CPU has them (run-time detection), with
/// software prefetch, and a portable 8-lane loop otherwise.
///
/// # Accuracy
/// Each entry is within `k·ε·Σ_t |w_t x_t|` of the exact dot product (ε = 2⁻²³, f32 sums over 8
/// to 32 interleaved partial sums).
///
/// # Panics
/// If `x` is empty or `w.len()` is not a multiple of `x.len()` (caller bugs).
///
/// # Complexity
/// `2·m·k` flops, one pass over `w` (`4·m·k` bytes: memory-bandwidth bound for large `W`); the
/// result is the only allocation.
#[must_use]
#[track_caller]
pub fn matvec(x: &[f32], w: &[f32]) -> Vec<f32> {
    matvec_stacked(x, &[w])
}

/// `W_i · x` for each matrix `W_i` of `ws` (row-major `[m_i, k]`, `k = x.len()`), concatenated:
/// the result has `Σ m_i` entries, rows of `ws[0]` first. All rows are split into contiguous blocks
/// over the global rayon pool in a single dispatch.
///
/// # Panics
/// If `x` is empty or a matrix's length is not a multiple of `x.len()`.
#[track_caller]
pub(crate) fn matvec_stacked(x: &[f32], ws: &[&[f32]]) -> Vec<f32> {
    matvec_stacked_with(Kernel::detect(), BLOCKS_PER_THREAD, x, ws)
}

/// [`matvec_stacked`] with a chosen kernel and number of work units per thread (for the
/// kernels' comparison in the tests).
#[track_caller]
fn matvec_stacked_with(
    kernel: Kernel,
    blocks_per_thread: usize,
    x: &[f32],
    ws: &[&[f32]],
) -> Vec<f32> {
    let k = x.len();
    assert!(k > 0, "matvec_stacked: empty input vector");
    for w in ws {
        assert!(
            w.len().is_multiple_of(k),
            "matvec_stacked: matrix length {} is not a multiple of {k}",
            w.len()
        );
    }
    let total: usize = ws.iter().map(|w| w.len() / k).sum();
    let mut y = vec![0.0f32; total];
    if total == 0 {
        return y;
    }
    let threads = rayon::current_num_threads().max(1);
    let block = total
        .div_ceil(blocks_per_thread * threads)
        .next_multiple_of(8)
        .max(MIN_BLOCK_ROWS);
    let run_block = |b: usize, yb: &mut [f32]| {
        // Global row of yb[0]; walk the matrices whose rows overlap this block.
        let mut row = b * block;
        let mut out = yb;
        let mut first = 0;
        for w in ws {
            let m = w.len() / k;
            if !out.is_empty() && row < first + m {
                let lo = row - first;
                let count = (first + m - row).min(out.len());
                let (head, tail) = out.split_at_mut(count);
                kernel.rows(&w[lo * k..(lo + count) * k], x, head);
                out = tail;
                row += count;
            }
            first += m;
        }
    };
    if total <= block {
        run_block(0, &mut y);
    } else {
        y.par_chunks_mut(block)
            .enumerate()
            .for_each(|(b, yb)| run_block(b, yb));
    }
    y
}

/// Which dot-product loop the CPU can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Plain Rust, 8 partial sums (vectorised by the compiler for the baseline target).
    Portable,
    /// AVX2 + FMA intrinsics. Only [`Kernel::detect`] returns it, after checking the CPU.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// AVX-512F intrinsics, with software prefetch this many floats ahead (0: none). Only
    /// [`Kernel::detect`] (or a test after the same check) returns it.
    #[cfg(target_arch = "x86_64")]
    Avx512(usize),
}

impl Kernel {
    /// The fastest kernel this CPU supports (the feature test is cached by std).
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            return Kernel::Avx512(PREFETCH_FLOATS);
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Kernel::Avx2Fma;
        }
        Kernel::Portable
    }

    /// `y[r] = w[r·k..(r+1)·k] · x` for every row r of `w` (`k = x.len()`, `w.len() = y.len()·k`).
    fn rows(self, w: &[f32], x: &[f32], y: &mut [f32]) {
        assert_eq!(w.len(), y.len() * x.len(), "matvec rows: shape mismatch");
        match self {
            Kernel::Portable => rows_portable(w, x, y),
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx2Fma` is only constructed by `detect` after the run-time check that this
            // CPU supports AVX2 and FMA, which is the only requirement of `rows_avx2`.
            Kernel::Avx2Fma => unsafe { rows_avx2(w, x, y) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx512` is only constructed after the run-time check that this CPU
            // supports AVX-512F, the only requirement of `rows_avx512`.
            Kernel::Avx512(prefetch) => unsafe { rows_avx512(w, x, y, prefetch) },
        }
    }
}

/// Portable dot products, one row at a time with 8 partial sums.
fn rows_portable(w: &[f32], x: &[f32], y: &mut [f32]) {
    let k = x.len();
    for (out, row) in y.iter_mut().zip(w.chunks_exact(k)) {
        let mut acc = [0.0f32; 8];
        let (rc, xc) = (row.chunks_exact(8), x.chunks_exact(8));
        let tail: f32 = rc
            .remainder()
            .iter()
            .zip(xc.remainder())
            .map(|(a, b)| a * b)
            .sum();
        for (a, b) in rc.zip(xc) {
            for l in 0..8 {
                acc[l] += a[l] * b[l];
            }
        }
        *out = acc.iter().sum::<f32>() + tail;
    }
}

/// Sum of the 8 lanes of `v`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
    _mm_cvtss_f32(s)
}

/// AVX2/FMA dot products: four rows at a time (each `x` chunk loaded once for four rows), two
/// 8-lane accumulators per row (eight independent FMA chains hide the FMA latency), a prefetch
/// [`PREFETCH_FLOATS`] ahead of each row, a scalar loop for the last `k mod 16` columns, and a
/// one-row loop for the last `m mod 4` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_avx2(w: &[f32], x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let k = x.len();
    let k16 = k - k % 16;
    // Loads 8 floats from `s[t..t + 8]` (slicing checks the bounds; the checks are cheap next
    // to the memory traffic).
    #[allow(unsafe_code)]
    let load = |s: &[f32], t: usize| -> __m256 {
        let lanes = &s[t..t + 8];
        // SAFETY: `lanes` holds 8 readable floats, exactly what the unaligned load reads.
        unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
    };
    let ahead = |s: &[f32], t: usize| {
        // A prefetch never faults, so the address may lie past the end of `w`; `wrapping_add`
        // keeps the pointer arithmetic defined.
        _mm_prefetch::<_MM_HINT_T0>(s.as_ptr().wrapping_add(t + PREFETCH_FLOATS).cast::<i8>());
    };
    let tail = |row: &[f32]| -> f32 { row[k16..].iter().zip(&x[k16..]).map(|(a, b)| a * b).sum() };
    let mut rows = w.chunks_exact(k);
    let mut outs = y.chunks_exact_mut(4);
    for out in &mut outs {
        let r: [&[f32]; 4] = std::array::from_fn(|_| {
            rows.next()
                .expect("w has y.len() rows, so a chunk of 4 outputs has 4 rows")
        });
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut t = 0;
        while t < k16 {
            let (x0, x1) = (load(x, t), load(x, t + 8));
            for i in 0..4 {
                ahead(r[i], t);
                acc[2 * i] = _mm256_fmadd_ps(load(r[i], t), x0, acc[2 * i]);
                acc[2 * i + 1] = _mm256_fmadd_ps(load(r[i], t + 8), x1, acc[2 * i + 1]);
            }
            t += 16;
        }
        for i in 0..4 {
            out[i] = hsum(_mm256_add_ps(acc[2 * i], acc[2 * i + 1])) + tail(r[i]);
        }
    }
    for (out, row) in outs.into_remainder().iter_mut().zip(rows) {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut t = 0;
        while t < k16 {
            a0 = _mm256_fmadd_ps(load(row, t), load(x, t), a0);
            a1 = _mm256_fmadd_ps(load(row, t + 8), load(x, t + 8), a1);
            t += 16;
        }
        *out = hsum(_mm256_add_ps(a0, a1)) + tail(row);
    }
}

/// How far ahead of the columns being read the SIMD kernels prefetch each row, in floats (18 KiB:
/// the same columns two groups of four rows on, for SmolLM2's rows of 576). The hardware
/// prefetcher alone left the stream short of the memory bandwidth: with this distance a product
/// that reads its matrix from memory ran 20-30% faster than without (`matvec_speed` below, on a
/// loaded machine, where 9 and 36 KiB were slower than 18 and 9 KiB faster than 2 KiB).
const PREFETCH_FLOATS: usize = 4608;

/// AVX-512F dot products: four rows at a time, two 16-lane accumulators per row (32 columns per
/// step), a scalar loop for the last `k mod 32` columns and a one-row loop for the last `m mod 4`
/// rows. With `prefetch > 0`, each step also asks for the cache lines `prefetch` floats ahead of
/// each row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn rows_avx512(w: &[f32], x: &[f32], y: &mut [f32], prefetch: usize) {
    use std::arch::x86_64::*;
    let k = x.len();
    let k32 = k - k % 32;
    #[allow(unsafe_code)]
    let load = |s: &[f32], t: usize| -> __m512 {
        let lanes = &s[t..t + 16];
        // SAFETY: `lanes` holds 16 readable floats, exactly what the unaligned load reads.
        unsafe { _mm512_loadu_ps(lanes.as_ptr()) }
    };
    let ahead = |s: &[f32], t: usize| {
        // A prefetch never faults, so the address may lie past the end of `w`; `wrapping_add`
        // keeps the pointer arithmetic defined.
        let p = s.as_ptr().wrapping_add(t + prefetch).cast::<i8>();
        _mm_prefetch::<_MM_HINT_T0>(p);
    };
    let tail = |row: &[f32]| -> f32 { row[k32..].iter().zip(&x[k32..]).map(|(a, b)| a * b).sum() };
    let mut rows = w.chunks_exact(k);
    let mut outs = y.chunks_exact_mut(4);
    for out in &mut outs {
        let r: [&[f32]; 4] = std::array::from_fn(|_| {
            rows.next()
                .expect("w has y.len() rows, so a chunk of 4 outputs has 4 rows")
        });
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut t = 0;
        while t < k32 {
            let (x0, x1) = (load(x, t), load(x, t + 16));
            for i in 0..4 {
                if prefetch > 0 {
                    ahead(r[i], t);
                    ahead(r[i], t + 16);
                }
                acc[2 * i] = _mm512_fmadd_ps(load(r[i], t), x0, acc[2 * i]);
                acc[2 * i + 1] = _mm512_fmadd_ps(load(r[i], t + 16), x1, acc[2 * i + 1]);
            }
            t += 32;
        }
        for i in 0..4 {
            out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[2 * i], acc[2 * i + 1])) + tail(r[i]);
        }
    }
    for (out, row) in outs.into_remainder().iter_mut().zip(rows) {
        let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut t = 0;
        while t < k32 {
            a0 = _mm512_fmadd_ps(load(row, t), load(x, t), a0);
            a1 = _mm512_fmadd_ps(load(row, t + 16), load(x, t + 16), a1);
            t += 32;
        }
        *out = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + tail(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;

    fn randv(rng: &mut impl claimlab_testkit::rand::Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
    }

    /// f64 reference `W·x` and, per row, the error bound `k·ε·Σ|w_t x_t|` (plus 1e-30 so that a
    /// zero row allows an exact zero only).
    fn reference(w: &[f32], x: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let k = x.len();
        w.chunks_exact(k)
            .map(|row| {
                let dot = row
                    .iter()
                    .zip(x)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>();
                let abs = row
                    .iter()
                    .zip(x)
                    .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                    .sum::<f64>();
                (dot, k as f64 * f64::from(f32::EPSILON) * abs + 1e-30)
            })
            .unzip()
    }

    fn check(got: &[f32], want: &[f64], bound: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (r, ((&g, &v), &b)) in got.iter().zip(want).zip(bound).enumerate() {
            let e = (f64::from(g) - v).abs();
            assert!(
                e <= b,
                "{what}: row {r}: got {g}, want {v}, error {e} > bound {b}"
            );
        }
    }

    /// Both kernels (the detected one and the portable one) against the f64 reference, on odd
    /// row lengths (tails of every size below 16) and row counts (every remainder mod 4).
    #[test]
    fn kernels_match_f64_reference() {
        let mut rng = claimlab_testkit::rng(11);
        let mut kernels = vec![Kernel::detect(), Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            kernels.extend([Kernel::Avx512(0), Kernel::Avx512(PREFETCH_FLOATS)]);
        }
        for &(m, k) in &[
            (1, 1),
            (3, 7),
            (4, 8),
            (5, 15),
            (6, 16),
            (7, 17),
            (9, 31),
            (13, 33),
            (2, 576),
            (11, 1536),
        ] {
            let w = randv(&mut rng, m * k);
            let x = randv(&mut rng, k);
            let (want, bound) = reference(&w, &x);
            for &kern in &kernels {
                let mut y = vec![f32::NAN; m];
                kern.rows(&w, &x, &mut y);
                check(&y, &want, &bound, &format!("{kern:?} m={m} k={k}"));
            }
        }
    }

    /// The stacked, parallel product against the f64 reference and against faer's product
    /// (`matmul_nt` with n = 1 gives the same numbers up to the same bound), on matrices that
    /// split into several blocks whose boundaries fall inside a matrix and across matrices.
    #[test]
    fn stacked_matches_reference_and_faer() {
        let mut rng = claimlab_testkit::rng(12);
        let k = 45;
        let ms = [3usize, 130, 1, 517, 64];
        let ws: Vec<Vec<f32>> = ms.iter().map(|&m| randv(&mut rng, m * k)).collect();
        let x = randv(&mut rng, k);
        let refs: Vec<&[f32]> = ws.iter().map(Vec::as_slice).collect();
        let got = matvec_stacked(&x, &refs);
        assert_eq!(got.len(), ms.iter().sum::<usize>());
        let mut at = 0;
        for (w, &m) in ws.iter().zip(&ms) {
            let (want, bound) = reference(w, &x);
            check(&got[at..at + m], &want, &bound, &format!("stacked m={m}"));
            let faer = crate::kernels::matmul_nt_faer(&x, w, 1, k, m);
            // Both within k·ε·Σ|w x| of the exact value, so within twice that of each other.
            let twice: Vec<f64> = bound.iter().map(|b| 2.0 * b).collect();
            let faer64: Vec<f64> = faer.iter().map(|&v| f64::from(v)).collect();
            check(&got[at..at + m], &faer64, &twice, &format!("vs faer m={m}"));
            at += m;
        }
        // No matrices, and matrices with no rows.
        assert!(matvec_stacked(&x, &[]).is_empty());
        assert!(matvec_stacked(&x, &[&[], &[]]).is_empty());
    }

    /// Time of faer's product against the stacked kernel's variants (AVX2 with prefetch,
    /// AVX-512 with and without prefetch at several distances, 4 or 1 work units per thread) on SmolLM2-135M's decode shapes (random
    /// weights), interleaved, best of 7. A benchmark, not a test:
    /// `cargo test --release -p claimlab-runtime --lib matvec_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run by hand"]
    fn matvec_speed() {
        let mut rng = claimlab_testkit::rng(13);
        let d = 576;
        let shapes = [(49152usize, d), (3072, d), (d, 1536), (d, d), (960, d)];
        let mut variants: Vec<(String, Kernel, usize)> =
            vec![("detected/4".into(), Kernel::detect(), 4)];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            variants.push(("avx2+pf/4".into(), Kernel::Avx2Fma, 4));
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            variants.push(("avx512/4".into(), Kernel::Avx512(0), 4));
            for pf in [512, 2304, 4608, 9216] {
                variants.push((format!("avx512+pf{pf}/4"), Kernel::Avx512(pf), 4));
            }
            variants.push(("avx512+pf4608/1".into(), Kernel::Avx512(4608), 1));
        }
        for (m, k) in shapes {
            // Enough copies of the matrix to fill 512 MB, multiplied in turn, so that every
            // product reads its weights from memory as in decoding (the L3 cache may be 260 MB).
            let copies = (128 << 20) / (m * k) + 1;
            let ws: Vec<Vec<f32>> = (0..copies).map(|_| randv(&mut rng, m * k)).collect();
            let x = randv(&mut rng, k);
            let reps = copies.max(3);
            let mut best = vec![f64::INFINITY; variants.len() + 1];
            for _ in 0..5 {
                let t = std::time::Instant::now();
                for r in 0..reps {
                    let w = &ws[r % copies];
                    std::hint::black_box(crate::kernels::matmul_nt_faer(&x, w, 1, k, m));
                }
                best[0] = best[0].min(t.elapsed().as_secs_f64() / reps as f64);
                for (i, (_, kern, bpt)) in variants.iter().enumerate() {
                    let t = std::time::Instant::now();
                    for r in 0..reps {
                        let w: &[f32] = &ws[r % copies];
                        std::hint::black_box(matvec_stacked_with(*kern, *bpt, &x, &[w]));
                    }
                    best[i + 1] = best[i + 1].min(t.elapsed().as_secs_f64() / reps as f64);
                }
            }
            let gb = (m * k * 4) as f64 / 1e9;
            let mut line = format!("{m}x{k}: faer {:.1} GB/s", gb / best[0]);
            for (i, (name, _, _)) in variants.iter().enumerate() {
                line += &format!(", {name} {:.1}", gb / best[i + 1]);
            }
            println!("{line}");
        }
    }
}
