"""The Redis connection the replicas share: bounded timeouts, a start-up check, and a health record.

``redis`` (the asyncio client of redis-py) is an optional extra, ``mcp-embed[redis]``: it is
imported inside the functions that need it, so ``import mcp_embed`` never loads it.

A Redis URL may carry a password (``redis://:secret@host``, ``redis://user:secret@host`` or
``?password=secret``). It never reaches a log or an error message: everything said about a URL
goes through :func:`redact`, and a failure's reason through :meth:`RedisHealth.scrub`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..errors import ConfigError, McpEmbedError, ServerStartError
from ..logs import get_logger, redact_text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "EXTRA_HINT",
    "RedisHealth",
    "RedisUnavailable",
    "check",
    "connect",
    "redact",
    "require_redis",
    "shared_secret",
]

log = get_logger("replicas")

EXTRA_HINT = 'pip install "mcp-embed[redis]"'
MASK = "***"
_WARN_EVERY = 60.0  # seconds: the same reason is warned of once in this, however often it comes back

# scheme://userinfo@ : everything up to the *last* "@" is userinfo, so a password with an
# unescaped "/", "?", "#" or "@" in it is masked whole (a query with an "@" is masked too: harmless).
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>.*)@", re.DOTALL)
_NO_SCHEME_USERINFO = re.compile(r"^(?P<userinfo>.*)@", re.DOTALL)
# ?password=...&username=... (redis-py passes any query argument to the connection)
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:password|passwd|pass|username|user|auth)=)[^&;#]*")


def redact(url: str) -> str:
    """``url`` with its user and password (and any ``password=`` query value) replaced by ``***``."""
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", url, count=1)
    if masked == url and "://" not in url:
        masked = _NO_SCHEME_USERINFO.sub(f"{MASK}@", url, count=1)
    return _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, masked)


def _secrets(url: str) -> list[str]:
    """The literal secrets of ``url`` (userinfo parts and secret query values), longest first."""
    found: set[str] = set()
    m = _USERINFO.match(url) or (None if "://" in url else _NO_SCHEME_USERINFO.match(url))
    if m is not None:
        userinfo = m["userinfo"]
        found.add(userinfo)
        _, colon, password = userinfo.partition(":")
        # "redis://secret@host": redis-py reads a lone userinfo as a user name, people as a password.
        password = password if colon else userinfo
        found.update({userinfo, password, unquote(password)})
    for q in _SECRET_QUERY.finditer(url):
        value = q.group(0)[len(q.group(1)) :]
        found.update({value, unquote(value)})
    # A one- or two-character secret ("a") would mask every "a" of a message: too short to be one.
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class RedisUnavailable(McpEmbedError, ConnectionError):
    """Redis refused the connection, did not answer within the timeout, or answered refusing the
    operation (out of memory, a read-only replica, an ACL).

    The operation may not have happened. The message names the redacted URL and the reason; the
    store's :class:`RedisHealth` now reports ``degraded`` until an operation succeeds again.
    """


class RedisHealth:
    """What the stores learned of Redis from their last operation, for ``/health``.

    Every store operation reports here: a success clears ``degraded``; a lost connection, a
    timeout or a refusal sets it to the reason. Recovery needs nothing but Redis coming back: the
    next operation that succeeds clears it. Share one instance between the stores of a server.
    A Redis that refuses writes but serves reads makes the state come and go with each operation;
    the warning for one reason is given once a minute at most.
    """

    def __init__(self, url: str | None = None) -> None:
        self.where = redact(url) if url is not None else "Redis"
        self._secrets = _secrets(url) if url is not None else []
        self.degraded: str | None = None
        """None while Redis answers; else why the last operation failed (no password in it)."""
        self.since: float | None = None
        """``time.time()`` of the first failure of the current outage."""
        self.failures = 0
        """Operations failed in the current outage."""
        self.refusing = False
        """Whether the last failure was Redis answering with a refusal (not a lost connection)."""
        self._warned: tuple[str, float] | None = None  # (reason, time.monotonic()) of the last warning
        self._warned_now = False  # whether the current outage was warned of

    @property
    def ok(self) -> bool:
        return self.degraded is None

    def scrub(self, text: str) -> str:
        """``text`` without this URL's password (nor any other secret-looking value)."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return redact_text(text)

    def succeeded(self) -> None:
        if self.degraded is not None and self._warned_now:
            log.warning("%s is reachable again after %d failed operations", self.where, self.failures)
        self.degraded = None
        self.since = None
        self.failures = 0
        self.refusing = False
        self._warned_now = False

    def failed(self, reason: str, *, refused: bool = False) -> None:
        reason = self.scrub(reason)
        if self.degraded is None:
            self.since = time.time()
            now = time.monotonic()
            if self._warned is None or self._warned[0] != reason or now - self._warned[1] >= _WARN_EVERY:
                what = "refuses operations" if refused else "is unreachable"
                log.warning("%s %s, the replicas' shared state is degraded: %s", self.where, what, reason)
                self._warned, self._warned_now = (reason, now), True
        self.degraded = reason
        self.refusing = refused
        self.failures += 1

    @contextlib.contextmanager
    def track(self, what: str) -> Iterator[None]:
        """Around one store operation: record its outcome; a lost Redis raises :class:`RedisUnavailable`."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, TimeoutError, ConnectionError) as exc:
            if isinstance(exc, RedisUnavailable):
                raise
            self.failed(_describe(exc))
            raise RedisUnavailable(f"{self.where}: {what} failed: {self.degraded}") from None
        except RedisError as exc:  # answered with a refusal: OOM, READONLY, NOPERM, MISCONF, ...
            self.failed(_describe(exc), refused=True)
            raise RedisUnavailable(f"{self.where}: {what} refused: {self.degraded}") from None
        self.succeeded()


def require_redis() -> None:
    """Raise :class:`ImportError` naming the extra when redis-py is not installed."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise ImportError(f"Redis support needs the redis client: {EXTRA_HINT}") from None


def connect(url: str, *, timeout: float = 2.0, retries: int = 1) -> Redis:
    """An asyncio Redis client for ``url`` (``redis://``, ``rediss://`` or ``unix://``), not yet connected.

    Every connect and every command is bounded by ``timeout`` seconds per attempt; a command on a
    connection that broke (Redis restarted) is retried ``retries`` times, at once, on a new one, so
    one call takes at most ``(retries + 1) * timeout`` seconds (a refused connection fails at once).
    Raises :class:`ConfigError` for a URL that is not a Redis URL, :class:`ImportError` naming the
    extra when redis-py is missing. Call :func:`check` to know Redis answers.
    """
    require_redis()
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if not timeout > 0:
        raise ConfigError(f"the Redis timeout must be a positive number of seconds, not {timeout!r}")
    if retries < 0:
        raise ConfigError(f"the Redis retries must be 0 or more, not {retries!r}")
    scrub = RedisHealth(url).scrub
    try:
        return Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), retries),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"redis_url {redact(url)!r} is not a Redis URL (redis://, rediss:// or unix://): "
            f"{scrub(str(exc))}"
        ) from None


async def check(client: Redis, url: str) -> None:
    """PING Redis once; raise :class:`ServerStartError` naming the redacted URL when it does not answer.

    For start-up: a server configured with a Redis it cannot reach does not start. Bounded by the
    client's timeouts (see :func:`connect`).
    """
    from redis.exceptions import RedisError

    try:
        answer = await client.ping()
    except (RedisError, OSError) as exc:
        raise _start_error(url, "PING", exc) from None
    if not answer:
        raise ServerStartError(f"Redis at {redact(url)} answered PING with {answer!r}")


def shared_secret(url: str, key: str, *, timeout: float = 2.0) -> bytes:
    """The 32 random bytes at ``key``, made by whichever replica asks first (``SET NX``), so every
    replica on this Redis holds the same. Blocking, bounded by ``timeout`` per command: for
    start-up, where it raises :class:`ServerStartError` as :func:`check` does."""
    import secrets

    import redis
    from redis.exceptions import RedisError

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.set(key, secrets.token_bytes(32), nx=True)
        value = client.get(key)
    except (RedisError, OSError) as exc:
        raise _start_error(url, f"reading {key}", exc) from None
    finally:
        client.close()
    if not isinstance(value, bytes) or len(value) != 32:
        raise ServerStartError(
            f"Redis at {redact(url)} holds no 32-byte value at {key}: delete the key to renew it"
        )
    return value


def _start_error(url: str, what: str, exc: BaseException) -> ServerStartError:
    from redis.exceptions import AuthenticationError, ResponseError

    reason = RedisHealth(url).scrub(_describe(exc))
    if isinstance(exc, AuthenticationError):
        return ServerStartError(f"Redis at {redact(url)} refused the credentials of redis_url: {reason}")
    if isinstance(exc, ResponseError):  # NOAUTH and friends: a password is needed or wrong
        return ServerStartError(f"Redis at {redact(url)} refused {what}: {reason}")
    return ServerStartError(
        f"cannot reach Redis at {redact(url)}: {reason}. "
        "Start Redis, or correct redis_url (MCP_EMBED_REDIS_URL)."
    )


async def ping(
    client: Redis, health: RedisHealth, *, bound: float, write: tuple[str, int] | None = None
) -> None:
    """Ask Redis once within ``bound`` seconds and record the outcome in ``health`` (never raises
    for Redis's sake): ``/health`` learns of an outage, and of the recovery, without a store
    operation. With ``write=(key, value)`` the question is a write (``SET key value PX``, gone in
    a minute), so a Redis that answers PING but refuses writes (out of memory, read-only) is seen."""
    import anyio

    with contextlib.suppress(RedisUnavailable), health.track("PING"), anyio.fail_after(bound):
        if write is None:
            await client.ping()
        else:
            await client.set(write[0], write[1], px=60_000)
