"""What the gateway tests share: a registry in memory, instance records, and an SDK client that
records the notifications it receives."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from mcp_embed.handle import ServerHandle
from mcp_embed.instances import Instance, Registry

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


async def listening(listener: Listener, ping: Callable[[], None], method: str) -> None:
    """Wait until the client's notification stream (its GET) is open: ``ping()``, which has the
    gateway send ``method``, until one arrives. A notification sent before is lost, as the
    protocol allows, so a test that waits for one starts after this."""
    import anyio

    with anyio.fail_after(GUARD):
        while not listener.count(method):
            ping()
            await anyio.sleep(0.05)


@contextlib.asynccontextmanager
async def client(url: str, listener: Listener | None = None) -> AsyncIterator[Any]:
    """The SDK's own client (handshake era: a GET stream carries list_changed)."""
    from mcp.client import Client

    async with Client(url, mode="legacy", cache=None, message_handler=listener) as c:
        yield c


async def names(c: Any) -> set[str]:
    return {t.name for t in (await c.list_tools()).tools}


# -- processes, for the end-to-end tests -------------------------------------------------------------

HERE = Path(__file__).resolve().parent


class Proc:
    """A child process whose stdout lines are collected by a thread, so waits stay bounded."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()

    def wait_for(self, prefix: str, timeout: float = GUARD, start: int = 0) -> str:
        """The first line from index ``start`` on that starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for line in self.lines[start:]:
                    if line.startswith(prefix):
                        return line
                exited = self.popen.poll() is not None
                if time.monotonic() > deadline or (exited and not self._new.wait(0.5)):
                    output = "\n".join(self.lines[-30:])
                    raise AssertionError(f"no line starting {prefix!r} from {self.popen.args}:\n{output}")
                self._new.wait(0.2)

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(GUARD)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def spawn_instance(app: str, env: dict[str, str], **metadata: str) -> tuple[Proc, str]:
    """An instance process (``instance_proc.py``) and its MCP URL, once it serves."""
    args = [sys.executable, str(HERE / "instance_proc.py"), app, *(f"{k}={v}" for k, v in metadata.items())]
    proc = Proc(args, env)
    try:
        url = proc.wait_for("URL ").split(" ", 1)[1]
    except BaseException:
        proc.stop()
        raise
    return proc, url


def spawn_gateway(port: int, env: dict[str, str], *extra: str) -> Proc:
    """``mcp-embed gateway`` on ``port``, polling and retrying every 0.2 s."""
    args = [sys.executable, "-m", "mcp_embed", "gateway", "--port", str(port)]
    return Proc([*args, "--poll", "0.2", "--retry", "0.2", *extra], env)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_EMBED_")}
    env.update(PYTHONUNBUFFERED="1", MCP_EMBED_ENABLE_FILE_LOGGING="false", **extra)
    return env


def registry_env(request: Any, tmp_path: Path, ttl: float) -> tuple[Path, dict[str, str], str | None]:
    """For a fixture parametrized ``files`` / ``redis``: the registry folder, the instances'
    environment (that registry, that TTL) and the Redis URL (None for files)."""
    folder = tmp_path / "instances"
    env = child_env(MCP_EMBED_REGISTRY_DIR=str(folder), MCP_EMBED_REGISTRY_TTL=str(ttl))
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_server").url
        env["MCP_EMBED_REDIS_URL"] = redis_url
    return folder, env, redis_url


@contextlib.contextmanager
def gateway_over(registry: Registry, count: int) -> Iterator[tuple[ServerHandle, Any]]:
    """Once ``count`` instances are listed with their metadata, a gateway serving them (port 0,
    polling every 0.2 s): its handle and the :class:`Gateway`; stopped on exit."""
    from mcp_embed import McpHttpConfig
    from mcp_embed.gateway import create_gateway

    wait_until(lambda: len(registry.list()) == count, f"{count} listed instances")
    wait_until(lambda: all(i.metadata for i in registry.list()), "their metadata")
    gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=0.2)
    handle = gateway.start()
    try:
        yield handle, gateway
    finally:
        handle.stop()
