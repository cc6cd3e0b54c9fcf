"""``Hub``: the instances behind the gateway, their sessions, tools, resources and prompts, kept
equal to the registry.

It runs its own event loop on a daemon thread: the watcher polls the (synchronous) registry
there, and each :class:`Upstream` owns its SDK session there. What it learns goes into the
gateway server's ``ToolRegistry`` in one batch per change, so connected clients get one
``notifications/tools/list_changed`` through the usual ``Components`` seam; resources and
prompts go through :class:`~.mirror.Mirror` the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ..logs import get_logger
from .mirror import Mirror
from .naming import Prefixes, gateway_tool
from .upstream import Upstream, UpstreamGone

if TYPE_CHECKING:
    from ..components import Components
    from ..instances import Instance

__all__ = ["Hub", "Route"]

log = get_logger("gateway")

T = TypeVar("T")
_KINDS = ("tools", "resources", "prompts")


class Route(NamedTuple):
    """Where a gateway tool goes: the instance's session and the tool's own name there."""

    upstream: Upstream
    tool: str


class Hub:
    """Every instance the registry lists (but the gateway itself), connected and mirrored as
    tools, resources and prompts of the gateway server's ``components``."""

    def __init__(
        self,
        components: Components,
        read: Callable[[], list[Instance]],
        poll_interval: float,
        *,
        is_self: Callable[[Instance], bool] = lambda _: False,
    ) -> None:
        self.tools = components.tools
        self.mirror = Mirror(components, self.submit)
        #: The registry's ``list``: called on a worker thread (it may block on files or Redis).
        self.read = read
        self.poll_interval = poll_interval
        self.is_self = is_self
        self.prefixes = Prefixes()
        #: By tool name as the gateway lists it; read from the server's loop (a dict read is atomic).
        self.routes: dict[str, Route] = {}
        self._upstreams: dict[str, Upstream] = {}  # by instance id
        self._names: dict[str, set[str]] = {}  # instance id -> its gateway tool names
        self._failed: set[str] = set()  # ids that did not answer: logged once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._watcher: concurrent.futures.Future[None] | None = None
        self._refreshing: set[tuple[str, str]] = set()  # (instance id, kind) being listed again
        self._again: set[tuple[str, str]] = set()  # ... and told of another change meanwhile

    # -- the loop ---------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the gateway is not running")
        return loop

    def start(self) -> None:
        """Start the loop thread (idempotent). The watcher starts with :meth:`watch`."""
        if self._thread is not None and self._thread.is_alive():
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mcp-embed-gateway", daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the hub's loop, from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def watch(self) -> None:
        """Start polling the registry every ``poll_interval`` (the first poll at once)."""
        if self._watcher is None or self._watcher.done():
            self._watcher = self.submit(self._watch())

    def poll_now(self, timeout: float = 30.0) -> None:
        """One poll, now, from another thread: for tests and for ``start()`` to begin full."""
        self.submit(self.sync()).result(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop watching, close every session, remove their tools, stop the loop. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        if self._watcher is not None:
            self._watcher.cancel()
        with contextlib.suppress(Exception):
            self.submit(self._drop_all()).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._watcher = None

    async def _watch(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception as exc:  # a registry outage: keep what is known, try again
                log.warning("gateway: could not read the instance registry: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.poll_interval)

    # -- keeping up with the registry -------------------------------------------------------------

    async def sync(self) -> None:
        """Read the registry once: connect to new instances, drop gone ones, redescribe changed ones."""
        listed = [i for i in await asyncio.to_thread(self.read) if not self.is_self(i)]
        by_id = {i.id: i for i in listed}
        gone = [up for iid, up in self._upstreams.items() if iid not in by_id]
        if gone:
            with self.tools.batch():
                for up in gone:
                    self._forget(up)
            await asyncio.gather(*(up.close() for up in gone))
        fresh: list[tuple[Instance, str]] = []
        for instance in listed:  # oldest first: prefixes follow the order instances started in
            prefix = self.prefixes.of(instance)
            known = self._upstreams.get(instance.id)
            if known is None:
                fresh.append((instance, prefix))
                continue
            changed = known.instance.metadata != instance.metadata or known.instance.host != instance.host
            known.instance = instance
            if changed:
                for kind in _KINDS:  # the descriptions name the metadata
                    self._schedule_refresh(known, kind)
        self._failed &= set(by_id)
        if fresh:
            await asyncio.gather(*(self._connect(i, p) for i, p in fresh))

    async def _connect(self, instance: Instance, prefix: str) -> None:
        up: Upstream = Upstream(prefix, instance, lambda kind: self._schedule_refresh(up, kind))
        try:
            await up.open()
            listed = {kind: await self._fetch(up, kind) for kind in _KINDS}
        except (UpstreamGone, Exception) as exc:
            await up.close()
            if instance.id not in self._failed:  # listed but not answering: say so once, retry
                self._failed.add(instance.id)
                log.info("gateway: %s is listed but does not answer yet: %s", instance.url, exc)
            return
        self._failed.discard(instance.id)
        self._upstreams[instance.id] = up
        for kind, items in listed.items():
            self._apply(up, kind, items)
            if (instance.id, kind) in self._again:  # it changed while the gateway connected
                self._again.discard((instance.id, kind))
                self._schedule_refresh(up, kind)
        tools, (resources, templates), prompts = listed["tools"], listed["resources"], listed["prompts"]
        log.info(
            "gateway: %s serves %d tool(s), %d resource(s), %d template(s), %d prompt(s) as %s",
            instance.url,
            len(tools),
            len(resources),
            len(templates),
            len(prompts),
            prefix,
        )

    @staticmethod
    async def _fetch(up: Upstream, kind: str) -> Any:
        """One of ``up``'s lists: ``tools``, ``resources`` (with the templates) or ``prompts``.

        An instance that answers its resource or prompt list with an error serves none of them
        here (said once per listing), but its tools still: only the tools list must answer.
        """
        if kind == "tools":
            return await up.list_tools()
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            if kind == "resources":
                return await up.list_of("resources"), await up.list_of("templates")
            return await up.list_of(kind)
        except MCPError as exc:
            if exc.error.code == CONNECTION_CLOSED:
                raise
            log.warning(
                "gateway: %s answers its %s list with an error: %s", up.label, kind, exc.error.message
            )
            return ([], []) if kind == "resources" else []

    def _apply(self, up: Upstream, kind: str, listed: Any) -> None:
        if kind == "tools":
            self._install(up, listed)
        elif kind == "resources":
            self.mirror.install_resources(up, *listed)
        else:
            self.mirror.install_prompts(up, listed)

    def _schedule_refresh(self, up: Upstream, kind: str) -> None:
        """List ``kind`` of ``up`` again, soon, once (however many notifications said so)."""
        key = (up.instance.id, kind)
        if key in self._refreshing or self._upstreams.get(key[0]) is not up:
            self._again.add(key)  # told while listing, or while connecting: list once more after
            return
        self._refreshing.add(key)

        async def refresh() -> None:
            try:
                listed = await self._fetch(up, kind)
            except Exception as exc:
                log.info("gateway: could not list the %s of %s again: %s", kind, up.label, exc)
                return
            finally:
                self._refreshing.discard(key)
            if self._upstreams.get(key[0]) is not up:
                return
            self._apply(up, kind, listed)
            if key in self._again:
                self._again.discard(key)
                self._schedule_refresh(up, kind)

        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(refresh()))

    def _install(self, up: Upstream, tools: list[dict[str, Any]]) -> None:
        """Make ``up``'s gateway tools match ``tools``: one list_changed for the lot."""
        old = self._names.get(up.instance.id, set())
        new: dict[str, tuple[str, Any]] = {}
        for wire in tools:
            spec = gateway_tool(up.instance, up.prefix, wire)
            if spec is None:
                log.warning(
                    "gateway: %s's tool %r makes a name over 128 characters: not listed",
                    up.label,
                    wire["name"],
                )
                continue
            new[spec.name] = (wire["name"], spec)
        with self.tools.batch():
            for name in old - set(new):
                self.routes.pop(name, None)
                self.tools.remove(name)
            for name, (tool, spec) in new.items():
                self.routes[name] = Route(up, tool)
                self.tools.add(spec, replace=True)
        self._names[up.instance.id] = set(new)

    def _forget(self, up: Upstream) -> None:
        for name in self._names.pop(up.instance.id, set()):
            self.routes.pop(name, None)
            self.tools.remove(name)
        self._upstreams.pop(up.instance.id, None)
        self.mirror.forget(up)
        log.info("gateway: %s is gone; its tools, resources and prompts are removed", up.label)

    async def _drop_all(self) -> None:
        ups = list(self._upstreams.values())
        with self.tools.batch():
            for up in ups:
                self._forget(up)
        await asyncio.gather(*(up.close() for up in ups))

    # -- what is behind it --------------------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        """The instances the gateway serves now, in prefix order (what ``list_instances`` returns):
        each with its gateway tool names, resource and template URIs, and prompt names."""
        out = []
        for up in sorted(self._upstreams.values(), key=lambda u: u.instance.started_at):
            i = up.instance
            resources, prompts = self.mirror.served(up.prefix)
            out.append(
                {
                    "prefix": up.prefix,
                    "id": i.id,
                    "app_name": i.app_name,
                    "server_name": i.server_name,
                    "host": i.host,
                    "pid": i.pid,
                    "url": i.url,
                    "version": i.version,
                    "started_at": i.started_at,
                    "metadata": dict(i.metadata),
                    "tools": sorted(self._names.get(i.id, ())),
                    "resources": resources,
                    "prompts": prompts,
                }
            )
        return out
