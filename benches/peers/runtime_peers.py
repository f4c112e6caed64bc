#!/usr/bin/env python3
"""Side-by-side speed and peak memory of the claimlab runtime and llama.cpp on SmolLM2-135M.

Both run the same prompt (the opening of Brown's first news document) on the same cores:
`claimlab generate` (our runtime: every weight dequantised to f32 once at load) against
llama.cpp through the prebuilt binaries of the npm package `node-llama-cpp`, on
  * an F32 GGUF written by `claimlab convert --type f32` (the same f32 weights: the fair peer),
  * the pinned Q4_1 GGUF (llama.cpp's native quantised kernels, for context).
Each configuration runs --repeats times, interleaved, and the best run is kept; peak resident
memory is each process's own (wait4). Prints a Markdown table and writes JSON beside it.

Usage: python3 benches/peers/runtime_peers.py [--claimlab target/release/claimlab]
           [--repeats 3] [--decode 64] [--prompt-tokens 128] [--threads 2] [--json out.json]
           [--baseline OTHER_CLAIMLAB] [--skip-q41] [--skip-perplexity]
--baseline adds a second claimlab binary (e.g. a build of the previous commit) to the interleaved
runs, for an A/B comparison of a change on a busy machine (compare ratios, not absolute speeds).
Installs node-llama-cpp with npm into benches/peers/.node (git-ignored) on first use.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, ".node")
NLC = "node-llama-cpp@3.22.1"
NLC_BIN = "@node-llama-cpp/linux-x64@3.22.1"


def ensure_node_llama_cpp():
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "node-llama-cpp")):
        return
    os.makedirs(NODE_DIR, exist_ok=True)
    # The CPU binaries only: the CUDA and Vulkan variants are optional dependencies.
    subprocess.check_call(["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund",
                           "--omit=optional", NLC, NLC_BIN])


def run_measured(cmd, env=None):
    """Runs cmd, returns (stdout, wall seconds, peak RSS in MiB of that process)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    return out.decode(), wall, ru.ru_maxrss / 1024.0


def brown_prompt(claimlab, n_words):
    fetched = json.loads(subprocess.check_output([claimlab, "--json", "fetch"]))
    brown = next(f["path"] for f in fetched if f["name"] == "brown")
    model = next(f["path"] for f in fetched if f["name"] == "smollm2")
    # Brown's tagged text: words as word/tag; keep the words.
    text = ""
    for root, _, files in sorted(os.walk(brown)):
        for f in sorted(files):
            if re.fullmatch(r"ca\d\d", f):
                text = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
                break
        if text:
            break
    if not text:
        sys.exit(f"no Brown news file (ca01) under {brown}")
    words = [w.rsplit("/", 1)[0] for w in text.split()]
    return " ".join(words[:n_words]), model


def median_ratios(runs, ours, resamples=10000, seed=1):
    """Ratio of our median speed to each other runtime's (decode and prefill), with a 95% percentile
    bootstrap interval: each runtime's runs resampled independently, `resamples` times, seeded. The
    median is robust to a runtime whose runs spread widely, where the best-of statistic rewards
    the spread; both are printed."""
    import random
    import statistics
    rng = random.Random(seed)
    out = {}
    for name, rs in runs.items():
        if name == ours or ours not in runs:
            continue
        out[name] = {}
        for key in ("decode_tokens_per_s", "prefill_tokens_per_s"):
            x = [r[key] for r in runs[ours]]
            y = [r[key] for r in rs]
            est = statistics.median(x) / statistics.median(y)
            boot = sorted(statistics.median(rng.choices(x, k=len(x))) / statistics.median(rng.choices(y, k=len(y)))
                          for _ in range(resamples))
            lo, hi = boot[int(0.025 * resamples)], boot[int(0.975 * resamples) - 1]
            out[name][key] = {"ratio_of_medians": est, "ci95": [lo, hi], "ours": x, "theirs": y}
            print(f"claimlab / {name}, {key.split('_')[0]}: ratio of medians {est:.3f} "
                  f"[{lo:.3f}, {hi:.3f}] (95% bootstrap, {len(x)} and {len(y)} runs, seed {seed})")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--claimlab", default="target/release/claimlab")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", default=None)
    ap.add_argument("--baseline", default=None, help="a second claimlab binary to interleave")
    ap.add_argument("--skip-q41", action="store_true", help="leave out llama.cpp on the Q4_1 file")
    ap.add_argument("--skip-perplexity", action="store_true", help="leave out the perplexity run")
    a = ap.parse_args()
    ensure_node_llama_cpp()
    prompt, q41 = brown_prompt(a.claimlab, a.prompt_words)
    tmp = tempfile.mkdtemp(prefix="claimlab-runtime-peers-")
    prompt_file = os.path.join(tmp, "prompt.txt")
    open(prompt_file, "w").write(prompt)
    f32 = os.path.join(tmp, "smollm2-f32.gguf")
    subprocess.check_call([a.claimlab, "convert", q41, "--type", "f32", "--out", f32],
                          stdout=subprocess.DEVNULL)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    configs = {
        "claimlab (f32 compute, from Q4_1)": lambda: [a.claimlab, "--json", "generate", "--ignore-eos",
                                                      "--max-tokens", str(a.decode), "--model", q41, prompt],
        "llama.cpp F32 GGUF": lambda: ["node", os.path.join(HERE, "llamacpp_peer.mjs"), f32, prompt_file,
                                       str(a.decode), str(a.threads)],
        "llama.cpp Q4_1 GGUF": lambda: ["node", os.path.join(HERE, "llamacpp_peer.mjs"), q41, prompt_file,
                                        str(a.decode), str(a.threads)],
    }
    if a.baseline:
        configs["claimlab baseline"] = lambda: [a.baseline, "--json", "generate", "--ignore-eos",
                                                "--max-tokens", str(a.decode), "--model", q41, prompt]
    if a.skip_q41:
        del configs["llama.cpp Q4_1 GGUF"]
    node_env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    best, runs = {}, {}
    for rep in range(a.repeats):
        for name, cmd in configs.items():
            use_env = env if name.startswith("claimlab") else node_env
            if not name.startswith("claimlab"):
                # ESM resolves packages from the script's directory upwards: link node_modules.
                link = os.path.join(HERE, "node_modules")
                if not os.path.exists(link):
                    os.symlink(os.path.join(NODE_DIR, "node_modules"), link)
            out, wall, rss = run_measured(cmd(), use_env)
            r = json.loads(out)
            r.update(wall_seconds=wall, peak_rss_mib=rss, load_average=os.getloadavg()[0])
            # One line per run as it ends, so that an interrupted run still leaves its numbers.
            print(f"run {rep + 1} {name}: prefill {r['prefill_tokens_per_s']:.1f}, "
                  f"decode {r['decode_tokens_per_s']:.1f} tok/s, load {r['load_average']:.1f}",
                  file=sys.stderr, flush=True)
            runs.setdefault(name, []).append(r)
            if name not in best or r["decode_tokens_per_s"] > best[name]["decode_tokens_per_s"]:
                best[name] = r
    rows = [("runtime", "prompt tok", "prefill tok/s", "decode tok/s", "peak RSS MiB", "load avg", "first words")]
    for name, r in best.items():
        rows.append((name, str(r["prompt_tokens"]), f"{r['prefill_tokens_per_s']:.1f}",
                     f"{r['decode_tokens_per_s']:.1f}", f"{r['peak_rss_mib']:.0f}", f"{r['load_average']:.1f}",
                     repr(r.get("continuation", ""))[:40]))
    print(f"threads {a.threads}, decode {a.decode} tokens, best of {a.repeats} interleaved runs\n")
    for i, row in enumerate(rows):
        print("| " + " | ".join(row) + " |")
        if i == 0:
            print("|" + "---|" * len(row))
    if a.baseline or len(best) > 1:
        print()
        for name, r in best.items():
            fast = best["claimlab (f32 compute, from Q4_1)"]
            print(f"claimlab decode speed / {name}: {fast['decode_tokens_per_s'] / r['decode_tokens_per_s']:.3f}; "
                  f"prefill: {fast['prefill_tokens_per_s'] / r['prefill_tokens_per_s']:.3f}")
    medians = median_ratios(runs, "claimlab (f32 compute, from Q4_1)")
    if a.skip_perplexity:
        if a.json:
            json.dump({"threads": a.threads, "decode": a.decode, "repeats": a.repeats, "results": best,
                       "runs": runs, "median_ratios": medians}, open(a.json, "w"), indent=2)
        return
    # Peak memory of a perplexity run (context 512 over 2,048 tokens of Brown news) against twice
    # the dequantised model size (the bound); the text is the news category's opening.
    ppl_text = os.path.join(tmp, "news.txt")
    open(ppl_text, "w").write(brown_prompt(a.claimlab, 4000)[0])
    out, wall, rss = run_measured([a.claimlab, "--json", "perplexity", "--model", q41, "--context", "512",
                                   "--max-tokens", "2048", ppl_text], env)
    ppl = json.loads(out)
    f32_mib = os.path.getsize(f32) / 2**20
    print(f"\nperplexity run: {ppl['scored_tokens']} tokens, context 512, {ppl['perplexity']:.2f} perplexity, "
          f"{ppl['scored_tokens'] / ppl['seconds']:.0f} tokens/s, peak RSS {rss:.0f} MiB; "
          f"dequantised model {f32_mib:.0f} MiB, bound 2x = {2 * f32_mib:.0f} MiB: "
          f"{'within' if rss < 2 * f32_mib else 'OVER'}")
    if a.json:
        json.dump({"threads": a.threads, "decode": a.decode, "repeats": a.repeats, "results": best,
                   "runs": runs, "median_ratios": medians,
                   "perplexity_run": dict(ppl, peak_rss_mib=rss, wall_seconds=wall,
                                          dequantised_mib=f32_mib)},
                  open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
