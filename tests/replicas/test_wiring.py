"""``redis_url`` wires a server to Redis: start-up check, /health, the shared rate limit."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server
from mcp_embed import ServerStartError
from redis_helpers import RedisServer


def health(url: str) -> dict[str, object]:
    return dict(httpx.get(url + "/health", timeout=10).json())


def test_a_redis_that_does_not_answer_stops_start_naming_the_url_without_its_password() -> None:
    server = demo_server(redis_url="redis://:hunter2@127.0.0.1:9/0")
    with pytest.raises(ServerStartError) as caught:
        server.start()
    message = str(caught.value)
    assert "cannot reach Redis at redis://***@127.0.0.1:9/0" in message and "MCP_EMBED_REDIS_URL" in message
    assert "hunter2" not in message


def test_health_goes_degraded_while_redis_is_away_and_comes_back(guarded_redis: RedisServer) -> None:
    with demo_server(redis_url=guarded_redis.url, rate_limit_per_second=100).start() as h:
        assert health(h.local_url)["redis"] == "ok"
        guarded_redis.stop()
        started = time.monotonic()
        # A request needing Redis (the shared rate limit) notices; it is served from local buckets.
        r = httpx.post(h.mcp_url(), json=INIT, headers=ACCEPT, timeout=30)
        assert r.status_code == 200 and time.monotonic() - started < 10
        seen = health(h.local_url)
        assert seen["status"] == "degraded" and seen["redis"] == "unreachable", seen
        assert guarded_redis.password is not None and guarded_redis.password not in str(seen)
        assert seen["reason"]
        guarded_redis.restart()
        for _ in range(50):  # bounded: the next operation that succeeds clears it
            httpx.post(h.mcp_url(), json=INIT, headers=ACCEPT, timeout=30)
            if health(h.local_url)["status"] == "healthy":
                break
            time.sleep(0.1)
        assert health(h.local_url)["redis"] == "ok"


def test_the_rate_limit_holds_across_servers_sharing_a_redis(redis_server: RedisServer) -> None:
    config = {"redis_url": redis_server.url, "rate_limit_per_second": 0.01, "rate_limit_burst": 5}
    with demo_server(**config).start() as a, demo_server(**config).start() as b:
        codes = [
            httpx.post(h.mcp_url(), json=INIT, headers=ACCEPT, timeout=10).status_code
            for _ in range(6)
            for h in (a, b)
        ]
    assert codes.count(200) == 5 and codes.count(429) == 7, codes


def _pings(redis: RedisServer) -> int:
    """How many times /health has asked this redis-server (its probe's key counts them; one server)."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    try:
        keys = list(client.scan_iter(match="mcp-embed:*:probe:*"))
        assert len(keys) <= 1, keys
        return int(client.get(keys[0]) or 0) if keys else 0
    finally:
        client.close()


def _health_until(url: str, status: str) -> dict[str, object]:
    """/health, asked until it says ``status`` (bounded: about 10 s); what it says at the end."""
    seen = health(url)
    for _ in range(100):
        if seen["status"] == status:
            break
        time.sleep(0.1)
        seen = health(url)
    return seen


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
def test_an_idle_replica_s_health_sees_redis_go_and_come_back(
    guarded_redis: RedisServer, stateless: bool
) -> None:
    # No rate limit, no call: /health itself asks Redis (stateless, nothing else would: stateful
    # mode has the session heartbeat too).
    with demo_server(redis_url=guarded_redis.url, stateless=stateless).start() as h:
        assert health(h.local_url)["status"] == "healthy"
        guarded_redis.stop()
        seen = _health_until(h.local_url, "degraded")
        assert seen["status"] == "degraded" and seen["redis"] == "unreachable", seen
        assert guarded_redis.password is not None and guarded_redis.password not in str(seen)
        guarded_redis.start()
        seen = _health_until(h.local_url, "healthy")
        assert seen["status"] == "healthy" and seen["redis"] == "ok", seen


def test_a_scraper_cannot_turn_health_into_load_on_redis(redis_server: RedisServer) -> None:
    with demo_server(redis_url=redis_server.url).start() as h, httpx.Client() as c:
        before = _pings(redis_server)
        started = time.monotonic()
        asked = 0
        while time.monotonic() - started < 2.5 and asked < 5000:  # scrape hard for 2.5 s (bounded)
            assert c.get(h.local_url + "/health", timeout=10).json()["status"] == "healthy"
            asked += 1
        elapsed = time.monotonic() - started
        pinged = _pings(redis_server) - before
    # At most one probe per second of scraping (plus one for a window already open), and at least
    # one: the scrape outlived a window.
    assert 1 <= pinged <= elapsed / 1.0 + 1 < asked, (pinged, elapsed, asked)


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
def test_a_redis_that_refuses_writes_is_degraded_and_never_a_500(
    redis_server: RedisServer, stateless: bool
) -> None:
    """Out of memory (or a read-only replica, or an ACL) Redis still answers, refusing: each
    operation that needs it gets the same clear state as an outage, and the server serves on."""
    import redis as redis_py

    admin = redis_py.Redis.from_url(redis_server.url)
    with demo_server(redis_url=redis_server.url, stateless=stateless).start() as h, httpx.Client() as c:
        assert health(h.local_url)["redis"] == "ok"
        admin.config_set("maxmemory", "1")
        try:
            r = c.post(h.mcp_url(), json=INIT, headers=ACCEPT, timeout=30)
            assert r.status_code == 200, (r.status_code, r.text)  # saved here only, said in the log
            headers = {**ACCEPT, "Mcp-Protocol-Version": "2025-11-25"}
            if not stateless:
                headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}},
            }
            r = c.post(h.mcp_url(), json=call, headers=headers, timeout=30)
            assert r.status_code == 200 and '"hi"' in r.text, (r.status_code, r.text)
            seen = _health_until(h.local_url, "degraded")
            assert seen["redis"] == "refusing" and "maxmemory" in str(seen["reason"]), seen
        finally:
            admin.config_set("maxmemory", "0")
            admin.close()
        seen = _health_until(h.local_url, "healthy")
        assert seen["redis"] == "ok", seen
