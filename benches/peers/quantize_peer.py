#!/usr/bin/env python3
"""`claimlab compress` against llama.cpp's own quantiser on SmolLM2-135M, at equal size, one run.

Peer: llama.cpp release v0.5.0 as prebuilt shared libraries of the npm package node-llama-cpp
3.22.1 (installed with npm into benches/peers/.node, git-ignored), called through ctypes
(llamacpp_ctypes.py): `llama_model_quantize` on an F32 GGUF of the dequantised checkpoint
(`claimlab convert --type f32`), for each llama.cpp file type, without and with an importance
matrix. The importance matrix is llama.cpp's: the mean squared input of every `blk.*` matrix
multiplication, collected through llama.cpp's public evaluation callback on the same calibration
tokens that `claimlab compress` uses (Brown text outside the news genre) - what the `llama-imatrix`
tool computes, which the npm package does not ship. Nothing of llama.cpp is compiled here.

Ours: `claimlab compress --target-bytes N` with N the tensor bytes of each llama.cpp file (so our
tensor data is at most llama.cpp's), from the same F32 file, by plain rounding (rtn) and by GPTQ.

Every file is scored by our runtime (`claimlab perplexity`, the first --eval-tokens tokens of Brown
news ca01-ca44 as `claimlab compress` tokenises them, written back to text, disjoint windows of
512) and, on the same token ids, by llama.cpp itself (its logits through ctypes, same windows).
Time, CPU time and peak resident memory (wait4, the process alone) of each compression are measured;
llama.cpp's importance matrix is timed separately. A --workdir is reused (the F32 file and the news
ids are kept): give a fresh one when --eval-tokens changes.

Usage: python3 benches/peers/quantize_peer.py [--claimlab target/release/claimlab] [--threads 2]
           [--ftypes Q4_0:pure,Q2_K:embd=q4_0,Q2_K,Q4_K_M] [--methods rtn,gptq] [--eval-tokens 2500]
           [--calib-tokens 1024] [--workdir DIR] [--json out.json]
Prints a Markdown table; --json writes every number.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NODE_DIR = os.path.join(HERE, ".node")
NLC = "node-llama-cpp@3.22.1"
NLC_BIN = "@node-llama-cpp/linux-x64@3.22.1"
CONTEXT = 512

sys.path.insert(0, HERE)
import llamacpp_ctypes as lc  # noqa: E402


def ensure_node_llama_cpp():
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@node-llama-cpp", "linux-x64")):
        return
    os.makedirs(NODE_DIR, exist_ok=True)
    # The CPU binaries only; no postinstall (it would download or build llama.cpp).
    env = dict(os.environ, NODE_LLAMA_CPP_SKIP_DOWNLOAD="true")
    subprocess.check_call(["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund",
                           "--ignore-scripts", "--omit=optional", NLC, NLC_BIN], env=env)


def run_measured(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MiB, CPU seconds (user + system)), the
    last two of that process and its waited-for children alone (wait4)."""
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')[-3000:]}")
    return out.decode(), wall, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------- GGUF tensor table (read only)

def gguf_tensors(path, llama):
    """[(name, ggml type name, n elements, bytes)] of a GGUF file; sizes from ggml's own type table."""
    with open(path, "rb") as f:
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def rstr():
            return f.read(rd("Q")).decode("utf-8", errors="replace")

        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

        def skip(vt):
            if vt == 8:
                rstr()
            elif vt == 9:
                et, n = rd("I"), rd("Q")
                for _ in range(n):
                    skip(et)
            else:
                f.read(sizes[vt])

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        rd("I")
        n_t, n_kv = rd("Q"), rd("Q")
        for _ in range(n_kv):
            rstr()
            skip(rd("I"))
        out = []
        for _ in range(n_t):
            name = rstr()
            dims = [rd("Q") for _ in range(rd("I"))]
            t = rd("I")
            rd("Q")
            n = int(np.prod(dims))
            tname, blck, tsize = llama.type_info(t)
            out.append((name, tname, n, n // blck * tsize))
        return out


def type_mix(tensors):
    """'Q4_0 61%, Q8_0 25%, ...': share of the parameters stored in each type."""
    tot = sum(t[2] for t in tensors)
    by = {}
    for _, ty, n, _ in tensors:
        by[ty] = by.get(ty, 0) + n
    return ", ".join(f"{k} {100 * v / tot:.0f}%" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------- text

def brown_dir(claimlab):
    fetched = json.loads(subprocess.check_output([claimlab, "--json", "fetch"]))
    return (next(f["path"] for f in fetched if f["name"] == "brown"),
            next(f["path"] for f in fetched if f["name"] == "smollm2"))


def calibration_text(brown, n_chars):
    """Brown documents outside the news genre, in corpus order, tags stripped (word/tag -> word)."""
    cats = [ln.split() for ln in open(os.path.join(brown, "cats.txt")) if ln.strip()]
    parts, size = [], 0
    for doc, genre in sorted(cats):
        if genre == "news":
            continue
        paras = []
        for para in re.split(r"\n\s*\n", open(os.path.join(brown, doc), encoding="utf-8").read()):
            words = [w.rsplit("/", 1)[0] for w in para.split()]
            if words:
                paras.append(" ".join(words))
        parts.append("\n\n".join(paras))
        size += len(parts[-1])
        if size > n_chars:
            break
    return "\n\n".join(parts)


# ---------------------------------------------------------------- sub-processes (measured alone)

def parse_spec(spec):
    """'Q2_K' or 'Q2_K:embd=q4_0' or 'Q4_0:pure' -> (ftype, options of LlamaCpp.quantize)."""
    ft, *opts = spec.split(":")
    kw = {}
    for o in opts:
        if o == "pure":
            kw["pure"] = True
        elif o.startswith("embd="):
            kw["token_embedding_type"] = o[5:]
        else:
            raise ValueError(f"unknown option {o!r} in {spec!r} (pure, embd=TYPE)")
    return ft, kw


def sub_quantize(argv):
    inp, out, spec, nthread = argv[:4]
    imat = None
    if len(argv) > 4:
        z = np.load(argv[4])
        imat = {k: z[k] for k in z.files}
    ft, kw = parse_spec(spec)
    lc.LlamaCpp(lc.bins_dir(NODE_DIR)).quantize(inp, out, ft, int(nthread), imat, **kw)


def sub_imatrix(argv):
    model, ids_path, nthread, out = argv
    ids = json.load(open(ids_path))
    m, counts = lc.LlamaCpp(lc.bins_dir(NODE_DIR)).imatrix(model, ids, CONTEXT, int(nthread))
    np.savez(out, **m)
    print(json.dumps({"entries": len(m), "tokens_min": min(counts.values()),
                      "tokens_max": max(counts.values())}))


def print_table(res):
    """The Markdown table of a run (also from a saved --json file: `--table-from FILE`)."""
    rows = [("file", "types (share of weights)", "tensor MiB", "bpw", "ppl (claimlab)", "ppl (llama.cpp)",
             "time s", "CPU s", "peak RSS MiB")]
    for key, r in res["files"].items():
        rows.append((key, r["types"], f"{r['tensor_bytes'] / 2**20:.2f}", f"{r['bpw']:.3f}",
                     f"{r['ppl_claimlab']:.3f}" if "ppl_claimlab" in r else "-",
                     f"{r['ppl_llamacpp']:.3f}" if "ppl_llamacpp" in r else "-",
                     f"{r['seconds']:.1f}" if "seconds" in r else "-",
                     f"{r['cpu_seconds']:.1f}" if "cpu_seconds" in r else "-",
                     f"{r['peak_rss_mib']:.0f}" if "peak_rss_mib" in r else "-"))
    print(f"threads {res['threads']}; {res['eval_tokens']} tokens of Brown news, context {CONTEXT}; calibration "
          f"{res['calib_tokens']} tokens of Brown outside news; load average {res['load_average_start'][0]:.1f} at "
          f"start, {res.get('load_average_end', os.getloadavg())[0]:.1f} at end\n")
    for i, row in enumerate(rows):
        print("| " + " | ".join(row) + " |")
        if i == 0:
            print("|" + "---|" * len(row))
    im = res["imatrix"]
    print(f"\nllama.cpp importance matrix: {im['entries']} matrices, {im['tokens_min']} tokens each, "
          f"{im['seconds']:.1f} s, peak RSS {im['peak_rss_mib']:.0f} MiB")
    for bpw, r in res.get("lower_targets", {}).items():
        print(f"compress --target-bpw {bpw}: exit {r['exit']}: {r['message'].splitlines()[-1] if r['message'] else ''}")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--claimlab", default=os.path.join(ROOT, "target", "release", "claimlab"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ftypes", default="Q4_0:pure,Q2_K:embd=q4_0,Q2_K,Q4_K_M",
                    help="llama.cpp file types; ':pure' and ':embd=TYPE' are llama-quantize's --pure and "
                         "--token-embedding-type")
    ap.add_argument("--methods", default="rtn,gptq")
    ap.add_argument("--eval-tokens", type=int, default=2500)
    ap.add_argument("--calib-tokens", type=int, default=1024)
    ap.add_argument("--also-bpw", type=float, nargs="*", default=[3.5, 2.5],
                    help="targets below llama.cpp's reach: only compress's answer is recorded")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    claimlab = os.path.abspath(a.claimlab)
    ensure_node_llama_cpp()
    llama = lc.LlamaCpp(lc.bins_dir(NODE_DIR))
    work = a.workdir or tempfile.mkdtemp(prefix="claimlab-quantize-peer-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    me = [sys.executable, os.path.abspath(__file__)]
    log = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731
    res = {"threads": a.threads, "load_average_start": os.getloadavg(), "eval_tokens": a.eval_tokens,
           "context": CONTEXT, "calib_tokens": a.calib_tokens, "llama_cpp": "v0.5.0 (node-llama-cpp 3.22.1)",
           "files": {}}

    brown, q41 = brown_dir(claimlab)
    f32 = os.path.join(work, "smollm2-f32.gguf")
    if not os.path.exists(f32):
        subprocess.check_call([claimlab, "convert", q41, "--type", "f32", "--out", f32], stdout=subprocess.DEVNULL)
    calib = os.path.join(work, "calib.txt")
    open(calib, "w").write(calibration_text(brown, 12 * a.calib_tokens))
    calib_ids = llama.tokenize(f32, open(calib).read())[:a.calib_tokens]
    if len(calib_ids) < a.calib_tokens:
        sys.exit(f"calibration text gives {len(calib_ids)} tokens, fewer than {a.calib_tokens}")
    json.dump(calib_ids, open(os.path.join(work, "calib_ids.json"), "w"))

    # llama.cpp's importance matrix on the calibration tokens.
    log("llama.cpp importance matrix ...")
    imat = os.path.join(work, "imatrix.npz")
    out, wall, rss, cpu = run_measured(me + ["_imatrix", f32, os.path.join(work, "calib_ids.json"), str(a.threads), imat])
    res["imatrix"] = dict(json.loads(out), seconds=wall, peak_rss_mib=rss, cpu_seconds=cpu)

    def record(key, path, **kw):
        tensors = gguf_tensors(path, llama)
        r = {"path": path, "tensor_bytes": sum(t[3] for t in tensors), "file_bytes": os.path.getsize(path),
             "n_params": sum(t[2] for t in tensors), "types": type_mix(tensors)}
        r["bpw"] = 8 * r["tensor_bytes"] / r["n_params"]
        r.update(kw)
        res["files"][key] = r
        return r

    record("f32 (dequantised Q4_1 checkpoint)", f32, kind="reference")
    ftypes = [f for f in a.ftypes.split(",") if f]
    methods = [m for m in a.methods.split(",") if m]
    ids_path = os.path.join(work, "news_ids.json")
    news = os.path.join(work, "news.txt")

    def score_pending():
        """Perplexity of every file not yet scored, by both runtimes, on the same token ids."""
        if not os.path.exists(ids_path):
            return
        ids = json.load(open(ids_path))
        if not os.path.exists(news):
            open(news, "w").write(llama.detokenize(f32, ids))
        for key, r in res["files"].items():
            if "ppl_claimlab" in r:
                continue
            log(f"perplexity of {key} ...")
            out, _, _, _ = run_measured([claimlab, "--json", "perplexity", "--model", r["path"], "--context",
                                      str(CONTEXT), "--max-tokens", str(a.eval_tokens), news], env)
            p = json.loads(out)
            r["ppl_claimlab"], r["scored_claimlab"] = p["perplexity"], p["scored_tokens"]
            r["tokens_claimlab"] = p.get("tokens_in_file")
            ppl, _, scored = llama.perplexity(r["path"], ids, CONTEXT, a.threads)
            r["ppl_llamacpp"], r["scored_llamacpp"] = ppl, scored
            if a.json:
                json.dump(res, open(a.json, "w"), indent=2)

    for ft in ftypes:
        for imx in (False, True):
            out_path = os.path.join(work, f"llamacpp-{ft.replace(':', '-').replace('=', '-')}{'-imatrix' if imx else ''}.gguf")
            log(f"llama.cpp {ft}{' + imatrix' if imx else ''} ...")
            _, wall, rss, cpu = run_measured(me + ["_quantize", f32, out_path, ft, str(a.threads)] + ([imat] if imx else []))
            record(f"llama.cpp {ft}{' + imatrix' if imx else ''}", out_path, kind="llama.cpp", ftype=ft,
                   imatrix=imx, seconds=wall, peak_rss_mib=rss, cpu_seconds=cpu)
        target = res["files"][f"llama.cpp {ft}"]["tensor_bytes"]
        for m in methods:
            out_path = os.path.join(work, f"claimlab-{ft.replace(':', '-').replace('=', '-')}-{m}.gguf")
            log(f"claimlab compress at {ft}'s size, {m} ...")
            cmd = [claimlab, "--json", "compress", "--model", f32, "--target-bytes", str(target), "--calib", calib,
                   "--calib-tokens", str(a.calib_tokens), "--eval-tokens", str(a.eval_tokens), "--validate", "0",
                   "--method", m, "--out", out_path]
            if not os.path.exists(ids_path):
                cmd += ["--eval-ids-out", ids_path]
            out, wall, rss, cpu = run_measured(cmd, env)
            c = json.loads(out)
            record(f"claimlab {m} at {ft} size", out_path, kind="claimlab", method=m, ftype=ft, seconds=wall,
                   peak_rss_mib=rss, cpu_seconds=cpu, compress_perplexity_after=c.get("perplexity_after"),
                   compress_perplexity_before=c.get("perplexity_before"), compress_types=c.get("per_type"),
                   rtn_same_size=c.get("rtn_same_size"), target_bytes=target)
            score_pending()
    score_pending()
    # The 3.5 and 2.5 bits per weight: what compress says about them (it checks the
    # smallest size its menus reach before any work).
    res["lower_targets"] = {}
    for bpw in a.also_bpw:
        p = subprocess.run([claimlab, "compress", "--model", f32, "--target-bpw", str(bpw), "--out",
                            os.path.join(work, "never.gguf")], capture_output=True, text=True, env=env)
        res["lower_targets"][str(bpw)] = {"exit": p.returncode, "message": (p.stderr or p.stdout).strip()[-600:]}
    res["load_average_end"] = os.getloadavg()

    print_table(res)
    if a.json:
        json.dump(res, open(a.json, "w"), indent=2)
    if not (a.keep or a.workdir):
        shutil.rmtree(work)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_quantize":
        sub_quantize(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "_imatrix":
        sub_imatrix(sys.argv[2:])
    elif len(sys.argv) > 2 and sys.argv[1] == "--table-from":
        print_table(json.load(open(sys.argv[2])))
    else:
        main()
