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

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.runner import serve_loop
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http import EventStore, StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from .._asgi import header
from ..events import SessionScopedEventStore
from ..logs import get_logger
from . import sdkseam
from .responses import read_body, replay, send_jsonrpc_error

if TYPE_CHECKING:
    from mcp.server.lowlevel.server import Server

    from .._asgi import Receive, Scope, Send
    from ..config import McpHttpConfig
    from ..replicas.sessions import SessionRecord, SessionStore
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
        if shared is not None and shared.sessions is not None and not config.stateless:
            problems = sdkseam.adoption_problems(self.manager)
            if problems:
                log.warning("sessions stay on the replica that opened them: %s", "; ".join(problems))
            else:
                self.manager.replicate(shared, config)
        if config.stateless:
            from ..ops.peer import TrustedProxies, peer
            from .backchannel import BackChannel

            proxies = TrustedProxies(config.trusted_proxies)
            relay = None
            if shared is not None:  # an answer may reach another replica: route it through Redis
                from ..replicas.backchannel import RedisRelay

                timeout = config.client_request_timeout
                relay = RedisRelay(shared.client, prefix=shared.prefix, timeout=timeout, health=shared.health)
            self.manager.backchannel = BackChannel(lambda scope: peer(scope, proxies)[1], relay=relay)
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
            sessions = self.manager.sessions
            if sessions is None:
                yield
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(sessions.heartbeat)
                tg.start_soon(sessions.deletions, self.manager.drop)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()

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
    #: Session records in Redis (``redis_url``, stateful): any replica serves any session.
    sessions: SessionStore | None = None

    def __init__(self, *, other_sessions: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.other_sessions = other_sessions  # slots held by the legacy SSE transport
        self.shared: Shared | None = None
        self.adopted: set[str] = set()  # sessions opened by another replica, served here too
        self.stall_s = 5.0
        self.resume_bound_s: float | None = None

    def replicate(self, shared: Shared, config: McpHttpConfig) -> None:
        """Record sessions in ``shared``'s Redis and adopt the ones other replicas opened."""
        self.shared = shared
        self.sessions = shared.sessions
        self.resume_bound_s = config.client_request_timeout

    async def _handle_stateful_request(self, scope: Any, receive: Any, send: Any) -> None:
        sid = header(scope, b"mcp-session-id")
        # The SDK refuses a full server with a bare "Too many open sessions"; say which limit.
        if self.max_sessions is not None and sid is None and self._full():
            await refuse_session(send, self.max_sessions)
            return
        sessions = self.sessions
        if sessions is None:
            await super()._handle_stateful_request(scope, receive, send)
        elif sid is None:
            await self._open_recorded(sessions, scope, receive, send)
        else:
            await self._serve_recorded(sessions, sid, scope, receive, send)

    async def _open_recorded(self, sessions: SessionStore, scope: Any, receive: Any, send: Any) -> None:
        """The SDK opens the session; its record is saved before the client sees the answer."""
        body, more = await read_body(receive)
        requestor = _requestor(scope)

        async def record_then_send(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                new = next((v for k, v in message.get("headers", ()) if k == b"mcp-session-id"), None)
                if new is not None:
                    await self._save(sessions, new.decode("latin-1"), body, requestor)
            await send(message)

        await super()._handle_stateful_request(scope, replay(body, more, receive), record_then_send)

    async def _save(self, sessions: SessionStore, sid: str, body: bytes, requestor: Any) -> None:
        import time

        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

        from .._json import JsonError, loads
        from ..replicas.connection import RedisUnavailable
        from ..replicas.sessions import SessionRecord

        try:
            message = loads(body)
        except JsonError:
            return
        params = message.get("params") if isinstance(message, dict) else None
        if not isinstance(params, dict) or message.get("method") != "initialize":
            return
        requested = params.get("protocolVersion")
        # The SDK's own rule (ServerRunner._negotiate_initialize).
        version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        now = time.time()
        principal = dict(requestor) if requestor else None
        record = SessionRecord(sid, version, params, principal, now, now, sessions.replica)
        try:
            await sessions.save(record)
        except RedisUnavailable as exc:
            log.warning("session %s is served by this replica only: %s", sid[:64], exc)

    async def _serve_recorded(
        self, sessions: SessionStore, sid: str, scope: Any, receive: Any, send: Any
    ) -> None:
        from ..replicas.connection import RedisUnavailable

        requestor = _requestor(scope)
        transport = sdkseam.session_transport(self, sid)
        try:
            if transport is None:
                record = await sessions.load(sid)
                if record is not None and record.principal == (dict(requestor) if requestor else None):
                    async with sdkseam.creation_lock(self):
                        transport = sdkseam.session_transport(self, sid)
                        if transport is None:
                            if self._full():
                                assert self.max_sessions is not None
                                await refuse_session(send, self.max_sessions)
                                return
                            transport = await self._adopt(sessions, record, requestor)
            elif not await self.confirm_session(sid):
                await self.drop(sid)
                transport = None
        except RedisUnavailable as exc:
            log.info("session %s: %s", sid[:64], exc)  # served from what this replica knows
        method = scope["method"]
        owned = transport is not None and requestor == sdkseam.session_owner(self, sid)
        resumable = owned and method == "GET" and transport is not None
        if (
            resumable
            and transport is not None
            and await self._resume(sessions, transport, sid, scope, receive, send)
        ):
            return
        status: list[int] = []

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await super()._handle_stateful_request(scope, receive, watch)
        if method == "DELETE" and status and status[0] < 300:
            self.adopted.discard(sid)
            try:
                await sessions.delete(sid)
            except RedisUnavailable as exc:
                log.warning("session %s ended here but its record stays until it expires: %s", sid[:64], exc)

    async def confirm_session(self, sid: str) -> bool:
        """Whether a session held here still exists: a Redis check for an adopted one (another
        replica may have ended it); for one opened here the deletion is published, and its record's
        TTL is refreshed now and then (the fast path never reaches the SDK path)."""
        from ..replicas.connection import RedisUnavailable

        sessions = self.sessions
        if sessions is None:
            return True
        try:
            if sid in self.adopted:
                return await sessions.touch(sid)
            if sessions.ttl_ms is not None:  # keep the record alive, at most ten times per idle period
                await sessions.touch(sid, every=sessions.ttl_ms / 10_000)
        except RedisUnavailable:
            pass  # degraded: serve what this replica knows
        return True

    async def drop(self, sid: str) -> None:
        """Another replica ended ``sid``: end the local copy, if any."""
        self.adopted.discard(sid)
        if self.sessions is not None:
            self.sessions.forget(sid)
        transport = sdkseam.session_transport(self, sid)
        if transport is not None:
            await sdkseam.discard_session(self, sid, transport)

    async def _resume(
        self,
        sessions: SessionStore,
        transport: StreamableHTTPServerTransport,
        sid: str,
        scope: Any,
        receive: Any,
        send: Any,
    ) -> bool:
        """A ``Last-Event-ID`` for a request's stream, relayed from Redis (whichever replica writes it)."""
        from ..replicas.sessions import relay, resumable_stream

        last = header(scope, b"last-event-id")
        shared = self.shared
        if last is None or shared is None or self.event_store is not shared.events:
            return False
        stream = resumable_stream(last, sid)
        if stream is None or sdkseam.session_ending(transport):
            return False
        with sdkseam.holding_idle_clock(transport):
            return await relay(
                shared.events.primary,
                sessions,
                stream,
                last,
                sid,
                receive,
                send,
                stall_s=self.stall_s,
                bound_s=self.resume_bound_s,
            )

    async def _adopt(
        self, sessions: SessionStore, record: SessionRecord, requestor: Any
    ) -> StreamableHTTPServerTransport:
        """Serve here a session another replica opened: its transport and its server loop, in the
        initialized state the record describes."""
        sid = record.session_id
        transport = StreamableHTTPServerTransport(
            mcp_session_id=sid,
            is_json_response_enabled=self.json_response,
            event_store=self.event_store,
            security_settings=self.security_settings,
            retry_interval=self.retry_interval,
            idle_timeout=self.session_idle_timeout,
        )
        self._scope_store(transport)
        sdkseam.adopt_session(self, sid, transport, requestor)
        self.adopted.add(sid)
        try:
            await sdkseam.task_group(self).start(self._run_adopted, sessions, transport, record)
        except BaseException:
            self.adopted.discard(sid)
            await sdkseam.discard_session(self, sid, transport)
            raise
        log.info("adopted session %s, opened by replica %s", sid[:64], record.replica[:12])
        return transport

    async def _run_adopted(
        self,
        sessions: SessionStore,
        transport: StreamableHTTPServerTransport,
        record: SessionRecord,
        *,
        task_status: Any = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        from mcp.server.connection import Connection
        from mcp.server.runner import serve_connection
        from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
        from mcp_types import InitializeRequestParams

        sid = record.session_id
        async with transport.connect() as (read_stream, write_stream):
            task_status.started()
            try:
                idle = transport.idle_scope if transport.idle_scope is not None else anyio.CancelScope()
                with idle:
                    dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(
                        read_stream, write_stream, inline_methods=frozenset({"initialize"})
                    )
                    connection = Connection.for_loop(
                        dispatcher, session_id=sid, protocol_version_hint=record.protocol_version
                    )
                    connection.client_params = InitializeRequestParams.model_validate(
                        record.client_params, by_name=False
                    )
                    connection.initialized.set()
                    state = sdkseam.lifespan_state(self)
                    await serve_connection(self.app, dispatcher, connection=connection, lifespan_state=state)
            except Exception:
                log.exception("adopted session %s crashed", sid[:64])
            finally:
                if sdkseam.session_transport(self, sid) is transport:
                    self.adopted.discard(sid)
                sessions.forget(sid)
                await sdkseam.discard_session(self, sid, transport)

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
        self._scope_store(transport)
        return transport

    def _scope_store(self, transport: StreamableHTTPServerTransport) -> None:
        """The session's own view of the event store."""
        sid = transport.mcp_session_id
        if sid is None:
            return

        def wrap(store: EventStore) -> EventStore:
            if isinstance(store, SessionScopedEventStore):
                return store
            return SessionScopedEventStore(store, sid)

        sdkseam.wrap_event_store(transport, wrap)

    def _full(self) -> bool:
        limit = self.max_sessions
        return limit is not None and len(self._server_instances) + self.other_sessions() >= limit


def _requestor(scope: Any) -> Any:
    """The SDK's principal of a request (None: anonymous), as it compares them."""
    user = scope.get("user")
    return authorization_context(user) if isinstance(user, AuthenticatedUser) else None


async def refuse_session(send: Send, limit: int) -> None:
    """503 for a request that would open a session beyond ``max_sessions``."""
    log.warning("Refusing to open a new session: max_sessions (%d) are open", limit)
    message = f"Too many open sessions: max_sessions is {limit}, shared by /mcp and /sse"
    await send_jsonrpc_error(send, 503, _INTERNAL_ERROR, message)
