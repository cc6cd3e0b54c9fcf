"""The server process of ``spawn_mode="subprocess"`` (see ``host.py`` for the design).

Started as ``python -c <stub>``; the stub reads one JSON line from stdin (the pipe address and its
authkey, and where mcp_embed lives) and calls :func:`main`. From then on:

* the main thread reads the pipe: results and progress of forwarded calls, new catalogues, stop;
* a :class:`~mcp_embed.runtime.thread.ThreadRuntime` on the socket the host bound serves HTTP with
  the usual app, transport and fast path, from a registry of proxy tools;
* EOF on the pipe (the host died, however) or SIGTERM (``PR_SET_PDEATHSIG`` on Linux, or the host's
  ``terminate()``) stops the server at once, which closes the listening socket, and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ...context import ContextMeta
from ...dispatch._queue import QueueDispatcher
from ...errors import ServerStartError, ToolError
from ...logs import get_logger
from ...ops import tracing
from ..thread import ThreadRuntime, probe_address
from . import wire
from .catalog import ARGS, PROXY, Mirror

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import _ConnectionBase

    # A PipeConnection on Windows, a Connection elsewhere: type against their common base.
    Connection = _ConnectionBase

    from ...components import Components
    from ...components.tools import ToolSpec
    from ...context import ToolContext

log = get_logger("runtime")

_RESOLVE_TIMEOUT = 30.0  # the host analyses one skill off its main thread: milliseconds, unless wedged


class _Terminate(BaseException):
    """Raised in the main thread by SIGTERM: stop now."""


def main(boot: dict[str, Any]) -> None:
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == boot.get("python"):
        sys.path.extend(p for p in boot.get("extra_path", ()) if p not in sys.path)
    _die_with_parent(int(boot["host_pid"]))
    from multiprocessing.connection import Client

    try:
        conn = Client(boot["address"], authkey=bytes.fromhex(boot["authkey"]))
    except (OSError, EOFError):
        os._exit(3)
    code = _Child(wire.Channel(conn)).run()
    tracing.shutdown()  # os._exit runs no atexit: export the spans still batched
    os._exit(code)


def _die_with_parent(host_pid: int) -> None:
    """SIGTERM (handled: stop now) when the host dies; checked once in case it already has."""

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminate

    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, on_term)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    if sys.platform != "win32" and os.getppid() != host_pid:
        os._exit(0)  # the host died before the signal was armed


class _ForwardLogs(logging.Handler):
    """Sends this process's ``mcp_embed`` records to the host, which writes them with its handlers."""

    def __init__(self, child: _Child, level: int) -> None:
        super().__init__(level)
        self.child = child

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            exc_text = record.exc_text
            if record.exc_info and not exc_text:
                exc_text = logging.Formatter().formatException(record.exc_info)
            fields = {
                "name": record.name,
                "levelno": record.levelno,
                "levelname": record.levelname,
                "msg": message,
                "args": None,
                "created": record.created,
                "msecs": record.msecs,
                "threadName": f"server-process:{record.threadName}",
                "process": record.process,
                "exc_text": exc_text,
                "pathname": record.pathname,
                "lineno": record.lineno,
                "funcName": record.funcName,
                "module": record.module,
            }
            self.child.channel.send(wire.Log(fields))
        except Exception:  # never let logging fail the caller; the pipe may be gone
            self.handleError(record)


class _BridgeDispatcher(QueueDispatcher):
    """Proxy tools go to the host over the pipe; the child's own (subprocess skills) run here."""

    def __init__(self, child: _Child, host_dispatcher: str) -> None:
        super().__init__()
        self.child = child
        self.name = host_dispatcher

    def status(self) -> dict[str, Any]:
        """The host's main-thread report (busy_for_s, queue_depth, ...), as last polled, and its age."""
        out: dict[str, Any] = {"dispatcher": self.name}
        polled = self.child.host_status
        if polled is not None:
            at, report = polled
            out.update(report)
            out["reported_s_ago"] = round(time.monotonic() - at, 3)
        out["host_pid"] = self.child.host_pid
        return out

    async def run(self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None) -> Any:
        if spec.source != PROXY:
            return await super().run(spec, kwargs, ctx)
        meta = ContextMeta.of(ctx, spec.name)
        trace = tracing.carrier()  # the host's tool span is a child of this process's request span
        if trace is not None:
            meta = meta._replace(trace=trace)
        try:
            return await self.child.request(
                lambda cid: wire.Call(cid, spec.name, kwargs[ARGS], meta), f"Tool '{spec.name}'", ctx=ctx
            )
        except (OSError, ValueError) as exc:
            raise ToolError(f"Tool '{spec.name}' was not run: the host is not reachable ({exc})") from None


class _SocketRuntime(ThreadRuntime):
    """The dedicated-thread runtime on a socket the host bound and handed over."""

    def __init__(self, plan: Any, sock: socket.socket) -> None:
        super().__init__(plan)
        self._given = sock

    def start(self) -> None:
        self._sock = self._given
        self.bound_host, self.port = probe_address(self._given)
        self._thread = threading.Thread(
            target=self._thread_main,
            name=f"mcp-embed:{self.plan.config.server_name}:{self.port}",
            daemon=True,
        )
        self._thread.start()


class _Child:
    def __init__(self, channel: wire.Channel) -> None:
        self.channel = channel
        self.ids = itertools.count(1)
        #: Requests to the host awaiting their result, by id: (loop, future, the call's context).
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[wire.Outcome], Any]] = {}
        self.host_pid = 0
        #: (monotonic time, the host dispatcher's status()) from the last poll; see _poll_status.
        self.host_status: tuple[float, dict[str, Any]] | None = None
        self._done = threading.Event()
        self._components: Components | None = None
        self._mirror: Mirror | None = None
        self._resolving: dict[int, Callable[[], None]] = {}  # wakes the lookup awaiting ``resolved``

    async def request(
        self, make: Callable[[int], wire.Message], what: str = "the request", *, ctx: Any = None
    ) -> Any:
        """Send the request ``make`` builds for a new id, await the host's outcome, return its value
        (or raise what it reports). Cancelled here: the host is told to cancel too."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[wire.Outcome] = loop.create_future()
        cid = next(self.ids)
        self.pending[cid] = (loop, fut, ctx)
        try:
            self.channel.send(make(cid))
            outcome = await fut
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.channel.send(wire.Cancel(cid))
            raise
        finally:
            self.pending.pop(cid, None)
        return wire.raise_for(outcome, what)

    def run(self) -> int:
        runtime: _SocketRuntime | None = None
        try:
            init = self.channel.recv()
            assert isinstance(init, wire.Init), init
            self.host_pid = init.host_pid
            runtime = self._start(init)
            try:
                runtime.wait_ready(30.0)
            except ServerStartError as exc:
                self.channel.send(wire.Failed(str(exc)))
                return 1
            self.channel.send(wire.Ready(runtime.port))
            threading.Thread(target=self._poll_status, name="mcp-embed-host-status", daemon=True).start()
            self._serve()
        except (_Terminate, EOFError, OSError, KeyboardInterrupt):
            pass  # the host died or told us to go: stop at once
        finally:
            self._done.set()
            for loop, fut, _ in list(self.pending.values()):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, fut, ("error", "the host went away"))
            for wake in list(self._resolving.values()):
                wake()
            if runtime is not None:
                with contextlib.suppress(BaseException):
                    runtime.stop(0.6)
            with contextlib.suppress(Exception):
                self.channel.close()
        return 0

    def _start(self, init: wire.Init) -> _SocketRuntime:
        from ... import logs
        from ...assemble import Blueprint
        from ...components import Components
        from ...dispatch import Dispatching

        config = init.config
        logger = logging.getLogger("mcp_embed")
        logger.setLevel(logs.level_number(config.log_level))
        logger.addHandler(_ForwardLogs(self, logs.level_number(config.log_level)))
        logger.propagate = False
        logging.raiseExceptions = False  # a record sent as the pipe closes must not print a traceback
        # The host writes the application log file (one writer); build_operations here must not.
        logs.attach_file_logging = _no_file_logging

        where = init.socket
        if "share" in where:
            sock = socket.fromshare(where["share"])  # type: ignore[attr-defined,unused-ignore]
        else:
            sock = socket.socket(fileno=int(where["fd"]))
        sock.setblocking(False)

        runtime: _SocketRuntime | None = None
        components = Components(
            sink=lambda: runtime.publish if runtime is not None and runtime.is_running else None
        )
        if init.completion:

            async def complete(ref: Any, argument: str, value: str, context: Any) -> Any:
                return await self.request(lambda cid: wire.Complete(cid, ref, argument, value, context))

            components.completion = complete
        if init.skills:

            async def skills(method: str, params: dict[str, Any]) -> dict[str, Any]:
                return dict(await self.request(lambda cid: wire.SkillsRequest(cid, method, params), method))

            components.skills_forward = skills  # skills/list, skills/get, directory reads: the host answers
        self._components = components
        self._mirror = Mirror(components, self.request)
        self._mirror.apply(1, init.catalog)
        # Every lookup in this process runs on the server's loop, which awaits this first.
        components.tools.set_async_resolver(self._resolve_async)
        plan = Blueprint(
            app_name=init.app_name,
            config=config,
            components=components,
            dispatcher=Dispatching(_BridgeDispatcher(self, init.dispatcher)),
            request_state_keys=init.request_state_keys,
        )
        runtime = _SocketRuntime(plan, sock)
        runtime.start()
        return runtime

    def _serve(self) -> None:
        while True:
            msg = self.channel.recv()
            if isinstance(msg, wire.Result):
                hit = self.pending.get(msg.cid)
                if hit is not None:
                    with contextlib.suppress(RuntimeError):
                        hit[0].call_soon_threadsafe(_settle, hit[1], msg.outcome)
            elif isinstance(msg, wire.Notify):
                hit = self.pending.get(msg.cid)
                ctx = hit[2] if hit is not None else None
                if ctx is not None and ctx._emit is not None:
                    ctx._emit(msg.kind, msg.params)
            elif isinstance(msg, wire.Status):
                self.host_status = (time.monotonic(), dict(msg.report))
            elif isinstance(msg, wire.Catalog):
                if self._mirror is not None:
                    self._mirror.apply(msg.seq, msg.catalog)
                self.channel.send(wire.Ack(msg.seq))
            elif isinstance(msg, wire.Resolved):
                wake = self._resolving.get(msg.rid)
                if wake is not None:
                    wake()
            elif isinstance(msg, wire.Ask):
                hit = self.pending.get(msg.cid)
                if hit is None:
                    gone: wire.Outcome = ("mcp_error", (-32603, "the call is no longer running", None))
                    self.channel.send(wire.Answer(msg.aid, gone))
                else:
                    asyncio.run_coroutine_threadsafe(self._answer(msg, hit[2]), hit[0])
            elif isinstance(msg, wire.ResourceUpdated) and self._components is not None:
                self._components.notify_resource_updated(msg.uri)
            elif isinstance(msg, wire.Stop):
                return

    def _poll_status(self) -> None:
        """Ask the host for its main-thread report once a second, for /health and metrics: a wedged
        host shows as a growing ``reported_s_ago``, and /health itself never waits for it."""
        while True:
            try:
                self.channel.send(wire.StatusPoll())
            except Exception:
                return
            if self._done.wait(1.0):
                return

    async def _answer(self, ask: wire.Ask, ctx: Any) -> None:
        """Ask the client on the host tool's behalf (elicitation, sampling) and send back its answer."""
        from mcp.shared.exceptions import NoBackChannelError

        outcome: wire.Outcome
        try:
            if ctx is None or ctx._request is None:
                raise NoBackChannelError(ask.method)
            outcome = ("ok", await ctx._request(ask.method, ask.params))
        except Exception as exc:
            outcome = wire.failure(exc)
            if outcome[0] == "error":  # the client's own failure, as a JSON-RPC error for the tool
                outcome = ("mcp_error", (-32603, outcome[1], None))
        with contextlib.suppress(Exception):
            self.channel.send(wire.Answer(ask.aid, outcome))

    def _pending_skill_tool(self, name: str) -> bool:
        from ...skills.naming import split_tool_name

        parts = split_tool_name(name)
        return parts is not None and self._mirror is not None and parts[0] in self._mirror.pending

    async def _resolve_async(self, name: str) -> None:
        """The registry's async miss hook, awaited before a lookup on the server's loop: the host
        analyses the skill of ``name`` if it is pending there, while this loop serves other requests
        (the host may be slow to get to it while its own Python is busy).

        The host sends the new catalogue before it answers, so afterwards the registry has the tool
        if it exists.
        """
        if not self._pending_skill_tool(name):
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish() -> None:
            if not done.done():
                done.set_result(None)

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(finish)

        rid = next(self.ids)
        self._resolving[rid] = wake
        try:
            self.channel.send(wire.Resolve(rid, name))
            await asyncio.wait_for(done, _RESOLVE_TIMEOUT)
        except TimeoutError:
            log.warning("the host did not analyse the skill of tool %r within %.0f s", name, _RESOLVE_TIMEOUT)
        except (OSError, ValueError):
            pass
        finally:
            self._resolving.pop(rid, None)


def _settle(fut: asyncio.Future[wire.Outcome], outcome: wire.Outcome) -> None:
    if not fut.done():
        fut.set_result(outcome)


def _no_file_logging(*args: Any, **kwargs: Any) -> Any:
    return lambda: None
