#!/usr/bin/env python3
"""Side-by-side timings of SymPy's combinatorics (the peer of claimlab-orbits) on the groups of
`benches/benches/orbits.rs`: Schreier-Sims group orders of M12, Rubik's cube and products of
S_1536 (one and six blocks, from a transposition and a long cycle per block), and Polya counting
of colourings. Also times `claimlab orbits order` through the product binary when given.

Usage:  python3 benches/peers/orbits_peers.py [--claimlab target/release/claimlab] [--repeats 3] [--big]
Installs sympy with pip into the current environment if it is missing (registry package, never
vendored). Reports best-of-N wall time; checks the orders SymPy finds equal the known ones.
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from peerlib import ensure


M12 = ["(1,2,3,4,5,6,7,8,9,10,11)", "(3,7,11,8)(4,10,5,6)", "(1,12)(2,11)(3,6)(4,8)(5,9)(7,10)"]
RUBIK = [
    "(1,3,8,6)(2,5,7,4)(9,33,25,17)(10,34,26,18)(11,35,27,19)",
    "(9,11,16,14)(10,13,15,12)(1,17,41,40)(4,20,44,37)(6,22,46,35)",
    "(17,19,24,22)(18,21,23,20)(6,25,43,16)(7,28,42,13)(8,30,41,11)",
    "(25,27,32,30)(26,29,31,28)(3,38,43,19)(5,36,45,21)(8,33,48,24)",
    "(33,35,40,38)(34,37,39,36)(3,9,46,32)(2,12,47,29)(1,14,48,27)",
    "(41,43,48,46)(42,45,47,44)(14,22,30,38)(15,23,31,39)(16,24,32,40)",
]
BLOCK = 1536


def parse_cycles(text):
    cycles = []
    for part in text.strip()[1:-1].split(")("):
        cycles.append([int(x) - 1 for x in part.split(",")])
    return cycles


def perm_from_cycles(Permutation, text, n):
    return Permutation(parse_cycles(text), size=n)


def product_gens(Permutation, k):
    n = k * BLOCK
    gens = []
    for b in range(k):
        off = b * BLOCK
        t = list(range(n))
        t[off], t[off + 1] = t[off + 1], t[off]
        gens.append(Permutation(t))
        c = list(range(n))
        for i in range(BLOCK):
            c[off + i] = off + (i + 1) % BLOCK
        gens.append(Permutation(c))
    return gens


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--claimlab", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", action="store_true",
                    help="also time S_1536 and S_1536^6 in SymPy (minutes or more)")
    a = ap.parse_args()
    sympy = ensure("sympy", "sympy")
    from sympy.combinatorics import Permutation, PermutationGroup

    print(f"sympy {sympy.__version__}, python {sys.version.split()[0]}")
    cases = [
        ("M12", lambda: [perm_from_cycles(Permutation, g, 12) for g in M12], 95040),
        ("rubik", lambda: [perm_from_cycles(Permutation, g, 48) for g in RUBIK], 43252003274489856000),
    ]
    if a.big:
        cases.append(("S1536^1", lambda: product_gens(Permutation, 1), math.factorial(BLOCK)))
        cases.append(("S1536^6", lambda: product_gens(Permutation, 6), math.factorial(BLOCK) ** 6))
    for name, gens_fn, want in cases:
        gens = gens_fn()
        t, order = best_of(lambda: PermutationGroup(gens).order(), a.repeats)
        ok = "ok" if order == want else f"WRONG ({order})"
        print(f"group_order/{name:10s} sympy {t * 1e3:12.3f} ms  order {ok}")
    # Polya counting: SymPy has no cycle-index API; count orbits of colourings by Burnside over
    # the group's elements (what a SymPy user would write).
    for expr, gens_fn, k in [
        ("D12 k=4", lambda: [Permutation(list(range(1, 12)) + [0]), Permutation([(12 - i) % 12 for i in range(12)])], 4),
    ]:
        g = PermutationGroup(gens_fn())
        t, n = best_of(
            lambda: sum(k ** len(p.full_cyclic_form) for p in g.generate()) // g.order(), a.repeats
        )
        print(f"colourings/{expr:12s} sympy {t * 1e3:10.3f} ms  orbits {n}")
    if a.claimlab:
        with tempfile.TemporaryDirectory() as d:
            for name, gens in [("M12", M12), ("rubik", RUBIK)]:
                f = os.path.join(d, f"{name}.txt")
                with open(f, "w") as fh:
                    fh.write("\n".join(gens) + "\n")
                t, _ = best_of(
                    lambda: subprocess.run([a.claimlab, "orbits", "order", "--generators", f],
                                           check=True, capture_output=True), a.repeats)
                print(f"claimlab orbits order {name:6s} {t * 1e3:10.3f} ms (process, incl. start-up)")


if __name__ == "__main__":
    main()
