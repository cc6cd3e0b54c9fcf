"""Exceptions raised by mcp-embed's public API."""

from __future__ import annotations

from typing import Any

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "ConfigError",
    "McpEmbedError",
    "McpError",
    "PortInUseError",
    "ServerStartError",
    "ToolError",
]

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021


class McpEmbedError(Exception):
    """Base class of every error mcp-embed raises on purpose."""


class ConfigError(McpEmbedError, ValueError):
    """A configuration value is invalid. The message names the field, the value and what is allowed."""


class ServerStartError(McpEmbedError, RuntimeError):
    """The server could not start. Raised in the thread that called ``start()``."""


class PortInUseError(ServerStartError, OSError):
    """The requested host:port is already bound by another socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(self._message("port=0"))

    @property
    def cli_message(self) -> str:
        """The message with the command line's spelling of the fix (``--port 0``)."""
        return self._message("--port 0")

    def _message(self, any_port: str) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"cannot bind {shown}:{self.port}: the address is already in use. "
            f"Stop the other server, pick another port, or pass {any_port} to let the OS choose one."
        )


class ToolError(McpEmbedError):
    """Raise from a tool to return a clean ``isError`` result with this message (no traceback)."""


class McpError(McpEmbedError):
    """Raise from a tool, prompt or resource reader to answer with this JSON-RPC error.

    Any other exception from a tool becomes an ``isError`` result; raise this when the request
    itself cannot be served, e.g. ``McpError(MISSING_REQUIRED_CLIENT_CAPABILITY, "needs
    sampling", {"requiredCapabilities": {"sampling": {}}})``. ``ctx.elicit()``/``ctx.sample()``
    raise it when the client answers with an error.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        from ._jsonsafe import plain, safe_str

        super().__init__(code, message, data)
        self.code = code
        self.message = safe_str(message)  # sent as it is: what JSON cannot hold made text
        self.data = plain(data)

    def __str__(self) -> str:
        return f"{self.message} (JSON-RPC error {self.code})"
