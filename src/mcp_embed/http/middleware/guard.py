"""The DNS-rebinding guard: 421 for a Host outside the allow-list, 403 for a foreign Origin.

The lists are :mod:`mcp_embed.admission`'s, which CORS reads too. Patterns are exact, or end in
``:*`` to allow any port of that host; ``*`` allows anything. A Host naming the very address and
port the request arrived on passes, and so does an Origin naming the Host the request was sent
to (a page of this server's own). Requests without an Origin header (every non-browser client)
pass the Origin check. Each refusal's body names the setting that admits it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..._asgi import ASGIApp, Receive, Scope, Send, header
from ...admission import ANY, Admitted, host_fix, origin_fix
from ...logs import get_logger
from ..responses import send_jsonrpc_error

log = get_logger("guard")


class Patterns:
    __slots__ = ("any", "exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.exact: set[str] = set()
        prefixes: list[str] = []
        patterns = tuple(patterns)
        self.any = ANY in patterns
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
        if self.any or v in self.exact:
            return True
        return any(v.startswith(pre) and v[len(pre) :].isdigit() for pre in self.prefixes)


def arrived_on(scope: Scope) -> str | None:
    """``ip:port`` of the socket that took this request (hypercorn reads it from the socket).

    An IPv4 client of a dual-stack ``::`` bind arrives on ``::ffff:a.b.c.d`` and names
    ``a.b.c.d``: that is the address it used.
    """
    server = scope.get("server")
    if not server or server[1] is None:
        return None
    host = str(server[0]).lower()
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:") :]
    return f"[{host}]:{server[1]}" if ":" in host else f"{host}:{server[1]}"


def _origin_host(origin: str) -> str:
    return origin.partition("://")[2].lower()


class HostOriginGuard:
    def __init__(self, app: ASGIApp, admitted: Admitted) -> None:
        self.app = app
        self.hosts = Patterns(admitted.hosts)
        self.origins = Patterns(admitted.origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = header(scope, b"host")
        if host is None or not (self.hosts.match(host) or host.lower() == arrived_on(scope)):
            log.warning("refused a request with Host %r (not in the allow-list): 421", (host or "")[:200])
            await send_jsonrpc_error(
                send,
                421,
                -32600,
                f"Misdirected request: Host {host!r} is not allowed; admit it with {host_fix()}",
            )
            return
        origin = header(scope, b"origin")
        if origin is not None and not (self.origins.match(origin) or _origin_host(origin) == host.lower()):
            log.warning("refused a request with Origin %r (not in the allow-list): 403", origin[:200])
            await send_jsonrpc_error(send, 403, -32600, origin_refused(origin))
            return
        await self.app(scope, receive, send)


def origin_refused(origin: str) -> str:
    """The 403 text for ``origin``, from the guard and from a CORS preflight alike."""
    return f"Forbidden: Origin {origin!r} is not allowed; admit {origin_fix()}"
