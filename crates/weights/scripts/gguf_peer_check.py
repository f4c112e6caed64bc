"""Peer check of claimlab-weights' quantisers and GGUF writer against the `gguf` Python package
(gguf-py, maintained in the llama.cpp repository; its numpy quantisers mirror ggml's reference
`quantize_row_*_ref`).

Usage (a virtual environment with `pip install gguf==0.19.0`):
    cargo build --release -p claimlab-weights --example quantize_file
    python crates/weights/scripts/gguf_peer_check.py $CARGO_TARGET_DIR/release/examples/quantize_file [SMOLLM2.gguf]

1. For Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16 (types gguf-py can quantise): the bytes our quantiser
   writes equal gguf-py's, block for block, on seeded normal data with per-block scales.
2. For every type we write (K-quants included): gguf-py's dequantiser decodes our bytes to
   values close to the input (RMS error under 5% of each 32-block's largest magnitude, 15% for
   Q2_K and Q3_K).
3. With a model path: our copy with `blk.0.ffn_down.weight` re-quantised to Q8_0 is read by
   gguf.GGUFReader; every tensor's bytes and the Q8_0 tensor's values are compared.

Not covered: loading in llama.cpp itself. PyPI has no binary wheel of llama-cpp-python
(`pip download llama-cpp-python --only-binary :all:` finds none, 2026-11-27); it needs a C++ build.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

exe = sys.argv[1]
model = sys.argv[2] if len(sys.argv) > 2 else None
rng = np.random.default_rng(7)
n = 256 * 512
x = rng.standard_normal(n).astype(np.float32)
x *= np.repeat(10.0 ** rng.uniform(-3, 2, n // 32), 32).astype(np.float32)
tmp = tempfile.mkdtemp()
src = os.path.join(tmp, "x.f32")
x.tofile(src)
failed = False


def ours(name):
    out = os.path.join(tmp, name + ".bin")
    subprocess.run([exe, name, src, out], check=True)
    return np.fromfile(out, dtype=np.uint8)


for name in ["BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]:
    qt = T[name]
    ref = quants.quantize(x.reshape(-1, 256), qt).reshape(-1)
    got = ours(name)
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    diff = np.flatnonzero((ref.reshape(-1, ts) != got.reshape(-1, ts)).any(axis=1))
    print(f"{name}: {len(diff)} of {len(ref) // ts} blocks differ from gguf-py")
    failed |= len(diff) > 0

# K-quant sub-block scales are 6 or 8 bits relative to the 256-block's largest, so the decode
# check uses data scaled per 256-element block (per-32 scales spanning 1e5 would zero small blocks).
x = rng.standard_normal(n).astype(np.float32)
x *= np.repeat(10.0 ** rng.uniform(-3, 2, n // 256), 256).astype(np.float32)
x.tofile(src)
for name in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]:
    qt = T[name]
    got = ours(name)
    y = quants.dequantize(got.reshape(-1, gguf.GGML_QUANT_SIZES[qt][1] * 1), qt).reshape(-1)
    rel = np.sqrt(np.mean(((x - y) / np.repeat(np.abs(x).reshape(-1, 32).max(1), 32)) ** 2))
    print(f"{name}: gguf-py decodes our bytes; RMS error / 32-block max = {rel:.4f}")
    failed |= not rel < (0.15 if name in ("Q2_K", "Q3_K") else 0.05)

if model:
    out = os.path.join(tmp, "requant.gguf")
    name = "blk.0.ffn_down.weight"
    subprocess.run([exe, "--requant", model, name, "Q8_0", out], check=True)
    a = gguf.GGUFReader(model)
    b = gguf.GGUFReader(out)
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    assert list(ta) == list(tb)
    same = sum(np.array_equal(ta[k].data, tb[k].data) for k in ta if k != name)
    print(f"GGUFReader: {len(tb)} tensors, {same} of {len(ta) - 1} unchanged ones byte-equal")
    failed |= same != len(ta) - 1
    print(f"metadata keys: {len(a.fields)} in, {len(b.fields)} out; same names: {list(a.fields) == list(b.fields)}")
    t = tb[name]
    print(f"{name}: type {T(t.tensor_type).name}, shape (ne) {list(t.shape)}")
    failed |= T(t.tensor_type) != T.Q8_0
    wa = quants.dequantize(ta[name].data, ta[name].tensor_type).reshape(-1)
    wb = quants.dequantize(t.data, t.tensor_type).reshape(-1)
    err = np.abs(wa - wb).max()
    print(f"{name}: max |Q4_1 original - Q8_0 copy| = {err:.3g} (largest |w| {np.abs(wa).max():.3g})")

print("FAILED" if failed else "OK")
sys.exit(1 if failed else 0)
