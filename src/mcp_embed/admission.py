"""Who the server admits: the Host values and browser Origins, one rule for the guard and CORS.

The DNS-rebinding guard and CORS read the same list, so a preflight never says yes to an Origin
that the request it announces is then refused for (nor the other way round). The nginx renderer
reads it too.

- **Host.** Loopback names on any port; for a wildcard bind (``0.0.0.0``, ``::``) this machine's
  host name; for a named bind that name; ``public_url``'s host; and ``allowed_hosts``. The guard
  also admits the address a request actually arrived on, written as an IP literal: a rebinding
  attack sends the attacker's *name*, never the victim's address, so this is safe and lets a
  client reach a ``0.0.0.0`` bind by the machine's IP without configuration.
- **Origin.** Loopback origins; those of the bind's names and of ``public_url``; ``cors_origins``
  and ``allowed_origins``. ``"*"`` in either admits any Origin, in the guard and CORS alike; so
  does turning the guard off. ``enable_cors`` with no ``cors_origins`` advertises exactly this
  list, never ``*``: a page on another site is refused by both, with a message naming the fix.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from .config import McpHttpConfig

__all__ = ["ANY", "Admitted", "admitted", "host_fix", "origin_fix"]

ANY = "*"
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
WILDCARD_BINDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Admitted:
    """The allow-lists in force. Patterns are exact or end in ``:*`` (any port)."""

    hosts: tuple[str, ...]
    origins: tuple[str, ...]

    @property
    def any_origin(self) -> bool:
        return ANY in self.origins

    def describe(self) -> str:
        """One line for the start-up log: what is admitted and how to widen it."""
        origins = "any" if self.any_origin else ", ".join(self.origins)
        return (
            f"Host: {', '.join(self.hosts)}, and the IP address a request arrives on; "
            f"Origin (browsers): {origins}. Admit another host with {host_fix()}; admit {origin_fix()}"
        )


def host_fix() -> str:
    return "allowed_hosts=(...) or MCP_EMBED_ALLOWED_HOSTS (or set public_url)"


def origin_fix() -> str:
    return "a browser origin with cors_origins=(...) and enable_cors=True, or MCP_EMBED_CORS_ORIGINS"


def admitted(cfg: McpHttpConfig) -> Admitted:
    """The Host and Origin allow-lists that ``cfg`` puts in force."""
    hosts = list(LOOPBACK_HOSTS)
    origins = list(LOOPBACK_ORIGINS)
    names: list[str] = []
    if cfg.host in WILDCARD_BINDS:
        names.append(socket.gethostname())  # a wildcard bind is reached by this machine's name too
    elif not cfg.is_loopback:
        names.append(f"[{cfg.host}]" if ":" in cfg.host else cfg.host)
    for name in names:
        hosts.append(f"{name}:*")
        origins += [f"http://{name}:*", f"https://{name}:*"]
    if cfg.public_url:
        parts = urlsplit(cfg.public_url)
        netloc = parts.netloc.lower()
        hosts.append(netloc)
        if parts.port is None:
            hosts.append(f"{netloc}:{443 if parts.scheme == 'https' else 80}")
        origins.append(f"{parts.scheme}://{netloc}")
    hosts += cfg.allowed_hosts
    origins += cfg.allowed_origins
    origins += cfg.cors_origins
    if not cfg.dns_rebinding_protection and not cfg.cors_origins:
        origins.append(ANY)  # no guard: CORS has nothing to agree with, and answers for any page
    return Admitted(tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(origins)))
