"""``InMemoryEventStore``: bounded resumability for Streamable HTTP streams.

A client that reconnects with ``Last-Event-ID`` is sent the events of that stream it missed.
The store keeps the newest ``max_events`` events across all streams and forgets older ones.

Bring your own store (Redis, a database) by subclassing ``EventStore`` and passing it as
``create_skill_server(..., event_store=store)``. One store serves every session: the stream ids
it receives are ``"<session id>/<request id>"``, and a replay must return the stream id of
``last_event_id`` (or None when unknown). Define ``__bool__`` if your class defines ``__len__``:
the SDK tests the store's truth value.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from mcp.server.streamable_http import EventCallback, EventMessage, EventStore

if TYPE_CHECKING:
    from mcp_types import JSONRPCMessage

__all__ = ["EventStore", "InMemoryEventStore", "SessionScopedEventStore"]


class InMemoryEventStore(EventStore):
    """A bounded, in-process ``EventStore``. Subclass ``EventStore`` to bring your own."""

    def __init__(self, max_events: int = 1024) -> None:
        if max_events <= 0:
            raise ValueError("max_events must be a positive integer")
        self.max_events = max_events
        self._counter = itertools.count(1)
        # event id -> (stream id, message); insertion order is event order.
        self._events: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = f"{next(self._counter)}"
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        entry = self._events.get(last_event_id)
        if entry is None:
            return None
        stream_id = entry[0]
        after = False
        for event_id, (sid, message) in list(self._events.items()):
            if event_id == last_event_id:
                after = True
                continue
            if after and sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id

    def __len__(self) -> int:
        return len(self._events)

    def __bool__(self) -> bool:
        # The SDK tests ``if self._event_store``: without this an empty store (len 0) reads as
        # "no store", and no event is ever stored, primed or replayed.
        return True


class SessionScopedEventStore(EventStore):
    """One session's view of a server-wide ``EventStore``.

    The SDK hands every session the same store and names streams by request id, which every
    client counts from 0: without this view, a client resuming its stream for request 1 was
    also sent the events (and the result) of other clients' request 1. Stream ids are prefixed
    with the session id, and a ``Last-Event-ID`` from another session replays nothing.
    """

    def __init__(self, inner: EventStore, session_id: str) -> None:
        self.inner = inner
        self.prefix = f"{session_id}/"

    def __bool__(self) -> bool:
        return True

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        return await self.inner.store_event(self.prefix + stream_id, message)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        # Hold the events until the store said which stream they belong to: a Last-Event-ID
        # of another session must send nothing at all.
        held: list[EventMessage] = []

        async def hold(event: EventMessage) -> None:
            held.append(event)

        stream = await self.inner.replay_events_after(last_event_id, hold)
        if stream is None or not stream.startswith(self.prefix):
            return None
        for event in held:
            await send_callback(event)
        return stream[len(self.prefix) :]
