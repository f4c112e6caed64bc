//! Cross-check against SymPy's combinatorics module (values in `tests/data/sympy_reference.json`,
//! produced by `scripts/sympy_reference.py` with SymPy 1.14.0). Orders, orbit sizes, the order of
//! the stabiliser of point 1 and colouring counts are exact integers: they must agree exactly.

use claimlab_orbits::{CycleIndex, Perm, PermGroup};

#[test]
fn groups_agree_with_sympy() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sympy_reference.json");
    let data = claimlab_testkit::read_json(path);
    assert!(data["tool"].as_str().unwrap().starts_with("sympy"));
    let groups = data["groups"].as_array().unwrap();
    assert!(groups.len() >= 25);
    for g in groups {
        let name = g["name"].as_str().unwrap();
        let n = g["degree"].as_u64().unwrap() as usize;
        let gens: Vec<Perm> = g["generators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Perm::parse_cycles(s.as_str().unwrap(), n).unwrap())
            .collect();
        let group = PermGroup::new(n, gens).unwrap();
        assert_eq!(
            group.order().to_string(),
            g["order"].as_str().unwrap(),
            "{name}: order"
        );
        let mut sizes: Vec<u64> = group.orbits().iter().map(|o| o.len() as u64).collect();
        sizes.sort_unstable();
        let expect: Vec<u64> = g["orbit_sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(sizes, expect, "{name}: orbits");
        let stab = group.stabiliser(0).unwrap();
        assert_eq!(
            stab.order().to_string(),
            g["stabiliser_order_point1"].as_str().unwrap(),
            "{name}: stabiliser"
        );
        for k in [2u64, 3] {
            if let Some(v) = g.get(format!("colourings_{k}")) {
                let z = CycleIndex::from_group(&group, 10_000).unwrap();
                assert_eq!(
                    z.colourings(k).unwrap().to_string(),
                    v.as_str().unwrap(),
                    "{name}: k={k}"
                );
            }
        }
    }
}
