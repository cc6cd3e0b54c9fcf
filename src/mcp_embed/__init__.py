"""mcp-embed: embed a remote MCP HTTP server in any Python host.

``import mcp_embed`` is cheap: names load on first use, and the MCP SDK and hypercorn load when
a server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .config import McpHttpConfig
    from .context import ToolContext
    from .errors import ConfigError, McpEmbedError, PortInUseError, ServerStartError, ToolError
    from .events import EventStore, InMemoryEventStore
    from .handle import ServerHandle
    from .server import SkillServer, create_skill_server

__all__ = [
    "ConfigError",
    "EventStore",
    "InMemoryEventStore",
    "McpEmbedError",
    "McpHttpConfig",
    "PortInUseError",
    "ServerHandle",
    "ServerStartError",
    "SkillServer",
    "ToolContext",
    "ToolError",
    "__version__",
    "create_skill_server",
]

_LAZY = {
    "McpHttpConfig": "config",
    "ToolContext": "context",
    "ConfigError": "errors",
    "McpEmbedError": "errors",
    "PortInUseError": "errors",
    "ServerStartError": "errors",
    "ToolError": "errors",
    "EventStore": "events",
    "InMemoryEventStore": "events",
    "ServerHandle": "handle",
    "SkillServer": "server",
    "create_skill_server": "server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_embed' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
