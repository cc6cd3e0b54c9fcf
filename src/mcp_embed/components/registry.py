"""``ToolRegistry``: the one source of tools. ``tools/list``, ``tools/call``, the allow-list and the
subprocess child all read it; the host adds and removes tools while the server runs."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

from .schema import build_tool
from .tools import PendingTool, ToolSpec, check_tool_name

__all__ = ["ToolRegistry"]


class ToolRegistry:
    """The one source of tools. Thread-safe: the host may add tools while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, PendingTool] = {}
        self._tools: dict[str, ToolSpec] = {}
        self._version = 0
        self._listeners: list[Callable[[], None]] = []
        self._list_filter: Callable[[ToolSpec], bool] | None = None
        self._resolver: Callable[[str], bool] | None = None
        self._async_resolver: Callable[[str], Awaitable[object]] | None = None
        self._batch_depth = 0
        self._batch_changed = False

    @property
    def version(self) -> int:
        return self._version

    def __len__(self) -> int:
        return len(self._pending) + len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools or name in self._pending

    def names(self) -> list[str]:
        with self._lock:
            return sorted({*self._tools, *self._pending})

    def add_pending(self, tool: PendingTool, *, replace: bool = False) -> None:
        with self._lock:
            if not replace and (tool.name in self._tools or tool.name in self._pending):
                raise ValueError(f"a tool named {tool.name!r} is already registered; pass replace=True")
            self._tools.pop(tool.name, None)
            self._pending[tool.name] = tool
            self._version += 1
        self._changed()

    def add(self, spec: ToolSpec, *, replace: bool = False, notify: bool = True) -> None:
        """Register ``spec``. ``notify=False`` is for a tool the list filter hides: the list is unchanged."""
        check_tool_name(spec.name)
        with self._lock:
            if not replace and (spec.name in self._tools or spec.name in self._pending):
                raise ValueError(f"a tool named {spec.name!r} is already registered; pass replace=True")
            self._pending.pop(spec.name, None)
            self._tools[spec.name] = spec
            self._version += 1
        if notify:
            self._changed()

    def remove(self, name: str) -> bool:
        with self._lock:
            found = self._tools.pop(name, None) is not None or self._pending.pop(name, None) is not None
            if found:
                self._version += 1
        if found:
            self._changed()
        return found

    def build_pending(self) -> None:
        """Build every pending callable tool. Raises the first error, naming the tool."""
        with self._lock:
            pending = list(self._pending.values())
        for p in pending:
            spec = build_tool(p)
            with self._lock:
                if self._pending.get(p.name) is p:
                    del self._pending[p.name]
                    self._tools[p.name] = spec

    def get(self, name: str) -> ToolSpec | None:
        spec = self._tools.get(name)
        if spec is None and name in self._pending:
            self.build_pending()
            spec = self._tools.get(name)
        resolver = self._resolver
        if spec is None and resolver is not None and resolver(name):
            spec = self._tools.get(name)
        return spec

    def set_resolver(self, resolver: Callable[[str], bool] | None) -> None:
        """On a miss, ``get`` calls ``resolver(name)``; true means it may have registered ``name`` since.

        Lazily discovered skills use it: a hidden skill's tools are analysed when first called.
        """
        self._resolver = resolver

    def set_async_resolver(self, resolver: Callable[[str], Awaitable[object]] | None) -> None:
        """Like :meth:`set_resolver`, for callers on an event loop, which :meth:`ensure` first.

        A subprocess child uses it: the host analyses the skill while the child's loop serves others.
        """
        self._async_resolver = resolver

    async def ensure(self, name: str) -> None:
        """Give the async resolver its chance at ``name`` before a lookup made on the event loop."""
        resolver = self._async_resolver
        if resolver is not None and name not in self._tools and name not in self._pending:
            await resolver(name)

    def __iter__(self) -> Iterator[ToolSpec]:
        if self._pending:
            self.build_pending()
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def listed(self) -> list[ToolSpec]:
        """The tools ``tools/list`` shows: all of them, unless a list filter hides some."""
        flt = self._list_filter
        return [spec for spec in self if flt is None or flt(spec)]

    def set_list_filter(self, flt: Callable[[ToolSpec], bool] | None) -> None:
        """Show only the tools ``flt`` accepts in ``tools/list`` (hidden tools stay callable)."""
        with self._lock:
            self._list_filter = flt
            self._version += 1
        self._changed()

    def relist(self) -> None:
        """Tell listeners the ``tools/list`` view changed (the filter's answers did, not the filter)."""
        self.set_list_filter(self._list_filter)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Tell the listeners once, at the end, about every change made inside the block.

        A reload replaces thousands of tools; one ``list_changed`` (and, in subprocess mode, one
        catalogue push to the child) is enough for all of them.
        """
        with self._lock:
            self._batch_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                fire = self._batch_depth == 0 and self._batch_changed
                if fire:
                    self._batch_changed = False
            if fire:
                self._changed()

    def _changed(self) -> None:
        with self._lock:
            if self._batch_depth:
                self._batch_changed = True
                return
        for listener in list(self._listeners):
            listener()
