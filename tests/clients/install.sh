#!/usr/bin/env bash
# Install the pinned Node.js MCP clients (package-lock.json) into tests/clients/node_modules.
# Idempotent: when node_modules already holds exactly this lock file, it does nothing.
# Usage: tests/clients/install.sh [--force]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v node >/dev/null || { echo "install.sh: node is not on PATH (Node >= 20 needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm is not on PATH" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install.sh: Node $(node --version) is too old; Node >= 20 needed" >&2
  exit 1
fi

stamp=node_modules/.mcp-embed-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "install.sh: Node clients already installed ($(pwd)/node_modules)"
  exit 0
fi

# No package here needs an install script (the Inspector's postinstall is a no-op
# outside its own source tree), so none is run. The Inspector declares engines
# node >= 22.19 but its CLI works on Node 20; npm only warns about that.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "install.sh: installed Node clients into $(pwd)/node_modules"
