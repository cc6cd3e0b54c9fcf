"""``Upstream``: the gateway's one persistent client session to one instance.

It lives on the gateway's own event loop (:mod:`.hub`): a task owns the SDK ``Client`` for as
long as the instance is listed, so every forwarded call reuses one session (no handshake per
call). Calls from the gateway's server loop cross over with ``run_coroutine_threadsafe``; a call
cancelled there is cancelled here, and the SDK client then tells the instance
(``notifications/cancelled``), so its tool sees ``ctx.cancelled``. Resource reads and prompts
go through the same session (:meth:`Upstream.read_resource`, :meth:`Upstream.get_prompt`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..logs import get_logger
from .asking import call_asking, progress_relay
from .asking import why as _why
from .lane import JsonLane, LaneError

if TYPE_CHECKING:
    from mcp.client import Client

    from ..context import ToolContext
    from ..instances import Instance

__all__ = ["Upstream", "UpstreamGone"]

log = get_logger("gateway")

_CONNECT_TIMEOUT = 10.0
#: What an instance's notification says changed: the list the hub lists again.
_CHANGED = {
    "notifications/tools/list_changed": "tools",
    "notifications/resources/list_changed": "resources",
    "notifications/prompts/list_changed": "prompts",
}
#: Each list the hub mirrors: the client's method, the result's field, the capability it needs.
_LISTS = {
    "tools": ("list_tools", "tools", "tools"),
    "resources": ("list_resources", "resources", "resources"),
    "templates": ("list_resource_templates", "resource_templates", "resources"),
    "prompts": ("list_prompts", "prompts", "prompts"),
}


class UpstreamGone(Exception):
    """The instance does not answer (it stopped, crashed, or its session ended)."""


class Upstream:
    """One instance behind the gateway: its prefix, its record, and the session to it."""

    def __init__(self, prefix: str, instance: Instance, on_changed: Callable[[str], None]) -> None:
        self.prefix = prefix
        self.instance = instance
        #: Called with ``"tools"``, ``"resources"`` or ``"prompts"`` when the instance says that list changed.
        self._on_changed = on_changed
        self._client: Client | None = None
        self._closing: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        #: Plain calls (no progress) skip the SDK client and the hop to the hub's loop.
        self.lane = JsonLane(instance.url)
        self._plain: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}  # lane, asking calls in flight
        self._cut: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def label(self) -> str:
        """How messages name this instance: ``maya-1 (maya on host, pid 1234)``."""
        i = self.instance
        return f"{self.prefix} ({i.app_name} on {i.host}, pid {i.pid})"

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def open(self) -> None:
        """Connect and initialize the session; :class:`UpstreamGone` if the instance does not answer."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._closing = asyncio.Event()
        self._owner = loop.create_task(self._own(ready), name=f"mcp-embed-gateway:{self.prefix}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), _CONNECT_TIMEOUT)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise UpstreamGone(f"{self.label} at {self.instance.url} does not answer: {_why(exc)}") from None

    async def _own(self, ready: asyncio.Future[None]) -> None:
        from mcp.client import Client

        closing = self._closing
        assert closing is not None
        try:
            # "legacy": one initialize handshake, then a session every call reuses; no response
            # cache: the gateway lists again when told the list changed.
            async with Client(
                self.instance.url, mode="legacy", cache=None, message_handler=self._message
            ) as client:
                self._client = client
                ready.set_result(None)
                await closing.wait()
        except BaseException as exc:  # the transport failed: calls answer that the instance went away
            self._failure = exc
            if not ready.done():
                ready.set_exception(UpstreamGone(_why(exc)))
            if not isinstance(exc, (asyncio.CancelledError, Exception)):
                raise
        finally:
            self._client = None

    async def _message(self, message: Any) -> None:
        kind = _CHANGED.get(getattr(message, "method", None) or "")
        if kind is not None:
            self._on_changed(kind)

    def _session(self) -> Client:
        client = self._client
        if client is None:
            why = f": {_why(self._failure)}" if self._failure is not None else ""
            raise UpstreamGone(f"instance {self.label} went away{why}")
        return client

    async def list_tools(self) -> list[dict[str, Any]]:
        """The instance's tools as ``tools/list`` gives them (wire dicts), every page."""
        return await self.list_of("tools")

    async def list_of(self, kind: str) -> list[dict[str, Any]]:
        """Every page of one of the instance's lists, as wire dicts: ``"tools"``, ``"resources"``,
        ``"templates"`` (resource templates) or ``"prompts"``; empty when it serves none."""
        method, field, capability = _LISTS[kind]
        client = self._session()
        if kind != "tools" and getattr(client.server_capabilities, capability, None) is None:
            return []
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await getattr(client, method)(cursor=cursor)
            items.extend(
                i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in getattr(page, field)
            )
            cursor = page.next_cursor
            if not cursor:
                return items

    async def read_resource(self, uri: str) -> dict[str, Any]:
        """The instance's ``resources/read`` result for its own ``uri`` (a wire dict).

        A JSON-RPC error from the instance is raised as it came (``MCPError``); an instance that
        is gone, or goes during the read, raises :class:`UpstreamGone`.
        """
        return await self._forward(lambda c: c.session.read_resource(uri))

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        """The instance's ``prompts/get`` result (a wire dict); errors as :meth:`read_resource`."""
        return await self._forward(lambda c: c.session.get_prompt(name, arguments))

    async def _forward(self, send: Callable[[Client], Awaitable[Any]]) -> dict[str, Any]:
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            result = await send(self._session())
        except MCPError as exc:
            if self._client is None or exc.error.code == CONNECTION_CLOSED:
                raise UpstreamGone(f"instance {self.label} went away ({_why(exc)})") from None
            raise
        except UpstreamGone:
            raise
        except Exception as exc:  # the transport broke under the request
            raise UpstreamGone(f"instance {self.label} went away ({_why(exc)})") from None
        wire: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return wire

    async def call(self, tool: str, arguments: dict[str, Any], ctx: ToolContext | None) -> dict[str, Any]:
        """Forward one ``tools/call``; the instance's wire result, progress relayed to ``ctx``.

        An instance that went away (now or during the call) answers an ``isError`` naming it;
        a JSON-RPC error from the instance is raised as it came (``MCPError``).
        """
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            result = await self._session().session.call_tool(
                tool, arguments, progress_callback=progress_relay(ctx)
            )
        except MCPError as exc:
            # CONNECTION_CLOSED: the SDK client's own word for a request whose answer can never come.
            if self._client is None or exc.error.code == CONNECTION_CLOSED:
                return self.gone_result(tool, exc)
            raise
        except UpstreamGone as exc:
            return self.not_run(tool, str(exc))
        except Exception as exc:  # the transport broke under the call
            log.info("call to %s on %s failed: %s", tool, self.label, _why(exc))
            return self.gone_result(tool, exc)
        wire: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return wire

    async def call_plain(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """:meth:`call` for a call without progress, on the caller's loop (:class:`JsonLane`).

        If the instance leaves the registry meanwhile, :meth:`close` cuts the call short: it
        answers that the instance went away rather than wait for an instance that may never answer.
        """
        return await self._cuttable(tool, self._lane_call(tool, arguments))

    async def _lane_call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.lane.call(tool, arguments)
        except LaneError as exc:
            log.info("call to %s on %s failed: %s", tool, self.label, exc)
            return self.gone_result(tool, exc)

    async def _cuttable(self, tool: str, call: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
        task = asyncio.current_task()
        if task is None or self._closed:
            call.close()
            return self.gone_result(tool)
        self._plain[task] = asyncio.get_running_loop()
        try:
            return await call
        except asyncio.CancelledError:
            if task in self._cut and task.uncancel() == 0:  # cut by close() alone, not by the client
                return self.gone_result(tool)
            raise
        finally:
            self._plain.pop(task, None)
            self._cut.discard(task)

    def _cut_short(self, task: asyncio.Task[Any]) -> None:
        # On the call's own loop: a task still listed is suspended inside its call, so the
        # cancellation lands there (and is taken back in _cuttable), never after it returned.
        if task in self._plain:
            self._cut.add(task)
            task.cancel()

    async def call_asking(self, tool: str, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """:meth:`call` for a call whose client may be asked (:mod:`.asking`): on a session of its
        own, on the caller's loop, the instance's questions relayed to ``ctx``'s client. Cut short
        by :meth:`close` as :meth:`call_plain` is."""
        return await self._cuttable(tool, call_asking(self, tool, arguments, ctx))

    def not_run(self, tool: str, why: str) -> dict[str, Any]:
        return _error(f"Tool '{self.prefix}__{tool}' was not run: {why}")

    def gone_result(self, tool: str, exc: BaseException | None = None) -> dict[str, Any]:
        why = exc if exc is not None else self._failure
        detail = f" ({_why(why)})" if why is not None else ""
        return _error(
            f"Tool '{self.prefix}__{tool}' did not complete: instance {self.label} at "
            f"{self.instance.url} went away{detail}"
        )

    async def close(self) -> None:
        """End the session; calls still in flight answer that the instance went away."""
        self._closed = True
        for task, loop in list(self._plain.items()):
            loop.call_soon_threadsafe(self._cut_short, task)
        if self._closing is not None:
            self._closing.set()
        owner = self._owner
        if owner is not None and not owner.done():
            try:
                await asyncio.wait_for(asyncio.shield(owner), 2.0)
            except TimeoutError:
                owner.cancel()
                with contextlib.suppress(BaseException):
                    await owner
            except BaseException:  # noqa: S110 - the owner recorded its failure; closing goes on
                pass


def _error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}
