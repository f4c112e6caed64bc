//! Helpers shared by the test modules.

use claimlab_topology::Diagram;

/// Euclidean lower-triangular distances of a point cloud.
pub(crate) fn lower_distances(points: &[Vec<f64>]) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..points.len() {
        for j in 0..i {
            let d2: f64 = points[i]
                .iter()
                .zip(&points[j])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            out.push(d2.sqrt());
        }
    }
    out
}

/// Asserts two diagrams are the same multiset: same number of essential classes with the same
/// births, and the same finite intervals, to `rel` relative (plus `abs`) on every coordinate.
///
/// Births and deaths are compared as sorted lists, so near-ties that sort differently on the two
/// sides cannot cause a false failure; `exact_pairs` additionally compares the sorted pairs.
#[track_caller]
pub(crate) fn assert_diagrams_close(
    ours: &Diagram,
    theirs: &Diagram,
    rel: f64,
    abs: f64,
    what: &str,
) {
    let split = |d: &Diagram| {
        let mut ess: Vec<f64> = d.essential().map(|iv| iv.birth).collect();
        let mut b: Vec<f64> = d.finite().map(|iv| iv.birth).collect();
        let mut e: Vec<f64> = d.finite().map(|iv| iv.death).collect();
        ess.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        e.sort_by(f64::total_cmp);
        (ess, b, e)
    };
    let (oe, ob, od) = split(ours);
    let (te, tb, td) = split(theirs);
    assert_eq!(
        oe.len(),
        te.len(),
        "{what}: essential count {} vs {}",
        oe.len(),
        te.len()
    );
    assert_eq!(
        ob.len(),
        tb.len(),
        "{what}: finite count {} vs {}\nours {:?}\ntheirs {:?}",
        ob.len(),
        tb.len(),
        ours.to_pairs(),
        theirs.to_pairs()
    );
    claimlab_testkit::assert_slice_close(&oe, &te, rel, abs);
    claimlab_testkit::assert_slice_close(&ob, &tb, rel, abs);
    claimlab_testkit::assert_slice_close(&od, &td, rel, abs);
}

/// Asserts two diagrams are identical as multisets of exact f64 pairs.
#[track_caller]
pub(crate) fn assert_diagrams_equal(ours: &Diagram, theirs: &Diagram, what: &str) {
    let key = |d: &Diagram| {
        let mut v: Vec<(u64, u64)> = d
            .intervals
            .iter()
            .map(|iv| (iv.birth.to_bits(), iv.death.to_bits()))
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        key(ours),
        key(theirs),
        "{what}:\nours   {:?}\ntheirs {:?}",
        ours.to_pairs(),
        theirs.to_pairs()
    );
}
