"""Shared fixtures: a real server on an OS-assigned loopback port, and the SDK's own client."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_embed import McpHttpConfig, ServerHandle, SkillServer, ToolContext, create_skill_server

# Audit and log files of test servers go to a throwaway folder, never the real user log folder.
_LOG_DIR = tempfile.mkdtemp(prefix="mcp-embed-test-logs-")
os.environ.setdefault("MCP_EMBED_LOG_DIR", _LOG_DIR)
atexit.register(shutil.rmtree, _LOG_DIR, True)
# Every test server lists itself among the running instances: in a throwaway folder, never the
# user's runtime folder (forced, so a developer's own MCP_EMBED_REGISTRY_DIR stays untouched).
_REGISTRY_DIR = tempfile.mkdtemp(prefix="mcp-embed-test-registry-")
os.environ["MCP_EMBED_REGISTRY_DIR"] = _REGISTRY_DIR
atexit.register(shutil.rmtree, _REGISTRY_DIR, True)


# The headers every Streamable HTTP POST carries, and a 2025-11-25 initialize request.
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def read_audit(log_dir: Path) -> list[dict[str, Any]]:
    """Every record of the audit log and its rotated backups, oldest file first."""
    backups = sorted(log_dir.glob("audit.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    files = [*backups, log_dir / "audit.jsonl"]
    records = []
    for f in files:
        if f.exists():
            for line in f.read_text("utf-8").splitlines():
                records.append(json.loads(line))  # every line parses
    return records


def process_gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def wait_until(check: Any, bound_s: float) -> bool:
    """``check()`` became true within ``bound_s`` (a bounded loop, not a timing assertion)."""
    deadline = time.monotonic() + bound_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@pytest.fixture
def isolated_skill_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Only the skills a test names: no env roots, no user data folder, a private parse cache.
    monkeypatch.delenv("DCC_MCP_SKILL_PATHS", raising=False)
    monkeypatch.setenv("MCP_EMBED_SKILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("platformdirs.user_data_dir", lambda *a, **k: str(tmp_path / "nodata"))


def demo_server(**config: Any) -> SkillServer:
    """A server with the tools the core tests use."""
    config.setdefault("port", 0)
    server = create_skill_server("tests", McpHttpConfig(**config))

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back.

        Args:
            text: What to echo.
        """
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def aecho(text: str) -> str:
        """Echo, as a coroutine."""
        return text

    @server.tool()
    def steps(n: int, ctx: ToolContext) -> str:
        """Report n progress steps."""
        for i in range(n):
            ctx.report_progress(i + 1, n, f"step {i + 1}")
        return f"{n} steps"

    @server.tool()
    def fail(message: str) -> str:
        """Raise an error."""
        raise ValueError(message)

    return server


@contextlib.contextmanager
def serving(**config: Any) -> Iterator[ServerHandle]:
    handle = demo_server(**config).start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(params=["dedicated", "subprocess"])
def spawn_mode(request: pytest.FixtureRequest) -> str:
    """Both spawn modes: end-to-end tests that take this run against each (parity)."""
    return str(request.param)


@pytest.fixture
def handle() -> Iterator[ServerHandle]:
    with serving() as h:
        yield h


@contextlib.asynccontextmanager
async def sdk_client(
    url: str, *, transport: str = "streamable-http", mode: str = "legacy"
) -> AsyncIterator[Any]:
    """The SDK's own ``Client`` over Streamable HTTP (``mode`` legacy or auto) or legacy SSE."""
    from mcp.client import Client

    target: Any = url
    if transport == "sse":
        from mcp.client.sse import sse_client

        target, mode = sse_client(url), "legacy"
    async with Client(target, mode=mode) as client:
        yield client


_REDIS_FIXTURES = {"redis_server", "guarded_redis"}
_REPLICAS = Path(__file__).parent / "replicas"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``redis`` every test that needs a real redis-server: one that takes a Redis fixture,
    runs a registry parametrized ``redis``, or lives in tests/replicas. ``nox -s replicas`` runs
    exactly these with the server required, so none passes there by skipping."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = set(map(str, callspec.params.values())) if callspec is not None else set()
        names = set(getattr(item, "fixturenames", ()))
        if names & _REDIS_FIXTURES or "redis" in params or _REPLICAS in item.path.parents:
            item.add_marker(pytest.mark.redis)
