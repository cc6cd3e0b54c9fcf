"""Where the server runs: a dedicated thread (``runtime.thread``) or a child process
(``runtime.subprocess``), both behind the small :class:`Runtime` interface ``ServerHandle`` holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..ops.audit import Operations

__all__ = ["Runtime"]


class Runtime(Protocol):
    """One run of a server, whatever hosts it. ``port`` and ``bound_host`` are known after ``start()``."""

    port: int
    bound_host: str
    #: This run's audit log and metrics where this process keeps them, else None.
    operations: Operations | None
    #: Why it is not running (it died), None while it runs or after ``stop()``.
    reason: str | None

    def start(self) -> None: ...

    def wait_ready(self, timeout: float | None) -> None: ...

    @property
    def is_ready(self) -> bool: ...

    @property
    def is_running(self) -> bool: ...

    def stop(self, timeout: float) -> None: ...

    def join(self, timeout: float | None) -> bool: ...

    @property
    def pid(self) -> int | None:
        """The process serving HTTP (None: not spawned yet)."""

    def restart(self, timeout: float) -> None:
        """Serve again on the same port after the server died; raises where that cannot be."""

    def publish(self, event: Any) -> None:
        """Tell connected clients what changed (an SDK subscription event)."""
