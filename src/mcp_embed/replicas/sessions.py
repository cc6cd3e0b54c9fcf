"""Stateful sessions any replica can serve: session records, replica heartbeats, and live relay.

A session opened on replica A is recorded at ``<prefix>session:<id>`` (JSON: the negotiated
protocol version, the client's ``initialize`` params, the principal that opened it, when it was
created and last seen, and A's replica id). The key's TTL is the session idle timeout, refreshed
on use, so an idle session is forgotten by Redis as by the SDK. Replica B, asked for a session it
does not hold, loads the record and *adopts* the session (the HTTP layer builds the SDK session in
the initialized state from it). ``DELETE`` on any replica deletes the record and publishes the id
on ``<prefix>session-deleted``: every replica drops its local copy, and a replica that adopted a
session also checks the record per request, so the id answers 404 everywhere.

Each replica keeps ``<prefix>replica:<id>`` alive (a heartbeat with a short TTL) and, for every
stream a request of a session writes, names itself at ``<prefix>writer:<stream id>``: a replica
relaying that stream (:func:`relay`) learns from these when the writer is gone for good, and
answers the waiting client with a JSON-RPC error instead of waiting for ever.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.streamable_http import EventMessage

from .. import _json
from ..logs import get_logger
from .connection import RedisHealth, RedisUnavailable
from .events import RedisEventStore, decode_event_id

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .._asgi import Receive, Send

__all__ = ["SessionRecord", "SessionStore", "relay"]

log = get_logger("replicas")

HEARTBEAT_S = 1.0
"""How often a replica refreshes its heartbeat; the key lives three times as long."""
GET_STREAM = "_GET_stream"  # the SDK's stream id of a session's standalone GET stream


@dataclass
class SessionRecord:
    session_id: str
    protocol_version: str
    client_params: dict[str, Any]
    principal: dict[str, Any] | None
    created: float
    last_seen: float
    replica: str


class SessionStore:
    """Session records, heartbeats and writer names of one server run, in Redis."""

    def __init__(
        self, client: Redis, *, prefix: str, ttl: float | None, health: RedisHealth, replica: str = ""
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1, round(ttl * 1000)) if ttl is not None else None
        self.health = health
        self.replica = replica or uuid.uuid4().hex
        self.channel = f"{prefix}session-deleted"
        self._touched: dict[str, float] = {}  # session id -> monotonic time of the last refresh

    def key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def replica_key(self, replica: str) -> str:
        return f"{self.prefix}replica:{replica}"

    async def save(self, record: SessionRecord) -> None:
        data = _json.dumps(asdict(record))
        with self.health.track("saving a session"):
            await self.client.set(self.key(record.session_id), data, px=self.ttl_ms)
        self._touched[record.session_id] = time.monotonic()

    async def load(self, session_id: str) -> SessionRecord | None:
        with self.health.track("loading a session"):
            data = await self.client.get(self.key(session_id))
        if data is None:
            return None
        try:
            value = _json.loads(data)
            return SessionRecord(**value)
        except (ValueError, TypeError):
            log.warning("ignored a malformed session record for %s", session_id[:64])
            return None

    async def touch(self, session_id: str, *, every: float = 0.0) -> bool:
        """Refresh the record's TTL (and say whether it still exists). With ``every`` > 0, at most
        once per ``every`` seconds (True in between, unasked)."""
        now = time.monotonic()
        if every and now - self._touched.get(session_id, -every) < every:
            return True
        with self.health.track("refreshing a session"):
            if self.ttl_ms is None:
                alive = bool(await self.client.exists(self.key(session_id)))
            else:
                alive = bool(await self.client.pexpire(self.key(session_id), self.ttl_ms))
        if alive:
            self._touched[session_id] = now
        else:
            self._touched.pop(session_id, None)
        return alive

    async def delete(self, session_id: str) -> None:
        """Forget the session everywhere: the record, and every replica's local copy (pub/sub)."""
        self._touched.pop(session_id, None)
        with self.health.track("deleting a session"):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(self.key(session_id))
                pipe.publish(self.channel, session_id)
                await pipe.execute()

    def forget(self, session_id: str) -> None:
        """This replica no longer holds the session (it ended here): drop the local bookkeeping."""
        self._touched.pop(session_id, None)

    async def heartbeat(self) -> None:
        """Keep this replica's heartbeat alive until cancelled."""
        while True:
            with contextlib.suppress(RedisUnavailable), self.health.track("a replica heartbeat"):
                await self.client.set(self.replica_key(self.replica), b"1", px=round(HEARTBEAT_S * 3000))
            await anyio.sleep(HEARTBEAT_S)

    async def deletions(self, on_deleted: Callable[[str], Awaitable[None]]) -> None:
        """Call ``on_deleted(session id)`` for every session deleted by any replica, until cancelled.
        A lost Redis is retried every second: while it is away, adopted sessions still check the
        record per request."""
        while True:
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                async with contextlib.aclosing(pubsub) as sub:
                    await sub.subscribe(self.channel)
                    while True:
                        message = await sub.get_message(timeout=HEARTBEAT_S)
                        if message is not None and message.get("type") == "message":
                            raw = message.get("data")
                            await on_deleted(raw.decode() if isinstance(raw, bytes) else str(raw))
            except (OSError, ConnectionError, TimeoutError) as exc:
                log.debug("session deletions: %s; subscribing again", type(exc).__name__)
            except Exception as exc:  # redis-py's own ConnectionError and friends
                if type(exc).__module__.startswith("redis"):
                    log.debug("session deletions: %s; subscribing again", type(exc).__name__)
                else:
                    raise
            await anyio.sleep(HEARTBEAT_S)

    async def replica_alive(self, replica: str) -> bool:
        """Whether the replica named ``replica`` still beats."""
        with self.health.track("checking a replica's heartbeat"):
            return bool(await self.client.exists(self.replica_key(replica)))


def _is_final(message: Any, stream_id: str) -> bool:
    """The answer (result or error) to the request whose stream is ``stream_id``."""
    root = getattr(message, "root", message)
    rid = getattr(root, "id", None)
    is_answer = hasattr(root, "result") or hasattr(root, "error")
    return is_answer and rid is not None and stream_id.rpartition("/")[2] == str(rid)


def resumable_stream(last_event_id: str, session_id: str) -> str | None:
    """The Redis stream id (``<session>/<request id>``) a ``Last-Event-ID`` of this session resumes,
    when it is a request's stream this module relays; else None (the SDK serves it)."""
    decoded = decode_event_id(last_event_id)
    if decoded is None:
        return None
    stream_id = decoded[0]
    session, _, request = stream_id.rpartition("/")
    if session != session_id or not request or request == GET_STREAM:
        return None
    return stream_id


@contextlib.asynccontextmanager
async def _sse(send: Send, session_id: str) -> AsyncIterator[Callable[[bytes], Awaitable[None]]]:
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache, no-transform"),
        (b"mcp-session-id", session_id.encode("latin-1")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def write(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    try:
        yield write
    finally:
        with contextlib.suppress(Exception):  # the client may be gone
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _event(event_id: str | None, data: bytes) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"event: message\ndata: " + data + b"\n\n"


async def relay(
    store: RedisEventStore,
    sessions: SessionStore,
    stream_id: str,
    last_event_id: str,
    session_id: str,
    receive: Receive,
    send: Send,
    *,
    stall_s: float,
    bound_s: float | None,
) -> bool:
    """Answer a resume (``GET`` with ``Last-Event-ID``) from Redis: replay what was missed, then
    relay live what the writing replica (this one or another) adds, until the request's answer.

    No event for ``stall_s`` seconds while the writer's heartbeat is gone, or ``bound_s`` seconds
    in all, ends the stream with a JSON-RPC error for the request: never a hang. Returns False,
    having sent nothing, when Redis does not know ``last_event_id`` (the SDK answers then).
    """
    request_id = stream_id.rpartition("/")[2]
    held: list[EventMessage] = []

    async def hold(event: EventMessage) -> None:
        held.append(event)

    if await store.replay_events_after(last_event_id, hold) != stream_id:
        return False
    done = anyio.Event()
    last_id = [last_event_id]
    last_at = [time.monotonic()]
    failure: list[str] = []

    async with _sse(send, session_id) as write:

        async def forward(event: EventMessage) -> None:
            if done.is_set():
                return
            data = event.message.model_dump_json(by_alias=True, exclude_unset=True).encode()
            await write(_event(event.event_id, data))
            last_id[0], last_at[0] = str(event.event_id), time.monotonic()
            if _is_final(event.message, stream_id):
                done.set()

        for event in held:
            await forward(event)
        if done.is_set():
            return True
        started = time.monotonic()

        async def watch() -> None:
            while not done.is_set():
                await anyio.sleep(min(0.25, stall_s))
                now = time.monotonic()
                if bound_s is not None and now - started >= bound_s:
                    failure.append(f"no answer within {bound_s:g} s")
                elif now - last_at[0] >= stall_s:
                    try:
                        writer = await store.writer_of(stream_id)
                        alive = writer is not None and await sessions.replica_alive(writer)
                    except RedisUnavailable:
                        alive = True  # the tail itself fails and says so
                    if not alive:
                        failure.append("the replica running this request is gone")
                    else:
                        last_at[0] = now
                if failure:
                    done.set()

        async def disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            done.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                tg.start_soon(disconnect)
                await store.tail(stream_id, last_id[0], forward, done)
                tg.cancel_scope.cancel()
        except RedisUnavailable as exc:
            failure.append(str(exc))
        if failure:
            error = {"code": -32603, "message": f"Request cannot be resumed: {failure[0]}"}
            rid: Any = int(request_id) if request_id.isdigit() else request_id
            body = _json.dumps({"jsonrpc": "2.0", "id": rid, "error": error})
            with contextlib.suppress(Exception):
                await write(_event(None, body))
    return True
