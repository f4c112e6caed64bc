#!/usr/bin/env bash
# Loads a BERT GGUF written by `claimlab compress --model minilm` in llama.cpp and compares its
# sentence embeddings (and tokens) with ours.
#
# llama.cpp comes from the npm package node-llama-cpp (prebuilt CPU binaries), installed into a
# temporary directory on first use by nlc_setup.sh (node >= 20, npm registry).
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
# shellcheck source=nlc_setup.sh
. "$here/nlc_setup.sh"
nlc_setup
cp "$here/llamacpp_embed.mjs" "$NLC_HOME/llamacpp_embed.mjs"
cd "$NLC_HOME" && exec node llamacpp_embed.mjs "$model" "$ids"
