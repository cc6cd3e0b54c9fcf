#!/usr/bin/env bash
# Render the nginx edge for docker-compose.yml from the same settings the server reads:
#   edge/mcp-embed.conf  the nginx config (no secrets; safe to commit)
#   edge/keys.map        the API keys as nginx map entries (SECRET, mode 0600; never commit)
# Needs mcp-embed on this machine (`pip install ../..` from here: it is not on PyPI). Usage:
#   MCP_EMBED_API_KEYS="laptop:$(openssl rand -hex 32)" ./render-edge.sh
# Rotation without downtime: add a second id:key pair, rerun, `docker compose exec edge nginx -s reload`,
# move clients over, drop the old pair, rerun and reload again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
: "${MCP_EMBED_API_KEYS:?set MCP_EMBED_API_KEYS=id:key[,id:key...], e.g. laptop:\$(openssl rand -hex 32)}"
export MCP_PUBLIC_URL="${MCP_PUBLIC_URL:-https://localhost:8443}"
mcp-embed edge nginx \
  --upstream mcp:8765 --listen 443 \
  --tls-cert /etc/nginx/certs/fullchain.pem --tls-key /etc/nginx/certs/privkey.pem \
  --keys-file /etc/nginx/mcp-embed/keys.map \
  --metrics-htpasswd /etc/nginx/mcp-embed/metrics.htpasswd \
  --out edge/mcp-embed.conf
mcp-embed edge nginx-keys --out edge/keys.map
