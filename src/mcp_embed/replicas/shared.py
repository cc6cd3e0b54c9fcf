"""One server run's Redis: the client, its health, and the stores built on it.

``assemble()`` opens it, in the server's own event loop (a redis asyncio client belongs to the
loop it first runs on), when ``McpHttpConfig.redis_url`` is set; the runtime awaits
:meth:`Shared.check` before it reports ready, so a Redis that does not answer stops ``start()``
with a clear error, and :meth:`Shared.close` when the server stops.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp.server.streamable_http import EventCallback, EventStore

from ..events import InMemoryEventStore
from .connection import RedisHealth, RedisUnavailable, check, connect, ping, shared_secret
from .events import RedisEventStore
from .ratelimit import RedisTokenBuckets
from .sessions import SessionStore
from .tasks import RedisTaskStore

if TYPE_CHECKING:
    from mcp_types import JSONRPCMessage
    from redis.asyncio import Redis

    from ..config import McpHttpConfig

__all__ = ["FallbackEventStore", "Shared", "open_shared"]

PROBE_BOUND = 0.5
"""Seconds ``/health`` waits for Redis's PING answer at most."""
PROBE_EVERY = 1.0
"""``/health`` PINGs Redis at most once in this many seconds: a scraper cannot turn it into load."""

LOCAL = "local."
"""Event ids of :class:`FallbackEventStore`'s local store: no Redis id starts so."""


class FallbackEventStore(EventStore):
    """Redis Streams, and this process's memory while Redis is away.

    A stream must not fail because Redis did: an event that cannot be written to Redis is kept
    locally (id ``local.<n>``), so the call goes on and its client can still resume here, on this
    replica; only resuming it elsewhere is lost for the outage. ``/health`` says ``degraded``.
    """

    def __init__(self, primary: RedisEventStore, max_events: int) -> None:
        self.primary = primary
        self.local = InMemoryEventStore(max_events)

    def __bool__(self) -> bool:
        return True

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        try:
            return await self.primary.store_event(stream_id, message)
        except RedisUnavailable:
            return LOCAL + await self.local.store_event(stream_id, message)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        if last_event_id.startswith(LOCAL):
            return await self.local.replay_events_after(last_event_id[len(LOCAL) :], _relabel(send_callback))
        try:
            return await self.primary.replay_events_after(last_event_id, send_callback)
        except RedisUnavailable:
            return None  # unknown here for now: the SDK answers as for an expired id


def _relabel(send_callback: EventCallback) -> EventCallback:
    from mcp.server.streamable_http import EventMessage

    async def relabelled(event: EventMessage) -> None:
        await send_callback(EventMessage(event.message, LOCAL + str(event.event_id)))

    return relabelled


@dataclass
class Shared:
    url: str
    client: Redis
    health: RedisHealth
    prefix: str
    events: FallbackEventStore
    tasks: RedisTaskStore
    buckets: RedisTokenBuckets | None
    #: Session records, so any replica serves any session (stateful mode).
    sessions: SessionStore | None = None
    #: Names this run in heartbeats, on every event it writes and in its health probe's key.
    replica: str = "replica"
    _probed: float | None = field(default=None, init=False, repr=False)
    _probes: int = field(default=0, init=False, repr=False)

    def request_state_key(self) -> bytes:
        """The key every replica on this Redis seals SEP-2322 request state with, so a client's
        retry may land on any of them (``<prefix>request-state-key``; blocking, for start-up)."""
        return shared_secret(self.url, f"{self.prefix}request-state-key")

    @property
    def probe_key(self) -> str:
        """The key ``/health``'s probe writes (``<prefix>probe:<replica>``)."""
        return f"{self.prefix}probe:{self.replica}"

    async def check(self) -> None:
        """PING once; ``ServerStartError`` naming the URL (never its password) when it fails."""
        await check(self.client, self.url)

    async def probe(self) -> None:
        """For ``/health``: ask Redis with a write (within :data:`PROBE_BOUND` s) unless another
        probe did less than :data:`PROBE_EVERY` s ago, so an idle replica learns of an outage and
        of its end, and of a Redis that refuses writes."""
        now = time.monotonic()
        if self._probed is not None and now - self._probed < PROBE_EVERY:
            return
        self._probed = now
        self._probes += 1  # the key holds how many probes this run made: GET it to see them go
        await ping(self.client, self.health, bound=PROBE_BOUND, write=(self.probe_key, self._probes))

    def status(self) -> dict[str, Any]:
        """What ``/health`` says of Redis: ``{"redis": "ok"}`` or the reason it is degraded."""
        if self.health.ok:
            return {"redis": "ok"}
        state = "refusing" if self.health.refusing else "unreachable"
        return {"redis": state, "reason": self.health.degraded, "since": self.health.since}

    async def close(self) -> None:
        with contextlib.suppress(RedisUnavailable):  # written behind: the last events go first
            await self.events.primary.flush()
        await self.client.aclose()


def open_shared(cfg: McpHttpConfig) -> Shared:
    """The Redis of ``cfg`` (``redis_url`` must be set); keys are under ``mcp-embed:<server_name>:``."""
    assert cfg.redis_url is not None
    url = cfg.redis_url.get_secret_value()
    client = connect(url)
    health = RedisHealth(url)
    prefix = f"mcp-embed:{cfg.server_name}:"
    rate = cfg.rate_limit_per_second
    replica = uuid.uuid4().hex  # names this run in heartbeats and on every event it writes
    return Shared(
        url=url,
        replica=replica,
        client=client,
        health=health,
        prefix=prefix,
        events=FallbackEventStore(
            RedisEventStore(
                client,
                max_events=cfg.event_store_max_events,
                ttl=cfg.session_idle_timeout or 3600.0,
                prefix=prefix,
                health=health,
                writer=replica,
            ),
            cfg.event_store_max_events,
        ),
        tasks=RedisTaskStore(client, prefix=prefix, health=health),
        buckets=(
            RedisTokenBuckets(client, rate, cfg.rate_limit_burst, prefix=prefix, health=health)
            if rate is not None
            else None
        ),
        sessions=SessionStore(
            client, prefix=prefix, ttl=cfg.session_idle_timeout, health=health, replica=replica
        ),
    )
