//! Criterion bench of claimlab-runtime's decoding kernel, [`claimlab_runtime::matvec`], against
//! faer's general product (`n = 1`, on the same rayon pool) and a naive sequential loop, on the
//! matrix shapes of one SmolLM2-135M decoded token: the tied output embedding (49152 x 576), the
//! stacked gate/up (3072 x 576) and q/k/v (960 x 576) projections, the down projection
//! (576 x 1536) and the attention output (576 x 576).
//!
//! Decoding streams every weight from memory once per token, so each shape is benched on enough
//! copies of its matrix (multiplied in turn) to fill 384 MB, more than this machine's cache; the
//! throughput line is the bandwidth drawn (bytes of weights per second). Inputs are seeded.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench -p claimlab-benches --bench runtime`.

use std::hint::black_box;
use std::time::Duration;

use claimlab_runtime::matvec;
use claimlab_testkit::rand::RngExt as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Bytes of weights per shape, spread over copies of the matrix.
const BYTES_PER_SHAPE: usize = 384 << 20;

/// `W·x` through faer: `x` as a `1 x k` row times `Wᵀ` (`W` row-major `[m, k]` read as a
/// column-major `k x m` matrix), as the runtime did before its decoding kernel.
fn faer_matvec(x: &[f32], w: &[f32]) -> Vec<f32> {
    let k = x.len();
    let m = w.len() / k;
    let mut y = vec![0.0f32; m];
    matmul(
        MatMut::from_row_major_slice_mut(&mut y, 1, m),
        Accum::Replace,
        MatRef::from_row_major_slice(x, 1, k),
        MatRef::from_column_major_slice(w, k, m),
        1.0f32,
        Par::rayon(0),
    );
    y
}

/// `W·x` one row at a time with iterator dot products, on the calling thread.
fn naive_matvec(x: &[f32], w: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

fn matvec_shapes(c: &mut Criterion) {
    let mut rng = claimlab_testkit::rng(7);
    let d = 576;
    let shapes = [
        ("output_49152x576", 49152usize, d),
        ("gate_up_3072x576", 3072, d),
        ("qkv_960x576", 960, d),
        ("down_576x1536", d, 1536),
        ("attn_out_576x576", d, d),
    ];
    let mut g = c.benchmark_group("runtime/matvec");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, m, k) in shapes {
        let copies = BYTES_PER_SHAPE / (4 * m * k) + 1;
        let ws: Vec<Vec<f32>> = (0..copies)
            .map(|_| (0..m * k).map(|_| rng.random::<f32>() - 0.5).collect())
            .collect();
        let x: Vec<f32> = (0..k).map(|_| rng.random::<f32>() - 0.5).collect();
        // The kernels agree (a check that the bench compares like with like).
        let (a, b) = (matvec(&x, &ws[0]), faer_matvec(&x, &ws[0]));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{name}: claimlab and faer differ by {worst}");
        g.throughput(Throughput::Bytes((4 * m * k) as u64));
        type Kernel = fn(&[f32], &[f32]) -> Vec<f32>;
        let kernels: [(&str, Kernel); 3] = [
            ("claimlab", matvec),
            ("faer", faer_matvec),
            ("naive", naive_matvec),
        ];
        for (kernel, f) in kernels {
            let mut next = 0usize;
            g.bench_function(format!("{name}/{kernel}"), |bench| {
                bench.iter(|| {
                    next = (next + 1) % copies;
                    f(black_box(&x), black_box(&ws[next]))
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, matvec_shapes);
criterion_main!(benches);
