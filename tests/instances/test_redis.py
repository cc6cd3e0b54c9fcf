"""``RedisRegistry`` beyond the contract, on a real redis-server: keys and their TTL, foreign
values, and errors that name the URL but never its password."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from conftest import wait_until
from edge_helpers import free_port
from mcp_embed.instances import KEY_PREFIX, Instance, RedisRegistry, new_instance, open_registry
from mcp_embed.replicas import RedisUnavailable
from redis_helpers import PASSWORD, RedisServer


def _instance(**changes: Any) -> Instance:
    instance = new_instance(server_name="tests", app_name="maya", url="http://127.0.0.1:1/mcp", version="1")
    return Instance.from_json({**instance.to_json(), **changes})


def test_one_key_per_instance_with_the_ttl(redis_server: RedisServer) -> None:
    registry = RedisRegistry(redis_server.url, ttl=30)
    instance = _instance()
    registry.register(instance)
    client = redis.Redis.from_url(redis_server.url)
    try:
        key = KEY_PREFIX + instance.id
        assert key == f"mcp-embed:instances:{instance.id}"
        assert json.loads(client.get(key)) == instance.to_json()
        assert 0 < client.pttl(key) <= 30_000
        client.pexpire(key, 1_000_000)  # the next heartbeat sets the TTL again
        registry.register(instance.beat(time.time()))
        assert 0 < client.pttl(key) <= 30_000
    finally:
        client.close()
        registry.close()


def test_a_crashed_instance_expires_even_with_a_fresh_looking_record(redis_server: RedisServer) -> None:
    """Redis is the judge: a record nobody refreshes goes when its key expires."""
    registry = RedisRegistry(redis_server.url, ttl=0.3)
    try:
        registry.register(_instance(heartbeat_at=time.time() + 3600))
        assert wait_until(lambda: registry.list() == [], 15.0)
    finally:
        registry.close()


def test_an_old_heartbeat_does_not_hide_a_live_key(redis_server: RedisServer) -> None:
    """Other machines' clocks differ: while the key lives, the record is listed."""
    registry = RedisRegistry(redis_server.url, ttl=30)
    try:
        skewed = _instance(heartbeat_at=time.time() - 3600)
        registry.register(skewed)
        assert registry.list() == [skewed]
    finally:
        registry.close()


def test_foreign_values_and_other_keys_are_skipped(redis_server: RedisServer) -> None:
    registry = RedisRegistry(redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    try:
        good = _instance()
        registry.register(good)
        client.set(KEY_PREFIX + "torn", json.dumps(_instance().to_json())[:40])
        client.set(KEY_PREFIX + "foreign", json.dumps({"hello": "world"}))
        client.set(KEY_PREFIX + "not-its-id", json.dumps(_instance().to_json()))
        client.set(KEY_PREFIX + "binary", b"\xff\xfe")
        client.set("mcp-embed:sessions:x", json.dumps(_instance().to_json()))
        assert registry.list() == [good]
    finally:
        client.close()
        registry.close()


def test_many_instances_are_listed(redis_server: RedisServer) -> None:
    registry = RedisRegistry(redis_server.url)
    try:
        made = [_instance(id=f"maya-h-{n}-x", started_at=1000.0 + n) for n in range(450)]  # > one batch
        for instance in made:
            registry.register(instance)
        assert registry.list() == made
    finally:
        registry.close()


def test_an_unreachable_redis_is_named_without_its_password() -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    registry = RedisRegistry(url, timeout=2.0)
    try:
        for call in (registry.list, lambda: registry.register(_instance()), lambda: registry.unregister("x")):
            with pytest.raises(RedisUnavailable) as caught:
                call()
            message = str(caught.value)
            assert "cannot reach Redis at redis://***@127.0.0.1:" in message
            assert PASSWORD not in message
    finally:
        registry.close()


def test_a_wrong_password_is_a_clear_error_without_it(guarded_redis: RedisServer) -> None:
    wrong = guarded_redis.url.replace(PASSWORD, "not-the-password")
    registry = RedisRegistry(wrong)
    try:
        refused = r"Redis at redis://\*\*\*@127\.0\.0\.1:\d+/0 refused"
        with pytest.raises(RedisUnavailable, match=refused) as caught:
            registry.list()
        assert "not-the-password" not in str(caught.value)
    finally:
        registry.close()
    right = RedisRegistry(guarded_redis.url)
    try:
        assert right.list() == []
    finally:
        right.close()


def test_open_registry_picks_redis_for_a_url(redis_server: RedisServer) -> None:
    registry = open_registry(redis_url=redis_server.url, ttl=7)
    try:
        assert isinstance(registry, RedisRegistry)
        assert registry.ttl == 7
    finally:
        registry.close()


def test_making_a_registry_imports_neither_redis_nor_the_sdk() -> None:
    """A server makes its registry while its own thread imports the SDK and redis-py: importing
    them from a second thread at the same time can deadlock, so making one must import nothing."""
    import subprocess
    import sys

    code = (
        "import sys, mcp_embed.instances as i\n"
        "i.RedisRegistry('redis://127.0.0.1:1/0'); i.open_registry(folder='.')\n"
        "print(sorted(m for m in ('mcp', 'redis', 'mcp_embed.replicas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
