"""A raw ASGI JSON echo on hypercorn: the ceiling of the HTTP stack (no MCP at all).

It answers any POST with a JSON-RPC result shaped like a tools/call echo result, echoing the request id.
"""

from __future__ import annotations

import json
from typing import Any

from _common import listening_socket, serve_hypercorn

_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    request = json.loads(body) if body else {}
    params = request.get("params") or {}
    text = (params.get("arguments") or {}).get("text", "")
    if request.get("method") == "tools/list":
        result: dict[str, Any] = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
    else:
        result = {
            "content": [{"type": "text", "text": text}],
            "isError": False,
            "structuredContent": {"result": text},
        }
    payload = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    serve_hypercorn(app, listening_socket())


if __name__ == "__main__":
    main()
