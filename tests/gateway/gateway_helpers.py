"""What the gateway tests share: a registry in memory, instance records, and an SDK client that
records the notifications it receives."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from mcp_embed.handle import ServerHandle
from mcp_embed.instances import Instance

GUARD = 30.0  # seconds: a hang guard on every wait, never an assertion on timing


class MemoryRegistry:
    """The ``Registry`` interface over a dict, for one process's tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Instance] = {}
        self.reads = 0

    def register(self, instance: Instance) -> None:
        with self._lock:
            self._records[instance.id] = instance

    def unregister(self, instance_id: str) -> None:
        with self._lock:
            self._records.pop(instance_id, None)

    def list(self) -> list[Instance]:
        with self._lock:
            self.reads += 1
            return sorted(self._records.values(), key=lambda i: i.started_at)

    def close(self) -> None:
        pass


_seq = iter(range(1, 1_000_000))


def record(handle: ServerHandle, app_name: str, **metadata: Any) -> Instance:
    """The registry record of an instance served by ``handle``."""
    n = next(_seq)
    now = time.time()
    return Instance(
        id=f"{app_name}-{socket.gethostname()}-{os.getpid()}-{n}",
        server_name=f"{app_name}-server",
        app_name=app_name,
        pid=os.getpid(),
        host=socket.gethostname(),
        url=handle.mcp_url(),
        version="test",
        started_at=now + n * 1e-6,  # distinct, in creation order
        heartbeat_at=now,
        metadata=metadata,
    )


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Listener:
    """The notifications an SDK client receives, by method."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def __call__(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            self.methods.append(method)

    def count(self, method: str) -> int:
        return self.methods.count(method)


@contextlib.asynccontextmanager
async def client(url: str, listener: Listener | None = None) -> AsyncIterator[Any]:
    """The SDK's own client (handshake era: a GET stream carries list_changed)."""
    from mcp.client import Client

    async with Client(url, mode="legacy", cache=None, message_handler=listener) as c:
        yield c


async def names(c: Any) -> set[str]:
    return {t.name for t in (await c.list_tools()).tools}
