"""Server-to-client requests in stateless mode.

A tool's ``elicitation/create``, ``sampling/createMessage`` or ``roots/list`` goes out on the SSE
stream of the POST that called the tool; the client's answer arrives in a POST of its own. The
SDK's stateless mode gives every POST a fresh transport that nothing else can reach, so it refuses
such requests (``NoBackChannelError``). Here each POST is served the same way, except that:

* each request the server sends gets an unguessable id and an entry in :class:`BackChannel`,
  which remembers the transport of the POST that is waiting, and the caller's principal;
* a POST carrying only a JSON-RPC response is handed to that transport with the original id
  restored, which answers it 202, exactly as a stateful session's transport does. An unknown id,
  or one asked of another principal, gets 404.

Without a relay, entries live in this process only: behind a load balancer the answer must
reach the same replica. With one (``redis_url``: :class:`~mcp_embed.replicas.backchannel.RedisRelay`)
each entry is also registered in Redis, and an answer for an id not waiting here is routed to the
replica that asked, which hands it to its transport as here; 202 once routed, 404 as for an
unknown id, 503 while Redis is away. With ``json_response`` a POST has no stream to carry a
request, and the tool gets a clear error instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.connection import Connection
from mcp.server.runner import serve_connection
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    JSONRPCNotification,
    JSONRPCRequest,
    RequestId,
)

from .._asgi import Message, Receive, Scope, Send
from .._json import JsonError, dumps, loads
from ..logs import get_logger
from .responses import read_body, replay, send_bytes, send_jsonrpc_error

if TYPE_CHECKING:
    from anyio.abc import TaskGroup, TaskStatus
    from mcp.server.lowlevel.server import Server
    from mcp.server.transport_security import TransportSecuritySettings
    from mcp.shared._stream_protocols import WriteStream

    from ..replicas.backchannel import RedisRelay

log = get_logger("transport")

MAX_PENDING = 10_000
"""Server-to-client requests that may wait for an answer at once, over all clients."""

_UNKNOWN = (
    "No server request is waiting for this response id: it was answered already, timed out or "
    "was cancelled, or it was sent by another server process"
)


@dataclass(frozen=True, slots=True)
class _Entry:
    transport: StreamableHTTPServerTransport
    request_id: RequestId  # the id the SDK's dispatcher is waiting on
    principal: str | None


class BackChannel:
    """Serves stateless 2025-era POSTs, and routes clients' answers to the tool that asked."""

    def __init__(
        self,
        principal_of: Callable[[Scope], str | None],
        limit: int = MAX_PENDING,
        relay: RedisRelay | None = None,
    ) -> None:
        self._principal_of = principal_of
        self._limit = limit
        self._pending: dict[str, _Entry] = {}
        #: Several replicas: answers for requests another replica sent go through Redis.
        self.relay = relay

    def __len__(self) -> int:
        """Requests waiting for a client's answer."""
        return len(self._pending)

    async def serve(
        self,
        app: Server[Any],
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        protocol_version: str | None,
        json_response: bool,
        security_settings: TransportSecuritySettings | None,
        task_group: TaskGroup,
        lifespan_state: Any,
    ) -> None:
        """One stateless request: an answer to a pending request, or anything else, as the SDK
        serves it (``StreamableHTTPSessionManager._handle_stateless_request``)."""
        if self.relay is not None:
            self.relay.start(task_group, self._arrived)
        if scope["method"] == "POST":
            body, _ = await read_body(receive)  # bounded by the body limit in front of every route
            answer = _response(body)
            if answer is not None:
                await self._deliver(answer, scope, receive, send, json_response)
                return
            receive = replay(body, False, receive)
        transport = StreamableHTTPServerTransport(
            None, is_json_response_enabled=json_response, security_settings=security_settings
        )
        principal = self._principal_of(scope)
        sent: dict[RequestId, str] = {}  # this POST's requests to the client, by dispatcher id

        async def run(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            async with transport.connect() as (read_stream, write_stream):
                task_status.started()
                dispatcher: JSONRPCDispatcher[TransportContext] = JSONRPCDispatcher(
                    read_stream,
                    _Outgoing(write_stream, self, transport, principal, sent),
                    inline_methods=frozenset({"initialize"}),
                    transport_builder=_transport_context,
                )
                version = protocol_version or DEFAULT_NEGOTIATED_VERSION
                connection = Connection.from_envelope(version, None, None)
                try:
                    await serve_connection(
                        app, dispatcher, connection=connection, lifespan_state=lifespan_state
                    )
                except Exception:
                    log.exception("stateless request crashed")

        try:
            await task_group.start(run)
            await transport.handle_request(scope, receive, send)
        finally:
            for wire_id in sent.values():
                self._drop(wire_id)
            with anyio.CancelScope(shield=True):
                await transport.terminate()

    # -- the registry ------------------------------------------------------------------------------

    def _add(
        self, transport: StreamableHTTPServerTransport, request_id: RequestId, principal: str | None
    ) -> str:
        if len(self._pending) >= self._limit:
            raise MCPError(
                code=INTERNAL_ERROR,
                message=f"too many server requests are waiting for clients' answers ({self._limit})",
            )
        wire_id = f"mcpe-{secrets.token_urlsafe(16)}"  # never parses as an int (the SDK coerces those)
        self._pending[wire_id] = _Entry(transport, request_id, principal)
        return wire_id

    def _take(self, wire_id: str, principal: str | None) -> _Entry | None:
        entry = self._pending.get(wire_id)
        if entry is None or entry.principal != principal:
            return None
        del self._pending[wire_id]
        return entry

    def _drop(self, wire_id: str) -> None:
        if self._pending.pop(wire_id, None) is not None and self.relay is not None:
            self.relay.forget_soon(wire_id)

    async def _register(self, wire_id: str, principal: str | None) -> None:
        """Make ``wire_id`` answerable through the other replicas too, or fail the request clearly."""
        from ..replicas.connection import RedisUnavailable

        assert self.relay is not None
        try:
            await self.relay.register(wire_id, principal)
        except RedisUnavailable as exc:
            self._pending.pop(wire_id, None)
            raise MCPError(
                code=INTERNAL_ERROR,
                message=f"cannot wait for the client's answer, which may reach another replica: {exc}",
            ) from None

    async def _deliver(
        self, answer: dict[str, Any], scope: Scope, receive: Receive, send: Send, json_response: bool = False
    ) -> None:
        wire_id = answer["id"]
        principal = self._principal_of(scope)
        entry = self._take(wire_id, principal) if isinstance(wire_id, str) else None
        if (
            entry is None
            and self.relay is not None
            and isinstance(wire_id, str)
            and wire_id not in self._pending
        ):
            await self._route(answer, wire_id, principal, scope, send, json_response)
            return
        if entry is not None and self.relay is not None:
            self.relay.forget_soon(wire_id)
        if entry is None or entry.transport.is_terminated:
            await send_jsonrpc_error(send, 404, INVALID_REQUEST, _UNKNOWN)
            return
        body = dumps({**answer, "id": entry.request_id})  # parsed strictly: it encodes again
        # The asking POST's transport validates the message, answers 202 and wakes the tool.
        await entry.transport.handle_request(scope, replay(body, False, receive), send)

    async def _route(
        self,
        answer: dict[str, Any],
        wire_id: str,
        principal: str | None,
        scope: Scope,
        send: Send,
        json_response: bool,
    ) -> None:
        """An answer for a request this replica did not send: to the replica that did, via Redis."""
        from ..replicas.connection import RedisUnavailable

        assert self.relay is not None
        refusal = _refusal(scope, answer, json_response)
        if refusal is not None:
            await send_jsonrpc_error(send, *refusal)
            return
        try:
            delivered = await self.relay.deliver(wire_id, principal, answer)
        except RedisUnavailable as exc:
            log.warning("could not route a client's answer to another replica: %s", exc)
            message = f"cannot route this response to the server process that asked for it: {exc}"
            await send_jsonrpc_error(send, 503, INTERNAL_ERROR, message)
            return
        if not delivered:
            await send_jsonrpc_error(send, 404, INVALID_REQUEST, _UNKNOWN)
            return
        await send_bytes(send, 202, b"")  # as the asking transport answers a response

    async def _arrived(self, wire_id: str, principal: str | None, answer: dict[str, Any]) -> None:
        """An answer another replica received for a request of ours: as if it was POSTed here."""
        entry = self._take(wire_id, principal)
        if entry is None or entry.transport.is_terminated:
            log.info("an answer routed from another replica came too late: %s", wire_id)
            return
        body = dumps({**answer, "id": entry.request_id})
        status: list[int] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        await entry.transport.handle_request(_routed_scope(), replay(body, False, receive), send)
        if status != [202]:
            log.warning("an answer routed from another replica was refused here (%s): %s", status, wire_id)


class _Outgoing:
    """The dispatcher's write stream for one POST: each server-to-client request is sent under an
    unguessable id and registered; a courtesy cancel for it names that id and unregisters it."""

    def __init__(
        self,
        inner: WriteStream[SessionMessage],
        channel: BackChannel,
        transport: StreamableHTTPServerTransport,
        principal: str | None,
        sent: dict[RequestId, str],
    ) -> None:
        self._inner = inner
        self._channel = channel
        self._transport = transport
        self._principal = principal
        self._wire_ids = sent

    async def send(self, item: SessionMessage, /) -> None:
        msg = item.message
        if isinstance(msg, JSONRPCRequest):
            wire_id = self._channel._add(self._transport, msg.id, self._principal)
            if self._channel.relay is not None:
                await self._channel._register(wire_id, self._principal)
            self._wire_ids[msg.id] = wire_id
            item = SessionMessage(msg.model_copy(update={"id": wire_id}), metadata=item.metadata)
        elif isinstance(msg, JSONRPCNotification) and msg.method == "notifications/cancelled" and msg.params:
            rid = msg.params.get("requestId")
            if isinstance(rid, int | str) and rid in self._wire_ids:
                wire_id = self._wire_ids.pop(rid)
                self._channel._drop(wire_id)
                params = {**msg.params, "requestId": wire_id}
                item = SessionMessage(msg.model_copy(update={"params": params}), metadata=item.metadata)
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _Outgoing:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _transport_context(metadata: Any) -> TransportContext:
    # The transport says whether its answer is a stream that can carry a request (not so with
    # json_response); the SDK's stateless path says no unconditionally.
    can_send = isinstance(metadata, ServerMessageMetadata) and metadata.can_send_request
    return TransportContext(kind="streamable-http", can_send_request=can_send)


_ROUTED_HEADERS = [
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
]


def _routed_scope() -> Scope:
    """The request an answer routed from another replica is handed to its transport as."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "root_path": "",
        "query_string": b"",
        "headers": list(_ROUTED_HEADERS),
        "client": None,
        "server": None,
    }


def _refusal(scope: Scope, answer: dict[str, Any], json_response: bool) -> tuple[int, int, str] | None:
    """What the asking transport would refuse an answer POSTed here for, checked before routing
    it (the owner cannot refuse the client's POST): status, JSON-RPC code and message, or None."""
    from mcp.server.streamable_http import check_accept_headers
    from mcp_types import INVALID_PARAMS, jsonrpc_message_adapter
    from pydantic import ValidationError
    from starlette.requests import Request

    request = Request(scope)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return 400, INVALID_REQUEST, "Invalid Content-Type header"
    has_json, has_sse = check_accept_headers(request)
    if not (has_json and (json_response or has_sse)):
        return (
            406,
            INVALID_REQUEST,
            "Not Acceptable: Client must accept both application/json and text/event-stream",
        )
    try:
        jsonrpc_message_adapter.validate_python(answer, by_name=False)
    except ValidationError as exc:
        return 400, INVALID_PARAMS, f"Validation error: {exc}"
    return None


def _response(body: bytes) -> dict[str, Any] | None:
    """The message, if the body is one JSON-RPC response or error (an answer to the server)."""
    try:
        msg = loads(body)
    except JsonError:  # not an answer: the SDK answers its own parse error
        return None
    if type(msg) is not dict or msg.get("jsonrpc") != "2.0" or "method" in msg or "id" not in msg:
        return None
    return msg if ("result" in msg) != ("error" in msg) else None
