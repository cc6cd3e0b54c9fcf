"""``spawn_mode="dedicated"``: hypercorn on its own asyncio loop in a thread of its own.

The listening socket is bound in the caller's thread, so a port in use fails at once with a
clear error and ``port=0`` is known before ``start()`` returns. Everything heavy (the SDK,
hypercorn, pydantic schemas) is imported in the server thread. No signal handler is installed:
hypercorn gets a ``shutdown_trigger``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from ..errors import PortInUseError, ServerStartError
from ..logs import get_logger

if TYPE_CHECKING:
    from ..assemble import Blueprint
    from ..http.app import App
    from ..ops.audit import Operations
    from ..protocol.handlers import Live

log = get_logger("runtime")

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on host:port. Raises ``PortInUseError`` or ``ServerStartError``."""
    # An ASCII name goes as bytes: a str is always run through the "idna" codec, and importing it
    # (with its stringprep tables) costs ~100 KB of memory for the same bytes.
    name: str | bytes | None = (host.encode("ascii") if host.isascii() else host) or None
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerStartError(f"cannot bind {host}:{port}: the host does not resolve ({exc})") from None
    family, _, proto, _, addr = infos[0]
    # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
    try:
        if sys.platform == "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)) or (
            sys.platform == "win32" and exc.errno == errno.EACCES
        ):
            raise PortInUseError(host, port) from None
        raise ServerStartError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def probe_address(sock: socket.socket) -> tuple[str, int]:
    """Where this process can reach the socket (a wildcard bind is probed on loopback)."""
    addr = sock.getsockname()
    host, port = addr[0], addr[1]
    return _WILDCARDS.get(host, host), port


def _hypercorn_logger() -> Any:
    # hypercorn's "Running on ... (CTRL + C to quit)" is wrong inside a host; keep its warnings.
    logger = get_logger("hypercorn")
    if logger.level == 0:
        logger.setLevel(30)
    return logger


class ThreadRuntime:
    """Runs one server in a daemon thread until ``stop()``."""

    def __init__(self, plan: Blueprint) -> None:
        self.plan = plan
        #: This run's audit log and metrics, once the app is built.
        self.operations: Operations | None = None
        self.reason: str | None = None  # a thread does not die on its own: stop() ends it
        self._live: Live | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._main_task: asyncio.Task[Any] | None = None
        self._app: App | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        self.bound_host = ""

    # -- control, from any thread -----------------------------------------------------------------

    def start(self) -> None:
        cfg = self.plan.config
        self._sock = bind_socket(cfg.host, cfg.port)
        self.bound_host, self.port = probe_address(self._sock)
        self._thread = threading.Thread(
            target=self._thread_main, name=f"mcp-embed:{cfg.server_name}:{self.port}", daemon=True
        )
        self._thread.start()

    def wait_ready(self, timeout: float | None) -> None:
        if not self._ready.wait(timeout):
            raise ServerStartError(f"the server did not become ready within {timeout:g} s")
        if self._error is not None:
            err = self._error
            if isinstance(err, ServerStartError):
                raise err
            raise ServerStartError(f"the server failed to start: {type(err).__name__}: {err}") from err

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self._error is None and not self._stopped.is_set()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    def stop(self, timeout: float) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        if loop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(self._begin_stop)
            # Leave time for the hard stop below if the graceful one overruns.
            thread.join(max(0.0, (deadline - time.monotonic()) * 0.8))
            if thread.is_alive() and self._main_task is not None:
                log.warning("graceful stop overran; cancelling the server task")
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._main_task.cancel)
                thread.join(max(0.0, deadline - time.monotonic()))
        elif thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.error("the server thread did not stop within %.1f s", timeout)
            return
        self._close_socket()
        self._thread = None

    def join(self, timeout: float | None) -> bool:
        return self._stopped.wait(timeout)

    @property
    def pid(self) -> int:
        return os.getpid()

    def restart(self, timeout: float) -> None:
        raise ServerStartError("restart() needs spawn_mode='subprocess'; stop() and start() the server")

    def publish(self, event: Any) -> None:
        """Send a change notification (an SDK subscription event) to the connected clients."""
        live = self._live
        if live is not None:
            live.notify(event)

    # -- the server thread ------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
            elif not isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
                log.error("the server stopped on an error: %s: %s", type(exc).__name__, exc)
        finally:
            self._close_socket()
            ops = self.operations
            if ops is not None:
                ops.close()  # drain the audit log before stop() returns: nothing queued is lost
            self._stopped.set()
            self._ready.set()

    async def _serve(self) -> None:
        from hypercorn.asyncio.run import worker_serve
        from hypercorn.config import Config, Sockets
        from hypercorn.utils import wrap_app

        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._main_task = asyncio.current_task()
        assert self._sock is not None

        def on_startup() -> None:
            asyncio.get_running_loop().create_task(self._probe())

        from ..assemble import assemble

        built = assemble(self.plan, on_startup=on_startup)
        app = self._app = built.app
        self.operations, self._live = built.operations, built.live

        hc = Config()
        hc.accesslog = None
        hc.errorlog = _hypercorn_logger()
        hc.graceful_timeout = 0.5
        hc.keep_alive_timeout = 30
        hc.h11_max_incomplete_size = 64 * 1024
        hc.include_server_header = False
        sockets = Sockets(secure_sockets=[], insecure_sockets=[self._sock], quic_sockets=[])
        try:
            if built.shared is not None:
                await built.shared.check()  # before ready: start() fails naming the URL, not its password
            await worker_serve(
                wrap_app(cast(Any, app), hc.wsgi_max_body_size, "asgi"),
                hc,
                sockets=sockets,
                shutdown_trigger=self._stop_event.wait,
            )
        finally:
            if built.shared is not None:
                await built.shared.close()

    async def _probe(self) -> None:
        """Ready means the app answers ``/health`` on the real socket, not that a thread started."""
        host = self.bound_host
        for _ in range(200):  # bounded: about 2 s
            try:
                reader, writer = await asyncio.open_connection(host, self.port)
                hosthdr = f"[{host}]" if ":" in host else host
                request = f"GET /health HTTP/1.1\r\nHost: {hosthdr}:{self.port}\r\nConnection: close\r\n\r\n"
                writer.write(request.encode())
                await writer.drain()
                status = await asyncio.wait_for(reader.readline(), 2)
                writer.close()
                if b" 200 " in status:
                    self._ready.set()
                    return
                log.error("readiness probe got %r", status[:80])
                break
            except OSError:
                await asyncio.sleep(0.01)
        self._error = ServerStartError(f"the server on port {self.port} did not answer its readiness probe")
        self._ready.set()
        self._begin_stop()

    def _begin_stop(self) -> None:
        if self._app is not None:
            n = self._app.cancel_requests()
            if n:
                log.debug("cancelled %d open request(s) before shutdown", n)
        if self._stop_event is not None:
            self._stop_event.set()

    def _close_socket(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
