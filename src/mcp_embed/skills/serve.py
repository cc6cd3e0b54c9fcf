"""Serving skills: a catalog's tools go into the server's registry, its docs into its resources.

The registry stays the one source of tools: ``reload_skills()`` swaps the skill tools in place, so
``tools/list`` and the ``list_changed`` notification follow without anything else knowing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..components.resources import ResourceSpec
from ..components.tools import ToolResult, ToolSpec, default_result
from ..errors import ToolError
from ..logs import get_logger
from . import (
    SkillArgumentError,
    SkillCatalog,
    SkillTool,
    discover_skills,
    list_skill_resources,
    read_skill_resource,
)
from .naming import split_tool_name
from .resources import skill_uri

if TYPE_CHECKING:
    from pathlib import Path

    from ..components import Components
    from ..context import ToolContext

log = get_logger("skills")


def skill_tool_spec(tool: SkillTool) -> ToolSpec:
    """A registry entry for one skill tool. Arguments are checked against its schema first."""

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            tool.validate(arguments)
        except SkillArgumentError as exc:
            raise ToolError(f"Invalid arguments for tool '{tool.name}': {exc}") from None
        return {"arguments": arguments}

    def invoke(arguments: dict[str, Any], ctx: ToolContext | None = None) -> Any:
        # ctx is cancelled by the client's cancel, a timeout and the server's stop: each kills
        # a subprocess tool's process tree.
        return tool.invoke(arguments, (lambda: ctx.cancelled) if ctx is not None else None, ctx)

    def to_result(value: Any) -> ToolResult:
        result = default_result(value)
        if tool.output_schema is not None and result.structured is None and value is not None:
            # A declared output schema promises structuredContent; wrap a non-object value.
            result.structured = {"result": value}
        return result

    # A subprocess tool never touches the host: it runs on a worker thread whatever it declares,
    # and its own runner enforces its timeout (killing the process tree).
    subprocess = tool.execution == "subprocess"
    return ToolSpec(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=tool.annotations or None,
        affinity="any" if subprocess else tool.affinity,
        wants_context="ctx" if subprocess or tool.context_param is not None else None,
        timeout=None if subprocess else tool.timeout,
        task=tool.task,
        validate=validate,
        invoke=invoke,
        to_result=to_result,
        source=f"skill:{tool.skill}",
    )


class SkillLoader:
    """Discovers a server's skills and keeps its registry and resources in step with the disk."""

    def __init__(
        self,
        components: Components,
        app_name: str,
        skill_paths: Sequence[str] = (),
        *,
        list_limit: int | None = None,
        interpreter: str | None = None,
        env: Mapping[str, str] | None = None,
        include_user_dir: bool = True,
    ) -> None:
        self.components = components
        self.app_name = app_name
        self.skill_paths = list(skill_paths)
        #: Above this many skill tools, tools/list shows the meta-tools instead (skills_list_limit).
        self.list_limit = list_limit
        self.interpreter = interpreter
        # ``env`` replaces os.environ for the DCC_MCP_* roots; mcp_embed.testing isolates tests with it.
        self.env = env
        self.include_user_dir = include_user_dir
        self.catalog: SkillCatalog | None = None
        self._tools: set[str] = set()
        self._resources: set[str] = set()
        self._meta: set[str] = set()
        self._active: set[str] = set()  # skills whose tools tools/list shows in catalog mode
        self._logged = 0  # how many of the catalog's problems are logged already
        self._lock = threading.Lock()

    def load(self) -> SkillCatalog:
        """Discover and register. Broken skills are logged and skipped; the rest still load.

        Discovery is lazy: scripts are analysed only for the skills ``tools/list`` shows. Above
        ``skills_list_limit`` the others wait until a meta-tool or a call needs them.
        """
        with self._lock:
            catalog = discover_skills(
                self.app_name,
                self.skill_paths,
                env=self.env,
                interpreter=self.interpreter,
                include_user_dir=self.include_user_dir,
                lazy=True,
            )
            self.catalog = catalog
            self._logged = 0
            # One list_changed (one catalogue push in subprocess mode) for the whole reload, not
            # one per tool added or removed: a push per tool made a 1,000-tool reload take 20 s.
            with self.components.tools.batch():
                self._apply(catalog)
            catalog.on_resolve(lambda skill, tools: self._resolved(catalog, skill, tools))
            self.components.tools.set_resolver(self._resolve_tool)
            return catalog

    def _log_problems(self, catalog: SkillCatalog) -> None:
        for problem in catalog.problems[self._logged :]:
            (log.error if problem.severity == "error" else log.warning)("skill problem: %s", problem)
        self._logged = len(catalog.problems)

    def _resolve_until_over_limit(self, catalog: SkillCatalog) -> bool:
        """Analyse skills in order until the tools exceed ``skills_list_limit``; true when they do.

        Deciding costs at most the skills that fit under the limit, plus one: the rest stay unread.
        """
        registry = self.components.tools
        limit = self.list_limit
        own = {*self._tools, *self._meta}
        count = sum(1 for name in registry.names() if name not in own)  # the host's Python tools
        with catalog.batch():
            catalog.resolve(self._active & {s.name for s in catalog.skills})
            resolved = [s.name for s in catalog.skills if not catalog.is_pending(s.name)]
            count += sum(len(catalog.tools_of(name)) for name in resolved)
            for name in catalog.pending:
                if limit is not None and count > limit:
                    return True
                count += len(catalog.tools_of(name))
        return limit is not None and count > limit

    def _apply(self, catalog: SkillCatalog) -> None:
        over = self._resolve_until_over_limit(catalog)
        self._log_problems(catalog)
        for sh in catalog.shadowed:
            log.warning("skill %r at %s is shadowed by the one at %s", sh.name, sh.path, sh.shadowed_by)
        registry = self.components.tools
        wanted: dict[str, ToolSpec] = {}
        for skill in catalog.skills:
            if not catalog.is_pending(skill.name):
                for tool in catalog.tools_of(skill.name):
                    spec = self._spec(tool)
                    if spec is not None:
                        wanted[tool.name] = spec
        for name in self._tools - set(wanted):
            registry.remove(name)
        for spec in wanted.values():
            registry.add(spec, replace=True)
        self._tools = set(wanted)

        resources = {r.uri: r for r in list_skill_resources(catalog)}
        registered = self.components.resources
        for uri in self._resources - set(resources):
            registered.remove(uri)
        for uri, res in resources.items():
            # Built directly: every reader has the same known shape, so nothing to inspect.
            entry = ResourceSpec(uri, res.name, _reader(catalog, uri), res.description, res.mime_type)
            registered.add(entry, replace=True)
        self._resources = set(resources)
        self.components.notify_resources_changed()
        self._catalog_view(catalog, over)
        pending = len(catalog.pending)
        log.info(
            "serving %d skill(s) with %d tool(s)%s and %d resource(s)",
            len(catalog.skills),
            len(wanted),
            f" ({pending} skill(s) analysed when first needed)" if pending else "",
            len(resources),
        )

    def _spec(self, tool: SkillTool) -> ToolSpec | None:
        """The registry entry for ``tool``, or ``None`` when a Python tool already has its name."""
        if tool.name in self.components.tools and tool.name not in self._tools:
            log.warning("skill tool %r is not served: a Python tool of that name is registered", tool.name)
            return None
        return skill_tool_spec(tool)

    def _resolved(self, catalog: SkillCatalog, skill: str, tools: list[SkillTool]) -> None:
        """A hidden skill was analysed on demand: serve its tools (the listed tools do not change)."""
        if catalog is not self.catalog:
            return  # a reload replaced that catalog; its tools are not served any more
        self._log_problems(catalog)
        with self.components.tools.batch():
            for tool in tools:
                spec = self._spec(tool)
                if spec is not None:
                    self.components.tools.add(spec, replace=True, notify=skill in self._active)
                    self._tools.add(tool.name)

    def _resolve_tool(self, name: str) -> bool:
        parts = split_tool_name(name)
        catalog = self.catalog
        if parts is None or catalog is None or parts[0] not in catalog.pending:
            return False
        catalog.resolve([parts[0]])
        return True

    # -- many skills: a searchable catalog instead of every schema ------------------------------

    def _catalog_view(self, catalog: SkillCatalog, over: bool) -> None:
        registry = self.components.tools
        limit = self.list_limit
        meta_names = {name for name, _ in _META_TOOLS}
        if limit is None or not over or not (self._tools or catalog.pending):
            for name in meta_names & self._meta:
                registry.remove(name)
            self._meta = set()
            registry.set_list_filter(None)
            return
        self._active &= {s.name for s in catalog.skills}
        for name, make in _META_TOOLS:
            if name in registry and name not in self._meta:
                log.warning("meta-tool %r is not served: a tool of that name is registered", name)
                continue
            registry.add(make(self), replace=True)
            self._meta.add(name)
        active = self._active
        registry.set_list_filter(
            lambda spec: not spec.source.startswith("skill:") or spec.source[6:] in active
        )
        log.info(
            "the skills have more than skills_list_limit=%d tools: tools/list shows meta-tools and "
            "activated skills only",
            limit,
        )

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        if self.catalog is not None:
            self.catalog.resolve()  # once: every skill's tools, from the parse cache when it has them
        words = [w for w in query.lower().replace("_", " ").replace("-", " ").split() if w]
        scored: list[tuple[int, str, dict[str, Any]]] = []
        for spec in self.components.tools:
            if not spec.source.startswith("skill:"):
                continue
            skill = spec.source[6:]
            haystack = f"{spec.name} {skill} {spec.description}".lower().replace("_", " ").replace("-", " ")
            score = sum(haystack.count(w) + (3 if w in spec.name.lower() else 0) for w in words)
            if score or not words:
                summary = (spec.description or "").strip().split("\n")[0]
                scored.append(
                    (-score, spec.name, {"name": spec.name, "skill": skill, "description": summary})
                )
        scored.sort(key=lambda x: (x[0], x[1]))
        return [row for _, _, row in scored[: max(1, min(limit, 100))]]

    def describe(self, name: str) -> dict[str, Any]:
        spec = self.components.tools.get(name)
        if spec is None:
            raise ToolError(f"no tool named {name!r}; use search_tools to find one")
        return spec.wire()

    def activate(self, skill: str) -> dict[str, Any]:
        catalog = self.catalog
        if catalog is None or catalog.skill(skill) is None:
            names = sorted(s.name for s in catalog.skills) if catalog is not None else []
            close = [n for n in names if skill.lower() in n or n in skill.lower()][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ToolError(f"no skill named {skill!r}{hint}")
        catalog.resolve([skill])
        source = f"skill:{skill}"
        tools = sorted(spec.name for spec in self.components.tools if spec.source == source)
        if skill not in self._active:
            self._active.add(skill)
            self.components.tools.relist()
        return {"skill": skill, "tools": tools, "instructions": skill_uri(skill)}


def _meta_search(loader: SkillLoader) -> ToolSpec:
    def search_tools(query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Search the tools of every skill by words of their name, skill or description.

        Args:
            query: Words to look for, e.g. "create sphere".
            limit: How many matches to return (1-100).
        """
        return loader.search(query, limit)

    return _meta_spec(search_tools, readonly=True)


def _meta_describe(loader: SkillLoader) -> ToolSpec:
    def describe_tool(name: str) -> dict[str, Any]:
        """The full definition of one tool (its input schema included), found with search_tools.

        Args:
            name: The tool's name.
        """
        return loader.describe(name)

    return _meta_spec(describe_tool, readonly=True)


def _meta_activate(loader: SkillLoader) -> ToolSpec:
    def activate_skill(skill: str) -> dict[str, Any]:
        """Load a skill: its tools are added to the tool list (clients are told it changed).

        Args:
            skill: The skill's name, as search_tools reports it.
        """
        return loader.activate(skill)

    return _meta_spec(activate_skill, readonly=False)


def _meta_spec(fn: Callable[..., Any], *, readonly: bool) -> ToolSpec:
    from ..components.schema import build_tool
    from ..components.tools import PendingTool, ToolOptions

    hints = {"readOnlyHint": True} if readonly else {"readOnlyHint": False, "destructiveHint": False}
    spec = build_tool(PendingTool(fn, ToolOptions(annotations=hints)))
    spec.source = "meta"
    return spec


_META_TOOLS: list[tuple[str, Callable[[SkillLoader], ToolSpec]]] = [
    ("search_tools", _meta_search),
    ("describe_tool", _meta_describe),
    ("activate_skill", _meta_activate),
]


def _reader(catalog: SkillCatalog, uri: str) -> Callable[[], str | bytes]:
    def read() -> str | bytes:
        content = read_skill_resource(catalog, uri)
        if content.text is not None:
            return content.text
        return content.blob or b""

    return read


class SkillWatcher:
    """Polls the skill roots' files and calls ``reload_skills()`` once they stop changing.

    A daemon thread that ends by itself when the server stops. Polling (not inotify) works the
    same on Windows, macOS, Linux and network shares, where studios keep their skills.
    """

    def __init__(
        self,
        roots: Callable[[], Iterable[tuple[Path, str]]],
        interval: float,
        running: Callable[[], bool],
        reload: Callable[[], object],
    ) -> None:
        self.roots = roots  # the skill roots to watch, looked up afresh at every poll
        self.interval = interval
        self.running = running
        self.reload = reload
        self._thread = threading.Thread(target=self._run, name="mcp-embed:skills-watch", daemon=True)

    def start(self) -> SkillWatcher:
        self._thread.start()
        return self

    def snapshot(self) -> frozenset[tuple[str, int, int]]:
        """(path, mtime_ns, size) of every file in every existing root, to a bounded depth."""
        seen: set[tuple[str, int, int]] = set()
        for root, _ in self.roots():
            _scan(str(root), 0, seen)
        return frozenset(seen)

    def _run(self) -> None:
        import time

        # Wait (bounded, as start() waits) until the server is up, so the first snapshot
        # matches what start() loaded.
        for _ in range(1200):
            if self.running():
                break
            time.sleep(0.05)
        last = self.snapshot()
        pending = False
        while self.running():
            time.sleep(self.interval)
            current = self.snapshot()
            if current != last:
                last, pending = current, True  # still changing: wait one more quiet interval
                continue
            if pending:
                pending = False
                try:
                    self.reload()
                except Exception as exc:  # a broken edit must not end the watcher
                    log.error("reloading skills failed: %s: %s", type(exc).__name__, exc)


_WATCH_DEPTH = 4  # root / skill / references / sub / file


def _scan(folder: str, depth: int, out: set[tuple[str, int, int]]) -> None:
    import os

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth < _WATCH_DEPTH:
                    _scan(entry.path, depth + 1, out)
            else:
                st = entry.stat(follow_symlinks=False)
                out.add((entry.path, st.st_mtime_ns, st.st_size))
        except OSError:
            continue
