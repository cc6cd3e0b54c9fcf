"""The SDK's low-level ``Server`` fed from :class:`~mcp_embed.components.Components`: the tool
handlers here, the other areas from their own modules, and the session audit middleware.

Handlers return plain dicts: the SDK's runner validates and serialises results per protocol
version, so building pydantic result models here would only be paid for twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import mcp_types as types
from mcp.server.caching import CACHEABLE_METHODS, CacheHint
from mcp.server.connection import allowed_log_levels
from mcp.server.lowlevel.server import NotificationOptions, Server

from .._jsonsafe import scrub
from ..context import ToolContext
from ..logs import get_logger
from ..ops import tracing
from .caller import ToolCaller, scope_of

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from ..components import Components
    from ..config import McpHttpConfig
    from ..ops.audit import Operations
    from .handlers import Live
    from .tasks import TaskRuntime

log = get_logger("protocol")


def build_lowlevel_server(
    config: McpHttpConfig,
    components: Components,
    caller: ToolCaller,
    tasks: TaskRuntime | None = None,
    *,
    request_state_keys: Sequence[bytes | str] | None = None,
) -> tuple[Server[Any], Callable[[], dict[str, Any]], Live]:
    """The SDK ``Server`` whose handlers read ``components``, the ``tools/list`` result builder,
    and the notifier that reaches its connected clients.

    ``tasks`` serves the SEP-2663 tasks extension (``tasks.py``).
    """
    from . import handlers as _handlers

    registry = components.tools
    live: _handlers.Live | None = None  # set below, before any request arrives
    cache: dict[str, Any] = {"version": -1, "tools": []}

    def list_tools_result() -> dict[str, Any]:
        version = registry.version
        if cache["version"] != version:
            ops = caller.ops
            listed = registry.listed()
            cache["tools"] = [spec.wire() for spec in listed if ops is None or ops.allowed(spec.name)]
            cache["version"] = version
        return {"tools": cache["tools"]}

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return {**list_tools_result(), "resultType": "complete"}

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        meta = params.meta
        token = meta.get("progress_token") if meta else None
        session = ctx.session
        related = ctx.request_id
        close_sse = ctx.close_sse_stream
        allowed_levels = allowed_log_levels(ctx.protocol_version, meta)

        async def send(kind: str, p: dict[str, Any]) -> None:
            if kind == "progress":
                await session.send_progress_notification(
                    p["progressToken"],
                    p["progress"],
                    p.get("total"),
                    p.get("message"),
                    related_request_id=str(related) if related is not None else None,
                )
            elif kind == "log":
                # session.send_log_message applies the same per-request gate, but warns on every
                # call (logging is deprecated at 2026-07-28); a host app should not see that.
                if p["level"] in allowed_levels:
                    note = types.LoggingMessageNotification(
                        params=types.LoggingMessageNotificationParams.model_validate(p)
                    )
                    await session.send_notification(note, related_request_id=related)
            elif kind == "close_sse" and close_sse is not None:
                await close_sse()

        def make_context(emit: Callable[[str, dict[str, Any]], None] | None) -> ToolContext:
            assert live is not None
            return _handlers.request_context(ctx, live, params.name, params, emit=emit, progress_token=token)

        async def invoke(make: Any = make_context, deliver: Any = send) -> dict[str, Any]:
            # The 2026-07-28 result shape requires resultType; the SDK drops it for older versions.
            # scrub: pydantic's encoder refuses a lone surrogate a tool returned (or echoed).
            return {
                "resultType": "complete",
                **scrub(
                    await caller.call(
                        params.name,
                        params.arguments,
                        request_id=ctx.request_id,
                        session_id=_handlers.session_key(ctx),
                        progress_token=token,
                        send=deliver,
                        make_context=make,
                        modern=_handlers.is_modern(ctx),
                        scope=scope_of(ctx),
                        client=_client_of(ctx, meta),
                    )
                ),
            }

        await registry.ensure(params.name)
        spec = registry.get(params.name) if tasks is not None else None
        if (
            tasks is not None
            and spec is not None
            and spec.task != "forbidden"
            and (caller.ops is None or caller.ops.allowed(spec.name))  # a denied call is audited below
        ):
            return await tasks.call_tool(ctx, spec, invoke, make_context, send)
        return await invoke()

    low: Server[Any] = _Server(
        config.server_name,
        version=config.effective_server_version,
        instructions=config.instructions,
        lifespan=_stopping(tasks),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=lambda name: spec.input_schema if (spec := registry.get(name)) else None,
        # 2026-07-28 results carry freshness hints: tools change at run time, so never cache.
        cache_hints=cast(Any, {m: CacheHint(ttl_ms=0, scope="private") for m in CACHEABLE_METHODS}),
    )
    # Resources, prompts, completion, logging level, subscriptions (resources.py, prompts.py).
    live = _handlers.install(low, config, components, request_state_keys)
    if components.serves_skills:
        from . import skills as skills_extension

        skills_extension.install(low, components)  # SEP-2640
    if tasks is not None:
        from ..tasks import TASKS_EXTENSION
        from .tasks import params_types

        TaskIdParams, UpdateTaskParams = params_types()
        low.add_request_handler("tasks/get", TaskIdParams, tasks.get)
        low.add_request_handler("tasks/update", UpdateTaskParams, tasks.update)
        low.add_request_handler("tasks/cancel", TaskIdParams, tasks.cancel)
        low.extensions[TASKS_EXTENSION] = {}
    if caller.ops is not None:
        low.middleware.append(_SessionAudit(caller.ops))
    if tracing.start(config.server_name):  # around the SDK's own span, as on the fast path
        tracing.install(low.middleware, _traced_session_id)
    return low, list_tools_result, live


def _traced_session_id(ctx: Any) -> str | None:
    """``mcp.session.id``: the Streamable HTTP session's id, none for per-connection keys."""
    from .handlers import session_key

    sid = session_key(ctx)
    return None if sid is None or sid.startswith("conn-") else sid


class _Server(Server[Any]):
    # Tools, prompts and resources can change while the server runs (add_tool, skill reload):
    # advertise listChanged; SkillServer.notify_*_changed sends the notifications.
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> Any:
        if extensions is None:
            from ..tasks import TASKS_EXTENSION

            # initialize is the 2025 handshake; tasks are served on the 2026-07-28 wire only.
            extensions = {k: v for k, v in self.extensions.items() if k != TASKS_EXTENSION}
        return super().create_initialization_options(
            notification_options
            or NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True),
            experimental_capabilities,
            extensions,
        )


def _stopping(tasks: TaskRuntime | None) -> Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]:
    """The server's lifespan: running tasks are cancelled when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            if tasks is not None:
                await tasks.close()

    return lifespan


# -- audit: who is calling, from the SDK's request context ----------------------------------------


def _client_of(ctx: Any, meta: Any) -> tuple[str | None, str | None] | None:
    """(name, version) from the 2026 per-request ``_meta`` clientInfo, else from ``initialize``."""
    info: Any = None
    if isinstance(meta, dict):
        info = meta.get(types.CLIENT_INFO_META_KEY)
    if info is None:
        params = getattr(getattr(ctx, "session", None), "client_params", None)
        info = getattr(params, "client_info", None)
    if info is None:
        return None
    if isinstance(info, dict):
        return _str_or_none(info.get("name")), _str_or_none(info.get("version"))
    return _str_or_none(getattr(info, "name", None)), _str_or_none(getattr(info, "version", None))


def _audit_session_id(ctx: Any) -> str | None:
    """The session id ``initialize`` opened: the Streamable HTTP one, else a per-connection key
    (the same key tool calls on that connection are recorded under)."""
    conn = getattr(getattr(ctx, "session", None), "_connection", None)
    sid = getattr(conn, "session_id", None)
    if sid:
        return str(sid)
    return f"conn-{id(conn)}" if conn is not None else None


def _str_or_none(v: Any) -> str | None:
    return str(v)[:200] if v is not None else None


class _SessionAudit:
    """SDK middleware: a successful ``initialize`` opens a session in the audit log, and the end
    of its connection closes it."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method == "initialize":
            params = ctx.params if isinstance(ctx.params, dict) else {}
            info = params.get("clientInfo")
            client = (
                (_str_or_none(info.get("name")), _str_or_none(info.get("version")))
                if isinstance(info, dict)
                else (None, None)
            )
            sid = _audit_session_id(ctx)
            self.ops.session_open(sid, client, scope_of(ctx))
            # session_close when the connection ends, on every transport: client DELETE, idle
            # timeout, a closed SSE stream, server stop.
            stack = getattr(getattr(ctx.session, "_connection", None), "exit_stack", None)
            if stack is not None:
                stack.callback(self.ops.session_close, sid)
        return result
