"""MCP protocol handlers: the SDK's low-level ``Server`` fed from our registry.

Handlers return plain dicts: the SDK's runner validates and serialises results per protocol
version, so building pydantic result models here would only be paid for twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import anyio
import mcp_types as types
from mcp.server.caching import CACHEABLE_METHODS, CacheHint
from mcp.server.connection import allowed_log_levels
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.shared.exceptions import MCPError

from ._jsonsafe import scrub
from .context import ToolContext
from .errors import McpError, ToolError
from .logs import get_logger
from .tools import ToolResult, ToolSpec, is_input_required

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from ._handlers import Live
    from .audit import Operations
    from .components import Components
    from .config import McpHttpConfig
    from .dispatch import Dispatcher
    from .tasks import TaskRuntime
    from .tools import ToolRegistry

log = get_logger("protocol")

# Set by _run when a call timed out, so the audit record says "timeout", not "error".
_TIMED_OUT: contextvars.ContextVar[bool] = contextvars.ContextVar("mcp_embed_timed_out", default=False)


class ToolCaller:
    """Runs one ``tools/call`` end to end: lookup, validation, dispatch, progress, result."""

    def __init__(
        self,
        registry: ToolRegistry,
        dispatcher: Dispatcher,
        ops: Operations | None = None,
        *,
        audit_arguments: bool = False,
    ) -> None:
        self.registry = registry
        self.dispatcher = dispatcher
        self.ops = ops  # audit, metrics, allow-list (audit.py); None where another process audits
        self.audit_arguments = audit_arguments

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        scope: Any = None,
        client: tuple[str | None, str | None] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """Run one call, refusing tools outside ``allowed_tools`` and auditing every outcome.

        ``scope`` (the HTTP request's ASGI scope) and ``client`` (name, version) are for the audit
        record; the other keywords go to :meth:`_call`.
        """
        ops = self.ops
        if scope is not None and "principal" not in kw:
            kw["principal"] = self._principal(scope)
        if ops is None:
            return await self._call(name, arguments, **kw)
        started = time.perf_counter()
        audit = functools.partial(
            ops.tool_call,
            tool=name,
            started=started,
            request_id=kw.get("request_id"),
            session_id=kw.get("session_id"),
            scope=scope,
            client=client,
            arguments=arguments,
        )
        if not ops.allowed(name):
            audit(status="denied", event="tool_denied", error="not in allowed_tools")
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
        status, error = "error", None
        token = _TIMED_OUT.set(False)
        ops.in_flight += 1
        try:
            result = await self._call(name, arguments, **kw)
            if result.get("isError"):
                content = result.get("content") or [{}]
                error = str(content[0].get("text", "")) if isinstance(content[0], dict) else None
                # A dispatcher that handles timeouts itself reports them as "Tool 'x' timed out ...".
                timed_out = _TIMED_OUT.get() or (error or "").startswith(f"Tool '{name}' timed out")
                status = "timeout" if timed_out else "error"
            else:
                status = "ok"
            return result
        except MCPError as exc:
            error = exc.error.message
            raise
        except anyio.get_cancelled_exc_class():
            status = "cancelled"
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            ops.in_flight -= 1
            _TIMED_OUT.reset(token)
            audit(status=status, error=error)

    def _principal(self, scope: Any) -> str | None:
        """Who the auth layer (or a trusted proxy's X-User-Id) says is calling (auth/, audit.py)."""
        from .audit import TrustedProxies, peer

        ops = self.ops
        return peer(scope, ops.proxies if ops is not None else TrustedProxies(()))[1]

    def principal_of(self, ctx: Any) -> str | None:
        """The caller of an SDK request, as :meth:`call` records it."""
        scope = _scope_of(ctx)
        return self._principal(scope) if scope is not None else None

    async def _call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        request_id: Any = None,
        session_id: str | None = None,
        progress_token: Any = None,
        send: Callable[[str, dict[str, Any]], Any] | None = None,
        make_context: Callable[[Callable[[str, dict[str, Any]], None] | None], ToolContext] | None = None,
        modern: bool = False,
        principal: str | None = None,
    ) -> dict[str, Any]:
        await self.registry.ensure(name)
        spec = self.registry.get(name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
        try:
            kwargs = spec.validate(arguments or {})
        except ToolError as exc:
            return ToolResult.error(str(exc)).to_wire()
        if spec.wants_context is None and progress_token is None:
            return (await self._run(spec, kwargs, None, modern)).to_wire()

        # Progress and log messages may come from any thread; they are queued and sent in order
        # by one task, which is drained before the result is returned.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

        def emit(kind: str, params: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, params))

        if make_context is not None:
            ctx = make_context(emit if send is not None else None)
        else:
            ctx = ToolContext(
                tool_name=name,
                request_id=request_id,
                session_id=session_id,
                progress_token=progress_token,
                emit=emit if send is not None else None,
            )
        if ctx.principal is None:
            ctx.principal = principal
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = ctx

        async def drain() -> None:
            while (item := await queue.get()) is not None:
                if send is None:
                    continue
                try:
                    await send(*item)
                except Exception as exc:  # a vanished client must not fail the call
                    log.debug("could not deliver %s notification: %s", item[0], exc)

        failure: MCPError | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            try:
                result = await self._run(spec, kwargs, ctx, modern)
            except MCPError as exc:  # re-raised below, outside the task group's exception group
                failure = exc
            finally:
                loop.call_soon(queue.put_nowait, None)
        if failure is not None:
            raise failure
        return result.to_wire()

    async def _run(
        self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None, modern: bool = False
    ) -> ToolResult:
        started = time.perf_counter()
        try:
            if spec.timeout is not None and not getattr(self.dispatcher, "handles_timeouts", False):
                with anyio.fail_after(spec.timeout):
                    value = await self.dispatcher.run(spec, kwargs, ctx)
            else:
                value = await self.dispatcher.run(spec, kwargs, ctx)
            if is_input_required(value):
                if not modern:
                    return ToolResult.error(
                        f"Tool '{spec.name}' asked for client input (InputRequired), which needs protocol "
                        "2026-07-28; on this session use ctx.elicit() or ctx.sample()"
                    )
                result = ToolResult([])
                result.input_required = value.to_wire()
                return result
            return spec.to_result(value)
        except TimeoutError:
            _TIMED_OUT.set(True)
            if ctx is not None:
                ctx._cancel()
            return ToolResult.error(f"Tool '{spec.name}' timed out after {spec.timeout:g} s")
        except anyio.get_cancelled_exc_class():
            if ctx is not None:
                ctx._cancel()
            raise
        except McpError as exc:  # a protocol error the tool chose: a JSON-RPC error, not isError
            raise MCPError(code=exc.code, message=exc.message, data=exc.data) from None
        except ToolError as exc:
            return ToolResult.error(str(exc))
        except MCPError:
            raise
        except Exception as exc:
            self._log_failure(spec, kwargs, exc, time.perf_counter() - started)
            return ToolResult.error(f"Tool '{spec.name}' failed: {type(exc).__name__}: {exc}")

    def _log_failure(self, spec: ToolSpec, kwargs: dict[str, Any], exc: Exception, seconds: float) -> None:
        """A WARNING for a tool that raised. Its message (and traceback, at DEBUG) may quote the
        arguments: their values are masked unless ``audit_arguments``, secret-named ones always."""
        from ._argerrors import mask_argument_values

        all_values = not self.audit_arguments
        text = f"{type(exc).__name__}: {exc}"
        if log.isEnabledFor(logging.DEBUG):
            text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        text = mask_argument_values(text, kwargs, all_values=all_values)
        log.warning("tool %r failed after %.1f ms: %s", spec.name, seconds * 1000, text)


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
    from . import _handlers

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
                        scope=_scope_of(ctx),
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
        from .skills import extension as skills_extension

        skills_extension.install(low, components)  # SEP-2640
    if tasks is not None:
        from .tasks import TASKS_EXTENSION, params_types

        TaskIdParams, UpdateTaskParams = params_types()
        low.add_request_handler("tasks/get", TaskIdParams, tasks.get)
        low.add_request_handler("tasks/update", UpdateTaskParams, tasks.update)
        low.add_request_handler("tasks/cancel", TaskIdParams, tasks.cancel)
        low.extensions[TASKS_EXTENSION] = {}
    if caller.ops is not None:
        low.middleware.append(_SessionAudit(caller.ops))
    return low, list_tools_result, live


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
            from .tasks import TASKS_EXTENSION

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


def _scope_of(ctx: Any) -> Any:
    request = getattr(ctx, "request", None)
    return getattr(request, "scope", None)


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
            self.ops.session_open(sid, client, _scope_of(ctx))
            # session_close when the connection ends, on every transport: client DELETE, idle
            # timeout, a closed SSE stream, server stop.
            stack = getattr(getattr(ctx.session, "_connection", None), "exit_stack", None)
            if stack is not None:
                stack.callback(self.ops.session_close, sid)
        return result
