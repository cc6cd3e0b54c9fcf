"""SDK handlers for everything beyond tools: resources, prompts, completion, logging level,
resource subscriptions, ``subscriptions/listen`` and sealed request state.

``install(low, server)`` registers them on the SDK's low-level ``Server`` and returns the
run's :class:`Live` state, through which the host's thread-safe ``notify_*`` calls reach clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._jsonsafe import safe_str, scrub
from ..components.prompts import messages_to_wire
from ..components.resources import contents_to_wire
from ..context import LOG_LEVELS, ToolContext
from ..errors import McpError
from ..logs import get_logger

if TYPE_CHECKING:
    from mcp.server.connection import Connection
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.lowlevel.server import Server

    from ..components import Components
    from ..config import McpHttpConfig

log = get_logger("protocol")

_MAX_TRACKED_SESSIONS = 10_000

_ASK: dict[str, tuple[type[Any], type[Any]]] = {
    "elicitation/create": (types.ElicitRequest, types.ElicitResult),
    "sampling/createMessage": (types.CreateMessageRequest, types.CreateMessageResult),
    "roots/list": (types.ListRootsRequest, types.ListRootsResult),
}


def session_key(ctx: ServerRequestContext[Any]) -> str | None:
    """The Streamable HTTP session id of a request, or a per-connection key on other transports."""
    headers = getattr(ctx.request, "headers", None)
    sid = headers.get("mcp-session-id") if headers is not None else None
    if sid:
        return str(sid)
    if is_modern(ctx):
        return None  # per-request era: nothing outlives the request
    conn = getattr(ctx.session, "_connection", None)
    if conn is None:
        return None
    # ``initialize`` carries no header yet, but its connection knows the id it opens: one key for
    # the whole session, not one for initialize and another for the requests after it.
    sid = getattr(conn, "session_id", None)
    return str(sid) if sid else f"conn-{id(conn)}"


def is_modern_version(version: str | None) -> bool:
    """The per-request wire (2026-07-28 and later), not the 2025 handshake era."""
    return version in MODERN_PROTOCOL_VERSIONS


def is_modern(ctx: ServerRequestContext[Any]) -> bool:
    return is_modern_version(ctx.protocol_version)


def dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return out


def requester(
    ctx: ServerRequestContext[Any], timeout: float | None = None
) -> Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]:
    """Send a server→client request on this request's stream and return the wire result.

    An answer that does not come within ``timeout`` seconds raises ``MCPError(REQUEST_TIMEOUT)``,
    and the client is told the request was cancelled.
    """
    session = ctx.session
    related = ctx.request_id

    async def ask(method: str, params: dict[str, Any]) -> dict[str, Any]:
        kinds = _ASK.get(method)
        if kinds is None:
            raise ValueError(f"cannot send {method!r} to the client")
        req = kinds[0].model_validate({"method": method, "params": params})
        try:
            res = await session.send_request(
                req,
                kinds[1],
                request_read_timeout_seconds=timeout,
                metadata=ServerMessageMetadata(related_request_id=related),
            )
        except MCPError as exc:
            if exc.code != types.REQUEST_TIMEOUT or timeout is None:
                raise
            raise MCPError(
                code=types.REQUEST_TIMEOUT,
                message=f"the client did not answer {method} within {timeout:g} s (client_request_timeout)",
            ) from None
        return dump(res)

    return ask


def request_context(
    ctx: ServerRequestContext[Any],
    live: Live,
    name: str,
    params: Any,
    *,
    emit: Callable[[str, dict[str, Any]], None] | None = None,
    progress_token: Any = None,
) -> ToolContext:
    """The ToolContext of one SDK request (tool call, prompt or resource read)."""
    caps = ctx.session.client_capabilities
    responses = getattr(params, "input_responses", None)
    key = session_key(ctx)
    return ToolContext(
        tool_name=name,
        request_id=ctx.request_id,
        session_id=key,
        progress_token=progress_token,
        emit=emit,
        protocol_version=ctx.protocol_version,
        client_capabilities=dump(caps) if caps is not None else None,
        input_responses={k: dump(v) for k, v in responses.items()} if responses else None,
        request_state=getattr(params, "request_state", None),
        request=requester(ctx, live.ask_timeout),
        loop=asyncio.get_running_loop(),
        log_level=(lambda: live.levels.get(key)) if key is not None else None,
    )


async def call_user(fn: Callable[..., Any], is_async: bool, kwargs: dict[str, Any]) -> Any:
    """Await an async callable, or run a plain one on a worker thread."""
    if is_async:
        return await fn(**kwargs)
    value = await anyio.to_thread.run_sync(lambda: fn(**kwargs), abandon_on_cancel=True)
    if inspect.isawaitable(value):
        return await value
    return value


class Live:
    """State of one server run that the host's threads reach: levels, subscriptions, events."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.levels: dict[str, str] = {}
        self.subscriptions: dict[str, set[str]] = {}
        # 2025-era sessions by key: their connection, which is all a notification needs. Not the
        # request's ServerSession proxy: that holds the whole request (scope, streams) it came with.
        self.sessions: dict[str, Connection] = {}
        self.ask_timeout: float | None = None  # client_request_timeout
        self._lock = threading.Lock()
        self._pending: set[ServerEvent] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, ctx: ServerRequestContext[Any]) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        key = session_key(ctx)
        conn: Connection | None = getattr(ctx.session, "_connection", None)
        if key is not None and conn is not None and not is_modern(ctx):
            with self._lock:
                new = key not in self.sessions
                if new and len(self.sessions) >= _MAX_TRACKED_SESSIONS:
                    self.sessions.pop(next(iter(self.sessions)))
                self.sessions[key] = conn
            if new:
                # Forget the session (its level, subscriptions) when its connection closes.
                conn.exit_stack.callback(self.forget, key)

    def may_ask(self, key: str | None) -> bool:
        """Whether session ``key``'s client may be asked: it declared elicitation or sampling, or
        the session is not tracked here (so nothing is known). False without a session."""
        if key is None:
            return False
        conn = self.sessions.get(key)
        if conn is None:
            return True
        caps = conn.client_capabilities
        return caps is not None and (caps.elicitation is not None or caps.sampling is not None)

    def forget(self, key: str) -> None:
        with self._lock:
            self.sessions.pop(key, None)
            self.subscriptions.pop(key, None)
            self.levels.pop(key, None)

    # -- thread-safe entry points ------------------------------------------------------------------

    def notify(self, event: ServerEvent) -> None:
        """Deliver ``event`` from any thread. Equal events still waiting to go out are sent once,
        so adding fifty tools in a row tells each client once that the list changed."""
        with self._lock:
            if event in self._pending:
                return
            self._pending.add(event)

        async def deliver() -> None:
            with self._lock:
                self._pending.discard(event)
            await self.publish(event)

        if not self.submit(deliver()):
            with self._lock:
                self._pending.discard(event)

    def submit(self, coro: Coroutine[Any, Any, None]) -> bool:
        """Run ``coro`` on the server loop from any thread (fire and forget). False if stopped."""
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            self._tasks.add(task)  # a bare task may be garbage-collected before it runs
            task.add_done_callback(self._tasks.discard)
        else:
            try:
                asyncio.run_coroutine_threadsafe(coro, loop)
            except RuntimeError:  # the loop closed meanwhile
                coro.close()
                return False
        return True

    async def publish(self, event: ServerEvent) -> None:
        """Deliver ``event`` to 2026 listen streams and to 2025 sessions that want it."""
        await self.bus.publish(event)
        with self._lock:
            sessions = list(self.sessions.items())
            subs = {k: set(v) for k, v in self.subscriptions.items()}
        for key, conn in sessions:
            # The connection's own (standalone) channel, as ServerSession.send_*_list_changed and
            # send_resource_updated use.
            try:
                if isinstance(event, ResourceUpdated):
                    if event.uri in subs.get(key, ()):
                        await conn.outbound.notify("notifications/resources/updated", {"uri": str(event.uri)})
                elif isinstance(event, ToolsListChanged):
                    await conn.outbound.notify("notifications/tools/list_changed", None)
                elif isinstance(event, PromptsListChanged):
                    await conn.outbound.notify("notifications/prompts/list_changed", None)
                elif isinstance(event, ResourcesListChanged):
                    await conn.outbound.notify("notifications/resources/list_changed", None)
            except Exception as exc:  # a closed session: stop tracking it
                log.debug("dropping session %s from notifications: %s", key, exc)
                self.forget(key)


class _Track:
    """Middleware recording each 2025-era session, so list-changed notifications can reach it."""

    def __init__(self, live: Live) -> None:
        self.live = live

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        self.live.seen(ctx)
        return await call_next(ctx)


def install(
    low: Server[Any],
    config: McpHttpConfig,
    components: Components,
    request_state_keys: Sequence[bytes | str] | None = None,
) -> Live:
    """Register the resource, prompt, completion, logging and subscription handlers on ``low``."""
    live = Live()
    live.ask_timeout = config.client_request_timeout
    # Built inside the server's event loop: host threads can notify from the start.
    # (Outside a loop, the first request sets it instead.)
    with contextlib.suppress(RuntimeError):
        live.loop = asyncio.get_running_loop()
    resources = components.resources
    prompts = components.prompts

    async def list_resources(ctx: ServerRequestContext[Any], params: Any) -> dict[str, Any]:
        return {"resources": [r.wire() for r in resources.resources()], "resultType": "complete"}

    async def list_templates(ctx: ServerRequestContext[Any], params: Any) -> dict[str, Any]:
        return {"resourceTemplates": [r.wire() for r in resources.templates()], "resultType": "complete"}

    async def read_resource(ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> Any:
        uri = str(params.uri)
        found = resources.resolve(uri)
        if found is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: {uri}", data={"uri": uri})
        spec, args = found
        kwargs: dict[str, Any] = dict(args)
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = request_context(ctx, live, spec.name, params)
        try:
            value = await call_user(spec.read, spec.is_async, kwargs)
            out = contents_to_wire(uri, spec, value)
        except McpError as exc:
            raise MCPError(code=exc.code, message=exc.message, data=exc.data) from None
        except MCPError:
            raise
        except Exception as exc:
            log.warning("resource %r failed: %s: %s", uri, type(exc).__name__, exc)
            raise MCPError(
                code=types.INTERNAL_ERROR,
                message=f"Error reading resource {uri}: {safe_str(exc)}",
                data={"uri": uri},
            ) from None
        return _mrtr(ctx, scrub(out), f"resource {uri!r}")

    async def list_prompts(ctx: ServerRequestContext[Any], params: Any) -> dict[str, Any]:
        return {"prompts": [p.wire() for p in prompts], "resultType": "complete"}

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> Any:
        spec = prompts.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        given = dict(params.arguments or {})
        missing = [a.name for a in spec.arguments if a.required and a.name not in given]
        if missing:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Prompt '{spec.name}' is missing required arguments: {', '.join(missing)}",
            )
        known = {a.name for a in spec.arguments}
        kwargs: dict[str, Any] = {k: v for k, v in given.items() if k in known}
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = request_context(ctx, live, spec.name, params)
        try:
            value = await call_user(spec.fn, spec.is_async, kwargs)
            out = messages_to_wire(spec, value)
        except McpError as exc:
            raise MCPError(code=exc.code, message=exc.message, data=exc.data) from None
        except MCPError:
            raise
        except Exception as exc:
            from ..components._argerrors import mask_argument_values

            # The message may quote the arguments: masked as a tool's are (audit_arguments).
            text = mask_argument_values(str(exc), given, all_values=not config.audit_arguments)
            log.warning("prompt %r failed: %s: %s", spec.name, type(exc).__name__, text)
            raise MCPError(
                code=types.INTERNAL_ERROR,
                message=f"Prompt '{spec.name}' failed: {type(exc).__name__}: {safe_str(exc)}",
            ) from None
        return _mrtr(ctx, scrub(out), f"prompt {spec.name!r}")

    async def set_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> dict[str, Any]:
        key = session_key(ctx)
        if key is not None and params.level in LOG_LEVELS:
            live.levels[key] = params.level
        return {}

    async def subscribe(
        ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> dict[str, Any]:
        key = session_key(ctx)
        if key is not None:
            live.subscriptions.setdefault(key, set()).add(str(params.uri))
        return {}

    async def unsubscribe(
        ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> dict[str, Any]:
        key = session_key(ctx)
        if key is not None:
            live.subscriptions.get(key, set()).discard(str(params.uri))
        return {}

    low.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)
    low.add_request_handler("resources/templates/list", types.PaginatedRequestParams, list_templates)
    low.add_request_handler("resources/read", types.ReadResourceRequestParams, read_resource)
    low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    low.add_request_handler("prompts/list", types.PaginatedRequestParams, list_prompts)
    low.add_request_handler("prompts/get", types.GetPromptRequestParams, get_prompt)
    low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    low.add_request_handler(
        "subscriptions/listen", types.SubscriptionsListenRequestParams, ListenHandler(live.bus)
    )

    complete = components.completion
    if complete is not None:
        handler = complete

        async def completion(
            ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
        ) -> dict[str, Any]:
            ref = dump(params.ref)
            context = params.context.arguments if params.context is not None else None
            args = (ref, params.argument.name, params.argument.value, dict(context) if context else None)
            if inspect.iscoroutinefunction(handler):
                values = await handler(*args)
            else:
                values = await anyio.to_thread.run_sync(lambda: handler(*args), abandon_on_cancel=True)
            values = [str(v) for v in (values or [])]
            page = {"values": values[:100], "total": len(values), "hasMore": len(values) > 100}
            # 2026-07-28 results need resultType; the SDK drops it for older versions.
            return {"completion": page, "resultType": "complete"}

        low.add_request_handler("completion/complete", types.CompleteRequestParams, completion)

    keys = request_state_keys
    security = RequestStateSecurity(keys=list(keys)) if keys else RequestStateSecurity.ephemeral()
    low.middleware.append(_Track(live))
    low.middleware.append(RequestStateBoundary(security, default_audience=config.server_name))
    return live


def _mrtr(ctx: ServerRequestContext[Any], out: Mapping[str, Any], what: str) -> Any:
    """An input-required result is only valid on the 2026-07-28 wire."""
    if out.get("resultType") == "input_required":
        if not is_modern(ctx):
            raise MCPError(
                code=types.INTERNAL_ERROR,
                message=f"{what} asked for client input (InputRequired), which protocol "
                f"{ctx.protocol_version} cannot carry",
            )
        return out
    # 2026-07-28 results need resultType; the SDK drops it for older versions.
    return {"resultType": "complete", **out}
