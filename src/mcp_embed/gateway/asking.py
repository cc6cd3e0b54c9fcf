"""Calls that may ask the gateway's client: an instance's ``elicitation/create`` and
``sampling/createMessage``, relayed to the client of the gateway call they belong to.

An instance's tool that calls ``ctx.elicit`` or ``ctx.sample`` sends its request on the SSE stream
of the ``tools/call`` it runs for. The SDK's client hands such a request to its callbacks with the
request's own id and ``_meta`` only, never the call (or the stream) it arrived under, so on a
session shared by several calls a question cannot be told apart from another call's. Hence a call
that may ask gets an SDK session of its own for as long as it runs (one handshake per such call),
its callbacks bound to that call's ``ToolContext``: whatever that session is asked, that call's
client is asked (:meth:`ToolContext.ask`, the request relayed as it came), and its answer, its
error or its timeout goes back to the instance.

The session declares elicitation and sampling only as far as the gateway's client did, so the
instance's ``ctx.supports()`` tells the truth. Which calls: those whose client declared either
(:func:`may_ask`; the capability is known before the call, whether the tool will ask is not). The
others keep the plain lane and the shared session, where a question is refused as the SDK's own
client refuses it (``-32600 Elicitation not supported``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ..logs import get_logger

if TYPE_CHECKING:
    import anyio
    import mcp_types as types
    from mcp.client.session import ClientRequestContext
    from mcp.shared.dispatcher import ProgressFnT
    from pydantic import BaseModel

    from ..context import ToolContext
    from .upstream import Upstream

__all__ = ["Relay", "call_asking", "may_ask", "progress_relay", "why"]

log = get_logger("gateway")

_CONNECT_TIMEOUT = 10.0
ASKING = ("elicitation", "sampling")


def may_ask(ctx: ToolContext | None) -> bool:
    """Whether the gateway's client of this call declared elicitation or sampling."""
    return ctx is not None and any(ctx.supports(c) for c in ASKING)


def progress_relay(ctx: ToolContext | None) -> ProgressFnT | None:
    """An SDK progress callback reporting to ``ctx``, or None when its client asked for no progress."""
    if ctx is None or ctx.progress_token is None:
        return None
    report = ctx.report_progress

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        report(progress, total, message)

    return relay


class Relay:
    """The SDK client callbacks of one asking call: each question goes to that call's client."""

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx

    async def elicit(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        import mcp_types as types

        answer = await self._ask("elicitation/create", params)
        return answer if isinstance(answer, types.ErrorData) else types.ElicitResult.model_validate(answer)

    async def sample(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        import mcp_types as types

        answer = await self._ask("sampling/createMessage", params)
        if isinstance(answer, types.ErrorData):
            return answer
        if params.tools or isinstance(answer.get("content"), list):
            return types.CreateMessageResultWithTools.model_validate(answer)
        return types.CreateMessageResult.model_validate(answer)

    async def _ask(self, method: str, params: BaseModel) -> dict[str, Any] | types.ErrorData:
        import mcp_types as types

        from ..errors import McpError, ToolError

        wire = params.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            return await self.ctx.ask(method, wire)
        except ToolError as exc:
            # The client did not answer within the gateway's client_request_timeout, or its request
            # has no stream for questions: REQUEST_TIMEOUT is what the instance's ctx.elicit turns
            # into a ToolError with this message, as it would had it asked that client itself.
            return types.ErrorData(code=types.REQUEST_TIMEOUT, message=str(exc))
        except McpError as exc:  # the client's own error (or its session ended): as it came
            return types.ErrorData(code=exc.code, message=exc.message, data=exc.data)


async def call_asking(up: Upstream, tool: str, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Forward one ``tools/call`` on a session of its own, whose questions go to ``ctx``'s client.

    Runs on the gateway server's loop (where ``ctx`` asks). Results and errors as
    :meth:`Upstream.call`. Cancelling it cancels the call at the instance, then ends the session.
    """
    import anyio

    stop = anyio.CancelScope()
    # The session lives in a task of its own: a cancelled gateway call must still be able to
    # tell the instance and end the session (a DELETE), which a cancelled scope would cut short.
    task = asyncio.get_running_loop().create_task(_session_call(up, tool, arguments, ctx, stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.cancel()  # the SDK's client sends notifications/cancelled, then the session ends
        _closing.add(task)
        task.add_done_callback(_settled)
        raise


_closing: set[asyncio.Task[dict[str, Any]]] = set()  # cancelled calls whose sessions are ending


def _settled(task: asyncio.Task[dict[str, Any]]) -> None:
    _closing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("a cancelled asking call ended with %s", why(task.exception()))


async def _session_call(
    up: Upstream, tool: str, arguments: dict[str, Any], ctx: ToolContext, stop: anyio.CancelScope
) -> dict[str, Any]:
    import mcp_types as types
    from mcp.client import Client
    from mcp.shared.exceptions import MCPError

    relay = Relay(ctx)
    declared = ctx.client_capabilities or {}
    options: dict[str, Any] = {}
    if "elicitation" in declared:
        options["elicitation_callback"] = relay.elicit
    if "sampling" in declared:
        options["sampling_callback"] = relay.sample
        options["sampling_capabilities"] = types.SamplingCapability.model_validate(declared["sampling"] or {})
    result: Any = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    client = await stack.enter_async_context(
                        Client(up.instance.url, mode="legacy", cache=None, **options)
                    )
            except Exception as exc:
                return up.not_run(tool, f"{up.label} at {up.instance.url} does not answer: {why(exc)}")
            with stop:
                on_progress = progress_relay(ctx)
                result = await client.session.call_tool(tool, arguments, progress_callback=on_progress)
    except MCPError as exc:
        if exc.error.code == types.CONNECTION_CLOSED:
            return up.gone_result(tool, exc)
        raise
    except Exception as exc:  # the transport broke under the call
        log.info("call to %s on %s failed: %s", tool, up.label, why(exc))
        return up.gone_result(tool, exc)
    if result is None:  # stopped: the gateway's call was cancelled, nobody reads this
        return up.gone_result(tool)
    wire: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return wire


def why(exc: BaseException | None) -> str:
    """How messages name an exception: its type and text (the first of a group's)."""
    if exc is None:
        return "unknown"
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return why(exc.exceptions[0])
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
