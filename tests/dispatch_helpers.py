"""Helpers of the dispatcher tests: a client on a thread of its own while this thread plays the host.

Every wait is a bounded loop on an outcome (queue depth, a flag), never a timed assertion.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx

from mcp_embed import ServerHandle


class Background:
    """Runs an async function with ``anyio.run`` on a thread and keeps its outcome."""

    def __init__(self, fn: Callable[[], Awaitable[Any]]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True, name="test-client")
        self.thread.start()

    def _run(self, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.result = anyio.run(fn)
        except BaseException as exc:
            self.error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def get(self, join: float = 60) -> Any:
        self.thread.join(join)
        assert not self.thread.is_alive(), "the client thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def wait_until(
    cond: Callable[[], bool],
    *,
    pump: ServerHandle | None = None,
    step: Callable[[], object] | None = None,
    rounds: int = 4000,
    what: str = "",
) -> None:
    """Loop until ``cond()``, pumping ``pump`` or calling ``step`` on this thread each round
    (this thread plays the host's main thread). Bounded: about 20 s at most."""
    for _ in range(rounds):
        if pump is not None:
            pump.pump()
        if step is not None:
            step()
        if cond():
            return
        time.sleep(0.005)
    raise AssertionError(f"condition never reached: {what or cond}")


def depth(handle: ServerHandle) -> int:
    return int(handle.main_thread_status()["queue_depth"])


def health(handle: ServerHandle) -> dict[str, Any]:
    return dict(httpx.get(handle.url + "/health", timeout=10).json())


@contextlib.asynccontextmanager
async def client(url: str, mode: str = "legacy") -> AsyncIterator[Any]:
    from mcp.client import Client

    async with Client(url, mode=mode) as c:
        yield c


class Records(logging.Handler):
    """Collects the ``mcp_embed`` log records of a test (works with ``-p no:logging`` too)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> Records:
        logger = logging.getLogger("mcp_embed")
        self._old = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("mcp_embed")
        logger.removeHandler(self)
        logger.setLevel(self._old)

    def text(self) -> str:
        return "\n".join(self.messages)
