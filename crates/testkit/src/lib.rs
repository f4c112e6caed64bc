//! Dev-only helpers shared by the tests of every claimlab crate.
//!
//! - [`rng`]: the one seeded, portable generator tests use (`Xoshiro256PlusPlus`).
//! - [`reference_dir`], [`read_column`], [`read_rows`], [`read_json`]: the loader for the reference
//!   values in `tests/reference/` (a copy of `../shared/reference/`) (plain text, one number or one row per line; JSON beside them).
//! - [`assert_slice_close`]: element-wise closeness that reports the worst index.
//!
//! Nothing here is meant for library code: area crates list it under `[dev-dependencies]` only.

use std::path::{Path, PathBuf};

pub use rand;
use rand::SeedableRng;
pub use rand_xoshiro::Xoshiro256PlusPlus;

/// A portable, seeded generator: the same stream on every platform and version of this crate.
#[must_use]
pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// The directory of reference values from established tools.
///
/// Looks, in order, at `$CLAIMLAB_REFERENCE_DIR`, then the copy committed in the repository
/// (`tests/reference`, so a fresh clone anywhere has it), then `shared/reference` beside the
/// workspace root or any of its ancestors.
///
/// # Panics
/// When no such directory exists: tests that need reference data cannot run without it.
#[must_use]
#[track_caller]
pub fn reference_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CLAIMLAB_REFERENCE_DIR") {
        return PathBuf::from(dir);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for anc in here.ancestors() {
        let in_repo = anc.join("tests").join("reference");
        if in_repo.join("README.md").is_file() {
            return in_repo;
        }
    }
    for anc in here.ancestors() {
        let cand = anc.join("shared").join("reference");
        if cand.is_dir() {
            return cand;
        }
    }
    panic!("reference directory not found: set CLAIMLAB_REFERENCE_DIR, or restore tests/reference in the repository");
}

/// Reads a file of one number per line (blank lines and `#` comments skipped).
///
/// # Panics
/// On a missing file or a line that does not parse, naming the file and line.
#[must_use]
#[track_caller]
pub fn read_column(path: impl AsRef<Path>) -> Vec<f64> {
    read_rows(path).into_iter().flatten().collect()
}

/// Reads a file of whitespace- or comma-separated rows of numbers.
///
/// # Panics
/// On a missing file or a field that does not parse, naming the file and line.
#[must_use]
#[track_caller]
pub fn read_rows(path: impl AsRef<Path>) -> Vec<Vec<f64>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>().unwrap_or_else(|e| {
                    panic!("{}:{}: cannot parse {s:?}: {e}", path.display(), i + 1)
                })
            })
            .collect();
        rows.push(row);
    }
    rows
}

/// Reads a JSON file.
///
/// # Panics
/// On a missing file or invalid JSON.
#[must_use]
#[track_caller]
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

/// Asserts `|a[i] - b[i]| <= abs + rel * |b[i]|` for every `i`, reporting the worst index.
///
/// # Panics
/// When the lengths differ or any element is out of tolerance (NaN counts as out).
#[track_caller]
pub fn assert_slice_close(a: &[f64], b: &[f64], rel: f64, abs: f64) {
    assert_eq!(
        a.len(),
        b.len(),
        "lengths differ: {} vs {}",
        a.len(),
        b.len()
    );
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let err = (x - y).abs();
        let allowed = abs + rel * y.abs();
        if err.is_nan() || err > allowed {
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err / allowed.max(f64::MIN_POSITIVE)
            };
            if worst.is_none_or(|(_, w)| excess > w) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "slices differ: worst at index {i}: {} vs {} (rel {rel}, abs {abs})",
            a[i], b[i]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn rng_is_seeded() {
        let a: u64 = rng(7).random();
        let b: u64 = rng(7).random();
        let c: u64 = rng(8).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    #[should_panic(expected = "worst at index 1")]
    fn close_reports_worst() {
        assert_slice_close(&[1.0, 2.0, 3.0], &[1.0, 2.5, 3.1], 0.0, 0.2);
    }

    #[test]
    fn reference_dir_exists() {
        assert!(reference_dir().join("README.md").is_file());
    }
}
