"""The DNS-rebinding guard: 421 for a Host outside the allow-list, 403 for a foreign Origin.

Patterns are exact, or end in ``:*`` to allow any port of that host. Requests without an
Origin header (every non-browser client) pass the Origin check.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..._asgi import ASGIApp, Receive, Scope, Send, header
from ...logs import get_logger
from ..responses import send_jsonrpc_error

log = get_logger("guard")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class _Patterns:
    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.exact: set[str] = set()
        prefixes: list[str] = []
        for p in patterns:
            p = p.lower()
            if p.endswith(":*"):
                prefixes.append(p[:-1])  # keep the colon: "host:" matches "host:8080"
                self.exact.add(p[:-2])  # and the bare host (default port)
            else:
                self.exact.add(p)
        self.prefixes = tuple(prefixes)

    def match(self, value: str) -> bool:
        v = value.lower()
        if v in self.exact:
            return True
        return any(v.startswith(pre) and v[len(pre) :].isdigit() for pre in self.prefixes)


class HostOriginGuard:
    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = _Patterns(allowed_hosts)
        self.origins = _Patterns(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = header(scope, b"host")
        if host is None or not self.hosts.match(host):
            log.warning("refused a request with Host %r (not in the allow-list): 421", (host or "")[:200])
            await send_jsonrpc_error(send, 421, -32600, f"Misdirected request: Host {host!r} is not allowed")
            return
        origin = header(scope, b"origin")
        if origin is not None and not self.origins.match(origin):
            log.warning("refused a request with Origin %r (not in the allow-list): 403", origin[:200])
            await send_jsonrpc_error(send, 403, -32600, f"Forbidden: Origin {origin!r} is not allowed")
            return
        await self.app(scope, receive, send)
