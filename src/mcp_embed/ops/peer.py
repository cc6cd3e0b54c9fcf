"""Who is calling: the remote address and the principal of a request, behind trusted proxies.

Read by the audit log, the authentication layer, the stateless back-channel and the tool caller,
so one rule decides identity everywhere: an address is believed to speak for others only when
``trusted_proxies`` lists it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from .._asgi import Scope, header

__all__ = ["PRINCIPAL_SCOPE_KEY", "TrustedProxies", "peer"]

PRINCIPAL_SCOPE_KEY = "mcp_embed.principal"
"""Where an authentication layer leaves the caller's identity (token ``sub`` or API-key id)."""


class TrustedProxies:
    """Addresses whose ``X-Forwarded-For`` and ``X-User-Id`` headers are believed."""

    __slots__ = ("nets",)

    def __init__(self, entries: Iterable[str]) -> None:
        self.nets = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.nets)

    def trusts(self, addr: str | None) -> bool:
        if not addr or not self.nets:
            return False
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in n for n in self.nets)


def peer(scope: Scope | None, proxies: TrustedProxies) -> tuple[str | None, str | None]:
    """``(remote address, principal)`` of a request.

    The principal is what an authentication layer put in ``scope["mcp_embed.principal"]`` (or
    ``scope["state"]["mcp_embed.principal"]``); behind a trusted proxy, ``X-User-Id`` when no layer
    set one. The address is the peer's, or behind a trusted proxy the nearest untrusted hop of
    ``X-Forwarded-For``.
    """
    if scope is None:
        return None, None
    client = scope.get("client")
    addr: str | None = client[0] if client else None
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        state = scope.get("state")
        if isinstance(state, Mapping):
            principal = state.get(PRINCIPAL_SCOPE_KEY)
    if proxies and proxies.trusts(addr):
        forwarded = header(scope, b"x-forwarded-for")
        if forwarded:
            for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
                addr = hop
                if not proxies.trusts(hop):
                    break
        if principal is None:
            principal = header(scope, b"x-user-id")
    return addr, (str(principal)[:256] if principal is not None else None)
