"""What the gateway calls each instance and each of its tools.

A prefix (``maya-1``, ``maya-2``, ``blender-1``) is given by order of arrival and kept for the
gateway's lifetime: an instance that goes and comes back under a new id gets a new number, so a
name a client saw never points at another instance. A tool is listed as ``<prefix>__<tool>``.
The proxy tool itself is the subprocess catalogue's (:func:`proxy_spec`): the instance's raw JSON
schemas verbatim, arguments passed through unvalidated (the instance validates them), the
instance's wire result taken back as it is.
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

__all__ = ["SEPARATOR", "Prefixes", "describe", "gateway_tool"]

SEPARATOR = "__"
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


def gateway_tool(instance: Instance, prefix: str, wire: dict[str, Any]) -> ToolSpec | None:
    """The gateway's tool for one of ``instance``'s (``wire`` as its ``tools/list`` gave it), or
    None when the prefixed name is not a valid tool name (over 128 characters)."""
    name = f"{prefix}{SEPARATOR}{wire['name']}"
    if not TOOL_NAME_RE.match(name):
        return None
    listed = {**wire, "name": name, "description": describe(instance, prefix, wire.get("description"))}
    # "main": the fast path makes calls of such tools cancellable (notifications/cancelled, or the
    # client dropping the request), which a forwarded call must be. The gateway's own dispatcher
    # runs them (nothing queues for a main thread) and the instance enforces its own timeouts.
    entry = {"wire": listed, "affinity": "main", "timeout": None, "context": False, "task": "forbidden"}
    return proxy_spec(entry)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
