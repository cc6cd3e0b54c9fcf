"""Helpers shared by the benchmark server scripts (kept tiny: they run in every server process)."""

from __future__ import annotations

import socket
import sys
from typing import Any


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """Bind an OS-assigned port and listen, so the port is known before the server starts.

    Made like hypercorn's and uvicorn's own binds: proto IPPROTO_TCP (asyncio only sets TCP_NODELAY on
    accepted sockets whose proto says TCP) and TCP_NODELAY on the listener (inherited on Linux). Without
    both, small responses written in two sends stall ~40 ms on Nagle + delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def announce(url: str) -> None:
    """Tell the harness where to connect: one line on stdout."""
    sys.stdout.write(f"URL {url}\n")
    sys.stdout.flush()


def serve_hypercorn(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` with hypercorn on ``sock`` (already listening), after announcing its URL."""
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    host, port = sock.getsockname()[:2]
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    announce(f"http://{host}:{port}/mcp")
    asyncio.run(serve(app, config))
