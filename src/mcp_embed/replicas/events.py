"""``RedisEventStore``: resumable streams on Redis Streams, shared by every replica.

One Redis stream per SDK stream (``<session id>/<request id>`` under ``SessionScopedEventStore``),
at the key ``<prefix>events:<stream id>``. Each event is one entry, ``XADD ... MAXLEN ~
max_events``, which names the replica that wrote it (so a resuming replica can tell whether the
writer still lives, without a key per stream). A stream's first event and then one in every
tenth of the TTL also refresh the key's TTL, in the same round trip, so a stream nobody writes
to is forgotten ``ttl`` seconds after its last event, give or take that tenth. A priming event
(message None) is an entry with an empty message: it has an id a client can resume from, and is
never sent.

A request's stream has one writer (request ids are unique within a session, and the replica
that got the POST writes its stream), so its entry ids are chosen here (``<ms>-<n>``: the time
of its first event here, then a counter) and its events are written behind: ``store_event``
returns at once and one task writes what is queued, in order, one script call per batch (its
XADDs and TTLs in one round trip, atomically). An event waits at most ``_LINGER`` for others to
join its batch, and a request's answer (its stream's last event) sends the batch at once, so a
call's events usually go in one round trip: the stream the SDK waits on never waits for Redis,
and the server's loop pays one round trip per call, not one per event. A replay on this
replica first waits for the queue; one on another replica that does not find the event it
resumes from yet waits a little (``_CATCH_UP``) for it. A session's GET stream may be written
by any replica that serves the session, so Redis names its entries and each write is awaited;
so is every write while Redis is known to be away, so ``FallbackEventStore`` hears of it.

An event id is ``<stream id, base64url>.<entry id>``: it names its stream, so any replica can
replay from a ``Last-Event-ID`` alone, with no lookup table, and it is plain visible ASCII (an
SSE ``id:`` field and an HTTP header carry it as it is) whatever the stream id holds. Entry ids
only grow within a stream, so ids never repeat.

Messages are stored as the SDK writes them on the wire (``model_dump_json(by_alias=True,
exclude_unset=True)``) and read back through the SDK's ``jsonrpc_message_adapter``: a replayed
event is the event that was sent, byte for byte (``exclude_none`` would drop the ``"id": null``
of an error answer to an unparsable request, which then no longer validates).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp_types import JSONRPCError, JSONRPCResponse

from ..logs import get_logger
from .connection import RedisHealth, RedisUnavailable, require_redis

if TYPE_CHECKING:
    from mcp_types import JSONRPCMessage
    from redis.asyncio import Redis

__all__ = ["RedisEventStore", "StopSignal", "decode_event_id", "encode_event_id"]

_FIELD = b"m"
_WRITER = b"w"
_REFRESHED_MAX = 4096  # streams whose last TTL refresh (and last entry id) is remembered
_GET_STREAM = "_GET_stream"  # the SDK's stream id of a session's standalone GET stream
_LINGER = 0.005  # seconds a request stream's event may wait in the queue for others to join it
_BATCH_MAX = 128  # queued events that are written at once, lingering or not; at most this per call
# Appends a batch of queued events, and sets the TTL of the streams due for it, in one round trip
# and atomically (no key is left without a TTL). KEYS: the streams; ARGV: MAXLEN, TTL (ms), writer,
# a refresh flag per key, then per event its key's index, entry id and message. An event Redis
# refuses (an id not above the stream's newest) is counted, and the others are still written.
_APPEND = """
local maxlen, ttl, writer = ARGV[1], ARGV[2], ARGV[3]
local refused, first = 0, ''
for i = 4 + #KEYS, #ARGV, 3 do
  local reply = redis.pcall('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', maxlen, ARGV[i + 1],
    'm', ARGV[i + 2], 'w', writer)
  if type(reply) == 'table' and reply.err then
    refused = refused + 1
    if first == '' then first = reply.err end
  end
end
for k = 1, #KEYS do
  if ARGV[3 + k] == '1' then redis.call('PEXPIRE', KEYS[k], ttl) end
end
return {refused, first}
"""
_CATCH_UP = (0.005, 0.01, 0.02, 0.05)  # a replay on another replica waits so for an unwritten event

log = get_logger("replicas")
_EVENT_ID = re.compile(r"(?P<stream>[A-Za-z0-9_-]*)\.(?P<entry>[0-9]{1,20}-[0-9]{1,20})")
_PAGE = 256  # entries per XRANGE/XREAD reply: bounds one reply, not what is replayed


class StopSignal(Protocol):
    """What :meth:`RedisEventStore.tail` polls to know it should stop (``asyncio.Event``,
    ``anyio.Event`` and ``threading.Event`` all fit)."""

    def is_set(self) -> bool: ...


def encode_event_id(stream_id: str, entry_id: str) -> str:
    """The event id of the entry ``entry_id`` (``<ms>-<seq>``) of stream ``stream_id``."""
    name = base64.urlsafe_b64encode(stream_id.encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"{name}.{entry_id}"


def decode_event_id(event_id: str) -> tuple[str, str] | None:
    """(stream id, entry id) of an event id of this store, or None for anything else."""
    match = _EVENT_ID.fullmatch(event_id)
    if match is None:
        return None
    name = match["stream"]
    try:
        raw = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4))
        stream_id = raw.decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: not UTF-8
        return None
    # One spelling per stream: an id with other trailing bits is not one this store made.
    return (stream_id, match["entry"]) if encode_event_id(stream_id, match["entry"]) == event_id else None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _field(fields: Any) -> bytes:
    raw = fields.get(_FIELD)
    if raw is None:
        raw = fields.get(_FIELD.decode(), b"")
    return raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)


class RedisEventStore(EventStore):
    """An ``EventStore`` on Redis Streams: a stream resumes on any replica that shares the Redis.

    ``max_events`` bounds each stream (approximately: Redis trims whole nodes, so a stream keeps
    at least ``max_events`` and at most about 100 more); ``ttl`` seconds after its last event a
    stream is gone. Wrap it in ``SessionScopedEventStore`` per session, as the in-memory store is.
    """

    def __init__(
        self,
        client: Redis,
        *,
        max_events: int = 1024,
        ttl: float = 3600.0,
        prefix: str = "mcp-embed:",
        health: RedisHealth | None = None,
        writer: str = "",
    ) -> None:
        require_redis()
        if max_events <= 0:
            raise ValueError("max_events must be a positive integer")
        if not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds")
        self.client = client
        self.max_events = max_events
        self.ttl_ms = max(1, round(ttl * 1000))
        self.prefix = prefix
        self.health = health if health is not None else RedisHealth()
        self.writer = writer.encode("utf-8")
        # stream id -> monotonic time of its last TTL refresh, oldest first
        self._refreshed: dict[str, float] = {}
        self._last_ids: dict[str, tuple[int, int]] = {}  # request stream -> (ms, n) of its last entry
        self._queue: list[tuple[str, str, bytes]] = []  # (stream id, entry id, message)
        self._append = client.register_script(_APPEND)
        self._writer_task: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None  # when what is queued is written, at the latest

    def __bool__(self) -> bool:
        # The SDK tests ``if self._event_store``: a store is a store, whatever it holds.
        return True

    def key(self, stream_id: str) -> str:
        """The Redis key of a stream."""
        return f"{self.prefix}events:{stream_id}"

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        data = b"" if message is None else _encode(message)
        if stream_id.rpartition("/")[2] == _GET_STREAM:
            return await self._write_now(stream_id, "*", data)
        entry = self._next_id(stream_id)
        if not self.health.ok:  # awaited, so the caller hears Redis is still away
            await self.flush()
            return await self._write_now(stream_id, entry, data)
        self._queue.append((stream_id, entry, data))
        if isinstance(message, JSONRPCResponse | JSONRPCError) or len(self._queue) >= _BATCH_MAX:
            self._start_writer()  # a stream's last event: it and what waits with it go now
        elif self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(_LINGER, self._start_writer)
        return encode_event_id(stream_id, entry)

    def _start_writer(self) -> asyncio.Task[None]:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        task = self._writer_task
        if task is None or task.done():
            self._writer_task = task = asyncio.get_running_loop().create_task(self._write_behind())
        return task

    def _next_id(self, stream_id: str) -> str:
        ms, n = self._last_ids.pop(stream_id, (0, 0))
        if not ms:
            ms = time.time_ns() // 1_000_000
        self._last_ids[stream_id] = (ms, n + 1)
        if len(self._last_ids) > _REFRESHED_MAX:  # forgotten: a later first event takes a later ms
            del self._last_ids[next(iter(self._last_ids))]
        return f"{ms}-{n + 1}"

    def _refresh_due(self, stream_id: str) -> bool:
        now = time.monotonic()
        refreshed = self._refreshed.get(stream_id)
        if refreshed is not None and now - refreshed < self.ttl_ms / 10_000:
            return False
        self._refreshed.pop(stream_id, None)
        self._refreshed[stream_id] = now
        if len(self._refreshed) > _REFRESHED_MAX:
            del self._refreshed[next(iter(self._refreshed))]
        return True

    async def _write_now(self, stream_id: str, entry: str, data: bytes) -> str:
        key = self.key(stream_id)
        fields: dict[Any, Any] = {_FIELD: data, _WRITER: self.writer}
        with self.health.track("storing an event"):
            if not self._refresh_due(stream_id):
                written = await self.client.xadd(
                    key, fields, id=entry, maxlen=self.max_events, approximate=True
                )
            else:
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.xadd(key, fields, id=entry, maxlen=self.max_events, approximate=True)
                    pipe.pexpire(key, self.ttl_ms)
                    written, _ = await pipe.execute()
        return encode_event_id(stream_id, _text(written))

    async def _write_behind(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_BATCH_MAX], self._queue[_BATCH_MAX:]
            keys: dict[str, int] = {}  # stream id -> its index in KEYS (from 1, as Lua counts)
            events: list[Any] = []
            for stream_id, entry, data in batch:
                events += (keys.setdefault(stream_id, len(keys) + 1), entry, data)
            refresh = [b"1" if self._refresh_due(stream_id) else b"0" for stream_id in keys]
            try:
                with self.health.track("storing events"):
                    refused, error = await self._append(
                        keys=[self.key(stream_id) for stream_id in keys],
                        args=[self.max_events, self.ttl_ms, self.writer, *refresh, *events],
                    )
            except RedisUnavailable:  # away or refusing (OOM, read-only): the health warns of it
                lost, self._queue = len(batch) + len(self._queue), []  # later ones are awaited now
                log.warning("%d stream event(s) sent but not written to Redis: not resumable elsewhere", lost)
                continue
            if int(refused):
                reason = _text(error)
                log.warning("Redis refused %d stream event(s): %s", int(refused), reason)
                if not reason.startswith(
                    "ERR "
                ):  # OOM, READONLY, NOPERM...: Redis's state, not this stream's
                    self.health.failed(f"ResponseError: {reason}", refused=True)

    async def flush(self) -> None:
        """Wait until every event queued so far is written (or given up on)."""
        while self._queue or (self._writer_task is not None and not self._writer_task.done()):
            await asyncio.shield(self._start_writer())

    async def writer_of(self, stream_id: str) -> str | None:
        """The replica that wrote the stream's newest event (None: no such stream, or unnamed)."""
        with self.health.track("reading a stream's writer"):
            newest = await self.client.xrevrange(self.key(stream_id), max="+", min="-", count=1)
        if not newest:
            return None
        fields = newest[0][1] or {}
        raw = fields.get(_WRITER, fields.get(_WRITER.decode()))
        return _text(raw) if raw else None

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        decoded = decode_event_id(last_event_id)
        if decoded is None:
            return None
        stream_id, entry = decoded
        key = self.key(stream_id)
        await self.flush()
        # The first page starts at the last event itself: no entry there means it is unknown, or
        # trimmed away (then what followed it may be too) - as the in-memory store, None; or, from
        # another replica, not written yet: it is waited for, a little.
        start, first, waits = entry, True, iter(_CATCH_UP)
        while True:
            with self.health.track("replaying events"):
                page = await self.client.xrange(key, min=start, max="+", count=_PAGE) or []
            full = len(page) == _PAGE
            if first:
                if not page or _text(page[0][0]) != entry:
                    wait = next(waits, None)
                    if wait is None:
                        return None
                    await asyncio.sleep(wait)
                    continue
                first = False
                start = "(" + entry
                page = page[1:]
            for entry_id, fields in page:
                start = "(" + _text(entry_id)
                await self._send(stream_id, _text(entry_id), fields, send_callback)
            if not full:
                return stream_id

    async def tail(
        self,
        stream_id: str,
        after_event_id: str | None,
        send_callback: EventCallback,
        stop: StopSignal,
        *,
        block_ms: int = 200,
    ) -> str | None:
        """Send, live, the events written to ``stream_id`` after ``after_event_id`` until ``stop`` is set.

        For a replica relaying a stream another replica keeps writing: replay first, then tail from
        the last event id sent. ``after_event_id`` None means "from now on". Each wait is one
        ``XREAD BLOCK block_ms`` (keep it well under the client's socket timeout), so ``stop`` is
        seen within about ``block_ms``. Returns the id of the last event seen (sent, or priming),
        which is ``after_event_id`` when none came; a lost Redis raises ``RedisUnavailable``.
        """
        if not 0 < block_ms <= 10_000:
            raise ValueError("block_ms must be between 1 and 10000")
        timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout")
        if isinstance(timeout, (int, float)) and block_ms / 1000 >= timeout:
            raise ValueError(f"block_ms ({block_ms}) must be shorter than the client's timeout ({timeout} s)")
        key = self.key(stream_id)
        if after_event_id is None:
            with self.health.track("tailing a stream"):
                newest = await self.client.xrevrange(key, max="+", min="-", count=1)
            cursor = _text(newest[0][0]) if newest else "0-0"
        else:
            decoded = decode_event_id(after_event_id)
            if decoded is None or decoded[0] != stream_id:
                raise ValueError(f"{after_event_id!r} is not an event id of stream {stream_id!r}")
            cursor = decoded[1]
        last = after_event_id
        while not stop.is_set():
            with self.health.track("tailing a stream"):
                reply = await self.client.xread({key: cursor}, count=_PAGE, block=block_ms)
            for _, entries in _streams(reply):
                for entry_id, fields in entries:
                    cursor = _text(entry_id)
                    last = encode_event_id(stream_id, cursor)
                    await self._send(stream_id, cursor, fields, send_callback)
        return last

    async def _send(self, stream_id: str, entry_id: str, fields: Any, send_callback: EventCallback) -> None:
        from mcp_types import jsonrpc_message_adapter

        data = _field(fields)
        if not data:  # a priming event: resumable from, never sent
            return
        message = jsonrpc_message_adapter.validate_json(data, by_name=False)
        await send_callback(EventMessage(message, encode_event_id(stream_id, entry_id)))


def _encode(message: JSONRPCMessage) -> bytes:
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
    except ValueError as exc:  # PydanticSerializationError: raised here, it would end the session
        from .._jsonsafe import dumps_bytes, plain

        # The SDK's message router calls this: what will not encode (a lone surrogate) is kept
        # as text, so the session lives on and the replay is what the client could read.
        log.error("a stream event would not encode (%s): stored with that part as text", exc)
        return dumps_bytes(plain(message.model_dump(by_alias=True, exclude_unset=True)))


def _streams(reply: Any) -> list[tuple[Any, Any]]:
    """XREAD's reply as (key, entries) pairs: a list under RESP2, a dict under RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(item[0], item[1]) for item in reply]
