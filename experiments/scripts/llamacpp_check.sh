#!/usr/bin/env bash
# Loads a GGUF in llama.cpp and scores it on the same tokens as claimlab's runtime.
#
# llama.cpp comes from the npm package node-llama-cpp (prebuilt CPU binaries), installed into a
# temporary directory on first use by nlc_setup.sh (node >= 20, npm registry; no compiler, no
# model download).
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
# shellcheck source=nlc_setup.sh
. "$here/nlc_setup.sh"
nlc_setup
cp "$here/llamacpp_check.mjs" "$NLC_HOME/llamacpp_check.mjs"
cd "$NLC_HOME" && exec node llamacpp_check.mjs "$model" "$ids" "$ctx"
