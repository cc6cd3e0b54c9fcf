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

One connection carries everything, multiplexed by request id, as the typed messages of ``wire.py``:
``Call``/``Cancel``/``Log``/``Ready``/``Resolve`` from the child, ``Result``/``Notify``/``Catalog``/
``Resolved``/``Stop`` from the host. A reader thread on each side owns ``recv``; writes are
serialised by the channel (a message is one ``send``). Forwarded requests run on the host in
``bridge.py``; the catalogue both sides share is ``catalog.py``.

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

import contextlib
import functools
import logging
import os
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
from . import wire
from .bridge import Bridge
from .catalog import build_catalog
from .process import accept, describe_exit, end_process, python_executable, spawn

if TYPE_CHECKING:
    import socket
    from multiprocessing.connection import Listener, _ConnectionBase

    # A PipeConnection on Windows, a Connection elsewhere: type against their common base.
    Connection = _ConnectionBase

    from ...assemble import Blueprint
    from ...ops.audit import Operations

log = get_logger("runtime")

__all__ = ["SubprocessRuntime", "build_catalog"]

_ACK_TIMEOUT = 2.0  # how long add_tool waits for the child to apply a new catalogue


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
        self._pid = 0  # the child's, once spawned
        #: Why the child is not running (it exited or was killed), None while it runs or after stop().
        self.reason: str | None = None
        self._gen = 0
        self._state_lock = threading.Lock()
        self._send_lock = threading.Lock()  # guards _channel and _catalog_seq
        self._catalog_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: wire.Channel | None = None
        self._supervisor: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._error: str | None = None
        self._stopping = False
        self._closed = False
        self._bridge: Bridge | None = None
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

    @property
    def pid(self) -> int | None:
        """The child's pid (None before it is spawned)."""
        return self._pid or None

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
                self._send(wire.Stop())
            end_process(proc, deadline)
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
                self._bridge = Bridge(
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
                proc = spawn(self._exe, sock, listener, key)
                self._proc = proc
                self._pid = proc.pid
            conn = accept(listener, key, proc)
            if conn is None:
                raise ServerStartError(
                    f"the server process exited before it connected ({describe_exit(proc.wait())})"
                )
            if sys.platform == "win32":
                where: dict[str, Any] = {"share": sock.share(proc.pid)}
            else:
                where = {"fd": sock.fileno()}
            keys = self.plan.request_state_keys
            init = wire.Init(
                app_name=self.plan.app_name,
                config=self.plan.config,
                catalog=catalog,
                socket=where,
                dispatcher=self.dispatcher.name,
                host_pid=os.getpid(),
                completion=self.components.completion is not None,
                request_state_keys=list(keys) if keys else None,
                skills=self.components.serves_skills,
            )
            channel = wire.Channel(conn)
            with self._send_lock:
                self._channel = channel
                self._catalog_seq += 1
                channel.send(init)
            self._read(channel, gen)
        except ServerStartError as exc:
            self._error = str(exc)
        except Exception as exc:
            self._error = f"the server process failed: {type(exc).__name__}: {exc}"
            log.debug("supervisor failed", exc_info=True)
        finally:
            with self._send_lock:
                if self._channel is not None and self._channel.conn is conn:
                    self._channel = None
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
                end_process(proc, time.monotonic() + (0.5 if self._stopping else 2.0))
                code = proc.returncode
            if gen == self._gen:
                if not self._stopping:
                    why = self._error or (
                        f"the server process {describe_exit(code)}" if code is not None else "it stopped"
                    )
                    if self._ready.is_set() and self._error is None:
                        log.error("the server process (pid %s) ended: %s", self.pid, why)
                    self.reason = why
                    if self._error is None and not self._ready.is_set():
                        self._error = why
                self._stopped.set()
                self._ready.set()

    def _read(self, channel: wire.Channel, gen: int) -> None:
        bridge = self._bridge
        assert bridge is not None
        send = channel.send
        while True:
            try:
                msg = channel.recv()
            except (EOFError, OSError):
                return
            if isinstance(msg, (wire.Call, wire.Read, wire.GetPrompt, wire.Complete, wire.SkillsRequest)):
                bridge.submit(gen, send, msg)
            elif isinstance(msg, wire.Cancel):
                bridge.cancel(gen, msg.cid)
            elif isinstance(msg, wire.Resolve):
                bridge.offload(functools.partial(self._resolve, send, msg.rid, msg.name))
            elif isinstance(msg, wire.Answer):
                bridge.answer(msg.aid, msg.outcome)
            elif isinstance(msg, wire.StatusPoll):
                status = self.dispatcher.status
                with contextlib.suppress(Exception):
                    send(wire.Status(dict(status()) if status is not None else {}))
            elif isinstance(msg, wire.Log):
                _log_from_child(msg.fields)
            elif isinstance(msg, wire.Ack):
                event = self._acks.get(msg.seq)
                if event is not None:
                    event.set()
            elif isinstance(msg, wire.Ready):
                log.info("server process %d is serving on port %d", self.pid, self.port)
                self._ready.set()
                if self._sent != build_catalog(self.components):  # changed while the child started
                    self._push_catalog()
            elif isinstance(msg, wire.Failed):
                self._error = msg.message
                self._ready.set()

    def _send(self, msg: wire.Message) -> None:
        channel = self._channel
        if channel is None:
            raise ConnectionError("the server process is not connected")
        channel.send(msg)

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
                self._send(wire.ResourceUpdated(str(event.uri)))

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
                channel = self._channel
                if channel is None:
                    return
                self._sent, self._sent_version = catalog, version
                self._catalog_seq += 1
                seq = self._catalog_seq
                event = self._acks[seq] = threading.Event()
                try:
                    channel.send(wire.Catalog(seq, catalog))
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

    def _resolve(self, send: Callable[[wire.Message], None], rid: int, name: str) -> None:
        """The child missed ``name``: analyse its skill if pending, send the new catalogue, then answer."""
        try:
            self.components.tools.get(name)  # the SkillLoader's miss hook analyses the skill
            self._sync_catalog()
        except Exception as exc:  # never leave the child waiting
            log.error(
                "could not look up tool %r for the server process: %s: %s", name, type(exc).__name__, exc
            )
        with contextlib.suppress(Exception):
            send(wire.Resolved(rid))


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
