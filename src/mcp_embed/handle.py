"""``ServerHandle``: what ``start()`` returns to the host."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .logs import get_logger

if TYPE_CHECKING:
    from .config import McpHttpConfig
    from .dispatch import Dispatching
    from .instances import Registration
    from .runtime import Runtime

__all__ = ["ServerHandle"]

log = get_logger("server")


class ServerHandle:
    """A running server. Stop it with ``stop()`` or use it as a context manager."""

    def __init__(
        self,
        runtime: Runtime,
        config: McpHttpConfig,
        *,
        dispatcher: Dispatching,
        app_name: str | None = None,
    ) -> None:
        self._runtime = runtime
        self._config = config
        self._dispatcher = dispatcher
        self._stop_lock = threading.Lock()
        # Listed among the running instances once it serves (config.register), until stop().
        self._registration = self._register(app_name) if app_name and config.register else None

    def _register(self, app_name: str) -> Registration | None:
        from ._version import __version__
        from .instances import start_registration

        redis_url = self._config.redis_url
        try:
            return start_registration(
                server_name=self._config.server_name,
                app_name=app_name,
                url=self.mcp_url(),
                version=__version__,
                host=self._config.instance_host,
                redis_url=redis_url.get_secret_value() if redis_url is not None else None,
                alive=lambda: self._runtime.is_running and self._runtime.is_ready,
            )
        except Exception as exc:  # a listing is a convenience: it never fails a start
            log.warning("this server is not listed among the running instances: %s", exc)
            return None

    @property
    def port(self) -> int:
        """The bound TCP port (the OS-assigned one when ``port=0``)."""
        return self._runtime.port

    @property
    def host(self) -> str:
        """A host this machine reaches the server on (loopback for a wildcard bind)."""
        return self._runtime.bound_host

    @property
    def bind_addr(self) -> str:
        """The address the socket is bound to, as ``host:port`` (a wildcard bind stays ``0.0.0.0``;
        :attr:`url` is where to connect)."""
        host = self._config.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL clients use: ``public_url`` when set, else a reachable local URL."""
        if self._config.public_url:
            return self._config.public_url
        return self.local_url

    @property
    def local_url(self) -> str:
        """The base URL on this machine, never ``0.0.0.0``."""
        host = self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def mcp_url(self) -> str:
        """The Streamable HTTP endpoint URL to give to clients."""
        return self.url + self._config.endpoint_path

    def sse_url(self) -> str:
        """The legacy HTTP+SSE endpoint URL (``enable_sse``)."""
        return self.url + "/sse"

    @property
    def is_running(self) -> bool:
        """True while the server thread is alive and has not been stopped."""
        return self._runtime.is_running

    @property
    def is_ready(self) -> bool:
        return self._runtime.is_ready

    @property
    def reason(self) -> str | None:
        """Why the server is not running (``spawn_mode="subprocess"``: the child exited or was
        killed), or None while it runs or after a plain ``stop()``."""
        return self._runtime.reason

    @property
    def pid(self) -> int | None:
        """The process serving HTTP: this one (dedicated), or the child (subprocess; None until spawned)."""
        return self._runtime.pid

    def restart(self, timeout: float = 30.0) -> ServerHandle:
        """Start the server process again (``spawn_mode="subprocess"``), on the same port, e.g.
        after ``is_running`` turned False because the child crashed. Returns once it answers."""
        self._runtime.restart(timeout)
        self._listed_now()
        return self

    def wait_ready(self, timeout: float | None = 30.0) -> ServerHandle:
        """Block until the server answers, or raise ``ServerStartError`` with the reason."""
        self._runtime.wait_ready(timeout)
        self._listed_now()
        return self

    def _listed_now(self) -> None:
        # Ready: write the record at once rather than at the heartbeat thread's next look.
        registration = self._registration
        if registration is not None and not registration.listed:
            registration.refresh()

    @property
    def instance_id(self) -> str | None:
        """This server's id among the running instances (``mcp-embed instances``), or None when it
        is not listed (``register=False``, a registry that could not be opened, or stopped)."""
        registration = self._registration
        return registration.id if registration is not None else None

    def set_metadata(self, **values: Any) -> None:
        """Tell whoever lists the running instances about this one: ``set_metadata(scene="shot_010.ma")``.

        Merged into the instance's metadata (JSON values only: ``TypeError``/``ValueError`` otherwise)
        and written by the registry's own thread, so this never waits on the registry. Without a
        listing (``register=False``) the values are checked and dropped.
        """
        registration = self._registration
        if registration is not None:
            registration.set_metadata(**values)
        else:
            from .instances import check_metadata

            check_metadata(values)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops. Returns False if ``timeout`` passed first."""
        return self._runtime.join(timeout)

    @property
    def dispatcher(self) -> str:
        """The name of the dispatcher serving ``affinity="main"`` tools (``"qt"``, ``"inline"``, ...)."""
        return self._dispatcher.name

    def pump(self, budget_ms: float = 8.0) -> int:
        """Run queued ``affinity="main"`` tools on the calling thread for up to ``budget_ms``.

        For ``dispatcher="manual"``: call it from the host's main thread on every tick of the
        host's own loop. Runs at least one job when any is waiting, never re-enters itself, and
        returns how many ran (0 when idle, or with a dispatcher that has no queue).
        """
        pump = self._dispatcher.pump
        return int(pump(budget_ms)) if pump is not None else 0

    def main_thread_status(self) -> dict[str, Any]:
        """What ``/health`` reports as ``main_thread``: busy_for_s, queue_depth, running, wedged."""
        status = self._dispatcher.status
        return dict(status()) if status is not None else {}

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the server: open streams are closed, calls in flight cancelled, queued main-thread
        calls dropped and host hooks removed. Idempotent; call it from the add-on's unload hook."""
        with self._stop_lock:
            registration, self._registration = self._registration, None
            if registration is not None:  # unlisted first: nobody routes to a server that is going
                registration.close()
            self._runtime.stop(timeout)
            self._dispatcher.close()

    def shutdown(self, timeout: float = 1.0) -> None:
        """:meth:`stop`, by the name dcc-mcp-core's guide uses."""
        self.stop(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<ServerHandle {self.mcp_url()} {state}>"
