"""``Hub``: the instances behind the gateway, their sessions and their tools, kept equal to the registry.

It runs its own event loop on a daemon thread: the watcher polls the (synchronous) registry
there, and each :class:`Upstream` owns its SDK session there. What it learns goes into the
gateway server's ``ToolRegistry`` in one batch per change, so connected clients get one
``notifications/tools/list_changed`` through the usual ``Components`` seam.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ..logs import get_logger
from .naming import Prefixes, gateway_tool
from .upstream import Upstream, UpstreamGone

if TYPE_CHECKING:
    from ..components.registry import ToolRegistry
    from ..instances import Instance

__all__ = ["Hub", "Route"]

log = get_logger("gateway")

T = TypeVar("T")


class Route(NamedTuple):
    """Where a gateway tool goes: the instance's session and the tool's own name there."""

    upstream: Upstream
    tool: str


class Hub:
    """Every instance the registry lists (but the gateway itself), connected and mirrored as tools."""

    def __init__(
        self,
        tools: ToolRegistry,
        read: Callable[[], list[Instance]],
        poll_interval: float,
        *,
        is_self: Callable[[Instance], bool] = lambda _: False,
    ) -> None:
        self.tools = tools
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
        self._refreshing: set[str] = set()

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
                self._schedule_refresh(known)  # the descriptions name the metadata
        self._failed &= set(by_id)
        if fresh:
            await asyncio.gather(*(self._connect(i, p) for i, p in fresh))

    async def _connect(self, instance: Instance, prefix: str) -> None:
        up: Upstream = Upstream(prefix, instance, lambda: self._schedule_refresh(up))
        try:
            await up.open()
            tools = await up.list_tools()
        except (UpstreamGone, Exception) as exc:
            await up.close()
            if instance.id not in self._failed:  # listed but not answering: say so once, retry
                self._failed.add(instance.id)
                log.info("gateway: %s is listed but does not answer yet: %s", instance.url, exc)
            return
        self._failed.discard(instance.id)
        self._upstreams[instance.id] = up
        self._install(up, tools)
        log.info("gateway: %s serves %d tool(s) as %s__*", instance.url, len(tools), prefix)

    def _schedule_refresh(self, up: Upstream) -> None:
        iid = up.instance.id
        if iid in self._refreshing:
            return
        self._refreshing.add(iid)

        async def refresh() -> None:
            try:
                tools = await up.list_tools()
            except Exception as exc:
                log.info("gateway: could not list the tools of %s again: %s", up.label, exc)
                return
            finally:
                self._refreshing.discard(iid)
            if self._upstreams.get(iid) is up:
                self._install(up, tools)

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
        log.info("gateway: %s is gone; its tools are removed", up.label)

    async def _drop_all(self) -> None:
        ups = list(self._upstreams.values())
        with self.tools.batch():
            for up in ups:
                self._forget(up)
        await asyncio.gather(*(up.close() for up in ups))

    # -- what is behind it --------------------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        """The instances the gateway serves now, in prefix order (what ``list_instances`` returns)."""
        out = []
        for up in sorted(self._upstreams.values(), key=lambda u: u.instance.started_at):
            i = up.instance
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
                }
            )
        return out
