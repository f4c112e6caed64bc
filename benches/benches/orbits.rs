//! Criterion benches of claimlab-orbits: group orders by Schreier-Sims (M12, Rubik's cube), the
//! structural recognition of products of large symmetric groups (S_1536^k, the shape of a
//! transformer's MLP symmetry), and Pólya counting from cycle indices. The same groups are timed
//! with SymPy's combinatorics by `benches/peers/orbits_peers.py`.
//!
//! Run: `cargo bench -p claimlab-benches --bench orbits`.

use std::hint::black_box;
use std::time::Duration;

use claimlab_orbits::{GroupExpr, Perm, PermGroup};
use criterion::{criterion_group, criterion_main, Criterion};

/// Mathieu M12 on 12 points from standard generators (order 95040).
const M12: &str =
    "(1,2,3,4,5,6,7,8,9,10,11)\n(3,7,11,8)(4,10,5,6)\n(1,12)(2,11)(3,6)(4,8)(5,9)(7,10)\n";

/// Rubik's cube group from the six face turns, GAP's facet numbering (order 43252003274489856000).
const RUBIK: &str = "(1,3,8,6)(2,5,7,4)(9,33,25,17)(10,34,26,18)(11,35,27,19)
(9,11,16,14)(10,13,15,12)(1,17,41,40)(4,20,44,37)(6,22,46,35)
(17,19,24,22)(18,21,23,20)(6,25,43,16)(7,28,42,13)(8,30,41,11)
(25,27,32,30)(26,29,31,28)(3,38,43,19)(5,36,45,21)(8,33,48,24)
(33,35,40,38)(34,37,39,36)(3,9,46,32)(2,12,47,29)(1,14,48,27)
(41,43,48,46)(42,45,47,44)(14,22,30,38)(15,23,31,39)(16,24,32,40)
";

/// Width of one block (MiniLM's MLP hidden width).
const BLOCK: usize = 1536;

/// Generators of S_BLOCK^k on `k · BLOCK` points: a transposition and a long cycle per block.
/// The peer script builds the same generators.
fn product_generators(k: usize) -> Vec<Perm> {
    let n = k * BLOCK;
    let mut gens = Vec::new();
    for b in 0..k {
        let off = b * BLOCK;
        let mut t: Vec<usize> = (0..n).collect();
        t.swap(off, off + 1);
        gens.push(Perm::from_images(t).expect("transposition"));
        let mut c: Vec<usize> = (0..n).collect();
        for i in 0..BLOCK {
            c[off + i] = off + (i + 1) % BLOCK;
        }
        gens.push(Perm::from_images(c).expect("cycle"));
    }
    gens
}

fn orders(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_order");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("M12", |b| {
        b.iter(|| {
            let grp = PermGroup::from_cycle_lines(black_box(M12), None).expect("M12");
            black_box(grp.order().clone())
        });
    });
    g.bench_function("rubik", |b| {
        b.iter(|| {
            let grp = PermGroup::from_cycle_lines(black_box(RUBIK), None).expect("rubik");
            black_box(grp.order().clone())
        });
    });
    for k in [1usize, 6] {
        let gens = product_generators(k);
        g.bench_function(format!("S1536^{k}"), |b| {
            b.iter(|| {
                let grp = PermGroup::new(k * BLOCK, black_box(gens.clone())).expect("product");
                black_box(grp.order().clone())
            });
        });
    }
    g.finish();
}

fn counting(c: &mut Criterion) {
    let mut g = c.benchmark_group("colourings");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for (expr, k) in [("S4 x C3", 3u64), ("D12", 4), ("S3 wr S4", 3), ("S30", 5)] {
        g.bench_function(format!("{expr} k={k}"), |b| {
            b.iter(|| {
                let ci = GroupExpr::parse(black_box(expr))
                    .and_then(|e| e.cycle_index())
                    .expect("cycle index");
                black_box(ci.colourings(k).expect("count"))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, orders, counting);
criterion_main!(benches);
