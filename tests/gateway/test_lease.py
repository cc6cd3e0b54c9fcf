"""``RedisLease`` and the serving loop on a real redis-server: at most one holder; a holder that
cannot refresh for a whole TTL gives up serving."""

from __future__ import annotations

import threading

import redis
from gateway_helpers import MemoryRegistry, wait_until

from mcp_embed import McpHttpConfig
from mcp_embed.gateway import create_gateway
from mcp_embed.gateway.failover import serve_one_at_a_time
from mcp_embed.gateway.lease import RedisLease
from redis_helpers import RedisServer, redis_server

__all__ = ["redis_server"]


def test_one_holder_at_a_time_and_release_frees_it(redis_server: RedisServer) -> None:
    a = RedisLease(redis_server.url, ttl=2.0)
    b = RedisLease(redis_server.url, ttl=2.0)
    try:
        assert a.acquire() and a.held
        assert not b.acquire() and not b.held
        assert redis.Redis.from_url(redis_server.url).get("mcp-embed:gateway") == a.token.encode()
        a.release()
        assert not a.held
        assert b.acquire() and b.held
    finally:
        a.close()
        b.close()


def test_a_lease_taken_over_is_no_longer_held(redis_server: RedisServer) -> None:
    a = RedisLease(redis_server.url, ttl=0.6)
    try:
        assert a.acquire()
        redis.Redis.from_url(redis_server.url).set("mcp-embed:gateway", "someone-else")
        wait_until(lambda: not a.held, "the lease to be seen as lost")
        a.release()  # never deletes the other holder's key
        assert redis.Redis.from_url(redis_server.url).get("mcp-embed:gateway") == b"someone-else"
    finally:
        a.close()


def test_a_gateway_that_cannot_refresh_its_lease_stops_serving(redis_server: RedisServer) -> None:
    lease = RedisLease(redis_server.url, ttl=0.6, timeout=0.2)
    gateway = create_gateway(McpHttpConfig(port=0), registry=MemoryRegistry(), poll_interval=0.1)
    stop = threading.Event()
    served: list[object] = []
    loop = threading.Thread(
        target=serve_one_at_a_time,
        args=(gateway, stop),
        kwargs={"interval": 0.1, "lease": lease, "on_serving": served.append},
        daemon=True,
    )
    loop.start()
    try:
        wait_until(lambda: bool(served), "the gateway to serve")
        handle = served[0]
        redis_server.stop()  # Redis unreachable: after a TTL without a refresh, another may hold it
        wait_until(lambda: not handle.is_running, "the gateway to stop serving")  # type: ignore[attr-defined]
    finally:
        stop.set()
        loop.join(10)
        lease.close()
    assert not loop.is_alive()
