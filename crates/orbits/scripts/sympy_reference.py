#!/usr/bin/env python3
"""Reference values for claimlab-orbits from SymPy's combinatorics module.

Run from the crate directory:  python3 scripts/sympy_reference.py > tests/data/sympy_reference.json
(installs SymPy 1.14.0 with pip when it is missing). Every group is listed by its generators in
1-based cycle notation, so the Rust test rebuilds exactly the same group.
"""
import json
import random
import subprocess
import sys

try:
    import sympy
except ImportError:  # install the peer from PyPI on first use (never vendored)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "sympy==1.14.0"])
    import sympy
from sympy.combinatorics import Permutation, PermutationGroup


def cyc(perm, n):
    """1-based cycle notation of a SymPy permutation of degree n."""
    cs = [c for c in perm.cyclic_form]
    if not cs:
        return "()"
    return "".join("(" + ",".join(str(x + 1) for x in c) + ")" for c in cs)


def parse(text, n):
    cycles = []
    for part in text.strip().strip("()").split(")("):
        if part:
            cycles.append([int(x) - 1 for x in part.split(",")])
    return Permutation(cycles, size=n)


def wreath(base_gens, m, top_gens, d):
    """Imprimitive wreath product, point (y, x) -> y*m + x, base on block 0 of each top orbit."""
    top = PermutationGroup([Permutation(g, size=d) for g in top_gens]) if top_gens else None
    reps = sorted(min(o) for o in top.orbits()) if top else [0]
    gens = []
    for y in reps:
        for g in base_gens:
            im = list(range(m * d))
            for x in range(m):
                im[y * m + x] = y * m + g(x)
            gens.append(Permutation(im))
    for t in top_gens:
        tp = Permutation(t, size=d)
        gens.append(Permutation([tp(p // m) * m + p % m for p in range(m * d)]))
    return gens


def entry(name, n, gens):
    G = PermutationGroup([Permutation(g.array_form, size=n) for g in gens])
    order = int(G.order())
    e = {
        "name": name,
        "degree": n,
        "generators": [cyc(g, n) for g in G.generators],
        "order": str(order),
        "orbit_sizes": sorted(len(o) for o in G.orbits()),
        "stabiliser_order_point1": str(int(G.stabilizer(0).order())),
        "is_transitive": bool(G.is_transitive()),
    }
    if order <= 5000 and n <= 10:
        elems = list(G.generate())
        for k in (2, 3):
            # Burnside over the enumerated elements: a k-colouring fixed by g is constant on cycles.
            total = sum(k ** len(g.full_cyclic_form) for g in elems)
            assert total % order == 0
            e[f"colourings_{k}"] = str(total // order)
    return e


def main():
    rng = random.Random(20261127)
    out = []
    sym = lambda n: [Permutation([[0, 1]], size=n), Permutation([list(range(n))], size=n)]
    for n in (5, 8, 12, 40):
        out.append(entry(f"S{n}", n, sym(n)))
    for n in (6, 9, 30):
        cyc_gen = list(range(n)) if n % 2 == 1 else list(range(1, n))
        out.append(entry(f"A{n}", n, [Permutation([[0, 1, 2]], size=n), Permutation([cyc_gen], size=n)]))
    for n in (7, 10):
        out.append(entry(f"D{n}", n, [Permutation([list(range(n))], size=n),
                                      Permutation([(n - i) % n for i in range(n)])]))
    m11 = ["(1,2,3,4,5,6,7,8,9,10,11)", "(3,7,11,8)(4,10,5,6)"]
    out.append(entry("M11", 11, [parse(g, 11) for g in m11]))
    out.append(entry("M12", 12, [parse(g, 12) for g in m11 + ["(1,12)(2,11)(3,6)(4,8)(5,9)(7,10)"]]))
    rubik = [
        "(1,3,8,6)(2,5,7,4)(9,33,25,17)(10,34,26,18)(11,35,27,19)",
        "(9,11,16,14)(10,13,15,12)(1,17,41,40)(4,20,44,37)(6,22,46,35)",
        "(17,19,24,22)(18,21,23,20)(6,25,43,16)(7,28,42,13)(8,30,41,11)",
        "(25,27,32,30)(26,29,31,28)(3,38,43,19)(5,36,45,21)(8,33,48,24)",
        "(33,35,40,38)(34,37,39,36)(3,9,46,32)(2,12,47,29)(1,14,48,27)",
        "(41,43,48,46)(42,45,47,44)(14,22,30,38)(15,23,31,39)(16,24,32,40)",
    ]
    out.append(entry("Rubik", 48, [parse(g, 48) for g in rubik]))
    # Wreath products (imprimitive): S3 wr S4, C2 wr S5, S4 wr C3, S2 wr S2 wr S2 built stepwise.
    s = lambda n: [[[0, 1]], [list(range(n))]]
    out.append(entry("S3 wr S4", 12, wreath(sym(3), 3, s(4), 4)))
    out.append(entry("C2 wr S5", 10, wreath([Permutation([[0, 1]], size=2)], 2, s(5), 5)))
    out.append(entry("S4 wr C3", 12, wreath(sym(4), 4, [[[0, 1, 2]]], 3)))
    # Random groups: two random permutations of degree 6..12 (mostly giants), and sparse ones.
    for t in range(12):
        n = rng.randint(6, 12)
        gens = []
        for _ in range(2):
            im = list(range(n))
            if t % 2 == 0:
                rng.shuffle(im)
            else:
                for _ in range(rng.randint(1, 3)):
                    a, b = rng.randrange(n), rng.randrange(n)
                    im[a], im[b] = im[b], im[a]
            gens.append(Permutation(im))
        out.append(entry(f"random{t}", n, gens))
    # A product of symmetric groups on disjoint blocks with a diagonal generator that joins them.
    n = 16
    gens = [Permutation([[0, 1]], size=n), Permutation([list(range(8))], size=n),
            Permutation([[8, 9], [0, 2]], size=n), Permutation([list(range(8, 16))], size=n)]
    out.append(entry("joined blocks", n, gens))
    json.dump({"tool": f"sympy {sympy.__version__}", "groups": out}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
