"""The ASGI application: guard, CORS, body limit and body timeout in front of the routes.

Every HTTP request runs inside a cancel scope that ``App.cancel_requests`` can cancel: on
Python 3.12+ hypercorn waits for open connections before it stops (hypercorn #308), so open
MCP streams are ended first.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .._asgi import ASGIApp, Message, Receive, Scope, Send, header
from ..logs import get_logger
from .middleware.cors import Cors
from .middleware.guard import HostOriginGuard
from .middleware.limits import BodyLimit
from .responses import send_bytes, send_json, send_jsonrpc_error
from .transport import MESSAGES_PATH, SSE_PATH, Transports

if TYPE_CHECKING:
    from ..admission import Admitted
    from ..config import McpHttpConfig
    from ..ops.audit import Operations
    from .fastpath import FastPath
    from .middleware.ratelimit import SharedBuckets

log = get_logger("app")


class App:
    """The root ASGI app of one server run."""

    def __init__(
        self,
        config: McpHttpConfig,
        transports: Transports,
        *,
        admitted: Admitted,
        health: Callable[[], Awaitable[dict[str, Any]]],
        on_startup: Callable[[], None] | None = None,
        fastpath: FastPath | None = None,
        ops: Operations | None = None,
        shared_buckets: SharedBuckets | None = None,
    ) -> None:
        self.config = config
        self.transports = transports
        self.health = health
        self.on_startup = on_startup
        self.fastpath = fastpath
        self.started_at = time.monotonic()
        self._scopes: set[anyio.CancelScope] = set()
        self._stack: contextlib.AsyncExitStack | None = None
        self.closing = False

        inner: ASGIApp = self._route
        inner = BodyLimit(inner, config.max_body_bytes)
        self.ops = ops
        self._shared_buckets = shared_buckets
        if ops is not None:
            inner = self._with_operations(inner, ops)
        if config.auth is not None:
            # Authentication (auth/): in front of routing and of the rate limit, behind the guard.
            from .auth.middleware import build_auth_layer

            inner = build_auth_layer(inner, config, ops)
        if config.enable_cors:
            inner = Cors(inner, admitted.origins)
        if config.dns_rebinding_protection:
            # Outermost: a preflight with a foreign Host is refused like the request it announces.
            inner = HostOriginGuard(inner, admitted)
        self._inner = inner
        self._mcp_path = config.endpoint_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.closing:
            await send_json(send, 503, {"error": "server is stopping"}, [(b"connection", b"close")])
            return
        with anyio.CancelScope() as cancel_scope:
            self._scopes.add(cancel_scope)
            try:
                await self._serve(scope, receive, send)
            finally:
                self._scopes.discard(cancel_scope)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request, its body bounded by ``body_timeout`` from the end of its headers."""
        ended = started = False
        timeout = self.config.body_timeout
        timed = _has_body(scope)
        body_clock = anyio.CancelScope(deadline=anyio.current_time() + timeout if timed else math.inf)

        async def tracking_receive() -> Message:
            nonlocal ended
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                ended = True
                body_clock.deadline = math.inf
            return message

        async def finishing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            if not ended and message["type"] == "http.response.body" and not message.get("more_body"):
                body_clock.deadline = math.inf  # answering already: _finish_body has its own bound
                await self._finish_body(tracking_receive)
            await send(message)

        with body_clock:
            await self._inner(scope, tracking_receive, finishing_send)
        if body_clock.cancelled_caught:
            log.warning(
                "%s %s: the request body did not arrive within %g s (body_timeout): 408, closing",
                scope["method"],
                scope["path"][:200],
                timeout,
            )
            if not started:  # else hypercorn ends the half-sent response and the connection
                await send_jsonrpc_error(
                    send,
                    408,
                    -32600,
                    f"Request timeout: the body did not arrive within {timeout:g} s (body_timeout)",
                    [(b"connection", b"close")],
                )

    async def _finish_body(self, receive: Receive) -> None:
        """Read the rest of a request answered before its body was read (a guard refusal, a 404),
        just before the response ends.

        hypercorn keeps an HTTP/1.1 connection open only if the request had fully arrived when the
        response ended; otherwise it closes it under a client that may already be reusing it.
        Bounded: at most ``max_body_bytes`` and one second.
        """
        seen = 0
        with anyio.move_on_after(1.0):
            while seen <= self.config.max_body_bytes:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                seen += len(message.get("body", b""))

    def cancel_requests(self) -> int:
        """Cancel every in-flight request (called on the loop thread, before shutdown)."""
        self.closing = True
        scopes = list(self._scopes)
        for s in scopes:
            s.cancel()
        return len(scopes)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == self._mcp_path or path == self._mcp_path + "/":
            if self.fastpath is not None:
                await self.fastpath(scope, receive, send, self.transports.handle_mcp)
            else:
                await self.transports.handle_mcp(scope, receive, send)
        elif path == "/health" and method in ("GET", "HEAD"):
            await send_json(send, 200, await self.health())
        elif path == "/metrics" and self.ops is not None and self.ops.metrics is not None:
            await self._metrics(scope, send)
        elif self.transports.sse is not None and path == SSE_PATH:
            if method != "GET":
                await send_json(send, 405, {"error": "use GET for /sse"}, [(b"allow", b"GET")])
                return
            await self.transports.handle_sse(scope, receive, send)
        elif self.transports.sse is not None and path.startswith(MESSAGES_PATH.rstrip("/")):
            if method != "POST":
                await send_json(send, 405, {"error": "use POST for /messages/"}, [(b"allow", b"POST")])
                return
            await self.transports.handle_messages(scope, receive, send)
        else:
            await send_json(send, 404, {"error": f"no route for {method} {path}"})

    def _with_operations(self, inner: ASGIApp, ops: Operations) -> ASGIApp:
        """Metrics callbacks, and the rate limit (inside the guard, and inside any authentication
        layer, so it can key on the principal)."""
        if ops.metrics is not None:
            ops.metrics.http_in_flight = lambda: float(len(self._scopes))
            ops.metrics.sessions_open = lambda: float(self.transports.open_sessions())
        if self.config.rate_limit_per_second is None:
            return inner
        from ..ops.peer import peer
        from .middleware.ratelimit import RateLimit, TokenBuckets

        def key(scope: Scope) -> str:
            addr, principal = peer(scope, ops.proxies)
            return f"p:{principal}" if principal is not None else f"ip:{addr}"

        buckets = TokenBuckets(self.config.rate_limit_per_second, self.config.rate_limit_burst)
        return RateLimit(inner, buckets, key=key, on_limited=ops.rate_limited, shared=self._shared_buckets)

    async def _metrics(self, scope: Scope, send: Send) -> None:
        assert self.ops is not None and self.ops.metrics is not None
        if scope["method"] not in ("GET", "HEAD"):
            await send_json(send, 405, {"error": "use GET for /metrics"}, [(b"allow", b"GET")])
            return
        secret = self.config.metrics_basic_auth
        if secret is not None:
            from ..ops.metrics import check_basic_auth

            if not check_basic_auth(header(scope, b"authorization"), secret.get_secret_value()):
                self.ops.auth_denied(scope, "metrics basic auth")
                await send_json(
                    send,
                    401,
                    {"error": "authentication required"},
                    [(b"www-authenticate", b'Basic realm="mcp-embed metrics", charset="UTF-8"')],
                )
                return
        body, content_type = self.ops.metrics.render()
        await send_bytes(send, 200, body, content_type.encode())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._stack = contextlib.AsyncExitStack()
                    await self._stack.enter_async_context(self.transports.run())
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
                if self.on_startup is not None:
                    self.on_startup()
            elif message["type"] == "lifespan.shutdown":
                if self._stack is not None:
                    # Not shielded: the session manager's task group must exit in the scope it
                    # was entered in.
                    await self._stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _has_body(scope: Scope) -> bool:
    """Whether the request announced a body the routes read (a POST, PUT or PATCH with a length
    other than 0, or chunked framing). A GET stream never reads one, so it gets no body clock."""
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return False
    for k, v in scope.get("headers", ()):
        if k == b"transfer-encoding" or (k == b"content-length" and v.strip() not in (b"0", b"")):
            return True
    return False
