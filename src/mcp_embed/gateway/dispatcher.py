"""``GatewayDispatcher``: where the gateway's tool calls run: a proxy tool goes to its instance.

The gateway is a ``SkillServer`` like any host's, so its calls go through the same ``ToolCaller``
(allow-list, audit, validation); only the last step differs, as in the subprocess child, whose
dispatcher sends proxy tools to the host. Here they go to the instance: a call whose client declared
elicitation or sampling on a session of its own (:mod:`.asking`), a call with progress on the shared
session on the hub's loop, any other as one JSON POST (:class:`~.lane.JsonLane`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..dispatch import QueueDispatcher
from ..runtime.subprocess.catalog import ARGS, PROXY
from .asking import may_ask

if TYPE_CHECKING:
    from ..components.tools import ToolSpec
    from ..context import ToolContext
    from .hub import Hub

__all__ = ["GatewayDispatcher"]


class GatewayDispatcher(QueueDispatcher):
    """Proxy tools to their instance; the gateway's own tools (``list_instances``) as usual."""

    name = "gateway"

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub

    def start(self) -> None:
        self.hub.start()

    def close(self) -> None:
        super().close()
        self.hub.close()

    async def run(self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None) -> Any:
        if spec.source != PROXY:
            return await super().run(spec, kwargs, ctx)
        route = self.hub.routes.get(spec.name)
        if route is None:  # removed between the lookup and now
            return {"content": [{"type": "text", "text": f"Tool '{spec.name}' is gone"}], "isError": True}
        if may_ask(ctx):  # its client may be asked: a session of its own, on this loop (.asking)
            assert ctx is not None
            return await route.upstream.call_asking(route.tool, kwargs[ARGS], ctx)
        if ctx is None or ctx.progress_token is None:  # one JSON POST from this loop (the benchmark's case)
            return await route.upstream.call_plain(route.tool, kwargs[ARGS])
        call = route.upstream.call(route.tool, kwargs[ARGS], ctx)
        # Cancelling this await cancels the call on the hub's loop, which tells the instance.
        return await asyncio.wrap_future(self.hub.submit(call))
