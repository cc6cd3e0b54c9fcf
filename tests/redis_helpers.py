"""A real redis-server on loopback for the replica tests: its own port and directory, nothing saved.

``redis_server`` (a fixture) starts one per test and stops it at the end; its ``stop()`` and
``start()`` take the same server down and bring it back on the same port, for failure tests.
Without a ``redis-server`` binary the tests that need it skip, unless ``MCP_EMBED_REQUIRE_REDIS``
is set (then they fail): CI that installs Redis must not pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.streamable_http import EventMessage
from mcp_types import jsonrpc_message_adapter

from edge_helpers import free_port, stop_process

PASSWORD = "Sup3r-s3cret-pw"  # the guarded server's; a test asserts it is never shown
GUARD = 10.0  # seconds: a hang guard around each test body, never an assertion on timing


def redis_binary() -> str:
    exe = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None
    )
    if exe is None:
        if os.environ.get("MCP_EMBED_REQUIRE_REDIS"):
            pytest.fail("redis-server is required (MCP_EMBED_REQUIRE_REDIS=1) and was not found")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return exe


def answers_ping(port: int, timeout: float = 0.5) -> bool:
    """Something on ``port`` speaks RESP: a PING gets ``+PONG`` (or ``-NOAUTH`` with a password)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"PING\r\n")
        reply = s.recv(64)
        return reply.startswith((b"+PONG", b"-NOAUTH"))
    return False


class RedisServer:
    """One redis-server process on 127.0.0.1:``port``; ``stop()``/``start()`` keep the port."""

    def __init__(self, directory: Path, *, password: str | None = None, port: int | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None, "already running"
        args = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.log),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(200):  # readiness, bounded (about 10 s): it answers PING
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                self.proc = None
                raise RuntimeError(f"redis-server exited: {tail}")
            if answers_ping(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        """Stop it and wait until the port is closed (a bounded wait)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_process(proc)
        for _ in range(100):
            if not answers_ping(self.port, timeout=0.1):
                return
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def running_redis(directory: Path, *, password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(directory, password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for this test (no password); ``.url``, ``.stop()``, ``.start()``."""
    directory = tmp_path / "redis"
    directory.mkdir()
    with running_redis(directory) as server:
        yield server


@pytest.fixture
def guarded_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server that needs ``PASSWORD`` (``--requirepass``)."""
    directory = tmp_path / "redis-auth"
    directory.mkdir()
    with running_redis(directory, password=PASSWORD) as server:
        yield server


# -- for the store tests -----------------------------------------------------------------------------


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def guarded() -> None:
        with anyio.fail_after(GUARD):
            await body()

    anyio.run(guarded)


def note(i: int) -> types.JSONRPCMessage:
    return jsonrpc_message_adapter.validate_python(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": i}},
        by_name=False,
    )


class Sink:
    def __init__(self) -> None:
        self.events: list[EventMessage] = []

    async def __call__(self, event: EventMessage) -> None:
        self.events.append(event)

    @property
    def progress(self) -> list[Any]:
        return [e.message.params["progress"] for e in self.events]  # type: ignore[union-attr]
