#!/usr/bin/env python3
"""Side-by-side timings of the peers of claimlab-spectral on the same inputs as
`benches/benches/spectral.rs`: `powerlaw.Fit` (PyPI `powerlaw`, the Clauset-Shalizi-Newman fit
with a full xmin scan, alpha range widened to [1, 20] as in issue 5) on the reference Pareto files
and on SplitMix64 Pareto samples identical bit for bit to the bench's, and NumPy's singular values
of a 768 x 3072 matrix.

Usage:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/spectral_peers.py \
        [--repeats 3] [--max-n 100000]

This machine's environment sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for old OpenBLAS builds;
they slow a current NumPy, so unset both for this command only (the script prints which BLAS
kernel NumPy then runs). Installs powerlaw and numpy with pip if they are missing (registry
packages, never vendored). Reports the best of N wall times and the alpha, xmin, D it found.
"""

import argparse
import os
import subprocess
import sys
import time
from peerlib import ensure, reference_dir

PARETO_SEED = 2024   # as PARETO_SEED in benches/benches/spectral.rs
PARETO_ALPHA = 2.5
SVD_SHAPE = (768, 3072)
MASK = (1 << 64) - 1


class SplitMix64:
    """Identical to `SplitMix64` in benches/benches/spectral.rs."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def next_f64(self):
        return (self.next_u64() >> 11) * (1.0 / float(1 << 53))


def pareto(n, seed):
    g = SplitMix64(seed)
    return [(1.0 - g.next_f64()) ** (-1.0 / (PARETO_ALPHA - 1.0)) for _ in range(n)]


def best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-n", type=int, default=10_000,
                    help="largest synthetic sample to fit (powerlaw's scan is O(n^2): 30000 takes "
                         "about 10x as long as 10000)")
    args = ap.parse_args()

    np = ensure("numpy", "numpy")
    powerlaw = ensure("powerlaw", "powerlaw")
    try:
        threadpoolctl = ensure("threadpoolctl", "threadpoolctl")
        for info in threadpoolctl.threadpool_info():
            print(f"# BLAS: {info.get('internal_api')} {info.get('version')} "
                  f"kernel={info.get('architecture')} threads={info.get('num_threads')}")
    except Exception as e:  # informational only
        print(f"# BLAS info unavailable: {e}")
    print(f"# load average at start: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    print(f"# numpy {np.__version__}, powerlaw {getattr(powerlaw, '__version__', '?')}, "
          f"python {sys.version.split()[0]}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")

    ref = reference_dir("spectral")
    inputs = [
        ("ref_pareto", np.loadtxt(os.path.join(ref, "pareto_alpha2.5_xmin1_n1000_seed5.txt"))),
        ("ref_pareto", np.loadtxt(os.path.join(ref, "pareto_alpha2.5_xmin1_n10000_seed1.txt"))),
    ]
    for n in (1_000, 3_000, 10_000, 30_000, 100_000):
        if n <= args.max_n:
            inputs.append(("splitmix_pareto", np.array(pareto(n, PARETO_SEED))))

    print("bench\tn\tseconds\talpha\txmin\tD\tn_tail")
    for name, x in inputs:
        reps = args.repeats if len(x) <= 10_000 else 1

        def fit():
            return powerlaw.Fit(x, verbose=0, parameter_ranges={"alpha": [1, 20]})

        t, f = best(fit, reps)
        n_tail = int(np.sum(x >= f.xmin))
        print(f"powerlaw.Fit/{name}/{len(x)}\t{len(x)}\t{t:.4f}\t{f.alpha:.6f}\t"
              f"{f.xmin:.6f}\t{f.D:.6f}\t{n_tail}", flush=True)

    # NumPy singular values of a matrix of the bench's shape (same generator, same entries)
    rows, cols = SVD_SHAPE
    g = SplitMix64(7)
    w = np.array([sum(g.next_f64() for _ in range(4)) - 2.0 for _ in range(rows * cols)])
    w = w.reshape((rows, cols))  # row-major, as the bench
    t, s = best(lambda: np.linalg.svd(w, compute_uv=False), args.repeats)
    print(f"numpy.linalg.svd(compute_uv=False)/{rows}x{cols}\t{rows * cols}\t{t:.4f}\t"
          f"sigma_max={s[0]:.4f}\tsigma_min={s[-1]:.4f}\t-")
    print(f"# load average at end: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
