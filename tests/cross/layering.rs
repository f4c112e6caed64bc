//! The area crates stay usable on their own: none depends (directly or transitively) on the weight
//! reader, the runtime or the experiments crate.

use std::collections::{BTreeMap, BTreeSet};

const AREA: [&str; 6] = [
    "claimlab-topology",
    "claimlab-orbits",
    "claimlab-ratedist",
    "claimlab-spectral",
    "claimlab-budget",
    "claimlab-concepts",
];
const FORBIDDEN: [&str; 3] = ["claimlab-weights", "claimlab-runtime", "experiments"];

/// This package's directory: the one it was compiled in, or (when the binary was compiled in
/// another checkout of the same sources and reused from a shared target directory) the working
/// directory `cargo test` runs it in, which is the package root.
fn manifest_dir() -> std::path::PathBuf {
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if built.is_dir() {
        built.to_path_buf()
    } else {
        std::env::current_dir().expect("a working directory")
    }
}

fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(manifest_dir())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Normal (non-dev) dependency edges between workspace packages, by package name.
fn workspace_edges(meta: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["source"].is_null())
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    let mut edges = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        if !members.contains(&name) {
            continue;
        }
        let deps: BTreeSet<String> = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null()) // normal dependencies only
            .map(|d| d["name"].as_str().expect("dep name").to_string())
            .filter(|d| members.contains(d))
            .collect();
        edges.insert(name, deps);
    }
    edges
}

fn reachable(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        for d in edges.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn area_crates_do_not_depend_on_weights_runtime_or_experiments() {
    let meta = metadata();
    let edges = workspace_edges(&meta);
    for area in AREA {
        assert!(edges.contains_key(area), "{area} is not a workspace member");
        let deps = reachable(&edges, area);
        for f in FORBIDDEN {
            assert!(
                !deps.contains(f),
                "{area} depends on {f}: area crates must stand alone"
            );
        }
    }
}

#[test]
fn reachability_sees_transitive_edges() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    let r = reachable(&edges, "a");
    assert!(r.contains("c"), "transitive dependency missed");
    assert!(!reachable(&edges, "c").contains("a"));
}
