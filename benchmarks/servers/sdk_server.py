"""The SDK's MCPServer with one echo tool, on hypercorn or uvicorn.

usage: sdk_server.py {hypercorn,uvicorn} {stateless,stateful}
stateless = stateless_http + json_response; stateful = the SDK defaults (sessions, SSE replies).
"""

from __future__ import annotations

import asyncio
import sys

from _common import announce, listening_socket, serve_hypercorn
from mcp.server.mcpserver import MCPServer


def build_app(stateless: bool) -> object:
    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    return server.streamable_http_app(json_response=stateless, stateless_http=stateless, host="127.0.0.1")


def main() -> None:
    runner, mode = sys.argv[1], sys.argv[2]
    app = build_app(stateless=mode == "stateless")
    sock = listening_socket()
    host, port = sock.getsockname()[:2]
    if runner == "hypercorn":
        serve_hypercorn(app, sock)
    elif runner == "uvicorn":
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))  # type: ignore[arg-type]
        announce(f"http://{host}:{port}/mcp")
        asyncio.run(server.serve(sockets=[sock]))
    else:
        raise SystemExit(f"unknown runner {runner!r}")


if __name__ == "__main__":
    main()
