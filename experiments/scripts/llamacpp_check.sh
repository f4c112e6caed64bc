#!/usr/bin/env bash
# Loads a GGUF in llama.cpp and scores it on the same tokens as claimlab's runtime.
#
# llama.cpp comes from the npm package node-llama-cpp (prebuilt CPU binaries of llama.cpp in
# @node-llama-cpp/linux-x64 etc.), installed into a temporary directory on first use (needs
# node >= 20 and access to the npm registry; no compiler, no model download).
#
# Usage:
#   experiments/scripts/llamacpp_check.sh MODEL.gguf IDS.json [CONTEXT]
# where IDS.json is written by `claimlab compress ... --eval-ids-out IDS.json`. Prints one JSON
# line (perplexity, mean NLL, greedy continuation of "The capital of France is").
# Compare its "ppl" with the "perplexity_after" of `claimlab --json compress` on the same run
# (same windows: disjoint CONTEXT-token windows, first token of each unscored).
#
# Environment: NLC_DIR (install directory, default ${TMPDIR:-/tmp}/claimlab-node-llama-cpp),
# NLC_VERSION (default 3.22.1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ]; then
    echo "usage: $0 MODEL.gguf IDS.json [CONTEXT]" >&2
    exit 2
fi
model="$(realpath "$1")"
ids="$(realpath "$2")"
ctx="${3:-512}"
dir="${NLC_DIR:-${TMPDIR:-/tmp}/claimlab-node-llama-cpp}"
ver="${NLC_VERSION:-3.22.1}"
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) plat=linux-x64 ;;
    Linux-aarch64) plat=linux-arm64 ;;
    Darwin-arm64) plat=mac-arm64-metal ;;
    Darwin-x86_64) plat=mac-x64 ;;
    *) echo "no prebuilt node-llama-cpp binary known for $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac
if [ ! -d "$dir/node_modules/node-llama-cpp" ]; then
    mkdir -p "$dir"
    printf '{"name":"claimlab-llamacpp-check","private":true,"type":"module"}\n' > "$dir/package.json"
    # Skip the postinstall (it would try to download or build llama.cpp); the prebuilt
    # platform package carries the binaries.
    (cd "$dir" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund \
        --ignore-scripts --omit=optional "node-llama-cpp@$ver" "@node-llama-cpp/$plat@$ver" >&2)
fi
cp "$here/llamacpp_check.mjs" "$dir/llamacpp_check.mjs"
cd "$dir" && exec node llamacpp_check.mjs "$model" "$ids" "$ctx"
