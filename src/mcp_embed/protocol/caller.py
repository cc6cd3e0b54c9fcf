"""``ToolCaller``: one ``tools/call`` end to end (lookup, validation, dispatch, progress, result,
audit), shared by the SDK's handler, the fast path and the subprocess host."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from ..components.tools import ToolResult, ToolSpec, is_input_required
from ..context import ToolContext
from ..errors import McpError, ToolError
from ..logs import get_logger

if TYPE_CHECKING:
    from ..components.registry import ToolRegistry
    from ..dispatch import Dispatching
    from ..ops.audit import Operations

__all__ = ["ToolCaller", "scope_of"]

log = get_logger("protocol")

# Set by _run when a call timed out, so the audit record says "timeout", not "error".
_TIMED_OUT: contextvars.ContextVar[bool] = contextvars.ContextVar("mcp_embed_timed_out", default=False)


class ToolCaller:
    """Runs one ``tools/call`` end to end: lookup, validation, dispatch, progress, result."""

    def __init__(
        self,
        registry: ToolRegistry,
        dispatcher: Dispatching,
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
        record; the other keywords go to :meth:`invoke`.
        """
        ops = self.ops
        if scope is not None and "principal" not in kw:
            kw["principal"] = self._principal(scope)
        if ops is None:
            return await self.invoke(name, arguments, **kw)
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
            result = await self.invoke(name, arguments, **kw)
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
        from ..ops.peer import TrustedProxies, peer

        ops = self.ops
        return peer(scope, ops.proxies if ops is not None else TrustedProxies(()))[1]

    def principal_of(self, ctx: Any) -> str | None:
        """The caller of an SDK request, as :meth:`call` records it."""
        scope = scope_of(ctx)
        return self._principal(scope) if scope is not None else None

    async def invoke(
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
        """Run one call without the allow-list and the audit record: what :meth:`call` wraps, and
        what the subprocess host runs for its child (which audits the call itself)."""
        await self.registry.ensure(name)
        spec = self.registry.get(name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
        try:
            kwargs = spec.validate(arguments or {})
        except ToolError as exc:
            return ToolResult.error(str(exc)).to_wire()
        # No channel back (the fast path): a context_to_ask tool has no use for its context.
        bare = spec.context_to_ask and send is None and make_context is None
        if progress_token is None and (spec.wants_context is None or bare):
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
            if spec.timeout is not None and not self.dispatcher.handles_timeouts:
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
        from ..components._argerrors import mask_argument_values

        all_values = not self.audit_arguments
        text = f"{type(exc).__name__}: {exc}"
        if log.isEnabledFor(logging.DEBUG):
            text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        text = mask_argument_values(text, kwargs, all_values=all_values)
        log.warning("tool %r failed after %.1f ms: %s", spec.name, seconds * 1000, text)


def scope_of(ctx: Any) -> Any:
    """The ASGI scope of the HTTP request behind an SDK request context, if any."""
    request = getattr(ctx, "request", None)
    return getattr(request, "scope", None)
