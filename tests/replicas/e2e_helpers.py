"""The end-to-end replica scaffolding: a real redis-server, three real ``mcp-embed serve`` processes
wired to it with ``MCP_EMBED_REDIS_URL``, and a real nginx rendered round-robin in front (issue 16).

The three share one server name (their Redis keys are under ``mcp-embed:<server_name>:``, so
replicas of one service must share it). Each is a separate process started through the CLI, with
its own log folder (its own audit.jsonl), on 127.0.0.1 and a free port. nginx adds one header to
every /mcp and /health answer, ``X-Upstream`` (``$upstream_addr``: the replica, or the replicas tried, that
answered), so a test knows which replica served what. Every loop is bounded; every process is
killed in ``finally``.

``tools=True`` starts the replicas through ``replica_serve.py``: the same CLI with three tools
that skills cannot express added (progress, an elicitation, a task; see that file).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edge_helpers import free_port, nginx_binary, running_nginx
from mcp_embed.auth.edge import NginxOptions, render_nginx
from mcp_embed.config import McpHttpConfig
from redis_helpers import RedisServer

SKILLS = Path(__file__).parent.parent.parent / "examples" / "remote-server" / "skills"
LAUNCHER = Path(__file__).parent / "replica_serve.py"
TOOL = "hello_world__say_hello"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
UPSTREAM = "x-upstream"


class Replica:
    def __init__(
        self, index: int, tmp: Path, redis_url: str, public: str, env: dict[str, str], *, tools: bool = False
    ) -> None:
        self.name = f"replica-{index}"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.logs = tmp / f"logs-{index}"
        self.out_path = tmp / f"serve-{index}.log"
        self.tools = tools
        base = {k: v for k, v in os.environ.items() if not k.startswith("MCP_EMBED_")}
        self.env = {
            **base,
            "MCP_EMBED_REDIS_URL": redis_url,
            "MCP_EMBED_LOG_DIR": str(self.logs),
            "MCP_EMBED_PUBLIC_URL": public,
            "MCP_EMBED_TRUSTED_PROXIES": "127.0.0.1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *flags: str) -> None:
        entry = [str(LAUNCHER)] if self.tools else ["-m", "mcp_embed"]
        argv = [sys.executable, *entry, "serve", "--skills", str(SKILLS), "--name", "mcp-replicas",
                "--host", "127.0.0.1", "--port", str(self.port), *flags]  # fmt: skip
        out = self.out_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        for _ in range(300):  # readiness, bounded (about 30 s)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.out_path.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{self.address}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health")

    def health(self) -> str:
        return str(httpx.get(f"http://{self.address}/health", timeout=5).json()["status"])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def audit(self) -> list[dict[str, Any]]:
        path = self.logs / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def tool_calls(self, tool: str = TOOL) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r.get("tool") == tool]


@dataclass
class Cluster:
    base: str
    redis: RedisServer
    replicas: list[Replica]
    nginx_dir: Path

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def replica_at(self, upstream: str) -> Replica:
        """The replica that answered, from an ``X-Upstream`` value (the last address nginx tried)."""
        last = upstream.split(",")[-1].strip()
        (found,) = [r for r in self.replicas if r.address == last]
        return found


def tag_upstream(site: str) -> str:
    """The rendered site with ``X-Upstream: $upstream_addr`` on every /mcp and /health answer (a
    test aid: both take turns in the same round-robin)."""
    for anchor in ("    location = /mcp {", "    location = /health {"):
        assert site.count(anchor) == 1, "the rendered nginx config changed shape"
        site = site.replace(anchor, anchor + "\n        add_header X-Upstream $upstream_addr always;", 1)
    return site


@contextlib.contextmanager
def cluster(
    tmp: Path, *flags: str, env: dict[str, str] | None = None, tools: bool = False
) -> Iterator[Cluster]:
    nginx_binary()  # skip or fail before anything starts
    (tmp / "redis").mkdir()
    redis = RedisServer(tmp / "redis")
    redis.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    replicas = [Replica(i, tmp, redis.url, base, env or {}, tools=tools) for i in range(3)]
    nginx_dir = tmp / "nginx"
    nginx_dir.mkdir()
    try:
        for r in replicas:
            r.start(*flags)
        config = McpHttpConfig(stateless="--stateless" in flags, public_url=base)
        site = render_nginx(
            config,
            NginxOptions(
                upstream=[r.address for r in replicas],
                listen=f"127.0.0.1:{port}",
                balance="round-robin",
                rate="1000r/s",  # nginx's own per-address limit would answer 429 before the replicas
                burst=1000,
            ),
        )
        with running_nginx(nginx_dir, tag_upstream(site), port):
            yield Cluster(base, redis, replicas, nginx_dir)
    finally:
        for r in replicas:
            r.stop()
        redis.stop()


def call(client: httpx.Client, base: str, i: int, timeout: float = 10) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": TOOL, "arguments": {"name": f"n{i}"}},
    }
    return client.post(f"{base}/mcp", json=body, headers=HEADERS, timeout=timeout)


def settle(done: Callable[[], bool]) -> None:
    """Wait (bounded, about 5 s) until ``done()``: the audit writer is a thread, so a record lands a
    moment after its answer. The caller asserts what it needs afterwards."""
    for _ in range(50):
        if done():
            return
        time.sleep(0.1)
