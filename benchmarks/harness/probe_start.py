"""Run in a fresh interpreter: time `import mcp_embed`, `start(wait=False)`, readiness, first tools/list.

Prints one JSON line. Uses only the standard library besides mcp_embed, so nothing else skews the figures.
"""

from __future__ import annotations

import time

t0 = time.perf_counter()
from mcp_embed import McpHttpConfig, create_skill_server  # noqa: E402

t_import = time.perf_counter() - t0

import http.client  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import urllib.parse  # noqa: E402

_BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


def _tools_list_ok(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, body=_BODY, headers=_HEADERS)
        response = conn.getresponse()
        return response.status == 200 and '"echo"' in response.read().decode()
    except OSError:
        return False
    finally:
        conn.close()


def main() -> None:
    t_create = time.perf_counter()
    server = create_skill_server("bench", McpHttpConfig(port=0, stateless=True, json_response=True))

    @server.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    t1 = time.perf_counter()
    handle = server.start(wait=False)
    t2 = time.perf_counter()
    handle.wait_ready(30)
    t3 = time.perf_counter()
    url = handle.mcp_url()
    ok = False
    for _ in range(2000):
        if _tools_list_ok(url):
            ok = True
            break
        time.sleep(0.005)
    t4 = time.perf_counter()
    handle.stop()
    t5 = time.perf_counter()
    json.dump(
        {
            "import_s": t_import,
            "create_and_register_s": t1 - t_create,
            "start_nowait_s": t2 - t1,
            "ready_s": t3 - t1,
            "first_tools_list_s": t4 - t1 if ok else None,
            "stop_s": t5 - t4,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
