"""``ToolContext``: what a running tool may know and do, from any thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ToolContext"]


class ToolContext:
    """Handed to a tool that declares a parameter annotated ``ToolContext``.

    Every method is safe to call from the tool's own thread (a worker, the host's main thread,
    or the event loop). Progress and log messages are delivered to the client in order, before
    the tool's result.
    """

    __slots__ = (
        "_cancelled",
        "_emit",
        "principal",
        "progress_token",
        "request_id",
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
    ) -> None:
        self.tool_name = tool_name
        self.request_id = request_id
        self.session_id = session_id
        self.progress_token = progress_token
        self.principal = principal
        self._emit = emit
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
            params["message"] = message
        self._emit("progress", params)

    def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """Send a ``notifications/message`` log entry to the client, tied to this call."""
        if self._emit is None:
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        self._emit("log", params)

    def _cancel(self) -> None:
        self._cancelled.set()
