"""Glue to the SDK transports: Streamable HTTP (session manager) and legacy HTTP+SSE.

A ``StreamableHTTPSessionManager`` runs once per instance, so each ``start()`` builds new ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from mcp.server.runner import serve_loop
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http import EventStore, StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from .events import SessionScopedEventStore
from .logs import get_logger

if TYPE_CHECKING:
    from mcp.server.lowlevel.server import Server

    from ._asgi.http import Receive, Scope, Send
    from .config import McpHttpConfig

log = get_logger("transport")

SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"


class Transports:
    def __init__(self, low: Server[Any], config: McpHttpConfig, event_store: EventStore | None) -> None:
        self.low = low
        self.config = config
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
        )
        self.sse = (
            SseServerTransport(MESSAGES_PATH, None, max_request_body_size=config.max_body_bytes)
            if config.enable_sse
            else None
        )
        self._lifespan_state: Any = None

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
        async with self.sse.connect_sse(scope, receive, send) as (read_stream, write_stream):
            await serve_loop(self.low, read_stream, write_stream, lifespan_state=self._lifespan_state)

    async def handle_messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.sse is not None
        await self.sse.handle_post_message(scope, receive, send)


class _SessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, giving each session its own view of the event store.

    The SDK shares one store among all sessions and names streams by request id, so a client
    resuming its request 1 was also replayed other clients' request 1. See
    :class:`~mcp_embed.events.SessionScopedEventStore`.
    """

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        if transport is None:
            return None
        store = transport._event_store
        sid = transport.mcp_session_id
        if store is not None and sid and not isinstance(store, SessionScopedEventStore):
            transport._event_store = SessionScopedEventStore(store, sid)
        return transport
