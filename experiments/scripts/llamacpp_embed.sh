#!/usr/bin/env bash
# Loads a BERT GGUF written by `claimlab compress --model minilm` in llama.cpp and compares its
# sentence embeddings (and tokens) with ours.
#
# llama.cpp comes from the npm package node-llama-cpp (prebuilt CPU binaries), installed into a
# temporary directory on first use exactly as llamacpp_check.sh does (node >= 20, npm registry).
#
# Usage:
#   experiments/scripts/llamacpp_embed.sh MODEL.gguf EMB.json
# where EMB.json is written by `claimlab compress --model minilm ... --eval-ids-out EMB.json`.
# Prints one JSON line (mean and minimum cosine between llama.cpp's and our embeddings, token
# mismatches).
#
# Environment: NLC_DIR (install directory, default ${TMPDIR:-/tmp}/claimlab-node-llama-cpp),
# NLC_VERSION (default 3.22.1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ]; then
    echo "usage: $0 MODEL.gguf EMB.json" >&2
    exit 2
fi
model="$(realpath "$1")"
ids="$(realpath "$2")"
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
cp "$here/llamacpp_embed.mjs" "$dir/llamacpp_embed.mjs"
cd "$dir" && exec node llamacpp_embed.mjs "$model" "$ids"
