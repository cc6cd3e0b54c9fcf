"""What only the Redis stores do: share state between replicas, expire it in Redis, tail a stream
live, keep a URL's password out of every message, and fail fast and recover when Redis goes away.

Every test runs a real redis-server on 127.0.0.1 (``redis_helpers``); each "replica" is its own
client. Timing bounds are hang guards sized well above what the operation needs.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from edge_helpers import free_port
from mcp_embed import ConfigError, ServerStartError, Task
from mcp_embed.replicas import (
    RedisEventStore,
    RedisHealth,
    RedisTaskStore,
    RedisTokenBuckets,
    RedisUnavailable,
    check,
    connect,
    redact,
)
from mcp_embed.replicas.events import decode_event_id, encode_event_id
from mcp_embed.replicas.tasks import task_from_json, task_to_json
from redis_helpers import PASSWORD, RedisServer, Sink, note, run


@contextlib.asynccontextmanager
async def replica(url: str, timeout: float = 2.0) -> AsyncIterator[Any]:
    client = connect(url, timeout=timeout)
    try:
        yield client
    finally:
        await client.aclose()


# -- several replicas --------------------------------------------------------------------------------


def test_a_stream_written_by_one_replica_resumes_on_another(redis_server: RedisServer) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as a, replica(redis_server.url) as b:
            writer, reader = RedisEventStore(a), RedisEventStore(b)
            ids = [await writer.store_event("sess/1", note(i)) for i in range(4)]
            sink = Sink()
            assert await reader.replay_events_after(ids[0], sink) == "sess/1"
            assert sink.progress == [1, 2, 3]
            assert [e.event_id for e in sink.events] == ids[1:]

    run(body)


def test_a_task_saved_through_one_replica_is_read_and_changed_through_another(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as a, replica(redis_server.url) as b:
            on_a, on_b = RedisTaskStore(a), RedisTaskStore(b)
            original = Task(task_id="t1", tool="render", ttl=30.0, owner="alice")
            await on_a.save(original)
            task = await on_b.load("t1")
            assert task == original
            assert task is not None
            task.status = "cancelled"
            await on_b.save(task)
            assert (await on_a.load("t1")) == task
            await on_a.delete("t1")
            assert await on_b.load("t1") is None

    run(body)


def test_replicas_share_one_bucket_and_together_stay_within_the_burst(redis_server: RedisServer) -> None:
    burst, per_caller = 5, 12

    async def body() -> None:
        url = redis_server.url
        async with replica(url) as a, replica(url) as b, replica(url) as c:
            replicas = [RedisTokenBuckets(x, 0.01, burst) for x in (a, b, c)]  # refill is negligible
            waits: list[float] = []

            async def hammer(buckets: RedisTokenBuckets) -> None:
                for _ in range(per_caller):
                    waits.append(await buckets.take("shared"))

            async with anyio.create_task_group() as tg:
                for buckets in replicas:
                    for _ in range(2):  # two concurrent callers per replica
                        tg.start_soon(hammer, buckets)
            assert len(waits) == 3 * 2 * per_caller
            assert sum(1 for w in waits if w == 0.0) == burst
            assert all(w > 0 for w in waits if w != 0.0)
            assert await replicas[1].take("another key") == 0.0  # keys stay separate
            other_set = RedisTokenBuckets(a, 0.01, burst, name="auth-failures")
            assert await other_set.take("shared") == 0.0  # and so do named sets of buckets

    run(body)


# -- expiry in Redis ---------------------------------------------------------------------------------


def test_a_stream_key_has_a_ttl_refreshed_by_writes_and_expires_with_it(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as client:
            store = RedisEventStore(client, ttl=60.0)
            first = await store.store_event("s", note(0))
            await store.flush()
            assert 59_000 < await client.pttl(store.key("s")) <= 60_000
            await client.pexpire(store.key("s"), 5_000)
            await store.store_event("s", note(1))
            await store.flush()
            # Within a tenth of the TTL of the last refresh, a write is one XADD and leaves the TTL.
            assert await client.pttl(store.key("s")) <= 5_000

            short = RedisEventStore(client, ttl=1.0)  # refreshed by a write 0.1 s after the last
            await short.store_event("t", note(0))
            await short.flush()
            await client.pexpire(short.key("t"), 500)
            await anyio.sleep(0.15)
            await short.store_event("t", note(1))
            await short.flush()
            assert await client.pttl(short.key("t")) > 500  # the write gave the stream its ttl again

            brief = RedisEventStore(client, ttl=0.1)
            gone = await brief.store_event("brief", note(0))
            await brief.store_event("brief", note(1))
            await brief.flush()
            for _ in range(100):  # bounded: about 2 s
                if not await client.exists(brief.key("brief")):
                    break
                await anyio.sleep(0.02)
            sink = Sink()
            assert await brief.replay_events_after(gone, sink) is None
            assert sink.events == []
            assert await store.replay_events_after(first, sink) == "s"  # the other stream lives on

    run(body)


def test_a_task_key_expires_with_the_tasks_own_ttl(redis_server: RedisServer) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as client:
            store = RedisTaskStore(client, grace=5.0, idle_ttl=100.0)
            task = Task(task_id="t", tool="x", ttl=30.0)
            await store.save(task)
            expected_ms = (task.created_at + 30.0 + 5.0 - time.time()) * 1000
            assert expected_ms - 2_000 < await client.pttl(store.key("t")) <= expected_ms + 50  # clocks' ms
            await store.save(Task(task_id="open", tool="x"))  # no ttl: idle_ttl after its last save
            assert 98_000 < await client.pttl(store.key("open")) <= 100_000

            exact = RedisTaskStore(client, grace=0.0)
            await exact.save(Task(task_id="brief", tool="x", ttl=0.15))
            assert await exact.load("brief") is not None
            for _ in range(100):  # bounded: about 2 s
                if await exact.load("brief") is None:
                    break
                await anyio.sleep(0.02)
            assert not await client.exists(exact.key("brief"))
            await exact.save(Task(task_id="late", tool="x", created_at=time.time() - 5, ttl=1.0))
            assert not await client.exists(exact.key("late"))  # saved past its expiry: not kept

    run(body)


def test_a_bucket_key_expires_once_the_bucket_is_full_again(redis_server: RedisServer) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as client:
            buckets = RedisTokenBuckets(client, 20.0, 2)
            assert await buckets.take("k") == 0.0
            assert 0 < await client.pttl(buckets.key("k")) <= 51  # one token back at 20/s: 50 ms
            await buckets.peek("k")
            assert await buckets.peek("never") == 0.0
            assert not await client.exists(buckets.key("never"))  # looking writes nothing
            for _ in range(100):  # bounded: about 2 s
                if not await client.exists(buckets.key("k")):
                    break
                await anyio.sleep(0.02)
            assert not await client.exists(buckets.key("k"))
            assert [await buckets.take("k") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.05, abs=0.05)]

    run(body)


def test_task_json_round_trips_every_field_and_ignores_unknown_ones() -> None:
    task = Task(
        task_id="t",
        tool="x",
        status="failed",
        created_at=1_700_000_000.123456,
        last_updated_at=1_700_000_001.5,
        ttl=2.5,
        poll_interval=0.25,
        status_message="boom",
        error={"code": -32603, "message": "no", "data": {"why": None}},
        input_requests={"k": {"method": "sampling/createMessage", "params": {}}},
        owner="bob",
    )
    assert task_from_json(task_to_json(task)) == task
    newer = task_to_json(task).replace(b'{"task_id"', b'{"from_a_newer_version":1,"task_id"')
    assert task_from_json(newer) == task


# -- tailing a stream live ---------------------------------------------------------------------------


def test_tail_relays_live_what_another_replica_writes_in_order_once(redis_server: RedisServer) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as a, replica(redis_server.url) as b:
            writer, relay = RedisEventStore(a), RedisEventStore(b)
            priming = await writer.store_event("s", None)
            before = await writer.store_event("s", note(0))
            stop = anyio.Event()
            sink = Sink()
            result: list[str | None] = []

            async def tailing() -> None:
                result.append(await relay.tail("s", before, sink, stop, block_ms=50))

            async with anyio.create_task_group() as tg:
                tg.start_soon(tailing)
                for i in range(1, 6):
                    await writer.store_event("s", note(i))
                    if i == 3:
                        await writer.store_event("s", None)  # a priming event: not relayed
                    await writer.store_event("other", note(100 + i))  # another stream: not relayed
                    await anyio.sleep(0.01)
                for _ in range(200):  # bounded: about 2 s
                    if len(sink.events) >= 5:
                        break
                    await anyio.sleep(0.01)
                stop.set()
            assert sink.progress == [1, 2, 3, 4, 5]
            assert result == [sink.events[-1].event_id]
            resumed = Sink()  # the relayed ids are the ones a later resume starts from
            assert await relay.replay_events_after(sink.events[2].event_id, resumed) == "s"
            assert resumed.progress == [4, 5]
            from_priming = Sink()
            assert await relay.replay_events_after(priming, from_priming) == "s"
            assert from_priming.progress == [0, 1, 2, 3, 4, 5]

    run(body)


def test_tail_from_now_sees_only_new_events_and_stops_within_its_block_time(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as client:
            store = RedisEventStore(client)
            await store.store_event("s", note(0))
            await store.flush()  # "from now on" is what Redis holds: written behind, it may lag
            stop = anyio.Event()
            sink = Sink()

            async def write_then_stop() -> None:
                await anyio.sleep(0.1)  # the tail is blocked in XREAD by now
                await store.store_event("s", note(1))
                for _ in range(200):  # bounded: about 2 s
                    if sink.events:
                        break
                    await anyio.sleep(0.01)
                stop.set()

            async with replica(redis_server.url) as reader:
                relay = RedisEventStore(reader)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(write_then_stop)
                    began = time.monotonic()
                    last = await relay.tail("s", None, sink, stop, block_ms=100)
                    took = time.monotonic() - began
            assert sink.progress == [1]
            assert last == sink.events[0].event_id
            assert took < 5.0  # stop is seen after at most one more XREAD BLOCK of 100 ms

            idle = anyio.Event()
            idle.set()
            assert await relay.tail("never-written", None, Sink(), idle) is None
            with pytest.raises(ValueError, match="not an event id of stream"):
                await relay.tail("other", last, Sink(), idle)
            with pytest.raises(ValueError, match="shorter than the client's timeout"):
                await relay.tail("s", None, Sink(), idle, block_ms=2_000)  # the client's is 2 s

    run(body)


def test_event_ids_carry_their_stream_and_are_plain_ascii() -> None:
    for stream in ["abc/1", "sess/some id with spaces", "s/é\nnewline|pipe.dot", ""]:
        event_id = encode_event_id(stream, "1700000000000-3")
        assert event_id.isascii() and event_id.isprintable() and " " not in event_id
        assert decode_event_id(event_id) == (stream, "1700000000000-3")
    good = encode_event_id("sess/1", "5-0")
    bad_ids = ["", "x", "abc.1", "abc.1-", "abc.-1", "a!c.1-0", "a=.1-0", "abc.1-0-0", "\udcff.1-0"]
    bad_ids += ["/w==.1-0"]
    for bad in [*bad_ids, good + " ", good[:-1] + "x", "c2Vzcy8x" + "A.5-0", good.replace(".", "..")]:
        assert decode_event_id(bad) is None, bad


# -- passwords ---------------------------------------------------------------------------------------


def test_redact_masks_every_way_a_url_carries_a_password() -> None:
    urls = [
        f"redis://:{PASSWORD}@127.0.0.1:6379/0",
        f"redis://default:{PASSWORD}@127.0.0.1:6379",
        f"rediss://user:{PASSWORD}@cache.internal:6380/2",
        f"redis://{PASSWORD}@127.0.0.1",
        f"unix://:{PASSWORD}@/run/redis.sock?db=1",
        f"redis://127.0.0.1:6379/0?password={PASSWORD}&db=0",
        "redis://:a/b?c#d@e@127.0.0.1:6379",  # unescaped URL characters in the password
    ]
    for url in urls:
        shown = redact(url)
        assert PASSWORD not in shown and "a/b?c#d@e" not in shown, shown
        assert "***" in shown
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact(f"redis://u:{PASSWORD}@h:1/0") == "redis://***@h:1/0"


def test_a_bad_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        connect(f"http://:{PASSWORD}@127.0.0.1:6379")
    assert PASSWORD not in str(caught.value) and "http://***@127.0.0.1:6379" in str(caught.value)
    with pytest.raises(ConfigError, match="timeout"):
        connect("redis://127.0.0.1:6379", timeout=0)


def test_a_dead_port_fails_check_fast_with_the_redacted_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"

    async def body() -> None:
        async with replica(url, timeout=1.0) as client:
            began = time.monotonic()
            with pytest.raises(ServerStartError) as caught:
                await check(client, url)
            assert time.monotonic() - began < 3.0  # refused at once; at worst two 1 s attempts
            message = str(caught.value)
            assert redact(url) in message and "cannot reach Redis" in message
            assert PASSWORD not in message and caught.value.__cause__ is None

    run(body)
    assert PASSWORD not in caplog.text


def test_a_wrong_or_missing_password_fails_check_without_saying_either(
    guarded_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = f"redis://:Wr0ng-guess-pw@127.0.0.1:{guarded_redis.port}/0"
    none = f"redis://127.0.0.1:{guarded_redis.port}/0"

    async def body() -> None:
        for url in (wrong, none):
            async with replica(url) as client:
                with pytest.raises(ServerStartError) as caught:
                    await check(client, url)
                message = str(caught.value)
                assert redact(url) in message
                assert "Wr0ng-guess-pw" not in message and PASSWORD not in message
        async with replica(guarded_redis.url) as client:
            await check(client, guarded_redis.url)  # the right one passes

    run(body)
    assert "Wr0ng-guess-pw" not in caplog.text and PASSWORD not in caplog.text


def test_import_mcp_embed_replicas_does_not_load_redis_and_a_missing_client_names_the_extra() -> None:
    code = (
        "import sys, mcp_embed, mcp_embed.replicas\n"
        "assert not [m for m in sys.modules if m == 'redis' or m.startswith('redis.')], 'redis loaded'\n"
        "sys.modules['redis'] = None  # as if not installed\n"
        "try:\n"
        "    mcp_embed.replicas.connect('redis://127.0.0.1:1')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'pip install "mcp-embed[redis]"' in out.stdout


def test_the_connection_module_loads_neither_redis_nor_the_mcp_sdk() -> None:
    # instances/ imports it while a server starts on another thread; the SDK loaded beside it from
    # two threads deadlocked an import (the README's subprocess example hung on it).
    code = (
        "import sys, mcp_embed.replicas.connection, mcp_embed.replicas\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('redis', 'mcp')]\n"
        "assert not loaded, loaded\n"
        "assert mcp_embed.replicas.RedisEventStore.__name__ == 'RedisEventStore'  # on first use\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# -- Redis lost and back -----------------------------------------------------------------------------


def test_a_redis_that_never_answers_times_out_within_the_bound() -> None:
    # A socket that accepts (the kernel's backlog) and never replies: a hung Redis, not a dead one.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://:{PASSWORD}@127.0.0.1:{silent.getsockname()[1]}/0"
        health = RedisHealth(url)

        async def body() -> None:
            async with replica(url, timeout=0.3) as client:
                store = RedisTaskStore(client, health=health)
                began = time.monotonic()
                with pytest.raises(RedisUnavailable) as caught:
                    await store.load("t")
                took = time.monotonic() - began
                assert took < 0.3 * 2 + 1.0  # (retries + 1) attempts of 0.3 s, and slack
                assert "Timeout" in (health.degraded or "")
                assert PASSWORD not in str(caught.value) and redact(url) in str(caught.value)

        run(body)


def test_stopped_redis_fails_each_store_fast_marks_degraded_and_recovers_by_itself(
    guarded_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = guarded_redis.url
    health = RedisHealth(url)

    async def body() -> None:
        async with replica(url, timeout=1.0) as client:
            events = RedisEventStore(client, health=health)
            tasks = RedisTaskStore(client, health=health)
            buckets = RedisTokenBuckets(client, 0.01, 3, health=health)
            first = await events.store_event("s", note(0))
            await tasks.save(Task(task_id="t", tool="x"))
            assert await buckets.take("k") == 0.0
            assert health.degraded is None and health.ok

            guarded_redis.stop()
            # A request stream's events are written behind: the first one after the stop is sent
            # on (its id is given at once), its write fails in the writer task, and from then on
            # every write is awaited and refused, so FallbackEventStore keeps them locally.
            await events.store_event("s", note(1))
            await events.flush()
            assert health.degraded and health.failures == 1
            operations = [
                lambda: events.store_event("s", note(2)),
                lambda: events.replay_events_after(first, Sink()),
                lambda: tasks.save(Task(task_id="t2", tool="x")),
                lambda: tasks.load("t"),
                lambda: tasks.delete("t"),
                lambda: buckets.take("k"),
                lambda: buckets.peek("k"),
            ]
            for op in operations:
                began = time.monotonic()
                with pytest.raises(RedisUnavailable) as caught:
                    await op()
                assert time.monotonic() - began < 1.0 * 2 + 1.0  # refused: fast; bounded anyway
                assert PASSWORD not in str(caught.value)
                assert health.degraded and "ConnectionError" in health.degraded
                assert PASSWORD not in health.degraded
            assert health.failures == 1 + len(operations) and health.since is not None

            guarded_redis.start()  # same port, same password, empty (nothing was saved)
            assert await buckets.take("k") == 0.0  # the script is loaded again by itself
            assert health.degraded is None and health.failures == 0
            fresh = await events.store_event("s", note(5))
            await events.store_event("s", note(6))
            sink = Sink()
            assert await events.replay_events_after(fresh, sink) == "s"
            assert sink.progress == [6]
            await tasks.save(Task(task_id="t3", tool="x"))
            assert (await tasks.load("t3")) is not None

    run(body)
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("mcp_embed")]
    assert any("unreachable" in w for w in warnings) and any("reachable again" in w for w in warnings)
    assert sum("unreachable" in w for w in warnings) == 1  # one warning per outage, not per call
    assert PASSWORD not in caplog.text


def test_each_event_names_its_writer_so_a_reader_can_ask_who_writes_a_stream(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as a, replica(redis_server.url) as b:
            writer, reader = RedisEventStore(a, writer="replica-a"), RedisEventStore(b, writer="replica-b")
            assert await reader.writer_of("s") is None  # no such stream
            await writer.store_event("s", None)
            await writer.store_event("s", note(0))
            await writer.flush()
            assert await reader.writer_of("s") == "replica-a"
            assert await reader.writer_of("other") is None
            assert await RedisEventStore(a).writer_of("s") == "replica-a"

    run(body)


def _resume_on(url: str, writer_name: str, *, beating: bool) -> list[bytes]:
    """What a resume relayed from Redis sends when the writer (named on each event) stops writing:
    the SSE bytes of the relay's response, the stream left without its answer."""
    from mcp_embed.replicas.sessions import SessionStore, relay

    sent: list[bytes] = []

    async def body() -> None:
        async with replica(url) as a, replica(url) as b:
            health = RedisHealth(url)
            writer = RedisEventStore(a, writer=writer_name)
            here = SessionStore(b, prefix="mcp-embed:", ttl=60.0, health=health, replica="here")
            if beating:
                await a.set(here.replica_key(writer_name), b"1", px=60_000)
            await writer.store_event("sid/7", None)
            last = await writer.store_event("sid/7", note(0))
            await writer.store_event("sid/7", note(1))

            async def receive() -> dict[str, Any]:
                await anyio.sleep(30)  # the client stays; the relay's own bounds end it
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    sent.append(message.get("body", b""))

            with anyio.fail_after(15):  # a hang guard: the bounds below end the relay in about 1 s
                relayed = await relay(
                    RedisEventStore(b), here, "sid/7", last, "sid", receive, send, stall_s=0.3, bound_s=1.0
                )
            assert relayed

    run(body)
    return sent


def test_a_resume_whose_writer_is_gone_ends_with_an_error_not_a_hang(redis_server: RedisServer) -> None:
    body = b"".join(_resume_on(redis_server.url, "dead-replica", beating=False))
    assert b'"progress":1' in body  # what was missed is relayed first
    assert b"Request cannot be resumed: the replica running this request is gone" in body
    assert b'"id":7' in body.replace(b" ", b"")


def test_a_resume_whose_writer_beats_waits_until_its_bound(redis_server: RedisServer) -> None:
    body = b"".join(_resume_on(redis_server.url, "live-replica", beating=True))
    assert b'"progress":1' in body
    assert b"Request cannot be resumed: no answer within 1 s" in body


def test_a_request_streams_events_are_written_behind_in_order_and_another_replica_catches_up(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as a, replica(redis_server.url) as b:
            writer, reader = RedisEventStore(a), RedisEventStore(b)
            ids = [await writer.store_event("sid/3", note(i)) for i in range(50)]
            entries = [tuple(map(int, decode_event_id(i)[1].split("-"))) for i in ids]  # type: ignore[index]
            assert entries == sorted(entries) and len(set(entries)) == 50  # chosen here, increasing
            # Resumed at once on another replica: the event it names is waited for, and what
            # follows it comes in order, once (the rest, if still queued, is the live tail's).
            sink = Sink()
            assert await reader.replay_events_after(ids[10], sink) == "sid/3"
            assert sink.progress == list(range(11, 11 + len(sink.progress)))
            await writer.flush()
            sink = Sink()
            assert await reader.replay_events_after(ids[10], sink) == "sid/3"
            assert sink.progress == list(range(11, 50))
            # A session's GET stream may have several writers: Redis names its entries, awaited.
            get_id = await writer.store_event("sid/_GET_stream", note(99))
            sink = Sink()
            assert await reader.replay_events_after(get_id, sink) == "sid/_GET_stream"
            assert await a.xlen(writer.key("sid/_GET_stream")) == 1
            # An id no replica wrote is still unknown, after the short wait.
            assert await reader.replay_events_after(encode_event_id("sid/3", "1-999"), Sink()) is None

    run(body)


def _answer(request_id: int) -> Any:
    from mcp_types import jsonrpc_message_adapter

    return jsonrpc_message_adapter.validate_python(
        {"jsonrpc": "2.0", "id": request_id, "result": {"content": []}}, by_name=False
    )


async def _calls(client: Any, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_calls_events_go_in_one_round_trip_and_a_lone_one_within_the_linger(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        async with replica(redis_server.url) as client:
            store = RedisEventStore(client)
            await store.store_event("sid/0", _answer(0))  # loads the script: not what is counted
            await store.flush()
            await client.config_resetstat()
            # A call: its priming event, five progress notes and its answer, written as it ends.
            ids = [await store.store_event("sid/1", None)]
            ids += [await store.store_event("sid/1", note(i)) for i in range(5)]
            ids.append(await store.store_event("sid/1", _answer(1)))
            for _ in range(200):  # a hang guard (about 2 s), not a timing assertion
                if await client.xlen(store.key("sid/1")) == 7:
                    break
                await anyio.sleep(0.01)
            assert await client.xlen(store.key("sid/1")) == 7
            assert await _calls(client, "evalsha") == 1 and await _calls(client, "xadd") == 7
            assert await _calls(client, "pexpire") == 1  # the new stream's TTL, in the same call
            entries = [_text_id(e) for e, _ in await client.xrange(store.key("sid/1"))]
            assert [decode_event_id(i)[1] for i in ids] == entries  # type: ignore[index]
            # An event with no answer after it (a long tool's progress) waits only for the linger.
            await store.store_event("sid/2", note(0))
            for _ in range(200):
                if await client.xlen(store.key("sid/2")):
                    break
                await anyio.sleep(0.01)
            assert await client.xlen(store.key("sid/2")) == 1
            # A long queue goes in calls of at most 128 events, in order.
            await client.config_resetstat()
            many = [await store.store_event("sid/5", note(i)) for i in range(300)]
            await store.flush()
            assert await _calls(client, "evalsha") == 3
            entries = [_text_id(e) for e, _ in await client.xrange(store.key("sid/5"))]
            assert [decode_event_id(i)[1] for i in many] == entries  # type: ignore[index]
            # One batch for two streams: each gets its own entries in order, and its TTL.
            for i in range(3):
                await store.store_event("sid/3", note(i))
                await store.store_event("sid/4", note(10 + i))
            await store.flush()
            for stream, first in (("sid/3", 0), ("sid/4", 10)):
                sink = Sink()
                start = encode_event_id(stream, _text_id((await client.xrange(store.key(stream)))[0][0]))
                assert await store.replay_events_after(start, sink) == stream
                assert sink.progress == [first + 1, first + 2]
                assert await client.pttl(store.key(stream)) > 0

    run(body)


def _text_id(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_a_batch_redis_refuses_is_logged_and_the_writer_goes_on(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mcp_embed")

    async def body() -> None:
        async with replica(redis_server.url) as client:
            store = RedisEventStore(client)
            await store.store_event("sid/0", _answer(0))
            await store.flush()
            await client.config_set("maxmemory", "1")  # every write is refused: OOM
            try:
                await store.store_event("sid/1", note(0))
                await store.store_event("sid/1", _answer(1))
                await store.flush()
            finally:
                await client.config_set("maxmemory", "0")
            assert not await client.exists(store.key("sid/1"))
            said = [r.getMessage() for r in caplog.records]
            assert any("Redis refused 2 stream event(s): OOM" in m for m in said), said
            assert any("refuses operations" in m and "OOM" in m for m in said), said
            assert store.health.degraded and store.health.refusing  # answered, refusing: not away
            last = await store.store_event("sid/2", note(1))
            await store.store_event("sid/2", _answer(2))
            await store.flush()
            sink = Sink()
            assert await store.replay_events_after(last, sink) == "sid/2"
            assert len(sink.events) == 1  # the answer after it: the writer went on
            assert store.health.ok and not store.health.refusing

    run(body)


def test_an_event_that_will_not_encode_is_stored_as_text_and_the_store_goes_on(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK's message router calls store_event: an exception there would end the session."""
    from mcp_types import jsonrpc_message_adapter

    bad = jsonrpc_message_adapter.validate_python(
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 1, "message": "a\ud800"},
        },
        by_name=False,
    )

    async def body() -> None:
        async with replica(redis_server.url) as client:
            store = RedisEventStore(client)
            first = await store.store_event("sid/1", None)
            await store.store_event("sid/1", bad)
            await store.store_event("sid/1", _answer(1))
            sink = Sink()
            assert await store.replay_events_after(first, sink) == "sid/1"
            assert [e.message.params["message"] for e in sink.events[:1]] == ["a\\ud800"]  # type: ignore[union-attr]
            assert len(sink.events) == 2

    run(body)
    assert any("would not encode" in r.getMessage() for r in caplog.records)
