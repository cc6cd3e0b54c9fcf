"""mcp-embed: embed a remote MCP HTTP server in any Python host.

``import mcp_embed`` is cheap: names load on first use, and the MCP SDK and hypercorn load when
a server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr
from ._version import __version__

if TYPE_CHECKING:
    from .auth.config import ApiKey, ApiKeyConfig, OAuthConfig
    from .config import McpHttpConfig
    from .content import (
        Audio,
        ElicitInput,
        EmbeddedResource,
        Image,
        InputRequired,
        Message,
        RootsInput,
        SampleInput,
        Text,
    )
    from .context import Elicited, Sampled, ToolContext
    from .errors import ConfigError, McpEmbedError, McpError, PortInUseError, ServerStartError, ToolError
    from .events import EventStore, InMemoryEventStore
    from .gateway import Gateway, create_gateway
    from .handle import ServerHandle
    from .server import SkillServer, create_skill_server
    from .tasks import InMemoryTaskStore, Task, TaskStore, TaskSupport

__all__ = [
    "ApiKey",
    "ApiKeyConfig",
    "Audio",
    "ConfigError",
    "ElicitInput",
    "Elicited",
    "EmbeddedResource",
    "EventStore",
    "Gateway",
    "Image",
    "InMemoryEventStore",
    "InMemoryTaskStore",
    "InputRequired",
    "McpEmbedError",
    "McpError",
    "McpHttpConfig",
    "Message",
    "OAuthConfig",
    "PortInUseError",
    "RootsInput",
    "SampleInput",
    "Sampled",
    "ServerHandle",
    "ServerStartError",
    "SkillServer",
    "Task",
    "TaskStore",
    "TaskSupport",
    "Text",
    "ToolContext",
    "ToolError",
    "__version__",
    "create_gateway",
    "create_skill_server",
]

_LAZY = {
    "McpHttpConfig": "config",
    "ApiKey": "auth.config",
    "ApiKeyConfig": "auth.config",
    "OAuthConfig": "auth.config",
    "Audio": "content",
    "ElicitInput": "content",
    "EmbeddedResource": "content",
    "Image": "content",
    "InputRequired": "content",
    "Message": "content",
    "RootsInput": "content",
    "SampleInput": "content",
    "Text": "content",
    "Elicited": "context",
    "Sampled": "context",
    "McpError": "errors",
    "ToolContext": "context",
    "ConfigError": "errors",
    "McpEmbedError": "errors",
    "PortInUseError": "errors",
    "ServerStartError": "errors",
    "ToolError": "errors",
    "EventStore": "events",
    "InMemoryEventStore": "events",
    "Gateway": "gateway",
    "create_gateway": "gateway",
    "ServerHandle": "handle",
    "SkillServer": "server",
    "create_skill_server": "server",
    "InMemoryTaskStore": "tasks",
    "Task": "tasks",
    "TaskStore": "tasks",
    "TaskSupport": "tasks",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
