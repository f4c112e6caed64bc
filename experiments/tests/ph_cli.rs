//! `claimlab ph` end to end: barcodes of the reference circle against Ripser's H1, diagram
//! distances against GUDHI/Hera, and clear errors (file and line, exit status 2) on bad files.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::run as claimlab;

fn reference(name: &str) -> String {
    claimlab_testkit::reference_dir()
        .join("ph")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn tmpfile(tag: &str, contents: &str) -> PathBuf {
    common::tmpfile(&format!("{tag}.txt"), contents)
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `(birth, death)` rows of a Ripser reference file, sorted.
fn reference_pairs(name: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(reference(name)).unwrap();
    let mut v: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<f64> = l
                .split_whitespace()
                .map(|t| {
                    if t == "inf" {
                        f64::INFINITY
                    } else {
                        t.parse().unwrap()
                    }
                })
                .collect();
            (f[0], f[1])
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    v
}

/// Relative closeness; equal infinities (never-dying classes) count as close.
fn close(a: f64, b: f64, rel: f64) -> bool {
    a.total_cmp(&b).is_eq() || (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn barcode_of_circle100_matches_ripser_h1() {
    let out = stdout(&claimlab(&[
        "ph",
        "barcode",
        "--dim",
        "1",
        &reference("circle100.txt"),
    ]));
    let mut h0 = 0;
    let mut h1: Vec<(f64, f64)> = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{line}");
        let death = if f[2] == "inf" {
            f64::INFINITY
        } else {
            f[2].parse().unwrap()
        };
        match f[0] {
            "0" => h0 += 1,
            "1" => h1.push((f[1].parse().unwrap(), death)),
            d => panic!("dimension {d} not asked for"),
        }
    }
    assert_eq!(h0, 100);
    h1.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let want = reference_pairs("circle100.H1.txt");
    assert_eq!(h1.len(), want.len());
    // Ripser computes in float32: 1e-6 relative.
    for (g, w) in h1.iter().zip(&want) {
        assert!(
            close(g.0, w.0, 1e-6) && close(g.1, w.1, 1e-6),
            "{g:?} vs {w:?}"
        );
    }
}

#[test]
fn barcode_output_feeds_bottleneck_with_dim() {
    let bars = stdout(&claimlab(&[
        "ph",
        "barcode",
        "--dim",
        "1",
        &reference("circle100.txt"),
    ]));
    let f = tmpfile("bars", &bars);
    let out = stdout(&claimlab(&[
        "ph",
        "bottleneck",
        "--dim",
        "1",
        f.to_str().unwrap(),
        &reference("circle100.H1.txt"),
    ]));
    let d: f64 = out.trim().parse().unwrap();
    assert!((0.0..1e-6).contains(&d), "{d}");
    // Without --dim a three-column file is an error that says what to do.
    let out = claimlab(&["ph", "bottleneck", f.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dim"));
}

#[test]
fn distances_match_gudhi_reference() {
    let a = reference("circle100.H1.txt");
    let b = reference("torus400.H1.txt");
    let cases = [
        (vec!["ph", "bottleneck"], 0.586_631_627_500_000_1),
        (vec!["ph", "wasserstein", "--q", "1"], 8.130_551_336_800_007),
        (
            vec!["ph", "wasserstein", "--q", "2"],
            1.177_667_490_767_510_2,
        ),
    ];
    for (args, want) in cases {
        let mut args = args.clone();
        args.extend([a.as_str(), b.as_str()]);
        let got: f64 = stdout(&claimlab(&args)).trim().parse().unwrap();
        assert!(close(got, want, 1e-9), "{args:?}: {got} vs {want}");
    }
}

#[test]
fn json_output_and_distance_matrix_input() {
    // Three points at distances 1, 2, 3 (lower triangle): H0 dies at 1 and 2, one class lives on.
    let m = tmpfile("matrix", "# lower triangle\n1\n2, 3\n");
    let out = stdout(&claimlab(&[
        "--json",
        "ph",
        "barcode",
        "--dim",
        "0",
        "--distance-matrix",
        m.to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n_points"], 3);
    let iv = v["diagrams"][0]["intervals"].as_array().unwrap();
    let deaths: Vec<String> = iv.iter().map(|p| p[1].to_string()).collect();
    assert_eq!(deaths, ["1.0", "2.0", "\"inf\""]);

    let d = tmpfile("diag", "0 1\n0.5 inf\n");
    let out = stdout(&claimlab(&[
        "--json",
        "ph",
        "bottleneck",
        d.to_str().unwrap(),
        d.to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["distance"], 0.0);
    assert_eq!(v["points_a"], 2);
}

#[test]
fn bad_files_give_file_and_line() {
    let bad_point = tmpfile("badpoint", "0 0\n1 x\n");
    let ragged = tmpfile("ragged", "0 0\n1 1\n2 2 2\n");
    let bad_matrix = tmpfile("badmatrix", "1\n2 3 4\n");
    let bad_diag = tmpfile("baddiag", "0 1\n2 1\n");
    let cases: Vec<(Vec<&str>, &PathBuf, &str)> = vec![
        (vec!["ph", "barcode"], &bad_point, ":2:"),
        (vec!["ph", "barcode"], &ragged, ":3:"),
        (
            vec!["ph", "barcode", "--distance-matrix"],
            &bad_matrix,
            ":2:",
        ),
        (vec!["ph", "bottleneck"], &bad_diag, ":2:"),
    ];
    for (mut args, file, line) in cases {
        let f = file.to_str().unwrap();
        args.push(f);
        if args[1] == "bottleneck" {
            args.push(f);
        }
        let out = claimlab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{f}{line}")), "{args:?}: {err}");
    }
    let out = claimlab(&["ph", "barcode", "/nonexistent/claimlab-ph.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/claimlab-ph.txt"));
}
