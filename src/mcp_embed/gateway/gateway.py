"""``create_gateway``: one MCP server fronting every registered instance.

The gateway is an mcp-embed server (``create_skill_server("gateway")``), so the guard, CORS,
auth, audit, allow-list and fast path apply to it as to any host's. Its tools are the instances'
tools under a per-instance prefix, added and removed while it runs, plus ``list_instances``; its
resources and prompts are theirs likewise (:mod:`.mirror`).
It does not register itself: it is not a host, and a gateway listing itself would proxy its own
proxies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import McpHttpConfig
from ..logs import get_logger
from .dispatcher import GatewayDispatcher
from .hub import Hub

if TYPE_CHECKING:
    from .. import SkillServer
    from ..handle import ServerHandle
    from ..instances import Instance, Registry

__all__ = ["Gateway", "create_gateway"]

log = get_logger("gateway")


class Gateway:
    """The gateway server. Build it with :func:`create_gateway`; ``start()`` serves."""

    def __init__(self, config: McpHttpConfig, registry: Registry | None, poll_interval: float) -> None:
        from .. import create_skill_server  # through the face, as the CLI does

        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        config = config.model_copy(update={"register": False})  # see the module's docstring
        self._own_registry = registry is None
        self._registry = registry
        self.poll_interval = poll_interval
        self.server: SkillServer = create_skill_server("gateway", config)
        self._handle: ServerHandle | None = None
        self.hub = Hub(
            self.server.components, lambda: self.registry.list(), poll_interval, is_self=self._is_self
        )
        self.server.dispatcher = GatewayDispatcher(self.hub)

        async def list_instances() -> list[dict[str, Any]]:
            """The instances behind this gateway: prefix, app name, host, pid, URL, metadata, and the
            tools, resources and prompts each serves here."""
            return self.hub.describe()

        self.server.add_tool(list_instances, name="list_instances")

    @property
    def registry(self) -> Registry:
        """The registry read (opened on first use when none was given)."""
        if self._registry is None:
            from ..instances import open_registry

            redis_url = self.server.config.redis_url
            self._registry = open_registry(redis_url=redis_url.get_secret_value() if redis_url else None)
        return self._registry

    def _is_self(self, instance: Instance) -> bool:
        handle = self._handle
        return handle is not None and instance.url == handle.mcp_url()

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> ServerHandle:
        """Serve; returns the server's :class:`ServerHandle` (``stop()`` stops the gateway).

        Raises :class:`PortInUseError` when the port is taken (another gateway serves), like
        any server. The registry is read once before this returns, so the first ``tools/list``
        already has every live instance's tools; then every ``poll_interval`` seconds.
        """
        handle = self.server.start(wait=wait, timeout=timeout)
        self._handle = handle
        try:
            self.hub.poll_now(timeout)
        except Exception as exc:  # the watcher retries; a slow registry must not fail the start
            log.warning("gateway: first registry read failed: %s: %s", type(exc).__name__, exc)
        self.hub.watch()
        return handle

    def stop(self) -> None:
        """Stop serving (the handle's ``stop()`` does the same) and close a registry opened here."""
        if self._handle is not None:
            self._handle.stop()
        if self._own_registry and self._registry is not None:
            self._registry.close()
            self._registry = None

    @property
    def instances(self) -> list[dict[str, Any]]:
        """What ``list_instances`` returns: the instances served now."""
        return self.hub.describe()


def create_gateway(
    config: McpHttpConfig | None = None,
    *,
    registry: Registry | None = None,
    poll_interval: float = 1.0,
) -> Gateway:
    """Create the gateway: one MCP server whose tools are every registered instance's.

    ``config`` is the gateway's own (default 127.0.0.1:8765; auth, CORS and ``allowed_tools``
    apply to it as to any server). ``registry`` is where instances are listed (default: the one
    ``open_registry`` opens for ``config.redis_url``: Redis when set, else the runtime folder).
    The registry is read every ``poll_interval`` seconds; instances that appear or go add or
    remove their tools, and connected clients receive ``notifications/tools/list_changed``.
    Each instance's tools are listed as ``<prefix>__<tool>``, the prefix (``maya-1``,
    ``blender-1``) given by order of arrival and never reused while the gateway runs; its prompts
    as ``<prefix>__<prompt>`` and its resources (and templates) as
    ``mcp-embed+gateway://<prefix>/<the instance's own URI>``, read from that instance.
    """
    return Gateway(config if config is not None else McpHttpConfig(), registry, poll_interval)
