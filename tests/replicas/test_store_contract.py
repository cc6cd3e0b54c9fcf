"""One contract, two implementations: the in-memory stores and the Redis ones pass the same tests.

Each test body runs against ``memory`` (``InMemoryEventStore``, ``InMemoryTaskStore``,
``TokenBuckets``) and ``redis`` (``RedisEventStore``, ``RedisTaskStore``, ``RedisTokenBuckets`` on
a real redis-server started for the test; skipped without one). What only Redis does (sharing
between replicas, expiry in Redis, failures) is in ``test_redis_stores.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from mcp.server.streamable_http import EventStore
from mcp_types import jsonrpc_message_adapter

from mcp_embed import InMemoryEventStore, InMemoryTaskStore, Task, TaskStore
from mcp_embed.events import SessionScopedEventStore
from mcp_embed.http.middleware.ratelimit import TokenBuckets
from redis_helpers import Sink, note, run


class MemoryBuckets:
    """``TokenBuckets`` behind the async face of ``RedisTokenBuckets``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.inner = TokenBuckets(rate, burst)

    async def take(self, key: str) -> float:
        return self.inner.take(key)

    async def peek(self, key: str) -> float:
        return self.inner.peek(key)


@dataclass
class Backend:
    name: str
    url: str | None  # None: in memory

    @contextlib.asynccontextmanager
    async def replica(self) -> AsyncIterator[Any]:
        """One replica's connection (a Redis client; nothing in memory), closed at the end."""
        if self.url is None:
            yield None
            return
        from mcp_embed.replicas import check, connect

        client = connect(self.url)
        try:
            await check(client, self.url)
            yield client
        finally:
            await client.aclose()

    def events(self, client: Any, max_events: int = 1024) -> EventStore:
        if client is None:
            return InMemoryEventStore(max_events)
        from mcp_embed.replicas import RedisEventStore

        return RedisEventStore(client, max_events=max_events)

    def tasks(self, client: Any) -> TaskStore:
        if client is None:
            return InMemoryTaskStore()
        from mcp_embed.replicas import RedisTaskStore

        return RedisTaskStore(client)

    def buckets(self, client: Any, rate: float, burst: int) -> Any:
        if client is None:
            return MemoryBuckets(rate, burst)
        from mcp_embed.replicas import RedisTokenBuckets

        return RedisTokenBuckets(client, rate, burst)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend("memory", None)
    return Backend("redis", request.getfixturevalue("redis_server").url)


# -- event store -------------------------------------------------------------------------------------


def test_replay_sends_every_later_event_of_the_stream_in_order_exactly_once(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client)
            ids = [await store.store_event("s1", note(i)) for i in range(6)]
            assert len(set(ids)) == 6

            sink = Sink()
            assert await store.replay_events_after(ids[1], sink) == "s1"
            assert sink.progress == [2, 3, 4, 5]
            assert [e.event_id for e in sink.events] == ids[2:]  # the ids the client resumes from

            last = Sink()
            assert await store.replay_events_after(ids[-1], last) == "s1"
            assert last.events == []  # nothing after the newest

            again = Sink()  # a second resume from the same id sends the same, once each
            assert await store.replay_events_after(ids[1], again) == "s1"
            assert again.progress == [2, 3, 4, 5]

    run(body)


def test_an_unknown_event_id_replays_nothing_and_answers_none(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client)
            await store.store_event("s1", note(0))
            sink = Sink()
            for unknown in ["", "0", "999999", "nope", "czE.99999999999999-0", "czE.1-0", "|", "a.b-c"]:
                assert await store.replay_events_after(unknown, sink) is None, unknown
            assert sink.events == []

    run(body)


def test_other_streams_events_are_not_replayed(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client)
            a0 = await store.store_event("sess/1", note(0))
            b0 = await store.store_event("sess/2", note(100))
            for i in range(1, 4):
                await store.store_event("sess/1", note(i))
                await store.store_event("sess/2", note(100 + i))
            sink = Sink()
            assert await store.replay_events_after(a0, sink) == "sess/1"
            assert sink.progress == [1, 2, 3]
            other = Sink()
            assert await store.replay_events_after(b0, other) == "sess/2"
            assert other.progress == [101, 102, 103]

    run(body)


def test_priming_events_are_stored_resumable_and_never_sent(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client)
            priming = await store.store_event("s", None)  # what the SDK stores first on a stream
            first = await store.store_event("s", note(1))
            second_priming = await store.store_event("s", None)  # a resumed stream primes again
            await store.store_event("s", note(2))
            assert len({priming, first, second_priming}) == 3

            sink = Sink()
            assert await store.replay_events_after(priming, sink) == "s"
            assert sink.progress == [1, 2]
            assert all(e.message is not None for e in sink.events)
            later = Sink()
            assert await store.replay_events_after(second_priming, later) == "s"
            assert later.progress == [2]

    run(body)


def test_the_store_is_bounded_and_keeps_the_newest_max_events(backend: Backend) -> None:
    # Redis trims whole nodes (MAXLEN ~): at least max_events are kept, the oldest go once the
    # stream is well past the bound. The in-memory store trims exactly; both keep the newest.
    keep, total = 10, 310

    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client, max_events=keep)
            ids = [await store.store_event("s", note(i)) for i in range(total)]
            sink = Sink()
            assert await store.replay_events_after(ids[0], sink) is None  # forgotten: unknown
            assert sink.events == []
            tail = Sink()
            assert await store.replay_events_after(ids[total - keep], tail) == "s"
            assert tail.progress == list(range(total - keep + 1, total))

    run(body)


def test_a_long_replay_is_complete_and_in_order(backend: Backend) -> None:
    # Longer than one reply page of the Redis store: nothing lost or repeated at page edges.
    total = 700

    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client)
            ids = [await store.store_event("s", note(i)) for i in range(total)]
            sink = Sink()
            assert await store.replay_events_after(ids[0], sink) == "s"
            assert sink.progress == list(range(1, total))
            assert [e.event_id for e in sink.events] == ids[1:]

    run(body)


def test_replayed_messages_are_the_messages_that_were_stored(backend: Backend) -> None:
    wire = [
        {"jsonrpc": "2.0", "id": 7, "method": "elicitation/create", "params": {"message": "ok?"}},
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": None}},
        {"jsonrpc": "2.0", "id": "r", "result": {"content": [], "structuredContent": {"x": None, "é": "ü"}}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
    ]
    messages = [jsonrpc_message_adapter.validate_python(m, by_name=False) for m in wire]

    def dump(m: Any) -> str:  # the SDK's own serialization of an SSE event
        return m.model_dump_json(by_alias=True, exclude_unset=True)

    async def body() -> None:
        async with backend.replica() as client:
            store = backend.events(client)
            start = await store.store_event("s", None)
            for m in messages:
                await store.store_event("s", m)
            sink = Sink()
            await store.replay_events_after(start, sink)
            assert [dump(e.message) for e in sink.events] == [dump(m) for m in messages]
            assert [type(e.message) for e in sink.events] == [type(m) for m in messages]

    run(body)


def test_a_session_scoped_view_replays_only_its_own_session(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            shared = backend.events(client)
            alice, bob = SessionScopedEventStore(shared, "alice"), SessionScopedEventStore(shared, "bob")
            a = await alice.store_event("1", note(1))
            b = await bob.store_event("1", note(2))  # the same request id in another session
            await alice.store_event("1", note(3))
            await bob.store_event("1", note(4))
            sink = Sink()
            assert await alice.replay_events_after(a, sink) == "1"
            assert sink.progress == [3]
            stolen = Sink()
            assert await alice.replay_events_after(b, stolen) is None  # bob's id, alice's view
            assert stolen.events == []

    run(body)


# -- task store --------------------------------------------------------------------------------------


def full_task(task_id: str = "t1", **fields: Any) -> Task:
    return Task(
        task_id=task_id,
        tool="render",
        status="input_required",
        ttl=60.0,
        poll_interval=0.5,
        status_message="needs a name",
        input_requests={"q1": {"method": "elicitation/create", "params": {"message": "name?"}}},
        owner="alice",
        **fields,
    )


def test_a_saved_task_loads_equal_and_delete_forgets_it(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.tasks(client)
            task = full_task()
            await store.save(task)
            loaded = await store.load("t1")
            assert loaded == task and loaded is not task
            assert loaded.to_wire() == task.to_wire()
            loaded.input_requests.clear()  # a loaded copy is the caller's: the store is unchanged
            assert (await store.load("t1")) == task
            assert await store.load("unknown") is None
            await store.delete("t1")
            assert await store.load("t1") is None
            await store.delete("t1")  # unknown: a no-op
            await store.delete("never-saved")

    run(body)


def test_saving_again_replaces_the_task(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.tasks(client)
            task = full_task()
            await store.save(task)
            task.status = "completed"
            task.input_requests = {}
            task.result = {"content": [{"type": "text", "text": "done"}], "isError": False}
            task.last_updated_at = task.created_at + 1.5
            await store.save(task)
            loaded = await store.load("t1")
            assert loaded == task
            assert loaded is not None and loaded.to_wire()["result"]["content"][0]["text"] == "done"
            failed = Task(
                task_id="t2", tool="x", status="failed", error={"code": -1, "message": "no", "data": None}
            )
            await store.save(failed)
            assert (await store.load("t2")) == failed
            assert (await store.load("t1")) == task  # the other task is untouched

    run(body)


def test_a_task_past_its_ttl_reads_as_gone_or_expired(backend: Backend) -> None:
    # The protocol layer answers "expired" for an expired task and "not found" for None: either
    # way the task is over. A task without a ttl stays.
    async def body() -> None:
        async with backend.replica() as client:
            store = backend.tasks(client)
            await store.save(Task(task_id="old", tool="x", created_at=time.time() - 10, ttl=1.0))
            old = await store.load("old")
            assert old is None or old.expired()
            await store.save(Task(task_id="brief", tool="x", ttl=0.2))
            assert (await store.load("brief")) is not None
            await anyio.sleep(0.3)
            brief = await store.load("brief")
            assert brief is None or brief.expired()
            await store.save(Task(task_id="forever", tool="x"))
            kept = await store.load("forever")
            assert kept is not None and not kept.expired()

    run(body)


# -- token buckets -----------------------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait_and_refills(backend: Backend) -> None:
    rate, burst = 10.0, 3

    async def body() -> None:
        async with backend.replica() as client:
            buckets = backend.buckets(client, rate, burst)
            assert await buckets.peek("k") == 0.0  # an unknown key is a full bucket
            began = time.monotonic()
            assert [await buckets.take("k") for _ in range(burst)] == [0.0] * burst
            wait = await buckets.take("k")
            elapsed = time.monotonic() - began
            # One token takes 1/rate s to come back; some of it has refilled while we took.
            assert 1 / rate - elapsed - 1e-6 <= wait <= 1 / rate
            peeked = await buckets.peek("k")
            assert 0 < peeked <= wait  # looking takes nothing and the wait only shrinks
            assert await buckets.peek("other") == 0.0 and await buckets.take("other") == 0.0
            await anyio.sleep(wait + 0.02)
            assert await buckets.peek("k") == 0.0
            assert await buckets.take("k") == 0.0
            assert await buckets.take("k") > 0.0

    run(body)


def test_peek_takes_nothing(backend: Backend) -> None:
    async def body() -> None:
        async with backend.replica() as client:
            buckets = backend.buckets(client, 0.01, 2)
            for _ in range(5):
                assert await buckets.peek("k") == 0.0
            assert [await buckets.take("k") for _ in range(3)][:2] == [0.0, 0.0]
            wait = await buckets.peek("k")
            assert 0 < wait <= 100.0  # (1 - tokens) / rate, with rate 0.01/s

    run(body)
