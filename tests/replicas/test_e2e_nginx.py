"""End to end: a real redis-server, three real ``mcp-embed serve`` processes wired to it with
``MCP_EMBED_REDIS_URL``, and a real nginx rendered round-robin in front (issue 16).

The three share one server name (their Redis keys are under ``mcp-embed:<server_name>:``, so
replicas of one service must share it); each answer is told apart by the replica's audit log.
Each replica is a separate process started through the CLI, with its own log folder (its own
audit.jsonl), on 127.0.0.1 and a free port. Every loop is bounded; every process is killed in
``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from edge_helpers import free_port, nginx_binary, running_nginx
from mcp_embed.auth.edge import NginxOptions, render_nginx
from mcp_embed.config import McpHttpConfig
from redis_helpers import RedisServer

SKILLS = Path(__file__).parent.parent.parent / "examples" / "remote-server" / "skills"
TOOL = "hello_world__say_hello"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Replica:
    def __init__(self, index: int, tmp: Path, redis_url: str, public: str, env: dict[str, str]) -> None:
        self.name = f"replica-{index}"
        self.port = free_port()
        self.logs = tmp / f"logs-{index}"
        self.out_path = tmp / f"serve-{index}.log"
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
        argv = [sys.executable, "-m", "mcp_embed", "serve", "--skills", str(SKILLS), "--name", "mcp-replicas",
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
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health")

    def health(self) -> str:
        return str(httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).json()["status"])

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

    def tool_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r.get("tool") == TOOL]


@contextlib.contextmanager
def cluster(
    tmp: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, RedisServer, list[Replica]]]:
    nginx_binary()  # skip or fail before anything starts
    (tmp / "redis").mkdir()
    redis = RedisServer(tmp / "redis")
    redis.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    replicas = [Replica(i, tmp, redis.url, base, env or {}) for i in range(3)]
    nginx_dir = tmp / "nginx"
    nginx_dir.mkdir()
    try:
        for r in replicas:
            r.start(*flags)
        config = McpHttpConfig(stateless="--stateless" in flags, public_url=base)
        site = render_nginx(
            config,
            NginxOptions(
                upstream=[f"127.0.0.1:{r.port}" for r in replicas],
                listen=f"127.0.0.1:{port}",
                balance="round-robin",
                rate="1000r/s",  # nginx's own per-address limit would answer 429 before the replicas
                burst=1000,
            ),
        )
        with running_nginx(nginx_dir, site, port):
            yield base, redis, replicas
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


def test_stateless_calls_spread_over_the_three_replicas(tmp_path: Path) -> None:
    with cluster(tmp_path, "--stateless", "--json-response") as (base, _redis, replicas), httpx.Client() as c:
        listed = c.post(
            f"{base}/mcp",
            json={"jsonrpc": "2.0", "id": 0, "method": "tools/list"},
            headers=HEADERS,
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        assert TOOL in {t["name"] for t in listed.json()["result"]["tools"]}
        for i in range(1, 13):
            r = call(c, base, i)
            assert r.status_code == 200, r.text
            assert r.json()["result"]["content"][0]["text"] == f"Hello, n{i}!"
        time.sleep(0.5)  # the audit writer's thread
        counts = [len(r.tool_calls()) for r in replicas]
        assert sum(counts) == 12 and all(n > 0 for n in counts), counts


def test_the_rate_limit_is_shared_by_the_replicas(tmp_path: Path) -> None:
    env = {"MCP_EMBED_RATE_LIMIT_PER_SECOND": "0.1", "MCP_EMBED_RATE_LIMIT_BURST": "5"}
    with (
        cluster(tmp_path, "--stateless", "--json-response", env=env) as (base, _redis, _reps),
        httpx.Client() as c,
    ):
        codes = [call(c, base, i).status_code for i in range(30)]
    ok = codes.count(200)
    assert 1 <= ok <= 5 + 1, codes  # one token of refill slack over the run
    assert 429 in codes, codes


def test_kill_9_of_one_replica_only_fails_calls_in_flight_on_it(tmp_path: Path) -> None:
    with cluster(tmp_path, "--stateless", "--json-response") as (base, _redis, replicas), httpx.Client() as c:
        answered = failed = 0
        for i in range(60):
            if i == 20:
                replicas[1].kill9()
            try:
                r = call(c, base, i, timeout=10)
            except httpx.HTTPError:
                failed += 1
                continue
            if r.status_code == 200:
                answered += 1
            else:
                assert r.status_code in (502, 504), r.text
                failed += 1
        assert failed <= 3, (answered, failed)  # at most what was in flight on the killed one
        time.sleep(0.5)
        survivors = sum(len(r.tool_calls()) for r in (replicas[0], replicas[2]))
        # Every call after the kill was answered by a survivor (nginx passes a refused connection on
        # to the next upstream), and each has exactly one audit record there; the killed replica's
        # own unwritten records died with it, so only a bound holds for the calls before the kill.
        assert answered + failed == 60
        assert 40 - failed <= survivors <= answered, (survivors, answered, failed)
        assert replicas[0].proc.poll() is None and replicas[2].proc.poll() is None  # type: ignore[union-attr]


def calls_until(
    c: httpx.Client, base: str, replicas: list[Replica], state: str, *, first_id: int, tries: int
) -> list[str]:
    """Call through nginx until every replica's /health says ``state`` (at most ``tries`` calls);
    returns what they say at the end."""
    for i in range(tries):
        with contextlib.suppress(httpx.HTTPError):
            call(c, base, first_id + i, timeout=15)
        if all(r.health() == state for r in replicas):
            break
        time.sleep(0.1)
    return [r.health() for r in replicas]


def test_redis_outage_degrades_health_and_recovers(tmp_path: Path) -> None:
    # A generous shared rate limit: every call takes a token from Redis, so each replica notices
    # the outage (health reports what its store operations saw).
    env = {"MCP_EMBED_RATE_LIMIT_PER_SECOND": "1000", "MCP_EMBED_RATE_LIMIT_BURST": "1000"}
    with (
        cluster(tmp_path, "--stateless", "--json-response", env=env) as (base, redis, replicas),
        httpx.Client() as c,
    ):
        assert [r.health() for r in replicas] == ["healthy"] * 3
        redis.stop()
        # Bounded: about 10 s; a store operation notices the outage.
        assert calls_until(c, base, replicas, "degraded", first_id=1000, tries=100) == ["degraded"] * 3
        for i in range(6):  # calls still answer, none hangs past its timeout
            t0 = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                call(c, base, i, timeout=15)
            assert time.monotonic() - t0 < 15
        redis.start()
        # Bounded: about 20 s; a store operation that succeeds clears it.
        assert calls_until(c, base, replicas, "healthy", first_id=2000, tries=200) == ["healthy"] * 3
        assert all(r.proc is not None and r.proc.poll() is None for r in replicas)
        assert call(c, base, 99).status_code == 200


def test_a_stateful_session_is_served_by_every_replica_round_robin(tmp_path: Path) -> None:
    with cluster(tmp_path, "--json-response") as (base, _redis, replicas), httpx.Client() as c:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        r = c.post(f"{base}/mcp", json=init, headers=HEADERS, timeout=10)
        assert r.status_code == 200, r.text
        sid = r.headers["mcp-session-id"]
        h = {**HEADERS, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
        n = c.post(
            f"{base}/mcp",
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=h,
            timeout=10,
        )
        assert n.status_code == 202, n.text
        for i in range(1, 7):  # round-robin: each request may land on another replica
            listed = c.post(
                f"{base}/mcp", json={"jsonrpc": "2.0", "id": i, "method": "tools/list"}, headers=h, timeout=10
            )
            assert listed.status_code == 200, listed.text
            body = {
                "jsonrpc": "2.0",
                "id": 100 + i,
                "method": "tools/call",
                "params": {"name": TOOL, "arguments": {}},
            }
            called = c.post(f"{base}/mcp", json=body, headers=h, timeout=10)
            assert called.status_code == 200, called.text
        time.sleep(0.5)
        assert all(len(rep.tool_calls()) > 0 for rep in replicas), [len(rep.tool_calls()) for rep in replicas]
        gone = c.delete(f"{base}/mcp", headers=h, timeout=10)
        assert gone.status_code in (200, 204), gone.text
        time.sleep(1.0)  # any propagation between replicas has had its time
        tools_list = {"jsonrpc": "2.0", "id": 99, "method": "tools/list"}
        # round-robin: one request per replica
        codes = [c.post(f"{base}/mcp", json=tools_list, headers=h, timeout=10).status_code for _ in range(3)]
        assert codes == [404, 404, 404], codes  # deleted everywhere
