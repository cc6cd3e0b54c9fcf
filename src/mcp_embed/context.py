"""``ToolContext``: what a running tool may know and do, from any thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from ._jsonsafe import plain, safe_str

if TYPE_CHECKING:
    from .content import Message

__all__ = ["Elicited", "LogLevel", "Sampled", "ToolContext"]

LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
LOG_LEVELS: tuple[str, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)

T = TypeVar("T")

# (method, params) -> the client's result as a wire dict; runs on the server's event loop.
Requester = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Elicited:
    """The user's answer to :meth:`ToolContext.elicit`."""

    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sampled:
    """The client model's answer to :meth:`ToolContext.sample`. ``text`` is None for non-text content."""

    text: str | None
    model: str
    role: str = "assistant"
    stop_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class ToolContext:
    """Handed to a tool that declares a parameter annotated ``ToolContext``.

    Every method is safe to call from the tool's own thread (a worker, the host's main thread,
    or the event loop). Progress and log messages are delivered to the client in order, before
    the tool's result. ``elicit``/``sample`` are coroutines for ``async def`` tools; plain tools
    use ``elicit_blocking``/``sample_blocking``, which wait on the calling thread.
    """

    __slots__ = (
        "_cancelled",
        "_emit",
        "_level",
        "_loop",
        "_request",
        "client_capabilities",
        "input_responses",
        "principal",
        "progress_token",
        "protocol_version",
        "request_id",
        "request_state",
        "session_id",
        "tool_name",
    )

    def __init__(
        self,
        *,
        tool_name: str,
        request_id: str | int | None = None,
        session_id: str | None = None,
        progress_token: str | int | None = None,
        principal: str | None = None,
        emit: Callable[[str, dict[str, Any]], None] | None = None,
        protocol_version: str | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
        input_responses: Mapping[str, Any] | None = None,
        request_state: str | None = None,
        request: Requester | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        log_level: Callable[[], str | None] | None = None,
    ) -> None:
        self.tool_name = tool_name
        self.request_id = request_id
        self.session_id = session_id
        self.progress_token = progress_token
        self.principal = principal
        #: The protocol version of this request (``"2025-11-25"``, ``"2026-07-28"``...).
        self.protocol_version = protocol_version
        #: The capabilities the client declared (wire form: ``{"sampling": {}, ...}``), or None.
        self.client_capabilities: dict[str, Any] | None = (
            dict(client_capabilities) if client_capabilities is not None else None
        )
        #: Answers to a previous :class:`~mcp_embed.InputRequired`, keyed like its requests.
        self.input_responses: dict[str, Any] | None = (
            dict(input_responses) if input_responses is not None else None
        )
        #: The ``state`` of the previous :class:`~mcp_embed.InputRequired`, verified by the server.
        self.request_state = request_state
        self._emit = emit
        self._request = request
        self._loop = loop
        self._level = log_level
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once the client cancelled this call or the server is stopping. Check it in loops."""
        return self._cancelled.is_set()

    def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send ``notifications/progress`` if the client asked for progress; otherwise do nothing."""
        if self._emit is None or self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = safe_str(message)
        self._emit("progress", params)

    def log(self, level: LogLevel, data: Any, logger: str | None = None) -> None:
        """Send a ``notifications/message`` log entry to the client, tied to this call.

        Entries below the level the client chose with ``logging/setLevel`` are dropped.
        """
        if self._emit is None:
            return
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
        floor = self._level() if self._level is not None else None
        if floor in LOG_LEVELS and LOG_LEVELS.index(level) < LOG_LEVELS.index(floor):
            return
        params: dict[str, Any] = {"level": level, "data": plain(data)}
        if logger is not None:
            params["logger"] = safe_str(logger)
        self._emit("log", params)

    def close_sse_stream(self) -> None:
        """Close this call's SSE response stream now; the client reconnects and resumes.

        Everything sent afterwards (progress, logs, the result) is kept in the server's event
        store and replayed when the client reconnects with ``Last-Event-ID``. Use it to let a
        long call survive proxies that cut idle streams. A no-op without an event store
        (stateless mode) or with JSON responses.
        """
        if self._emit is not None:
            self._emit("close_sse", {})

    def supports(self, capability: str) -> bool:
        """True if the client declared ``capability`` (``"sampling"``, ``"elicitation"``, ``"roots"``)."""
        return bool(self.client_capabilities) and capability in (self.client_capabilities or {})

    # -- asking the client -------------------------------------------------------------------------

    async def elicit(self, message: str, schema: Mapping[str, Any]) -> Elicited:
        """Ask the user to fill a form (``elicitation/create``) and wait for the answer.

        ``schema`` is a flat JSON Schema object of primitive properties. Needs a 2025-era
        request answered as an SSE stream (stateful or stateless, not ``json_response``), else it
        raises :class:`~mcp_embed.ToolError` (on the 2026-07-28 protocol return
        :class:`~mcp_embed.InputRequired`), as does a client that does not answer within
        ``client_request_timeout``. A client error raises :class:`~mcp_embed.McpError`.
        """
        from .content import ElicitInput

        wire = ElicitInput(message, schema).to_wire()
        result = await self._ask(wire)
        return Elicited(action=result.get("action", "cancel"), content=result.get("content"))

    async def sample(
        self,
        messages: str | Sequence[Message],
        *,
        max_tokens: int = 100,
        system_prompt: str | None = None,
    ) -> Sampled:
        """Ask the client's model for a completion (``sampling/createMessage``) and wait for it."""
        from .content import SampleInput

        wire = SampleInput(messages, max_tokens, system_prompt).to_wire()
        result = await self._ask(wire)
        content = result.get("content")
        text = content.get("text") if isinstance(content, dict) and content.get("type") == "text" else None
        return Sampled(
            text=text,
            model=str(result.get("model", "")),
            role=str(result.get("role", "assistant")),
            stop_reason=result.get("stopReason"),
            raw=result,
        )

    async def ask(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send one raw server-to-client request (``elicitation/create``, ``sampling/createMessage``,
        ``roots/list``) and return the client's wire result: what :meth:`elicit` and :meth:`sample`
        send, for a caller that relays a request as it came (the gateway). Errors as :meth:`elicit`."""
        return await self._ask({"method": method, "params": dict(params)})

    def elicit_blocking(self, message: str, schema: Mapping[str, Any]) -> Elicited:
        """:meth:`elicit` for plain (non-async) tools: blocks the calling thread, never the server."""
        return self._block(self.elicit(message, schema))

    def sample_blocking(
        self,
        messages: str | Sequence[Message],
        *,
        max_tokens: int = 100,
        system_prompt: str | None = None,
    ) -> Sampled:
        """:meth:`sample` for plain (non-async) tools: blocks the calling thread, never the server."""
        return self._block(self.sample(messages, max_tokens=max_tokens, system_prompt=system_prompt))

    async def _ask(self, wire: dict[str, Any]) -> dict[str, Any]:
        if self._request is None:
            raise RuntimeError("this call has no connection back to the client (not called over MCP)")
        from mcp.shared.exceptions import MCPError, NoBackChannelError
        from mcp_types import REQUEST_TIMEOUT

        from .errors import McpError, ToolError

        try:
            return await self._request(wire["method"], wire.get("params") or {})
        except NoBackChannelError:
            raise ToolError(
                f"cannot send {wire['method']} to this client: this request has no channel for "
                "server requests (JSON responses or the 2026-07-28 protocol); return InputRequired instead"
            ) from None
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:  # client_request_timeout
                raise ToolError(exc.message) from None
            # The client answered with an error, or the call went away.
            raise McpError(exc.code, exc.message, exc.data) from None

    def _block(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("this call has no connection back to the client (not called over MCP)")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError(
                "a *_blocking method was called on the server's event loop, where it would deadlock; "
                "make the tool 'async def' and await ctx.elicit()/ctx.sample()"
            )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        # Wait in slices so a call the client cancelled (or a stopping server) does not leave
        # this thread blocked on an answer that will never come.
        while True:
            try:
                return future.result(timeout=0.25)
            except concurrent.futures.TimeoutError:
                if self.cancelled or loop.is_closed():
                    future.cancel()
                    from .errors import ToolError

                    raise ToolError("the call was cancelled while waiting for the client") from None

    def _cancel(self) -> None:
        self._cancelled.set()


class ContextMeta(NamedTuple):
    """A call's context as plain values, to rebuild it in another process (``spawn_mode="subprocess"``:
    the child serves the request, the host runs the tool). :meth:`of` and :meth:`context` are the one
    way across."""

    tool_name: str
    request_id: str | int | None = None
    session_id: str | None = None
    progress_token: str | int | None = None
    principal: str | None = None
    protocol_version: str | None = None
    client_capabilities: dict[str, Any] | None = None
    input_responses: dict[str, Any] | None = None
    request_state: str | None = None
    #: The call can send progress and log notifications back.
    emits: bool = False
    #: The call can ask the client (elicitation, sampling, roots).
    asks: bool = False
    log_level: str | None = None
    #: The W3C trace context (``traceparent``, ``tracestate``) the host's tool span is a child of.
    trace: dict[str, str] | None = None

    @classmethod
    def of(cls, ctx: ToolContext | None, tool_name: str) -> ContextMeta:
        if ctx is None:
            return cls(tool_name)
        return cls(
            ctx.tool_name,
            ctx.request_id,
            ctx.session_id,
            ctx.progress_token,
            ctx.principal,
            ctx.protocol_version,
            ctx.client_capabilities,
            ctx.input_responses,
            ctx.request_state,
            ctx._emit is not None,
            ctx._request is not None,
            ctx._level() if ctx._level is not None else None,
        )

    def context(
        self,
        *,
        emit: Callable[[str, dict[str, Any]], None] | None = None,
        request: Requester | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> ToolContext:
        """The context again, with this process's channels back to the client (or none)."""
        level = self.log_level
        return ToolContext(
            tool_name=self.tool_name,
            request_id=self.request_id,
            session_id=self.session_id,
            progress_token=self.progress_token,
            principal=self.principal,
            emit=emit,
            protocol_version=self.protocol_version,
            client_capabilities=self.client_capabilities,
            input_responses=self.input_responses,
            request_state=self.request_state,
            request=request if self.asks else None,
            loop=loop,
            log_level=(lambda: level) if level is not None else None,
        )
