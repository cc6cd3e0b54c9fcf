"""Glue to the SDK transports: Streamable HTTP (session manager) and legacy HTTP+SSE.

A ``StreamableHTTPSessionManager`` runs once per instance, so each ``start()`` builds new ones.
In stateless mode a :class:`~mcp_embed.http.backchannel.BackChannel` serves the 2025-era requests.

``max_sessions`` is one pool over both transports: a Streamable HTTP session and an open legacy
SSE stream each hold one slot, and a request that would open one more gets 503.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.runner import serve_loop
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http import EventStore, StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from .._asgi import header
from ..events import SessionScopedEventStore
from ..logs import get_logger
from .responses import read_body, replay, send_jsonrpc_error

if TYPE_CHECKING:
    from mcp.server.lowlevel.server import Server

    from .._asgi import Receive, Scope, Send
    from ..config import McpHttpConfig
    from ..replicas.shared import Shared
    from .backchannel import BackChannel

log = get_logger("transport")

SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"
_INTERNAL_ERROR = -32603  # the code the SDK's own session-limit refusal uses


class Transports:
    def __init__(
        self,
        low: Server[Any],
        config: McpHttpConfig,
        event_store: EventStore | None,
        shared: Shared | None = None,
    ) -> None:
        self.low = low
        self.config = config
        #: The run's Redis (several replicas), or None: sessions and back-channel in memory only.
        self.shared = shared
        self.manager = _SessionManager(
            app=low,
            event_store=None if config.stateless else event_store,
            json_response=config.json_response,
            stateless=config.stateless,
            security_settings=None,  # our own guard runs in front of every route
            retry_interval=config.retry_interval_ms,
            session_idle_timeout=config.session_idle_timeout,
            max_request_body_size=config.max_body_bytes,
            max_sessions=config.max_sessions,
            other_sessions=lambda: self.sse_open,
        )
        if config.stateless:
            from ..ops.peer import TrustedProxies, peer
            from .backchannel import BackChannel

            proxies = TrustedProxies(config.trusted_proxies)
            self.manager.backchannel = BackChannel(lambda scope: peer(scope, proxies)[1])
        self.sse = (
            SseServerTransport(MESSAGES_PATH, None, max_request_body_size=config.max_body_bytes)
            if config.enable_sse
            else None
        )
        self._lifespan_state: Any = None
        self.sse_open = 0  # legacy SSE streams holding a session slot

    def open_sessions(self) -> int:
        """Session slots held now: Streamable HTTP sessions (initialized or not) and SSE streams."""
        return len(self.manager._server_instances) + self.sse_open

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.manager.run():
            self._lifespan_state = self.manager._lifespan_state
            yield

    async def handle_mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)

    async def handle_sse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /sse`` as a raw ASGI endpoint, so a normal disconnect logs nothing."""
        assert self.sse is not None
        limit = self.config.max_sessions
        # Checked and taken with no await in between: atomic on the event loop, as the manager's
        # own admission (which counts these streams too).
        if limit is not None and self.open_sessions() >= limit:
            await refuse_session(send, limit)
            return
        self.sse_open += 1
        try:
            async with self.sse.connect_sse(scope, receive, send) as (read_stream, write_stream):
                await serve_loop(self.low, read_stream, write_stream, lifespan_state=self._lifespan_state)
        finally:
            self.sse_open -= 1

    async def handle_messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /messages/``. A body that is not a JSON-RPC message gets a JSON-RPC error here:
        the SDK would answer plain text and log a traceback at ERROR for every such request."""
        assert self.sse is not None
        if scope["method"] == "POST":
            body, more = await read_body(receive)
            refusal = None if more else _not_a_message(body)
            if refusal is not None:
                log.info("refused a /messages/ body: %s", refusal[1][:200])
                await send_jsonrpc_error(send, 400, *refusal)
                return
            receive = replay(body, more, receive)
        await self.sse.handle_post_message(scope, receive, send)


def _not_a_message(body: bytes) -> tuple[int, str] | None:
    """Why ``body`` is not one JSON-RPC message, judged by the SDK's own parser (so nothing it
    accepts is refused here), or None."""
    from mcp_types import INVALID_REQUEST, PARSE_ERROR, jsonrpc_message_adapter
    from pydantic import ValidationError

    try:
        jsonrpc_message_adapter.validate_json(body, by_name=False)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            return PARSE_ERROR, f"Parse error: {first['msg']}"
        return INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 request, notification or response"
    except RecursionError:
        return PARSE_ERROR, "Parse error: nested too deeply"
    return None


class _SessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, giving each session its own view of the event store, and
    serving stateless requests through a back-channel.

    The SDK shares one store among all sessions and names streams by request id, so a client
    resuming its request 1 was also replayed other clients' request 1. See
    :class:`~mcp_embed.events.SessionScopedEventStore`.

    Its stateless path refuses server-to-client requests inside a tool call; overriding that one
    method (after the SDK's own era routing) lets :class:`~mcp_embed.http.backchannel.BackChannel`
    route the client's answer back instead.
    """

    backchannel: BackChannel | None = None

    def __init__(self, *, other_sessions: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.other_sessions = other_sessions  # slots held by the legacy SSE transport

    async def _handle_stateful_request(self, scope: Any, receive: Any, send: Any) -> None:
        # The SDK refuses a full server with a bare "Too many open sessions"; say which limit.
        if self.max_sessions is not None and header(scope, b"mcp-session-id") is None and self._full():
            await refuse_session(send, self.max_sessions)
            return
        await super()._handle_stateful_request(scope, receive, send)

    async def _handle_stateless_request(
        self, protocol_version_hint: str | None, scope: Any, receive: Any, send: Any
    ) -> None:
        if self.backchannel is None:
            await super()._handle_stateless_request(protocol_version_hint, scope, receive, send)
            return
        assert self._task_group is not None  # checked by the SDK before it gets here
        await self.backchannel.serve(
            self.app,
            scope,
            receive,
            send,
            protocol_version=protocol_version_hint,
            json_response=self.json_response,
            security_settings=self.security_settings,
            task_group=self._task_group,
            lifespan_state=self._lifespan_state,
        )

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        if self._full():
            return None
        transport = super()._admit_session(requestor)
        if transport is None:
            return None
        store = transport._event_store
        sid = transport.mcp_session_id
        if store is not None and sid and not isinstance(store, SessionScopedEventStore):
            transport._event_store = SessionScopedEventStore(store, sid)
        return transport

    def _full(self) -> bool:
        limit = self.max_sessions
        return limit is not None and len(self._server_instances) + self.other_sessions() >= limit


async def refuse_session(send: Send, limit: int) -> None:
    """503 for a request that would open a session beyond ``max_sessions``."""
    log.warning("Refusing to open a new session: max_sessions (%d) are open", limit)
    message = f"Too many open sessions: max_sessions is {limit}, shared by /mcp and /sse"
    await send_jsonrpc_error(send, 503, _INTERNAL_ERROR, message)
