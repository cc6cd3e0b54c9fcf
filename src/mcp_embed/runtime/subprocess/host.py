"""``spawn_mode="subprocess"``: the HTTP server runs in a child Python process; tools still run here.

The split:

* **The child** (``runtime/_child.py``) runs the same app and transport stack as the dedicated
  thread. Its registry holds proxy tools built from a *catalogue* this process sends at start and
  again whenever the registry changes (``add_tool``, ``remove_tool``, ``reload_skills``), so
  ``initialize``, ``ping`` and ``tools/list`` never wait for the host. Subprocess-execution skill
  tools run in the child itself. The child writes the audit log itself (see below).
* **The host** (this module) binds the listening socket (so a port in use fails in ``start()``
  and ``port=0`` is known at once) and hands it to the child; accepts the child's connection on a
  ``multiprocessing.connection`` Listener (a Unix socket or a named pipe) with a random 32-byte
  authkey given over the child's stdin, never argv or the environment; and runs forwarded calls
  through its own dispatcher with :class:`~mcp_embed.protocol.caller.ToolCaller` (affinity, timeouts,
  cancellation and progress as in dedicated mode) on an event loop thread of its own.

One connection carries everything, multiplexed by call id: ``call``/``cancel``/``log``/``ready``/
``resolve`` from the child, ``result``/``notify``/``catalog``/``resolved``/``stop`` from the host. A
reader thread on each side owns ``recv``; writes are serialised by a lock (a message is one ``send``).

Lazy skills: the host's :class:`~mcp_embed.skills.serve.SkillLoader` stays the one source of truth,
as in dedicated mode. The catalogue holds the tools the host's registry has now (a hidden skill not
analysed yet has none), which of them ``tools/list`` hides (``hidden``: the meta-tool view above
``skills_list_limit``) and which skills are still ``pending``. The meta-tools are ordinary host tools,
forwarded like any other; after every forwarded call the host re-sends the catalogue if its registry
changed (``search_tools`` analysed every skill, ``activate_skill`` changed the list). A call naming a
tool of a pending skill misses the child's registry: the child sends ``resolve`` and awaits the answer
(its event loop serves other requests meanwhile); the host analyses that skill, sends the new
catalogue, then ``resolved``, so the child has the tool when it looks again.

Lifetimes: the supervisor thread that spawns the child is the one that reads from it. The child
exits when that connection reaches EOF (the host died, even by ``kill -9``), and on Linux also on
``PR_SET_PDEATHSIG``. A child that dies on its own is reaped here and reported on the handle
(``is_running`` False, ``reason``); ``handle.restart()`` starts another on the same port.

Logs and audit: the child's ``mcp_embed`` log records are forwarded here and written by this
process's file handler, so the application log has one writer. The child writes audit records for
the calls it serves itself, through the same :class:`~mcp_embed.ops.audit.AuditLog`: an ``O_APPEND``
descriptor written one batch of whole lines per ``write(2)``, so records never interleave inside
a line, and they reach the file even when the host is wedged or already dead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ServerStartError
from ...logs import get_logger
from ..thread import bind_socket, probe_address

if TYPE_CHECKING:
    import socket
    from multiprocessing.connection import Listener, _ConnectionBase

    # A PipeConnection on Windows, a Connection elsewhere: type against their common base.
    Connection = _ConnectionBase

    from ...assemble import Blueprint
    from ...components import Components
    from ...ops.audit import Operations
    from ...protocol.caller import ToolCaller
    from ...skills import SkillTool

log = get_logger("runtime")

__all__ = ["SubprocessRuntime", "build_catalog"]

# A host application's own executable, which cannot run ``-c``: python_executable must be given.
_APP_EXE = re.compile(r"^(maya(\.bin)?|houdini\w*|happrentice|hindie|nuke[\d.v]*|blender)$", re.IGNORECASE)

# The child's first code: read the bootstrap line, find mcp_embed, hand over. Nothing else runs first.
_STUB = (
    "import sys,json;b=json.loads(sys.stdin.readline());sys.path[:0]=b['path'];"
    "from mcp_embed.runtime.subprocess.child import main;main(b)"
)
_ACK_TIMEOUT = 2.0  # how long add_tool waits for the child to apply a new catalogue


def python_executable(configured: str | None) -> str:
    """The interpreter for the child: the configured one, else this one unless it is a DCC's app."""
    if configured:
        return configured
    exe = sys.executable
    stem = os.path.splitext(os.path.basename(exe))[0]
    if not exe or _APP_EXE.match(stem):
        raise ServerStartError(
            f"spawn_mode='subprocess' needs a Python interpreter, and this process runs {exe or '?'!r}: "
            "set McpHttpConfig(python_executable=...) to the application's batch Python "
            "(mayapy, hython, Nuke's python)"
        )
    return exe


def build_catalog(components: Components) -> dict[str, Any]:
    """What the child serves without asking the host: the tools (and what it needs to run
    subprocess skills itself), which tools ``tools/list`` hides, the skills not analysed yet, the
    resources and templates, and the prompts. Analyses nothing: pending skills stay pending."""
    registry = components.tools
    registry.build_pending()
    catalog = components.skills.catalog if components.skills is not None else None
    local: dict[str, SkillTool] = {}
    pending: list[str] = []
    if catalog is not None:
        pending = catalog.pending
        waiting = set(pending)
        for known in catalog.skills:
            if known.name not in waiting:
                local.update((t.name, t) for t in catalog.tools_of(known.name) if t.execution == "subprocess")
    listed = {spec.name for spec in registry.listed()}
    tools: list[dict[str, Any]] = []
    hidden: list[str] = []
    for spec in registry:
        if spec.name not in listed:
            hidden.append(spec.name)
        entry: dict[str, Any] = {
            "wire": spec.wire(),
            "affinity": spec.affinity,
            "timeout": spec.timeout,
            "context": spec.wants_context is not None,
            "task": spec.task,
        }
        skill = local.get(spec.name)
        if skill is not None and spec.source == f"skill:{skill.skill}":
            entry["skill"] = {
                "name": skill.name,
                "description": skill.description,
                "input_schema": skill.input_schema,
                "output_schema": skill.output_schema,
                "annotations": skill.annotations,
                "affinity": skill.affinity,
                "execution": skill.execution,
                "timeout": skill.timeout,
                "skill": skill.skill,
                "source_file": str(skill.source_file) if skill.source_file is not None else None,
                "function": skill.function,
                "interpreter": skill.interpreter,
                "enum_params": dict(skill.enum_params),
            }
        tools.append(entry)
    resources = [
        {
            "uri": r.uri,
            "name": r.name,
            "description": r.description,
            "mime_type": r.mime_type,
            "title": r.title,
            "context": r.wants_context is not None,
        }
        for r in components.resources
    ]
    prompts = [
        {
            "name": p.name,
            "description": p.description,
            "title": p.title,
            "arguments": [(a.name, a.description, a.required) for a in p.arguments],
            "context": p.wants_context is not None,
        }
        for p in components.prompts
    ]
    return {"tools": tools, "hidden": hidden, "pending": pending, "resources": resources, "prompts": prompts}


class _Bridge:
    """The host's side of forwarded calls: an event loop thread running them through ``ToolCaller``."""

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
        self.stale = stale  # whether a call changed the registry since the child's catalogue
        self.resync = resync  # sends the child a new one (blocking: it waits for the ack)
        self.loop = asyncio.new_event_loop()
        self._asks: dict[int, asyncio.Future[tuple[str, Any]]] = {}  # touched on the loop only
        self._ask_ids = itertools.count(1)
        self._calls: dict[tuple[int, int], concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"mcp-embed-bridge:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, gen: int, send: Callable[[tuple[Any, ...]], None], msg: tuple[Any, ...]) -> None:
        """Run one request of the child's (``call``, ``read`` or ``prompt``) on the bridge loop."""
        cid = msg[1]
        fut = asyncio.run_coroutine_threadsafe(self._serve(send, msg), self.loop)
        key = (gen, cid)
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

    async def _serve(self, send: Callable[[tuple[Any, ...]], None], msg: tuple[Any, ...]) -> None:
        from mcp.shared.exceptions import MCPError

        from ...errors import McpError

        kind, cid = msg[0], msg[1]
        reply: tuple[Any, ...]
        try:
            if kind == "call":
                reply = ("result", cid, "ok", await self._call(send, *msg[1:]))
            elif kind == "read":
                reply = ("result", cid, "ok", await self._read_resource(*msg[2:]))
            elif kind == "prompt":
                reply = ("result", cid, "ok", await self._get_prompt(*msg[2:]))
            elif kind == "complete":
                reply = ("result", cid, "ok", await self._complete(*msg[2:]))
            elif kind == "skills":  # SEP-2640 methods: the host holds the skills (skills/extension.py)
                from ...skills.extension import answer

                reply = ("result", cid, "ok", await answer(self.components, *msg[2:]))
            else:
                reply = ("result", cid, "error", f"unknown request {kind!r}")
        except MCPError as exc:
            reply = ("result", cid, "mcp_error", (exc.error.code, exc.error.message, exc.error.data))
        except McpError as exc:
            reply = ("result", cid, "mcp_error", (exc.code, exc.message, exc.data))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                send(("result", cid, "cancelled", None))
            raise
        except Exception as exc:
            reply = ("result", cid, "error", f"{type(exc).__name__}: {exc}")
        if kind == "call" and self.stale():
            # Before the result: the tools a meta-tool just analysed are in the child when it answers.
            try:
                await asyncio.to_thread(self.resync)
            except Exception as exc:
                log.error("tool catalogue not re-sent: %s: %s", type(exc).__name__, exc)
        try:
            send(reply)
        except OSError as exc:  # the child went away; nobody is waiting
            log.debug("could not answer the server process: %s", exc)
        except Exception as exc:  # the value cannot be pickled: say so rather than never answer
            with contextlib.suppress(Exception):
                send(("result", cid, "error", f"the result cannot be sent to the server process: {exc}"))

    async def _call(
        self, send: Callable[[tuple[Any, ...]], None], cid: int, name: str, args: Any, meta: dict[str, Any]
    ) -> dict[str, Any]:
        from ...context import ToolContext

        async def notify(kind: str, params: dict[str, Any]) -> None:
            send(("notify", cid, kind, params))

        async def ask(method: str, params: dict[str, Any]) -> dict[str, Any]:
            """elicitation/create, sampling/createMessage: asked by the child on the call's session."""
            from mcp.shared.exceptions import MCPError, NoBackChannelError

            aid = next(self._ask_ids)
            fut: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
            self._asks[aid] = fut
            try:
                send(("ask", aid, cid, method, params))
                outcome, payload = await fut
            finally:
                self._asks.pop(aid, None)
            if outcome == "ok":
                return dict(payload)
            if outcome == "no_back_channel":
                raise NoBackChannelError(method)
            code, message, data = payload
            raise MCPError(code=code, message=message, data=data)

        level = meta.get("log_level")

        def make_context(emit: Callable[[str, dict[str, Any]], None] | None) -> ToolContext:
            return ToolContext(
                tool_name=name,
                request_id=meta.get("request_id"),
                session_id=meta.get("session_id"),
                progress_token=meta.get("progress_token"),
                principal=meta.get("principal"),
                emit=emit,
                protocol_version=meta.get("protocol_version"),
                client_capabilities=meta.get("client_capabilities"),
                input_responses=meta.get("input_responses"),
                request_state=meta.get("request_state"),
                request=ask if meta.get("ask") else None,
                loop=asyncio.get_running_loop(),
                log_level=(lambda: level) if level is not None else None,
            )

        return await self.caller._call(
            name,
            args,
            request_id=meta.get("request_id"),
            session_id=meta.get("session_id"),
            progress_token=meta.get("progress_token"),
            send=notify if meta.get("emit") else None,
            make_context=make_context,
            modern=bool(meta.get("modern")),
            principal=meta.get("principal"),
        )

    def answer(self, aid: int, outcome: str, payload: Any) -> None:
        """The child's answer to an ``ask`` (from the reader thread)."""

        def settle() -> None:
            fut = self._asks.get(aid)
            if fut is not None and not fut.done():
                fut.set_result((outcome, payload))

        with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
            self.loop.call_soon_threadsafe(settle)

    async def _read_resource(self, uri: str, args: dict[str, Any], meta: dict[str, Any]) -> Any:
        """The raw value of a resource reader (the child turns it into ``contents``)."""
        from ...protocol.handlers import call_user

        spec = next((r for r in self.components.resources if r.uri == uri), None)
        if spec is None:
            raise LookupError(f"the resource {uri!r} is no longer registered")
        kwargs = dict(args)
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = _context(spec.name, meta)
        return _picklable(await call_user(spec.read, spec.is_async, kwargs))

    async def _complete(self, *args: Any) -> list[str]:
        import inspect

        handler = self.components.completion
        if handler is None:
            return []
        if inspect.iscoroutinefunction(handler):
            values = await handler(*args)
        else:
            values = await asyncio.to_thread(handler, *args)
        return [str(v) for v in (values or [])]

    async def _get_prompt(self, name: str, args: dict[str, Any], meta: dict[str, Any]) -> Any:
        from ...protocol.handlers import call_user

        spec = self.components.prompts.get(name)
        if spec is None:
            raise LookupError(f"the prompt {name!r} is no longer registered")
        kwargs = dict(args)
        if spec.wants_context is not None:
            kwargs[spec.wants_context] = _context(spec.name, meta)
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


class SubprocessRuntime:
    """Runs one server in a child Python process; satisfies :class:`~mcp_embed.runtime.Runtime`."""

    def __init__(self, plan: Blueprint) -> None:
        self.plan = plan
        self.components = plan.components
        self.dispatcher = plan.dispatcher
        #: The child process keeps the audit log and metrics of what it serves.
        self.operations: Operations | None = None
        self.port = 0
        self.bound_host = ""
        #: The child's pid (0 before it is spawned).
        self.pid = 0
        #: Why the child is not running (it exited or was killed), None while it runs or after stop().
        self.reason: str | None = None
        self._gen = 0
        self._state_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._catalog_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._supervisor: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._error: str | None = None
        self._stopping = False
        self._closed = False
        self._bridge: _Bridge | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._detach_logs: Callable[[], None] | None = None
        self._catalog_seq = 0
        self._acks: dict[int, threading.Event] = {}
        self._exe = ""
        self._sent: dict[str, Any] | None = None
        self._sent_version = -1  # the registry's version when self._sent was built

    # -- control, from any thread -----------------------------------------------------------------

    def start(self) -> None:
        """Bind the port here (a port in use raises now), then spawn the child in the background."""
        cfg = self.plan.config
        self._exe = python_executable(cfg.python_executable)
        sock = bind_socket(cfg.host, self.port or cfg.port)
        self.bound_host, self.port = probe_address(sock)
        with self._state_lock:
            self._gen += 1
            gen = self._gen
            self._ready.clear()
            self._stopped.clear()
            self._error = None
            self.reason = None
            self._stopping = False
            self._closed = False
        if self._unsubscribe is None:
            self._unsubscribe = self.components.tools.subscribe(self._push_catalog)
        self._supervisor = threading.Thread(
            target=self._supervise,
            args=(sock, gen),
            name=f"mcp-embed-supervisor:{cfg.server_name}:{self.port}",
            daemon=True,
        )
        self._supervisor.start()

    def wait_ready(self, timeout: float | None) -> None:
        if not self._ready.wait(timeout):
            raise ServerStartError(f"the server process did not become ready within {timeout:g} s")
        if self._error is not None:
            raise ServerStartError(self._error)

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self._error is None and not self._stopped.is_set()

    @property
    def is_running(self) -> bool:
        return not self._stopped.is_set() and not self._stopping

    def join(self, timeout: float | None) -> bool:
        return self._stopped.wait(timeout)

    def stop(self, timeout: float) -> None:
        """End the child within ``timeout``: ask, then terminate, then kill; always reaped."""
        self._halt(timeout)
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None
        if self._detach_logs is not None:
            self._detach_logs()
            self._detach_logs = None

    def restart(self, timeout: float = 30.0) -> None:
        """Start a new child on the same port (after a crash, or to replace a running one)."""
        if self._closed:
            raise ServerStartError("this server was stopped; call start() on the server again")
        if not self._stopped.is_set():
            self._halt(1.0)
        self.start()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self._halt(1.0)
            raise

    def _halt(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._state_lock:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                self._send(("stop",))
            _end_process(proc, deadline)
        sup = self._supervisor
        if sup is not None and sup is not threading.current_thread():
            sup.join(max(0.05, deadline - time.monotonic()))
            if sup.is_alive():  # the child is gone; the supervisor is only closing pipes
                sup.join(1.0)
        self._stopped.set()
        self._ready.set()

    # -- the supervisor thread: spawn, connect, read until EOF, reap -------------------------------

    def _supervise(self, sock: socket.socket, gen: int) -> None:
        from multiprocessing.connection import Listener

        listener: Listener | None = None
        conn: Connection | None = None
        proc: subprocess.Popen[bytes] | None = None
        try:
            # Everything heavy happens here, not in start(): the SDK (ToolCaller), skill discovery,
            # pydantic schemas, the log file.
            cfg = self.plan.config
            if self._bridge is None:
                from ...protocol.caller import ToolCaller

                caller = ToolCaller(
                    self.components.tools, self.dispatcher, audit_arguments=cfg.audit_arguments
                )
                self._bridge = _Bridge(
                    caller, self.components, cfg.server_name, self._stale, self._sync_catalog
                )
            if self._detach_logs is None and cfg.enable_file_logging:
                try:
                    self._detach_logs = _attach_file_logging(cfg)
                except OSError as exc:  # the child's audit log meets the same folder and says so
                    log.debug("no log file in this process: %s", exc)
            catalog = self._sent = self._catalog()
            key = secrets.token_bytes(32)
            listener = Listener(authkey=key)
            with self._state_lock:
                if self._stopping or gen != self._gen:
                    return
                proc = self._spawn(sock, listener, key)
                self._proc = proc
                self.pid = proc.pid
            conn = _accept(listener, key, proc)
            if conn is None:
                raise ServerStartError(
                    f"the server process exited before it connected ({_describe_exit(proc.wait())})"
                )
            if sys.platform == "win32":
                where: dict[str, Any] = {"share": sock.share(proc.pid)}
            else:
                where = {"fd": sock.fileno()}
            init = {
                "app_name": self.plan.app_name,
                "config": self.plan.config,
                "catalog": catalog,
                "socket": where,
                "dispatcher": str(getattr(self.dispatcher, "name", "inline")),
                "host_pid": os.getpid(),
                "completion": self.components.completion is not None,
                "request_state_keys": self.plan.request_state_keys,
                "skills": self.components.serves_skills,
            }
            with self._send_lock:
                self._conn = conn
                self._catalog_seq += 1
                conn.send(("init", init))
            self._read(conn, gen)
        except ServerStartError as exc:
            self._error = str(exc)
        except Exception as exc:
            self._error = f"the server process failed: {type(exc).__name__}: {exc}"
            log.debug("supervisor failed", exc_info=True)
        finally:
            with self._send_lock:
                if self._conn is conn:
                    self._conn = None
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
            if listener is not None:
                with contextlib.suppress(OSError):
                    listener.close()
            with contextlib.suppress(OSError):
                sock.close()
            if self._bridge is not None:
                self._bridge.cancel_generation(gen)
            code = None
            if proc is not None:
                # EOF means the child is exiting; give it a moment, then make sure, and reap it.
                _end_process(proc, time.monotonic() + (0.5 if self._stopping else 2.0))
                code = proc.returncode
            if gen == self._gen:
                if not self._stopping:
                    why = self._error or (
                        f"the server process {_describe_exit(code)}" if code is not None else "it stopped"
                    )
                    if self._ready.is_set() and self._error is None:
                        log.error("the server process (pid %s) ended: %s", self.pid, why)
                    self.reason = why
                    if self._error is None and not self._ready.is_set():
                        self._error = why
                self._stopped.set()
                self._ready.set()

    def _spawn(self, sock: socket.socket, listener: Listener, key: bytes) -> subprocess.Popen[bytes]:
        import mcp_embed

        package_parent = str(Path(mcp_embed.__file__).resolve().parent.parent)
        boot = {
            "address": listener.address,
            "authkey": key.hex(),
            "path": [package_parent],
            "extra_path": [p for p in sys.path if p and os.path.isdir(p)],
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "host_pid": os.getpid(),
        }
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["pass_fds"] = (sock.fileno(),)
        try:
            proc = subprocess.Popen(
                [self._exe, "-c", _STUB],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                **kwargs,
            )
        except OSError as exc:
            raise ServerStartError(
                f"cannot start the server process with {self._exe!r}: {exc.strerror or exc}; "
                "set McpHttpConfig(python_executable=...)"
            ) from None
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(boot).encode() + b"\n")
            proc.stdin.close()
        except OSError:
            pass  # it died at once; the accept below sees that
        return proc

    def _read(self, conn: Connection, gen: int) -> None:
        bridge = self._bridge
        assert bridge is not None

        def send(msg: tuple[Any, ...]) -> None:
            with self._send_lock:
                conn.send(msg)

        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            kind = msg[0]
            if kind in ("call", "read", "prompt", "complete", "skills"):
                bridge.submit(gen, send, msg)
            elif kind == "cancel":
                bridge.cancel(gen, msg[1])
            elif kind == "resolve":
                bridge.offload(functools.partial(self._resolve, send, msg[1], msg[2]))
            elif kind == "answer":
                bridge.answer(msg[1], msg[2], msg[3])
            elif kind == "status":
                status = getattr(self.dispatcher, "status", None)
                with contextlib.suppress(Exception):
                    send(("status", dict(status()) if status is not None else {}))
            elif kind == "log":
                _log_from_child(msg[1])
            elif kind == "ack":
                event = self._acks.get(msg[1])
                if event is not None:
                    event.set()
            elif kind == "ready":
                log.info("server process %d is serving on port %d", self.pid, self.port)
                self._ready.set()
                if self._sent != build_catalog(self.components):  # changed while the child started
                    self._push_catalog()
            elif kind == "failed":
                self._error = str(msg[1])
                self._ready.set()

    def _send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock:
            if self._conn is None:
                raise ConnectionError("the server process is not connected")
            self._conn.send(msg)

    # -- the catalogue ------------------------------------------------------------------------------

    def _catalog(self) -> dict[str, Any]:
        self.plan.prepare()
        try:
            self._sent_version = self.components.tools.version
            return build_catalog(self.components)
        except Exception as exc:
            raise ServerStartError(f"a tool could not be built: {type(exc).__name__}: {exc}") from None

    def publish(self, event: Any) -> None:
        """``SkillServer`` notifications: the child tells its clients (lists are re-sent first)."""
        kind = type(event).__name__
        if kind in ("ResourcesListChanged", "PromptsListChanged"):
            self._push_catalog()
        elif kind == "ResourceUpdated":
            with contextlib.suppress(Exception):
                self._send(("event", "resource_updated", str(event.uri)))

    def _push_catalog(self) -> None:
        """Send the new catalogue and wait (briefly) until the child serves it."""
        if not self.is_ready:
            return
        with self._catalog_lock:
            try:
                version = self.components.tools.version
                catalog = build_catalog(self.components)
            except Exception as exc:
                log.error("tool catalogue not sent: %s: %s", type(exc).__name__, exc)
                return
            with self._send_lock:
                if self._conn is None:
                    return
                self._sent, self._sent_version = catalog, version
                self._catalog_seq += 1
                seq = self._catalog_seq
                event = self._acks[seq] = threading.Event()
                try:
                    self._conn.send(("catalog", seq, catalog))
                except OSError:
                    self._acks.pop(seq, None)
                    return
        if threading.current_thread() is not self._supervisor and not event.wait(_ACK_TIMEOUT):
            log.warning("the server process did not confirm the new tool list within %.0f s", _ACK_TIMEOUT)
        self._acks.pop(seq, None)

    def _stale(self) -> bool:
        return self.components.tools.version != self._sent_version

    def _sync_catalog(self) -> None:
        """Re-send the catalogue if the registry changed since it was built, even where nothing was
        notified (a hidden skill analysed on demand adds its tools quietly)."""
        if self._stale():
            self._push_catalog()

    def _resolve(self, send: Callable[[tuple[Any, ...]], None], rid: int, name: str) -> None:
        """The child missed ``name``: analyse its skill if pending, send the new catalogue, then answer."""
        try:
            self.components.tools.get(name)  # the SkillLoader's miss hook analyses the skill
            self._sync_catalog()
        except Exception as exc:  # never leave the child waiting
            log.error(
                "could not look up tool %r for the server process: %s: %s", name, type(exc).__name__, exc
            )
        with contextlib.suppress(Exception):
            send(("resolved", rid))


def _accept(listener: Listener, key: bytes, proc: subprocess.Popen[bytes]) -> Connection | None:
    """The child's connection, or None if it exited first (a watcher wakes ``accept`` then)."""
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    gone = threading.Event()
    connected = threading.Event()

    def watch() -> None:
        while not connected.is_set():
            if proc.poll() is not None:
                gone.set()
                with contextlib.suppress(Exception):
                    Client(listener.address, authkey=key).close()  # wakes accept()
                return
            connected.wait(0.05)

    threading.Thread(target=watch, name="mcp-embed-accept-watch", daemon=True).start()
    try:
        while True:
            try:
                conn = listener.accept()
            except AuthenticationError:
                log.warning("refused a connection to the server process pipe: wrong key")
                continue
            if gone.is_set():
                conn.close()
                return None
            return conn
    finally:
        connected.set()


def _end_process(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until ``deadline``, then terminate, then kill; always reap (no zombie)."""
    left = deadline - time.monotonic()
    try:
        proc.wait(max(0.0, left * 0.7))
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(max(0.05, deadline - time.monotonic()))
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


def _context(name: str, meta: dict[str, Any]) -> Any:
    """A resource reader's or prompt's context, from what the child sent (no channel back)."""
    from ...context import ToolContext

    return ToolContext(
        tool_name=name,
        request_id=meta.get("request_id"),
        session_id=meta.get("session_id"),
        principal=meta.get("principal"),
        protocol_version=meta.get("protocol_version"),
        client_capabilities=meta.get("client_capabilities"),
        input_responses=meta.get("input_responses"),
        request_state=meta.get("request_state"),
    )


def _picklable(value: Any) -> Any:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, list):
        return [_picklable(v) for v in value]
    return value


def _log_from_child(fields: dict[str, Any]) -> None:
    """Re-emit a child's log record here: the same handlers, files and format as dedicated mode."""
    record = logging.makeLogRecord(fields)
    logging.getLogger(record.name).handle(record)


def _attach_file_logging(cfg: Any) -> Callable[[], None]:
    from ...logs import attach_file_logging
    from ...ops.audit import default_log_dir

    log_dir = Path(cfg.log_dir) if cfg.log_dir else default_log_dir(cfg.server_name)
    return attach_file_logging(
        log_dir, level=cfg.log_level, fmt=cfg.log_format, max_bytes=cfg.log_max_bytes, backups=cfg.log_backups
    )
