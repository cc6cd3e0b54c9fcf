"""``Instance``: one running server as the registry lists it, and the ``Registry`` interface."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

__all__ = ["DEFAULT_TTL", "Instance", "Registry"]

DEFAULT_TTL = 15.0
"""Seconds a record lives without a heartbeat; a running instance refreshes it every third of that."""

_FIELDS = ("id", "server_name", "app_name", "pid", "host", "url", "version", "started_at", "heartbeat_at")


@dataclass(frozen=True)
class Instance:
    """A registered server: who it is, where it answers, and what its host says about it."""

    id: str
    """Unique for one run of one server: ``{app_name}-{host}-{pid}-{token}``."""
    server_name: str
    app_name: str
    """``maya``, ``blender``, ``generic``: the ``app_name`` given to ``create_skill_server``."""
    pid: int
    host: str
    """The machine's name (``socket.gethostname()`` unless the server was told another)."""
    url: str
    """``ServerHandle.mcp_url()``: where a client (or the gateway) connects."""
    version: str
    """The mcp-embed version the instance runs."""
    started_at: float
    """Epoch seconds."""
    heartbeat_at: float
    """Epoch seconds of the last refresh; a record older than the registry's TTL is never listed."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """What the host sets with ``handle.set_metadata(...)``: JSON values only."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Instance:
        """The record from its JSON form; ``ValueError`` naming what is wrong (a torn or foreign file)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an instance record is a JSON object, not {type(data).__name__}")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise ValueError(f"an instance record lacks {', '.join(missing)}")
        text = {name: data[name] for name in ("id", "server_name", "app_name", "host", "url", "version")}
        for name, value in text.items():
            if not isinstance(value, str) or not value:
                raise ValueError(f"an instance record's {name} must be a non-empty string, not {value!r}")
        pid = data["pid"]
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"an instance record's pid must be a positive integer, not {pid!r}")
        times: dict[str, float] = {}
        for name in ("started_at", "heartbeat_at"):
            value = data[name]
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"an instance record's {name} must be a number of seconds, not {value!r}")
            times[name] = float(value)
        metadata = data.get("metadata", {})
        if not isinstance(metadata, Mapping):
            kind = type(metadata).__name__
            raise ValueError(f"an instance record's metadata must be an object, not {kind}")
        return cls(
            id=text["id"],
            server_name=text["server_name"],
            app_name=text["app_name"],
            pid=pid,
            host=text["host"],
            url=text["url"],
            version=text["version"],
            started_at=times["started_at"],
            heartbeat_at=times["heartbeat_at"],
            metadata=dict(metadata),
        )

    def beat(self, now: float) -> Instance:
        return replace(self, heartbeat_at=now)


class Registry(Protocol):
    """Where running instances are listed: files in the user's runtime folder, or Redis keys.

    Synchronous on purpose: a heartbeat thread and the CLI call it, neither on an event loop.
    """

    def register(self, instance: Instance) -> None:
        """List ``instance`` (or replace the record with the same id)."""

    def unregister(self, instance_id: str) -> None:
        """Remove the record; a no-op when it is gone already."""

    def list(self) -> list[Instance]:
        """The live instances, oldest first: never one whose heartbeat is stale or (same machine)
        whose pid is dead."""

    def close(self) -> None:
        """Release connections; the records stay until unregistered or expired."""
