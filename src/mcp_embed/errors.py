"""Exceptions raised by mcp-embed's public API."""

from __future__ import annotations

__all__ = ["ConfigError", "McpEmbedError", "PortInUseError", "ServerStartError", "ToolError"]


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
        shown = f"[{host}]" if ":" in host else host
        super().__init__(
            f"cannot bind {shown}:{port}: the address is already in use. "
            f"Stop the other server, pick another port, or pass port=0 to let the OS choose one."
        )


class ToolError(McpEmbedError):
    """Raise from a tool to return a clean ``isError`` result with this message (no traceback)."""
