"""``RedisRegistry``: instances as Redis keys with a TTL, so several machines share one list.

Each record is ``mcp-embed:instances:<id>`` holding its JSON, set with ``PX`` = the TTL; the
heartbeat sets it again, so a crashed instance (on any machine) expires on its own. Redis is the
only judge of liveness here: no pid is checked (the pid may be another machine's) and no clock
compared (machines' clocks differ).

redis-py is an optional extra (``mcp-embed[redis]``), imported when a registry is made. The
synchronous client: the heartbeat runs in a thread and the CLI has no event loop.

A server makes its registry while its own thread is still importing the MCP SDK and redis-py:
nothing here imports either (``mcp_embed.replicas`` imports the SDK) before the first call to
Redis, which comes once the server serves. Two threads importing one package with import cycles
at once can deadlock.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..errors import ConfigError
from ..logs import get_logger
from .record import DEFAULT_TTL, Instance

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["KEY_PREFIX", "RedisRegistry"]

log = get_logger("instances")

KEY_PREFIX = "mcp-embed:instances:"
_BATCH = 200  # keys per SCAN step and per MGET

T = TypeVar("T")


class RedisRegistry:
    """Instances under ``mcp-embed:instances:*`` in the Redis at ``url``, expiring after ``ttl`` seconds.

    Every call is bounded by ``timeout`` seconds per attempt; a Redis that does not answer raises
    :class:`~mcp_embed.replicas.RedisUnavailable` naming the URL without its password. The client is
    made on the first call (a URL redis-py cannot read raises :class:`~mcp_embed.ConfigError` then).
    """

    def __init__(self, url: str, ttl: float = DEFAULT_TTL, *, timeout: float = 2.0) -> None:
        if not ttl > 0:
            raise ValueError(f"the registry TTL must be a positive number of seconds, not {ttl!r}")
        if not timeout > 0:
            raise ValueError(f"the Redis timeout must be a positive number of seconds, not {timeout!r}")
        self.ttl = float(ttl)
        self._url = url
        self._timeout = timeout

    @functools.cached_property
    def _client(self) -> Redis:
        return _client(self._url, self._timeout)

    @functools.cached_property
    def where(self) -> str:
        """The URL without its password."""
        from ..replicas.connection import redact

        return redact(self._url)

    def _scrub(self, text: str) -> str:
        from ..replicas.connection import RedisHealth

        return RedisHealth(self._url).scrub(text)

    def __repr__(self) -> str:
        return f"RedisRegistry({self.where!r})"

    def register(self, instance: Instance) -> None:
        data = json.dumps(instance.to_json(), ensure_ascii=False, allow_nan=False)
        px = max(1, round(self.ttl * 1000))
        self._call("register", lambda: self._client.set(KEY_PREFIX + instance.id, data, px=px))

    def unregister(self, instance_id: str) -> None:
        self._call("unregister", lambda: self._client.delete(KEY_PREFIX + instance_id))

    def list(self) -> list[Instance]:
        found = self._call("list", self._fetch)
        found.sort(key=lambda i: (i.started_at, i.id))
        return found

    def _fetch(self) -> builtins.list[Instance]:
        keys = list(self._client.scan_iter(match=KEY_PREFIX + "*", count=_BATCH))
        found: builtins.list[Instance] = []
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            for key, raw in zip(chunk, self._client.mget(chunk), strict=True):
                if raw is None:
                    continue  # expired between SCAN and MGET
                try:
                    instance = Instance.from_json(json.loads(raw))
                except (ValueError, TypeError) as exc:
                    log.debug("skipped Redis key %r: not an instance record (%s)", key, exc)
                    continue
                if (KEY_PREFIX + instance.id).encode("utf-8") != key:
                    log.debug("skipped Redis key %r: it holds the record of %r", key, instance.id)
                    continue
                found.append(instance)
        return found

    def close(self) -> None:
        if "_client" in self.__dict__:  # made on first use
            self._client.close()

    def _call(self, what: str, op: Callable[[], T]) -> T:
        from redis.exceptions import AuthenticationError, RedisError, ResponseError

        from ..replicas.connection import RedisUnavailable

        try:
            return op()
        except (AuthenticationError, ResponseError) as exc:  # NOAUTH, WRONGPASS, ...
            raise RedisUnavailable(
                f"Redis at {self.where} refused the instance registry's {what}: {self._scrub(_say(exc))}"
            ) from None
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(
                f"cannot reach Redis at {self.where} for the instance registry ({what}): "
                f"{self._scrub(_say(exc))}. Start Redis, or correct the Redis URL."
            ) from None


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().rstrip('.') or type(exc).__name__}"


def _client(url: str, timeout: float) -> Redis:
    try:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        from ..replicas.connection import EXTRA_HINT

        raise ImportError(f"the Redis instance registry needs the redis client: {EXTRA_HINT}") from None
    try:
        return Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1)
        )
    except (ValueError, TypeError) as exc:
        from ..replicas.connection import RedisHealth, redact

        scrubbed = RedisHealth(url).scrub(str(exc))
        raise ConfigError(
            f"{redact(url)!r} is not a Redis URL (redis://, rediss:// or unix://): {scrubbed}"
        ) from None
