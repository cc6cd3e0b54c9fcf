"""One gateway at a time: two ``mcp-embed gateway`` processes on one fixed port; ``kill -9`` of the
one serving; the other serves on the same port and a client reconnects. Locally the port bind
decides; with Redis, a lease (``SET NX PX``) on a real redis-server does."""

from __future__ import annotations

from pathlib import Path

import anyio
from gateway_helpers import GUARD, Proc, child_env, client, spawn_gateway, spawn_instance

from edge_helpers import free_port
from redis_helpers import RedisServer, redis_server

__all__ = ["redis_server"]

SERVING = "mcp-embed gateway: serving"
STANDBY = "mcp-embed gateway: standby"


def _failover(env: dict[str, str], port: int, *extra: str, waits_for: str, host: str | None = None) -> None:
    procs: list[Proc] = []
    try:
        instance, _ = spawn_instance("maya", env)
        procs.append(instance)
        a = spawn_gateway(port, env, *extra)
        procs.append(a)
        a.wait_for(SERVING)  # a first, so the second must wait
        b = spawn_gateway(port, env, *extra)
        procs.append(b)
        assert waits_for in b.wait_for(STANDBY)
        url = f"http://127.0.0.1:{port}/mcp"

        async def use() -> None:
            with anyio.fail_after(GUARD):
                while True:  # the gateway reads the registry at start: the instance is there
                    async with client(url) as c:
                        tools = {t.name: t for t in (await c.list_tools()).tools}
                        if "maya-1__echo" in tools:
                            if host is not None:
                                assert f"maya on {host}" in (tools["maya-1__echo"].description or "")
                            result = await c.call_tool("maya-1__echo", {"text": "hi"})
                            assert result.content[0].text == "maya:hi"
                            return
                    await anyio.sleep(0.1)

        anyio.run(use)
        seen = len(b.lines)
        a.kill9()
        b.wait_for(SERVING, timeout=GUARD, start=seen)  # bounded: the retry interval, plus the lease TTL
        anyio.run(use)  # a new client session on the same port
    finally:
        for proc in procs:
            proc.stop()


def test_local_failover_by_port_bind(tmp_path: Path) -> None:
    env = child_env(MCP_EMBED_REGISTRY_DIR=str(tmp_path / "instances"))
    _failover(env, free_port(), waits_for="is in use (another gateway serves)")


def test_a_port_in_use_by_something_else_keeps_the_gateway_waiting(tmp_path: Path) -> None:
    import socket

    env = child_env(MCP_EMBED_REGISTRY_DIR=str(tmp_path / "instances"))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        gw = spawn_gateway(port, env)
        try:
            assert "127.0.0.1:" + str(port) in gw.wait_for(STANDBY)
            squatter.close()
            gw.wait_for(SERVING)
        finally:
            gw.stop()


def test_redis_failover_by_lease(tmp_path: Path, redis_server: RedisServer) -> None:
    env = child_env(MCP_EMBED_REDIS_URL=redis_server.url, MCP_EMBED_INSTANCE_HOST="render-07")
    _failover(env, free_port(), "--lease-ttl", "1", waits_for="holds the lease", host="render-07")
