"""What the gateway calls each instance and each of its tools.

A prefix (``maya-1``, ``maya-2``, ``blender-1``) is given by order of arrival and kept for the
gateway's lifetime: an instance that goes and comes back under a new id gets a new number, so a
name a client saw never points at another instance. A tool is listed as ``<prefix>__<tool>``.
The proxy tool itself is the subprocess catalogue's (:func:`proxy_spec`): the instance's raw JSON
schemas verbatim, arguments passed through unvalidated (the instance validates them), the
instance's wire result taken back as it is.

A resource is listed under ``mcp-embed+gateway://<prefix>/<its own URI, verbatim>``
(:func:`gateway_uri`): the instance's URI is kept character for character after the prefix, so
it maps back exactly (:func:`split_gateway_uri`), reads as what it is, and a template's
``{variables}`` expand through the gateway as they would at the instance.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..components.tools import TOOL_NAME_RE
from ..runtime.subprocess.catalog import proxy_spec

if TYPE_CHECKING:
    from ..components.tools import ToolSpec
    from ..instances import Instance

__all__ = [
    "SCHEME",
    "SEPARATOR",
    "Prefixes",
    "describe",
    "gateway_name",
    "gateway_tool",
    "gateway_uri",
    "split_gateway_uri",
]

SEPARATOR = "__"
SCHEME = "mcp-embed+gateway"
_ROOT = f"{SCHEME}://"
_UNSAFE = re.compile(r"[^a-z0-9_.\-]+")


class Prefixes:
    """Instance id -> prefix, stable and never reused while the gateway runs."""

    def __init__(self) -> None:
        self._by_id: dict[str, str] = {}
        self._count: defaultdict[str, int] = defaultdict(int)

    def of(self, instance: Instance) -> str:
        prefix = self._by_id.get(instance.id)
        if prefix is None:
            app = _UNSAFE.sub("-", instance.app_name.lower()).strip("-_.") or "app"
            self._count[app] += 1
            prefix = self._by_id[instance.id] = f"{app[:40]}-{self._count[app]}"
        return prefix


def describe(instance: Instance, prefix: str, description: str | None) -> str:
    """A proxied tool's description: the instance's own, then which instance answers it."""
    where = f"[{prefix}: {instance.app_name} on {instance.host}, pid {instance.pid}"
    if instance.metadata:
        where += "; " + ", ".join(f"{k}={_short(v)}" for k, v in sorted(instance.metadata.items()))
    where += "]"
    return f"{description}\n\n{where}" if description else where


def gateway_name(prefix: str, name: str) -> str | None:
    """``<prefix>__<name>``, or None when that is not a valid tool or prompt name (too long)."""
    full = f"{prefix}{SEPARATOR}{name}"
    return full if TOOL_NAME_RE.match(full) else None


def gateway_uri(prefix: str, uri: str) -> str:
    """The URI the gateway lists an instance's resource (or template) under."""
    return f"{_ROOT}{prefix}/{uri}"


def split_gateway_uri(uri: str) -> tuple[str, str] | None:
    """``(prefix, the instance's own URI)`` of a :func:`gateway_uri`; None for any other URI."""
    if uri[: len(_ROOT)].lower() != _ROOT:  # a scheme is case-insensitive (RFC 3986, 3.1)
        return None
    prefix, slash, original = uri[len(_ROOT) :].partition("/")
    if not slash or not prefix:
        return None
    return prefix, original


def gateway_tool(instance: Instance, prefix: str, wire: dict[str, Any]) -> ToolSpec | None:
    """The gateway's tool for one of ``instance``'s (``wire`` as its ``tools/list`` gave it), or
    None when the prefixed name is not a valid tool name (over 128 characters)."""
    name = gateway_name(prefix, wire["name"])
    if name is None:
        return None
    listed = {**wire, "name": name, "description": describe(instance, prefix, wire.get("description"))}
    # "main": the fast path makes calls of such tools cancellable (notifications/cancelled, or the
    # client dropping the request), which a forwarded call must be. The gateway's own dispatcher
    # runs them (nothing queues for a main thread) and the instance enforces its own timeouts.
    # "context": a call gets its ToolContext, whose client_capabilities decide whether the instance
    # may ask that client (.asking); context_to_ask: the fast path still serves a call whose client
    # cannot be asked (and wants no progress), the benchmark's case.
    entry = {"wire": listed, "affinity": "main", "timeout": None, "context": True, "task": "forbidden"}
    spec = proxy_spec(entry)
    spec.context_to_ask = True
    return spec


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
