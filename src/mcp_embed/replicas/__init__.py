"""State shared by several replicas of a server, in Redis (``pip install "mcp-embed[redis]"``).

Each store stands behind an interface that already exists, so the rest of the server does not
know where its state lives:

- :class:`RedisEventStore` (``EventStore``): resumable streams on Redis Streams; a client resumes
  with ``Last-Event-ID`` on any replica. ``tail()`` relays live what another replica writes.
- :class:`RedisTaskStore` (``TaskStore``): SEP-2663 tasks read and changed through any replica.
- :class:`RedisTokenBuckets`: the rate limit's buckets, one Lua script per check, shared.

:func:`connect` makes the client (bounded timeouts), :func:`check` PINGs it at start-up, and one
:class:`RedisHealth` shared by the stores says whether Redis answered their last operation, for
``/health``. A Redis URL's password appears nowhere: see :func:`redact`.

Importing this package imports neither redis-py nor the MCP SDK: the names load on first use
(``instances/`` needs only :mod:`.connection`, and pulling the SDK in beside it, from whichever
thread starts a server, invited an import deadlock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .connection import RedisHealth, RedisUnavailable, check, connect, redact
    from .events import RedisEventStore
    from .ratelimit import RedisTokenBuckets
    from .tasks import RedisTaskStore

__all__ = [
    "RedisEventStore",
    "RedisHealth",
    "RedisTaskStore",
    "RedisTokenBuckets",
    "RedisUnavailable",
    "check",
    "connect",
    "redact",
]
_LAZY = {
    "RedisEventStore": "events",
    "RedisHealth": "connection",
    "RedisTaskStore": "tasks",
    "RedisTokenBuckets": "ratelimit",
    "RedisUnavailable": "connection",
    "check": "connection",
    "connect": "connection",
    "redact": "connection",
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
