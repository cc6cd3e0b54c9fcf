"""``RedisRelay``: a stateless back-channel's answers, routed to the replica whose tool is waiting.

In stateless mode a tool's ``ctx.elicit()`` / ``ctx.sample()`` goes out on the stream of the POST
that called the tool, under an unguessable wire id (``http/backchannel.py``). Behind a
round-robin load balancer the client's answer may reach another replica. So the replica that asks
(the *owner*) also writes, before the request leaves:

* ``<prefix>backchannel:id:<wire id>`` = ``<owner>\\n<principal as JSON>``, expiring after the
  request's own timeout (``client_request_timeout``, plus a margin);

and listens on its own channel ``<prefix>backchannel:to:<owner>``. A replica that receives an
answer it is not waiting for runs one script: the key exists and names the same principal, so it
deletes the key (the answer comes once) and PUBLISHes the answer to the owner's channel. The owner
hands it to the waiting transport exactly as a local answer. PUBLISH reaching no subscriber means
the owner is gone: the answer is refused like an unknown id.

Redis lost: :meth:`RedisRelay.register` fails within ``bound`` seconds (the tool gets a clear
error, never a hang), :meth:`RedisRelay.deliver` raises :class:`RedisUnavailable`, and the
subscriber reconnects by itself with a bounded backoff.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .. import _json
from ..logs import get_logger
from .connection import RedisHealth, RedisUnavailable, require_redis

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["Answer", "RedisRelay"]

log = get_logger("replicas")

Answer = Callable[[str, "str | None", dict[str, Any]], Awaitable[None]]
"""``(wire id, principal, JSON-RPC response)``: the owner's delivery of an answer that came via Redis."""

MARGIN = 5.0
"""Seconds a registration outlives the request's timeout (it is deleted sooner when done)."""
NO_TIMEOUT_TTL = 3600.0
"""A registration's lifetime when requests wait as long as their call runs."""
BACKOFF = (0.05, 2.0)
"""The subscriber's first and longest pause between reconnection attempts, in seconds."""
PING_EVERY = 5.0
"""A quiet subscription is PINGed this often; no reply in twice that reconnects it."""

# KEYS[1] the registration; ARGV[1] the caller's principal (JSON), ARGV[2] the channel prefix,
# ARGV[3] the message. -1: unknown (or another principal's); else PUBLISH's subscriber count.
_DELIVER = """
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
local nl = string.find(v, '\\n', 1, true)
if not nl or string.sub(v, nl + 1) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return redis.call('PUBLISH', ARGV[2] .. string.sub(v, 1, nl - 1), ARGV[3])
"""


class RedisRelay:
    """Routes answers to stateless server requests between replicas, through Redis.

    ``start()`` (idempotent) runs the subscriber in a task group; it ends with that group, or
    with :meth:`stop`. ``timeout`` is the requests' own (``client_request_timeout``).
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "mcp-embed:",
        timeout: float | None = None,
        health: RedisHealth | None = None,
        bound: float = 2.0,
    ) -> None:
        require_redis()
        self._client = client
        self._health = health or RedisHealth()
        self.owner = secrets.token_urlsafe(12)
        self._keys = f"{prefix}backchannel:id:"
        self._channels = f"{prefix}backchannel:to:"
        self.channel = self._channels + self.owner
        self.ttl = (timeout if timeout is not None else NO_TIMEOUT_TTL) + MARGIN
        self._bound = bound
        self._ready = anyio.Event()
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._group: TaskGroup | None = None
        self._on_answer: Answer | None = None

    @property
    def subscribed(self) -> bool:
        """The subscriber listens now: answers sent to this replica reach it."""
        return self._ready.is_set()

    # -- the subscriber ----------------------------------------------------------------------------

    def start(self, task_group: TaskGroup, on_answer: Answer) -> None:
        """Run the subscriber in ``task_group`` (once; later calls do nothing)."""
        if self._group is not None:
            return
        self._group = task_group
        self._on_answer = on_answer
        task_group.start_soon(self._run)

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _run(self) -> None:
        delay = BACKOFF[0]
        with anyio.CancelScope() as self._scope:
            while True:
                try:
                    await self._subscribe_and_listen()
                except RedisUnavailable as exc:
                    log.warning("back-channel relay lost Redis, reconnecting: %s", exc)
                except Exception as exc:  # a Redis protocol or server error: retry, never die
                    log.warning("back-channel relay failed, reconnecting: %s", self._health.scrub(repr(exc)))
                if self._ready.is_set():  # listened for a while: start the backoff over
                    self._ready = anyio.Event()
                    delay = BACKOFF[0]
                with anyio.move_on_after(delay):
                    await self._wake.wait()
                self._wake = anyio.Event()
                delay = min(delay * 2, BACKOFF[1])

    async def _subscribe_and_listen(self) -> None:
        pubsub = self._client.pubsub()
        try:
            with self._health.track("subscribing to the back-channel relay"):
                await pubsub.subscribe(self.channel)
                with anyio.fail_after(self._bound):
                    while (await pubsub.get_message(timeout=self._bound)) is None:
                        pass  # the first message is the subscription's confirmation
            self._ready.set()
            await self._listen(pubsub)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await pubsub.aclose()

    async def _listen(self, pubsub: PubSub) -> None:
        heard = anyio.current_time()
        pinged = math.inf
        while True:
            with self._health.track("listening on the back-channel relay"):
                msg = await pubsub.get_message(timeout=PING_EVERY)
                now = anyio.current_time()
                if msg is not None:
                    heard, pinged = now, math.inf
                    if msg.get("type") == "message":
                        self._received(msg.get("data"))
                elif now - pinged > 2 * PING_EVERY:
                    raise TimeoutError(f"no answer to PING within {2 * PING_EVERY:g} s")
                elif now - heard >= PING_EVERY and pinged == math.inf:
                    await pubsub.ping()
                    pinged = now

    def _received(self, data: Any) -> None:
        try:
            msg = _json.loads(data)
            wire_id, principal, answer = msg["id"], msg["principal"], msg["answer"]
        except (ValueError, TypeError, KeyError):
            log.warning("back-channel relay: ignored a malformed message")
            return
        if self._group is not None and self._on_answer is not None:
            self._group.start_soon(self._deliver_here, self._on_answer, wire_id, principal, answer)

    @staticmethod
    async def _deliver_here(on_answer: Answer, wire_id: str, principal: str | None, answer: Any) -> None:
        try:
            await on_answer(wire_id, principal, answer)
        except Exception:
            log.exception("back-channel relay: delivering an answer failed")

    # -- the registry ------------------------------------------------------------------------------

    async def register(self, wire_id: str, principal: str | None) -> None:
        """Make ``wire_id`` answerable through any replica; :class:`RedisUnavailable` within
        ``bound`` seconds (or the client's own timeouts) when Redis is away."""
        if not self._ready.is_set():
            self._wake.set()  # cut the subscriber's backoff short
            with anyio.move_on_after(self._bound):
                await self._ready.wait()
            if not self._ready.is_set():
                reason = self._health.degraded or "not subscribed yet"
                raise RedisUnavailable(
                    f"{self._health.where}: the back-channel relay is not listening: {reason}"
                )
        value = f"{self.owner}\n{_json.dumps(principal).decode()}"
        with self._health.track("registering a server request"):
            await self._client.set(self._keys + wire_id, value, px=math.ceil(self.ttl * 1000))

    async def forget(self, wire_id: str) -> None:
        """Best effort (the registration expires anyway): ``wire_id`` is answered or abandoned."""
        try:
            with self._health.track("forgetting a server request"):
                await self._client.delete(self._keys + wire_id)
        except RedisUnavailable:
            pass

    def forget_soon(self, wire_id: str) -> None:
        """:meth:`forget`, in the background (the caller cannot wait, or must not)."""
        if self._group is None:
            return
        with contextlib.suppress(RuntimeError):  # the server is stopping: the key expires by itself
            self._group.start_soon(self.forget, wire_id)

    async def deliver(self, wire_id: str, principal: str | None, answer: dict[str, Any]) -> bool:
        """Send ``answer`` to the replica that asked ``wire_id`` of ``principal``. False: no such
        request is waiting (unknown, answered, another principal's, or its replica is gone)."""
        message = _json.dumps({"id": wire_id, "principal": principal, "answer": answer})
        with self._health.track("routing a client's answer"):
            reached = await self._client.eval(
                _DELIVER, 1, self._keys + wire_id, _json.dumps(principal), self._channels, message
            )
        return int(reached) > 0
