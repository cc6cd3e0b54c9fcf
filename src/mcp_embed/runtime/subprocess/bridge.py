"""The host's side of forwarded requests in ``spawn_mode="subprocess"``: an event loop thread of its
own runs the child's calls through :class:`~mcp_embed.protocol.caller.ToolCaller` (the host's
dispatcher decides where the tool runs, as in dedicated mode), and its resource reads, prompts,
completions and skills-extension methods against the host's components."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...logs import get_logger
from ...ops import tracing
from . import wire

if TYPE_CHECKING:
    from ...components import Components
    from ...protocol.caller import ToolCaller

__all__ = ["Bridge"]

log = get_logger("runtime")

Send = Callable[[wire.Message], None]
Request = wire.Call | wire.Read | wire.GetPrompt | wire.Complete | wire.SkillsRequest


class Bridge:
    """Runs the child's requests on a loop thread; replies go back on the channel they came from."""

    def __init__(
        self,
        caller: ToolCaller,
        components: Components,
        name: str,
        stale: Callable[[], bool],
        resync: Callable[[], None],
    ) -> None:
        self.caller = caller
        self.components = components
        tracing.start(name)  # the host's tool spans (ops/tracing.py)
        self.stale = stale  # whether a call changed the registry since the child's catalogue
        self.resync = resync  # sends the child a new one (blocking: it waits for the ack)
        self.loop = asyncio.new_event_loop()
        self._asks: dict[int, asyncio.Future[wire.Outcome]] = {}  # touched on the loop only
        self._ask_ids = itertools.count(1)
        self._calls: dict[tuple[int, int], concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"mcp-embed-bridge:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(
        self,
        gen: int,
        send: Send,
        msg: wire.Call | wire.Read | wire.GetPrompt | wire.Complete | wire.SkillsRequest,
    ) -> None:
        """Run one request of the child's on the bridge loop."""
        fut = asyncio.run_coroutine_threadsafe(self._serve(send, msg), self.loop)
        key = (gen, msg.cid)
        with self._lock:
            self._calls[key] = fut

        def done(_: Any) -> None:
            with self._lock:
                self._calls.pop(key, None)

        fut.add_done_callback(done)

    def offload(self, fn: Callable[[], None]) -> None:
        """Run ``fn``, which may block and must not raise, on one of the bridge loop's worker threads."""
        with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
            self.loop.call_soon_threadsafe(self.loop.run_in_executor, None, fn)

    def cancel(self, gen: int, cid: int) -> None:
        with self._lock:
            fut = self._calls.get((gen, cid))
        if fut is not None:
            fut.cancel()

    def cancel_generation(self, gen: int) -> None:
        with self._lock:
            futs = [f for (g, _), f in self._calls.items() if g == gen]
        for f in futs:
            f.cancel()

    async def _serve(self, send: Send, msg: Request) -> None:
        cid = msg.cid
        outcome: wire.Outcome
        try:
            outcome = ("ok", await self._answer(send, msg))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                send(wire.Result(cid, ("cancelled", None)))
            raise
        except Exception as exc:
            outcome = wire.failure(exc)
        if isinstance(msg, wire.Call) and self.stale():
            # Before the result: the tools a meta-tool just analysed are in the child when it answers.
            try:
                await asyncio.to_thread(self.resync)
            except Exception as exc:
                log.error("tool catalogue not re-sent: %s: %s", type(exc).__name__, exc)
        try:
            send(wire.Result(cid, outcome))
        except OSError as exc:  # the child went away; nobody is waiting
            log.debug("could not answer the server process: %s", exc)
        except Exception as exc:  # the value cannot be pickled: say so rather than never answer
            with contextlib.suppress(Exception):
                send(wire.Result(cid, ("error", f"the result cannot be sent to the server process: {exc}")))

    async def _answer(self, send: Send, msg: Request) -> Any:
        if isinstance(msg, wire.Call):
            return await self._call(send, msg)
        if isinstance(msg, wire.Read):
            return await self._read_resource(msg)
        if isinstance(msg, wire.GetPrompt):
            return await self._get_prompt(msg)
        if isinstance(msg, wire.Complete):
            return await self._complete(msg)
        if isinstance(msg, wire.SkillsRequest):  # SEP-2640: the host holds the skills (skills/extension.py)
            from ...skills.extension import answer

            return await answer(self.components, msg.method, msg.params)
        raise AssertionError(f"unknown request {type(msg).__name__}")  # pragma: no cover - Request is closed

    async def _call(self, send: Send, call: wire.Call) -> dict[str, Any]:
        from ...protocol.handlers import is_modern_version

        meta, cid = call.meta, call.cid

        async def notify(kind: str, params: dict[str, Any]) -> None:
            send(wire.Notify(cid, kind, params))

        async def ask(method: str, params: dict[str, Any]) -> dict[str, Any]:
            """elicitation/create, sampling/createMessage: asked by the child on the call's session."""
            aid = next(self._ask_ids)
            fut: asyncio.Future[wire.Outcome] = asyncio.get_running_loop().create_future()
            self._asks[aid] = fut
            try:
                send(wire.Ask(aid, cid, method, params))
                outcome = await fut
            finally:
                self._asks.pop(aid, None)
            return dict(wire.raise_for(outcome, method))

        def make_context(emit: Callable[[str, dict[str, Any]], None] | None) -> Any:
            return meta.context(emit=emit, request=ask, loop=asyncio.get_running_loop())

        with tracing.tool_span(meta.trace, call.name) as done:
            result = await self.caller.invoke(
                call.name,
                call.arguments,
                request_id=meta.request_id,
                session_id=meta.session_id,
                progress_token=meta.progress_token,
                send=notify if meta.emits else None,
                make_context=make_context,
                modern=is_modern_version(meta.protocol_version),
                principal=meta.principal,
            )
            done(result)
            return result

    def answer(self, aid: int, outcome: wire.Outcome) -> None:
        """The child's answer to an ``Ask`` (from the reader thread)."""

        def settle() -> None:
            fut = self._asks.get(aid)
            if fut is not None and not fut.done():
                fut.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
            self.loop.call_soon_threadsafe(settle)

    async def _read_resource(self, read: wire.Read) -> Any:
        """The raw value of a resource reader (the child turns it into ``contents``)."""
        from ...protocol.handlers import call_user

        spec = next((r for r in self.components.resources if r.uri == read.uri), None)
        if spec is None:
            raise LookupError(f"the resource {read.uri!r} is no longer registered")
        kwargs = dict(read.args)
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = read.meta.context()
        return _picklable(await call_user(spec.read, spec.is_async, kwargs))

    async def _complete(self, msg: wire.Complete) -> list[str]:
        import inspect

        handler = self.components.completion
        if handler is None:
            return []
        args = (msg.ref, msg.argument, msg.value, msg.context)
        if inspect.iscoroutinefunction(handler):
            values = await handler(*args)
        else:
            values = await asyncio.to_thread(handler, *args)
        return [str(v) for v in (values or [])]

    async def _get_prompt(self, get: wire.GetPrompt) -> Any:
        from ...protocol.handlers import call_user

        spec = self.components.prompts.get(get.name)
        if spec is None:
            raise LookupError(f"the prompt {get.name!r} is no longer registered")
        kwargs = dict(get.args)
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = get.meta.context()
        return _picklable(await call_user(spec.fn, spec.is_async, kwargs))

    def close(self) -> None:
        with self._lock:
            futs = list(self._calls.values())
        for f in futs:
            f.cancel()
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2.0)
        if not self._thread.is_alive():
            self.loop.close()


def _picklable(value: Any) -> Any:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, list):
        return [_picklable(v) for v in value]
    return value
