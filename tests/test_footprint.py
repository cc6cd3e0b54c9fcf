"""A started server loads only what it serves with: every module it imports stays resident."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Loaded only when used: the idna codec (bind a non-ASCII host name), content.py (a tool, prompt or
# resource that uses its types), the Qt adapter (a process with a Qt binding imported) and the
# thread pool of main-affinity tools under the inline dispatcher.
UNUSED = ("encodings.idna", "mcp_embed.content", "mcp_embed.dispatch.qt", "concurrent.futures.thread")

# A raw socket to a literal address, so the client itself resolves nothing (that loads idna too).
_SERVE_AND_CALL = """
import json, socket, sys
from mcp_embed import McpHttpConfig, create_skill_server

server = create_skill_server("x", McpHttpConfig(port=0, stateless=True, json_response=True, {extra}))

@server.tool()
def echo(text: str) -> str:
    return text

with server.start() as handle:
    body = json.dumps({{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {{"name": "echo", "arguments": {{"text": "hi"}}}}}}).encode()
    head = (f"POST /mcp HTTP/1.1\\r\\nHost: 127.0.0.1:{{handle.port}}\\r\\n"
            f"Content-Type: application/json\\r\\nAccept: application/json, text/event-stream\\r\\n"
            f"MCP-Protocol-Version: 2025-11-25\\r\\n"
            f"Content-Length: {{len(body)}}\\r\\nConnection: close\\r\\n\\r\\n").encode()
    sock = socket.socket()
    sock.connect(("127.0.0.1", handle.port))
    sock.sendall(head + body)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    assert b'"text":"hi"' in reply.replace(b" ", b""), reply
print(json.dumps([m for m in {unused!r} if m in sys.modules]))
"""


@pytest.mark.parametrize("extra", ["", "enable_file_logging=False"])
def test_a_served_tool_call_leaves_unused_modules_unloaded(extra: str) -> None:
    code = _SERVE_AND_CALL.format(extra=extra, unused=UNUSED)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("host", ["a..b", "x" * 70, "\u00e4..b"])
def test_a_host_name_that_cannot_resolve_is_a_start_error(host: str) -> None:
    # ASCII names reach getaddrinfo as bytes (no idna codec), others as str: both fail the same way.
    from mcp_embed import ServerStartError
    from mcp_embed.runtime.thread import bind_socket

    with pytest.raises(ServerStartError, match="does not resolve"):
        bind_socket(host, 0)
