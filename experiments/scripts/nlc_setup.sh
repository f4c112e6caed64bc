#!/usr/bin/env bash
# Shared setup of llamacpp_check.sh and llamacpp_embed.sh (sourced, not run): installs the npm
# package node-llama-cpp (prebuilt CPU binaries of llama.cpp in @node-llama-cpp/linux-x64 etc.)
# into a temporary directory on first use (needs node >= 20 and access to the npm registry; no
# compiler, no model download), then sets NLC_HOME to that directory.
#
# Environment: NLC_DIR (install directory, default ${TMPDIR:-/tmp}/claimlab-node-llama-cpp),
# NLC_VERSION (default 3.22.1).

nlc_setup() {
    local ver plat
    NLC_HOME="${NLC_DIR:-${TMPDIR:-/tmp}/claimlab-node-llama-cpp}"
    ver="${NLC_VERSION:-3.22.1}"
    case "$(uname -s)-$(uname -m)" in
        Linux-x86_64) plat=linux-x64 ;;
        Linux-aarch64) plat=linux-arm64 ;;
        Darwin-arm64) plat=mac-arm64-metal ;;
        Darwin-x86_64) plat=mac-x64 ;;
        *) echo "no prebuilt node-llama-cpp binary known for $(uname -s)-$(uname -m)" >&2; return 2 ;;
    esac
    if [ ! -d "$NLC_HOME/node_modules/node-llama-cpp" ]; then
        mkdir -p "$NLC_HOME"
        printf '{"name":"claimlab-llamacpp-check","private":true,"type":"module"}\n' > "$NLC_HOME/package.json"
        # Skip the postinstall (it would try to download or build llama.cpp); the prebuilt
        # platform package carries the binaries.
        (cd "$NLC_HOME" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund \
            --ignore-scripts --omit=optional "node-llama-cpp@$ver" "@node-llama-cpp/$plat@$ver" >&2)
    fi
}
