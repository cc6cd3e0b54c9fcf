"""``RedisLease``: which of several would-be gateways serves, decided by one Redis key.

``SET key token NX PX ttl`` takes it; the holder refreshes the expiry (only while the key still
holds its token) every third of the TTL; a holder that dies stops refreshing and the key expires,
so another takes it. No election of our own: Redis's single-key atomicity is the whole protocol.
A holder that cannot refresh for a whole TTL (Redis unreachable) must assume another has taken
over, and stops serving (:attr:`held` turns False).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ..logs import get_logger

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["DEFAULT_KEY", "RedisLease"]

log = get_logger("gateway")

DEFAULT_KEY = "mcp-embed:gateway"

# Refresh or release only the key that still holds our token: a late holder never extends or
# deletes the lease another has taken since.
_MINE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call("
_REFRESH = _MINE + "'pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = _MINE + "'del', KEYS[1]) end return 0"


class RedisLease:
    """A lease with an expiry in Redis: at most one holder at a time."""

    def __init__(self, url: str, *, key: str = DEFAULT_KEY, ttl: float = 5.0, timeout: float = 2.0) -> None:
        if not ttl > 0:
            raise ValueError(f"the lease TTL must be a positive number of seconds, not {ttl!r}")
        self.key = key
        self.ttl = ttl
        #: Who holds it, readable in Redis (``GET mcp-embed:gateway``): host, pid and a random part.
        self.token = f"{socket.gethostname()}:{_pid()}:{secrets.token_hex(8)}"
        self._redis: Redis = _client(url, timeout)
        self._held_until = 0.0  # monotonic: the lease is ours until then, unless refreshed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unreachable = False

    @property
    def held(self) -> bool:
        """True while the lease is ours: taken or refreshed less than a TTL ago."""
        return time.monotonic() < self._held_until

    def acquire(self) -> bool:
        """Take the lease if it is free (or ours); True when held. Then refreshed on a thread."""
        started = time.monotonic()
        try:
            taken = bool(self._redis.set(self.key, self.token, nx=True, px=self._ms))
        except Exception as exc:  # said once per outage, not on every retry
            if not self._unreachable:
                self._unreachable = True
                log.warning("gateway: cannot reach Redis for the lease %r: %s", self.key, _say(exc))
            return False
        self._unreachable = False
        if not taken:
            return False
        self._held_until = started + self.ttl
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._refresh_loop, name="mcp-embed-gateway-lease", daemon=True
        )
        self._thread.start()
        return True

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            started = time.monotonic()
            try:
                mine = bool(self._redis.eval(_REFRESH, 1, self.key, self.token, self._ms))
            except Exception as exc:  # unreachable: held until the last expiry we set, no longer
                log.warning("gateway: cannot refresh the lease %r: %s", self.key, _say(exc))
                continue
            if not mine:
                log.warning("gateway: the lease %r was lost (expired, or taken by another)", self.key)
                self._held_until = 0.0
                return
            self._held_until = started + self.ttl

    def release(self) -> None:
        """Give the lease up now (another may take it at once). Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl)
            self._thread = None
        if self._held_until:
            self._held_until = 0.0
            try:
                self._redis.eval(_RELEASE, 1, self.key, self.token)
            except Exception as exc:  # it expires by itself
                log.info("gateway: could not release the lease %r: %s", self.key, _say(exc))

    def close(self) -> None:
        self.release()
        self._redis.close()

    @property
    def _ms(self) -> int:
        return max(1, int(self.ttl * 1000))


def _pid() -> int:
    import os

    return os.getpid()


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip() or type(exc).__name__}"


def _client(url: str, timeout: float) -> Any:
    try:
        from redis import Redis
    except ImportError:
        raise ImportError(
            'the gateway lease needs the redis client: pip install "mcp-embed[redis]"'
        ) from None
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
