#!/usr/bin/env python3
"""Side-by-side timings of the peers of claimlab-topology on the same inputs as
`benches/benches/topology.rs`: ripser (PyPI `ripser`) for Vietoris-Rips barcodes and GUDHI
(PyPI `gudhi`) for the bottleneck distance, plus `claimlab ph barcode` through the product binary.

Usage:  python3 benches/peers/ph_peers.py [--claimlab target/release/claimlab] [--repeats 3]
Installs ripser and gudhi with pip into the current environment if they are missing (registry
packages, never vendored). Reports best-of-N wall time and the process CPU time of that run.
"""

import argparse
import os
import subprocess
import sys
import time
from peerlib import ensure, reference_dir

CLOUDS = [("circle100", 2), ("sphere200", 2), ("torus400", 2), ("cube1000", 1)]
DIAGRAM_POINTS = 5000


def synthetic_diagram(n, a, b):
    # Identical IEEE operations to `synthetic_diagram` in benches/benches/topology.rs.
    out = []
    for i in range(1, n + 1):
        x = float(i)
        birth = (x * a) % 1.0
        life = 0.5 * ((x * b) % 1.0)
        out.append((birth, birth + life))
    return out


def best(fn, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    i = min(range(repeats), key=lambda k: walls[k])
    return walls[i], cpus[i]


def best_subprocess(cmd, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        r0 = os.times()
        w0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - w0)
        r1 = os.times()
        cpus.append((r1.children_user - r0.children_user) + (r1.children_system - r0.children_system))
    i = min(range(repeats), key=lambda k: walls[k])
    return walls[i], cpus[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--claimlab", default=None, help="path of the claimlab binary (optional)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bottleneck-only", action="store_true",
                    help="skip the ripser barcodes and time only GUDHI's bottleneck distance")
    args = ap.parse_args()
    np = ensure("numpy", "numpy")
    ripser = ensure("ripser", "ripser")
    gudhi = ensure("gudhi", "gudhi")
    ref = reference_dir("ph")
    print(f"# ripser {getattr(ripser, '__version__', '?')}, gudhi {gudhi.__version__}, best of {args.repeats}")
    print("| input | peer | wall s | cpu s |" + (" claimlab wall s | claimlab cpu s |" if args.claimlab else ""))
    print(f"# load average at start: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    for name, dim in ([] if args.bottleneck_only else CLOUDS):
        path = os.path.join(ref, name + ".txt")
        pts = np.loadtxt(path)
        w, c = best(lambda: ripser.ripser(pts, maxdim=dim), args.repeats)
        row = f"| {name} H{dim} | ripser | {w:.3f} | {c:.3f} |"
        if args.claimlab:
            cw, cc = best_subprocess([args.claimlab, "ph", "barcode", "--dim", str(dim), path], args.repeats)
            row += f" {cw:.3f} | {cc:.3f} |"
        print(row, flush=True)
    a = np.array(synthetic_diagram(DIAGRAM_POINTS, 0.6180339887498949, 0.4142135623730951))
    b = np.array(synthetic_diagram(DIAGRAM_POINTS, 0.7320508075688772, 0.2360679774997897))
    w, c = best(lambda: gudhi.bottleneck_distance(a, b), args.repeats)
    print(f"| bottleneck {DIAGRAM_POINTS} pts | gudhi (exact, e=0) | {w:.3f} | {c:.3f} |")
    print(f"# gudhi bottleneck value: {gudhi.bottleneck_distance(a, b)!r}")
    print(f"# load average at end: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
