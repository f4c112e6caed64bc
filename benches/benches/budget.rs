//! Criterion benches of claimlab-budget: the Lagrangian (Shoham-Gersho) allocation and the exact
//! dynamic programme on 200 layers × 32 options.
//!
//! Run: `cargo bench -p claimlab-benches --bench budget`. Inputs are seeded; no peer tool.

use std::hint::black_box;
use std::time::Duration;

use claimlab_budget::{exact_allocation_dp, lagrangian_allocation, DpConfig, Item};
use claimlab_testkit::rand::RngExt as _;
use criterion::{criterion_group, criterion_main, Criterion};

const LAYERS: usize = 200;
const OPTIONS: u32 = 32;

/// Layer l at b bits costs b·w_l (w_l in 1..=4) and distorts s_l·w_l·2^(−2b/4) (s_l in (0.1, 10)).
/// Budget: 4 bits on average.
fn menus() -> (Vec<Vec<Item>>, f64) {
    let mut rng = claimlab_testkit::rng(3);
    let mut total_w = 0.0;
    let m = (0..LAYERS)
        .map(|_| {
            let w = f64::from(rng.random_range(1..5u32));
            let s = 0.1 * 100f64.powf(rng.random::<f64>());
            total_w += w;
            (1..=OPTIONS)
                .map(|b| Item::new(f64::from(b) * w, s * w * 2f64.powf(-f64::from(b) / 2.0)))
                .collect()
        })
        .collect();
    (m, 4.0 * total_w)
}

/// The issue's scale: 200 layers × 32 options with integer costs in 0..1000, budget 10^5 units
/// (the same instance family as the crate's ignored `dp_at_issue_scale` test).
fn menus_issue_scale() -> (Vec<Vec<Item>>, f64) {
    let mut rng = claimlab_testkit::rng(9);
    let m = (0..LAYERS)
        .map(|_| {
            (0..OPTIONS)
                .map(|_| {
                    let c = rng.random_range(0..1000u32);
                    Item::new(
                        f64::from(c),
                        (-(f64::from(c)) / 300.0).exp() * rng.random::<f64>(),
                    )
                })
                .collect()
        })
        .collect();
    (m, 1e5)
}

fn bench_issue_scale(c: &mut Criterion) {
    let (m, budget) = menus_issue_scale();
    let mut g = c.benchmark_group("budget/200x32/resolution-1e5");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("lagrangian", |b| {
        b.iter(|| lagrangian_allocation(black_box(&m), budget).unwrap());
    });
    g.bench_function("exact_dp", |b| {
        b.iter(|| exact_allocation_dp(black_box(&m), budget, &DpConfig::default()).unwrap());
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let (m, budget) = menus();
    let mut g = c.benchmark_group("budget/200x32");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("lagrangian", |b| {
        b.iter(|| lagrangian_allocation(black_box(&m), budget).unwrap());
    });
    g.bench_function("exact_dp", |b| {
        b.iter(|| exact_allocation_dp(black_box(&m), budget, &DpConfig::default()).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench, bench_issue_scale);
criterion_main!(benches);
