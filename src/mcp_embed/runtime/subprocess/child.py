"""The server process of ``spawn_mode="subprocess"`` (see ``runtime/subprocess.py`` for the design).

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

from ...components.tools import ToolResult, ToolSpec
from ...dispatch._queue import QueueDispatcher
from ...errors import ServerStartError, ToolError
from ...logs import get_logger
from ..thread import ThreadRuntime, probe_address

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import _ConnectionBase

    # A PipeConnection on Windows, a Connection elsewhere: type against their common base.
    Connection = _ConnectionBase

    from ...assemble import Blueprint
    from ...components import Components
    from ...context import ToolContext

log = get_logger("runtime")

_PROXY = "host"  # ToolSpec.source of a tool the host runs
_ARGS = "__arguments__"
_CTX = "__context__"
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
    code = _Child(conn).run()
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
            self.child.send(("log", fields))
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
        if spec.source != _PROXY:
            return await super().run(spec, kwargs, ctx)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[str, Any]] = loop.create_future()
        cid = next(self.child.ids)
        meta = _ctx_meta(ctx)
        self.child.pending[cid] = (loop, fut, ctx)
        try:
            self.child.send(("call", cid, spec.name, kwargs[_ARGS], meta))
            kind, payload = await fut
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.child.send(("cancel", cid))
            raise
        except (OSError, ValueError) as exc:
            raise ToolError(f"Tool '{spec.name}' was not run: the host is not reachable ({exc})") from None
        finally:
            self.child.pending.pop(cid, None)
        if kind == "ok":
            return payload
        if kind == "mcp_error":
            from mcp.shared.exceptions import MCPError

            code, message, data = payload
            raise MCPError(code=code, message=message, data=data)
        if kind == "cancelled":
            raise ToolError(f"Tool '{spec.name}' was cancelled in the host")
        raise ToolError(str(payload))


def _ctx_meta(ctx: ToolContext | None) -> dict[str, Any]:
    """What the host needs to rebuild a request's context (it cannot hold the child's)."""
    if ctx is None:
        return {"emit": False}
    return {
        "emit": ctx._emit is not None,
        "request_id": ctx.request_id,
        "session_id": ctx.session_id,
        "progress_token": ctx.progress_token,
        "principal": ctx.principal,
        "protocol_version": ctx.protocol_version,
        "client_capabilities": ctx.client_capabilities,
        "input_responses": ctx.input_responses,
        "request_state": ctx.request_state,
        "modern": _is_modern(ctx.protocol_version),
        "ask": ctx._request is not None,
        "log_level": ctx._level() if ctx._level is not None else None,
    }


def _is_modern(version: str | None) -> bool:
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    return version in MODERN_PROTOCOL_VERSIONS


def _from_wire(value: Any) -> ToolResult:
    """The host's wire result back into a ``ToolResult`` (the child's ToolCaller re-serialises it)."""
    if isinstance(value, dict) and "content" in value:
        return ToolResult(list(value["content"]), value.get("structuredContent"), bool(value.get("isError")))
    result = ToolResult([])
    result.input_required = dict(value) if isinstance(value, dict) else None
    return result


def _pass_through(arguments: dict[str, Any]) -> dict[str, Any]:
    return {_ARGS: arguments}  # validated in the host, by the tool's own validator


def proxy_spec(entry: dict[str, Any]) -> ToolSpec:
    """The child's registry entry for one catalogue entry."""
    skill = entry.get("skill")
    if skill is not None:
        from pathlib import Path

        from ...skills import SkillTool
        from ...skills.serve import skill_tool_spec

        fields = dict(skill)
        source_file = fields.pop("source_file")
        tool = SkillTool(**fields, source_file=Path(source_file) if source_file else None)
        return skill_tool_spec(tool)
    wire = entry["wire"]
    return ToolSpec(
        name=wire["name"],
        title=wire.get("title"),
        description=wire.get("description", ""),
        input_schema=wire["inputSchema"],
        output_schema=wire.get("outputSchema"),
        annotations=wire.get("annotations"),
        affinity=entry["affinity"],
        timeout=entry["timeout"],
        task=entry.get("task", "forbidden"),
        validate=_pass_through,
        wants_context=_CTX if entry.get("context") else None,
        to_result=_from_wire,
        source=_PROXY,
    )


class _SocketRuntime(ThreadRuntime):
    """The dedicated-thread runtime on a socket the host bound and handed over."""

    def __init__(self, plan: Blueprint, sock: socket.socket) -> None:
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
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.ids = itertools.count(1)
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[tuple[str, Any]], Any]] = {}
        self.host_pid = 0
        #: (monotonic time, the host dispatcher's status()) from the last poll; see _poll_status.
        self.host_status: tuple[float, dict[str, Any]] | None = None
        self._done = threading.Event()
        self._send_lock = threading.Lock()
        self._components: Components | None = None
        self._catalog_seq = 0
        self._entries: dict[str, dict[str, Any]] = {}
        self._resources: list[dict[str, Any]] = []
        self._prompts: list[dict[str, Any]] = []
        self._hidden: frozenset[str] = frozenset()  # tools tools/list leaves out (the meta-tool view)
        self._pending: frozenset[str] = frozenset()  # skills the host has not analysed yet
        self._resolving: dict[int, Callable[[], None]] = {}  # wakes the lookup awaiting ``resolved``

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock:
            self.conn.send(msg)

    async def request(self, kind: str, *payload: Any, ctx: Any = None) -> Any:
        """Ask the host (``read``, ``prompt``) and return its raw value; errors as the handlers expect."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[str, Any]] = loop.create_future()
        cid = next(self.ids)
        self.pending[cid] = (loop, fut, ctx)
        try:
            self.send((kind, cid, *payload))
            outcome, value = await fut
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.send(("cancel", cid))
            raise
        finally:
            self.pending.pop(cid, None)
        if outcome == "ok":
            return value
        if outcome == "mcp_error":
            from ...errors import McpError

            code, message, data = value
            raise McpError(code, message, data)
        raise RuntimeError(str(value) if outcome != "cancelled" else "cancelled in the host")

    def run(self) -> int:
        runtime: _SocketRuntime | None = None
        try:
            kind, init = self.conn.recv()
            assert kind == "init", kind
            self.host_pid = int(init["host_pid"])
            runtime = self._start(init)
            try:
                runtime.wait_ready(30.0)
            except ServerStartError as exc:
                self.send(("failed", str(exc)))
                return 1
            self.send(("ready", runtime.port))
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
                self.conn.close()
        return 0

    def _start(self, init: dict[str, Any]) -> _SocketRuntime:
        from ... import logs
        from ...assemble import Blueprint
        from ...components import Components

        config = init["config"]
        logger = logging.getLogger("mcp_embed")
        logger.setLevel(logs.level_number(config.log_level))
        logger.addHandler(_ForwardLogs(self, logs.level_number(config.log_level)))
        logger.propagate = False
        logging.raiseExceptions = False  # a record sent as the pipe closes must not print a traceback
        # The host writes the application log file (one writer); build_operations here must not.
        logs.attach_file_logging = _no_file_logging

        where = init["socket"]
        if "share" in where:
            sock = socket.fromshare(where["share"])  # type: ignore[attr-defined,unused-ignore]
        else:
            sock = socket.socket(fileno=int(where["fd"]))
        sock.setblocking(False)

        runtime: _SocketRuntime | None = None
        components = Components(
            sink=lambda: runtime.publish if runtime is not None and runtime.is_running else None
        )
        if init.get("completion"):

            async def complete(ref: Any, argument: str, value: str, context: Any) -> Any:
                return await self.request("complete", ref, argument, value, context)

            components.completion = complete
        if init.get("skills"):

            async def skills(method: str, params: dict[str, Any]) -> dict[str, Any]:
                return dict(await self.request("skills", method, params))

            components.skills_forward = skills  # skills/list, skills/get, directory reads: the host answers
        self._components = components
        self._apply(1, init["catalog"])
        # Every lookup in this process runs on the server's loop, which awaits this first.
        components.tools.set_async_resolver(self._resolve_async)
        plan = Blueprint(
            app_name=init["app_name"],
            config=config,
            components=components,
            dispatcher=_BridgeDispatcher(self, init["dispatcher"]),
            request_state_keys=init.get("request_state_keys"),
        )
        runtime = _SocketRuntime(plan, sock)
        runtime.start()
        return runtime

    def _serve(self) -> None:
        while True:
            msg = self.conn.recv()
            kind = msg[0]
            if kind == "result":
                _, cid, outcome, payload = msg
                hit = self.pending.get(cid)
                if hit is not None:
                    with contextlib.suppress(RuntimeError):
                        hit[0].call_soon_threadsafe(_settle, hit[1], (outcome, payload))
            elif kind == "notify":
                _, cid, what, params = msg
                hit = self.pending.get(cid)
                ctx = hit[2] if hit is not None else None
                if ctx is not None and ctx._emit is not None:
                    ctx._emit(what, params)
            elif kind == "status":
                self.host_status = (time.monotonic(), dict(msg[1]))
            elif kind == "catalog":
                self._apply(msg[1], msg[2])
                self.send(("ack", msg[1]))
            elif kind == "resolved":
                wake = self._resolving.get(msg[1])
                if wake is not None:
                    wake()
            elif kind == "ask":
                _, aid, cid, method, params = msg
                hit = self.pending.get(cid)
                if hit is None:
                    self.send(("answer", aid, "mcp_error", (-32603, "the call is no longer running", None)))
                else:
                    asyncio.run_coroutine_threadsafe(self._answer(aid, hit[2], method, params), hit[0])
            elif kind == "event" and msg[1] == "resource_updated" and self._components is not None:
                self._components.notify_resource_updated(msg[2])
            elif kind == "stop":
                return

    def _poll_status(self) -> None:
        """Ask the host for its main-thread report once a second, for /health and metrics: a wedged
        host shows as a growing ``reported_s_ago``, and /health itself never waits for it."""
        while True:
            try:
                self.send(("status",))
            except Exception:
                return
            if self._done.wait(1.0):
                return

    async def _answer(self, aid: int, ctx: Any, method: str, params: dict[str, Any]) -> None:
        """Ask the client on the host tool's behalf (elicitation, sampling) and send back its answer."""
        from mcp.shared.exceptions import MCPError, NoBackChannelError

        reply: tuple[Any, ...]
        try:
            if ctx is None or ctx._request is None:
                raise NoBackChannelError(method)
            reply = ("answer", aid, "ok", await ctx._request(method, params))
        except NoBackChannelError:
            reply = ("answer", aid, "no_back_channel", None)
        except MCPError as exc:
            reply = ("answer", aid, "mcp_error", (exc.error.code, exc.error.message, exc.error.data))
        except Exception as exc:
            reply = ("answer", aid, "mcp_error", (-32603, f"{type(exc).__name__}: {exc}", None))
        with contextlib.suppress(Exception):
            self.send(reply)

    def _pending_skill_tool(self, name: str) -> bool:
        from ...skills.naming import split_tool_name

        parts = split_tool_name(name)
        return parts is not None and parts[0] in self._pending

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
            self.send(("resolve", rid, name))
            await asyncio.wait_for(done, _RESOLVE_TIMEOUT)
        except TimeoutError:
            log.warning("the host did not analyse the skill of tool %r within %.0f s", name, _RESOLVE_TIMEOUT)
        except (OSError, ValueError):
            pass
        finally:
            self._resolving.pop(rid, None)

    def _apply(self, seq: int, catalog: dict[str, Any]) -> None:
        """Make the registries match the host's catalogue: changed entries replaced, gone ones removed."""
        if seq <= self._catalog_seq or self._components is None:
            return
        self._catalog_seq = seq
        components = self._components
        registry = components.tools
        self._pending = frozenset(catalog.get("pending", ()))
        hidden = frozenset(catalog.get("hidden", ()))
        # One tools/list_changed to the clients for the whole catalogue, not one per tool: the
        # child's registry tells its own clients (the host does not forward tool-list changes).
        with registry.batch():
            if hidden != self._hidden:  # before the tools, so a hidden one is never listed
                self._hidden = hidden
                registry.set_list_filter((lambda spec: spec.name not in hidden) if hidden else None)
            wanted = {entry["wire"]["name"]: entry for entry in catalog["tools"]}
            for name in set(registry.names()) - set(wanted):
                registry.remove(name)
                self._entries.pop(name, None)
            for name, entry in wanted.items():
                if self._entries.get(name) == entry and name in registry:
                    continue
                # A tool tools/list hides changes no list: no list_changed, as in dedicated mode.
                registry.add(proxy_spec(entry), replace=True, notify=name not in hidden)
                self._entries[name] = entry
        if catalog["resources"] != self._resources:
            self._resources = catalog["resources"]
            self._apply_resources(components)
        if catalog["prompts"] != self._prompts:
            self._prompts = catalog["prompts"]
            self._apply_prompts(components)

    def _apply_resources(self, components: Components) -> None:
        from ...components.resources import build_resource

        for spec in list(components.resources):
            components.resources.remove(spec.uri)
        for entry in self._resources:
            key = entry["uri"]

            async def read(_key: str = key, **args: Any) -> Any:
                meta = _ctx_meta(args.pop(_CTX, None))
                return await self.request("read", _key, args, meta)

            spec = build_resource(
                key,
                read,
                name=entry["name"],
                description=entry["description"],
                mime_type=entry["mime_type"],
                title=entry["title"],
            )
            spec.wants_context = _CTX if entry.get("context") else None
            components.resources.add(spec, replace=True)
        components.notify_resources_changed()

    def _apply_prompts(self, components: Components) -> None:
        from ...components.prompts import PromptArgument, PromptSpec

        for spec in list(components.prompts):
            components.prompts.remove(spec.name)
        for entry in self._prompts:
            name = entry["name"]

            async def get(_name: str = name, **args: Any) -> Any:
                meta = _ctx_meta(args.pop(_CTX, None))
                return await self.request("prompt", _name, args, meta)

            components.prompts.add(
                PromptSpec(
                    name=name,
                    fn=get,
                    description=entry["description"],
                    title=entry["title"],
                    arguments=tuple(PromptArgument(n, d, r) for n, d, r in entry["arguments"]),
                    is_async=True,
                    wants_context=_CTX if entry.get("context") else None,
                ),
                replace=True,
            )
        components.notify_prompts_changed()


def _settle(fut: asyncio.Future[tuple[str, Any]], outcome: tuple[str, Any]) -> None:
    if not fut.done():
        fut.set_result(outcome)


def _no_file_logging(*args: Any, **kwargs: Any) -> Any:
    return lambda: None
