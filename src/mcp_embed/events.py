"""``InMemoryEventStore``: bounded resumability for Streamable HTTP streams.

A client that reconnects with ``Last-Event-ID`` is sent the events of that stream it missed.
The store keeps the newest ``max_events`` events across all streams and forgets older ones.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from mcp.server.streamable_http import EventCallback, EventMessage, EventStore

if TYPE_CHECKING:
    from mcp_types import JSONRPCMessage

__all__ = ["EventStore", "InMemoryEventStore"]


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
