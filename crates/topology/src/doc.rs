//! Guides (documentation only, no code).

/// # For users of Ripser and ripser.py
///
/// | Ripser / ripser.py | here |
/// |---|---|
/// | `ripser --format point-cloud FILE`, `ripser(X)` | [`crate::vr_barcodes`]`(&points, &config)` |
/// | `--format lower-distance`, `ripser(D, distance_matrix=True)` | [`crate::vr_barcodes_from_distances`]`(n, &lower, &config)` (strict lower triangle, row by row) |
/// | `metric=callable` | [`crate::vr_barcodes_with_metric`]`(n, metric, &config)` |
/// | `--dim k`, `maxdim=k` (default 1) | [`crate::VrConfig::max_dim`] (default 1) |
/// | `--threshold t`, `thresh=t` | [`crate::VrConfig::threshold`]`: Some(t)`; `None` = enclosing radius, as Ripser's default |
/// | `--modulus p`, `coeff=p` (default 2) | [`crate::VrConfig::modulus`] (default 2) |
/// | `do_cocycles=True` | [`crate::VrConfig::cocycles`]`: true`, then [`crate::Barcodes::cocycles`] (H1 only) |
/// | `result['dgms'][k]` (an `(m, 2)` array) | `barcodes.diagrams[k].intervals` (birth, death) |
/// | `np.inf` death | `f64::INFINITY` death ([`crate::Interval::is_essential`]) |
///
/// Where we differ:
/// - **Precision.** ripser.py stores distances in `float32`; we keep `f64` throughout. Values agree
///   to about 1e-7 relative; near-ties that `float32` merges can give ripser a zero-length
///   interval (dropped) where we report a very short one, or the reverse.
/// - **Zero-length intervals** are dropped in both. The brute-force oracle
///   [`crate::vr_barcodes_brute_force`] follows the same rule.
/// - **Diameter convention**, as Ripser: a simplex enters at its largest pairwise distance. Tools
///   that filter by radius (half the diameter) report half these values.
/// - **Sparse (`n_perm`, greedy subsampling) and `distance_matrix` given as a sparse matrix** are not
///   supported.
/// - **Cocycles**: ripser.py lists `[i, j, c]` rows per class; we give `(i, j, c)` with `i > j`,
///   sorted, aligned with the sorted diagram.
/// - **Diagnostics**: [`crate::Barcodes::stats`] reports, per dimension, how many columns were
///   reduced, skipped as apparent pairs, paired as emergent pairs or cleared.
///
/// # For users of GUDHI / Hera distances
///
/// | GUDHI | here |
/// |---|---|
/// | `gudhi.bottleneck_distance(a, b)` (exact, `e=0`) | [`crate::bottleneck_distance`] |
/// | `gudhi.hera.wasserstein_distance(a, b, order=q, internal_p=inf, delta=δ)` | [`crate::wasserstein_distance_with`] with `q`, `relative_error: δ` |
///
/// Both use the L∞ ground metric; points at infinity are matched among themselves by birth and
/// give an infinite distance when their counts differ (GUDHI's behaviour). Small problems (at most
/// [`crate::WassersteinConfig::exact_max_points`] points) are solved exactly by the Hungarian method
/// whatever `relative_error` says. Hera's default `delta` is 0.01; ours is 1e-6, and the returned
/// [`crate::WassersteinResult::lower_bound`] certifies the gap.
pub mod for_ripser_users {}
