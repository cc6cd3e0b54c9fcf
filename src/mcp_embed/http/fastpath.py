"""A direct route for the plain requests that dominate traffic: ``tools/call``, ``tools/list``, ``ping``.

The SDK serves every POST through a per-request transport, memory streams, a dispatcher task
and two pydantic passes. A plain request needs none of that: no progress, no server-to-client
request, one JSON answer. This route parses it, runs it through the same ``ToolCaller`` and
``tools/list`` handler as the SDK path, and answers ``application/json`` (the spec lets the
server choose JSON whenever the client accepts it). Anything else, or anything doubtful, is
handed to the SDK unchanged, body included.

Stateful sessions are looked up in the SDK's session manager, with its owner check (a session
answers only to the principal that opened it), and their idle clock is held while the request
runs, exactly as the SDK's own transport does.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from .._asgi import Message, Receive, Scope, Send
from .._json import JsonError, dumps, loads
from ..logs import get_logger
from ..ops import tracing
from . import sdkseam
from .responses import read_body, replay

if TYPE_CHECKING:
    from mcp.server.streamable_http import StreamableHTTPServerTransport
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from ..components.tools import ToolSpec
    from ..protocol.caller import ToolCaller

log = get_logger("fastpath")

_FAST_METHODS = frozenset({"tools/call", "tools/list", "ping"})
_VERSIONS = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
_MAX_FAST_BODY = 256 * 1024  # larger bodies stream through the SDK's body limit as usual

Fallback = Callable[[Scope, Receive, Send], Awaitable[None]]


class FastPath:
    def __init__(
        self,
        caller: ToolCaller,
        list_tools: Callable[[], dict[str, Any]],
        manager: StreamableHTTPSessionManager,
        *,
        stateless: bool,
        enabled: bool = True,
        may_ask: Callable[[str | None], bool] = lambda _: True,
    ) -> None:
        self.caller = caller
        #: Whether a session's client may be asked (elicitation, sampling): see ToolSpec.context_to_ask.
        self.may_ask = may_ask
        self.list_tools = list_tools
        self.manager = manager
        self.stateless = stateless
        problems = [] if stateless or not enabled else sdkseam.contract_problems(manager)
        if problems:
            log.warning(
                "the fast path is off: this mcp SDK moved what it relies on (%s); every request is "
                "served by the SDK, correctly but slower. Please report it.",
                "; ".join(problems),
            )
        self.enabled = enabled and not problems
        self.traced = tracing.start()  # once per run: off costs one bool per request (ops/tracing.py)
        # Several replicas (redis_url): a session adopted from another replica is confirmed in
        # Redis before it is served (another replica may have ended it).
        self.confirm: Callable[[str], Awaitable[bool]] | None = (
            getattr(manager, "confirm_session", None) if getattr(manager, "sessions", None) else None
        )
        # Main-thread calls in flight here, by (session, request id): cancellable (dispatch).
        self._inflight: dict[tuple[str, Any], anyio.CancelScope] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send, fallback: Fallback) -> None:
        if not self.enabled or scope["method"] != "POST":
            await fallback(scope, receive, send)
            return
        head = _Head.of(scope)
        transport = None
        if not self.stateless and head.session_id is not None:
            transport = sdkseam.session_transport(self.manager, head.session_id)
            if transport is not None and self.confirm is not None and not await self.confirm(head.session_id):
                transport = None  # the SDK answers 404
        owned = transport is not None and _owned_by_caller(self.manager, head.session_id, scope)
        if refusal(head, self.stateless, transport, owned) is not None:
            await fallback(scope, receive, send)
            return
        body, more = await read_body(receive, _MAX_FAST_BODY)
        replayed = replay(body, more, receive)
        message = _plain_request(body) if not more else None
        if message is None and self._inflight and self._cancel_inflight(body, head.session_id):
            await _accepted(send, head.session_id)
            return
        spec = None
        if message is not None and message[1] == "tools/call":
            name = message[2].get("name")
            if isinstance(name, str):
                await self.caller.registry.ensure(name)
                spec = self.caller.registry.get(name)
        quiet = spec is not None and spec.context_to_ask and not self.may_ask(head.session_id)
        if message is None or refusal(head, self.stateless, transport, owned, message, spec, quiet):
            await fallback(scope, replayed, send)
            return
        req_id, method, params = message
        if transport is None:
            await self._answer_or_cancel(receive, req_id, method, params, send, None, scope)
            return
        with sdkseam.holding_idle_clock(transport):
            await self._answer_or_cancel(receive, req_id, method, params, send, head.session_id, scope)

    def _cancel_inflight(self, body: bytes, session_id: str | None) -> bool:
        """A ``notifications/cancelled`` for a main-thread call running here: cancel it.

        The client posts it separately, and the SDK's session would not know the request."""
        if session_id is None:
            return False
        try:
            msg = loads(body)
        except JsonError:
            return False
        if type(msg) is not dict or msg.get("method") != "notifications/cancelled" or "id" in msg:
            return False
        params = msg.get("params")
        rid = params.get("requestId") if type(params) is dict else None
        cancel = self._inflight.get((session_id, rid)) if type(rid) in (int, str) else None
        if cancel is None:
            return False
        cancel.cancel()
        return True

    async def _answer_or_cancel(
        self,
        receive: Receive,
        req_id: Any,
        method: str,
        params: dict[str, Any],
        send: Send,
        session_id: str | None,
        *rest: Any,
    ) -> None:
        """``_answer``; for a main-thread tool, cancellable by the client's ``notifications/cancelled``
        or by the client dropping the request (the 2026 wire's cancellation), so a call still
        queued for the host's main thread is dropped rather than run for nobody."""
        spec = self.caller.registry.get(params["name"]) if method == "tools/call" else None
        if spec is None or spec.affinity != "main":
            await self._answer(req_id, method, params, send, session_id, *rest)
            return
        answered = False

        async def send_once(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        key = (session_id or "", req_id)
        with anyio.CancelScope() as cancel:
            if session_id is not None:
                self._inflight[key] = cancel
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_on_disconnect, receive, cancel)
                    await self._answer(req_id, method, params, send_once, session_id, *rest)
                    tg.cancel_scope.cancel()
            finally:
                if self._inflight.get(key) is cancel:
                    del self._inflight[key]
        if cancel.cancelled_caught and not answered:
            error = {"code": -32800, "message": "Request cancelled"}
            payload = {"jsonrpc": "2.0", "id": req_id, "error": error}
            with contextlib.suppress(Exception):  # the client may be gone
                await _send_json(send, payload, session_id)

    async def _answer(
        self,
        req_id: Any,
        method: str,
        params: dict[str, Any],
        send: Send,
        session_id: str | None,
        scope: Scope | None = None,
    ) -> None:
        try:
            if self.traced:  # the span and metrics the SDK path gives the same request
                answer = functools.partial(self._result, req_id, method, params, session_id, scope)
                result = await tracing.observe(method, params, req_id, session_id, scope, answer)
            else:
                result = await self._result(req_id, method, params, session_id, scope)
            payload: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "result": result}
        except MCPError as exc:
            payload = {"jsonrpc": "2.0", "id": req_id, "error": exc.error.model_dump(exclude_none=True)}
        await _send_json(send, payload, session_id)

    async def _result(
        self, req_id: Any, method: str, params: dict[str, Any], session_id: str | None, scope: Scope | None
    ) -> dict[str, Any]:
        if method == "tools/call":
            return await self.caller.call(
                params["name"], params.get("arguments"), request_id=req_id, session_id=session_id, scope=scope
            )
        if method == "tools/list":
            return self.list_tools()
        return {}


class _Head(NamedTuple):
    """What the fast path reads from a request's headers."""

    accepts_json: bool
    content_json: bool
    session_id: str | None
    version: str | None

    @classmethod
    def of(cls, scope: Scope) -> _Head:
        session_id = version = None
        accepts_json = content_json = False
        for k, v in scope["headers"]:
            if k == b"accept":
                accepts_json = b"application/json" in v or b"*/*" in v
            elif k == b"content-type":
                content_json = v.startswith(b"application/json")
            elif k == b"mcp-session-id":
                session_id = v.decode("latin-1")
            elif k == b"mcp-protocol-version":
                version = v.decode("latin-1")
        return cls(accepts_json, content_json, session_id, version)


_UNREAD: Any = object()  # the body is not read yet: judge what is known


def refusal(
    head: _Head,
    stateless: bool,
    transport: StreamableHTTPServerTransport | None,
    owned: bool,
    message: tuple[Any, str, dict[str, Any]] | None = _UNREAD,
    spec: ToolSpec | None = None,
    quiet_client: bool = False,
) -> str | None:
    """Why the SDK must serve this request, or None when the fast path answers it: the one place
    that decides. Called before the body is read (``message`` unread) and again after.
    ``quiet_client``: the client cannot be asked, so a ``context_to_ask`` tool needs no context."""
    if not (head.accepts_json and head.content_json):
        return "the client does not send and accept JSON"
    if head.version is not None and head.version not in _VERSIONS:
        return "the protocol version is not one the SDK negotiates"
    if stateless:
        if head.session_id is not None:
            return "a session id in stateless mode"
    elif transport is None:
        return "no live session with that id"  # the SDK answers 400 or 404
    elif sdkseam.session_ending(transport):
        return "the session is ending"
    elif not owned:
        return "the session belongs to another principal"  # the SDK answers 404
    if message is _UNREAD:
        return None
    if message is None:
        return "not a single plain request"
    _, method, params = message
    if method != "tools/call":
        return None
    meta = params.get("_meta")
    if spec is None:
        return "no such tool"  # the SDK's handler answers it, audited
    if spec.wants_context is not None and not (quiet_client and spec.context_to_ask):
        return "the tool takes a context (progress, logs, questions to the client)"
    if spec.task != "forbidden":
        return "the tool may run as a task"  # tasks.py decides, on the SDK path
    if isinstance(meta, dict) and "progressToken" in meta:
        return "the client asked for progress"
    if not isinstance(params.get("arguments", {}), (dict, type(None))):
        return "arguments are not an object"
    return None


async def _cancel_on_disconnect(receive: Receive, cancel: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel.cancel()


def _owned_by_caller(manager: StreamableHTTPSessionManager, session_id: str | None, scope: Scope) -> bool:
    """The SDK's own session-owner rule: the caller's ``scope["user"]`` is the one that opened it."""
    user = scope.get("user")
    requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
    return session_id is not None and requestor == sdkseam.session_owner(manager, session_id)


async def _accepted(send: Send, session_id: str | None) -> None:
    headers = [(b"content-length", b"0")]
    if session_id is not None:
        headers.append((b"mcp-session-id", session_id.encode("latin-1")))
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _send_json(send: Send, payload: dict[str, Any], session_id: str | None) -> None:
    try:
        body = dumps(payload)
    except JsonError as exc:  # a tool's result; the request itself parsed strictly
        error = {"code": -32603, "message": f"the result cannot be sent: {exc}"}
        body = dumps({"jsonrpc": "2.0", "id": payload.get("id"), "error": error})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if session_id is not None:
        headers.append((b"mcp-session-id", session_id.encode("latin-1")))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _plain_request(body: bytes) -> tuple[Any, str, dict[str, Any]] | None:
    """``(id, method, params)`` of a single, well-formed request we answer here, else None."""
    try:
        msg = loads(body)
    except JsonError:  # the SDK answers its own parse error
        return None
    if type(msg) is not dict or msg.get("jsonrpc") != "2.0":
        return None
    method = msg.get("method")
    req_id = msg.get("id")
    if method not in _FAST_METHODS or type(req_id) not in (int, str) or len(msg) > 4:
        return None
    params = msg.get("params", {})
    if params is None:
        params = {}
    if type(params) is not dict:
        return None
    meta = params.get("_meta")
    if meta is not None and (
        type(meta) is not dict or any(k.startswith("io.modelcontextprotocol/") for k in meta)
    ):
        return None
    if method == "tools/list" and params.get("cursor") is not None:
        return None
    return req_id, method, params
