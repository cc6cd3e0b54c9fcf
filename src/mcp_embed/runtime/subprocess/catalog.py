"""The catalogue: what the child serves without asking the host, built by the host
(:func:`build_catalog`) and mirrored into the child's registries (:class:`Mirror`).

It holds the tools (with what the child needs to run subprocess skills itself), which tools
``tools/list`` hides (the meta-tool view above ``skills_list_limit``), the skills not analysed
yet, the resources and templates, and the prompts. The host sends it at start and again whenever
its registries change; the child replaces what changed and removes what went.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...components.tools import ToolResult, ToolSpec
from . import wire

if TYPE_CHECKING:
    from ...components import Components
    from ...skills import SkillTool

__all__ = ["ARGS", "CTX", "PROXY", "Mirror", "build_catalog"]

PROXY = "host"  # ToolSpec.source of a tool the host runs
ARGS = "__arguments__"  # the raw arguments of a proxy tool, validated in the host
CTX = "__context__"  # the context parameter of a proxy tool, resource or prompt

#: Sends a request the id-maker builds and returns the host's answer (raises as the handlers expect).
Request = Callable[[Callable[[int], wire.Message]], Awaitable[Any]]


def build_catalog(components: Components) -> dict[str, Any]:
    """The catalogue of ``components`` now. Analyses nothing: pending skills stay pending."""
    registry = components.tools
    registry.build_pending()
    catalog = components.skills.catalog if components.skills is not None else None
    local: dict[str, SkillTool] = {}
    pending: list[str] = []
    if catalog is not None:
        pending = catalog.pending
        waiting = set(pending)
        for known in catalog.skills:
            if known.name not in waiting:
                local.update((t.name, t) for t in catalog.tools_of(known.name) if t.execution == "subprocess")
    listed = {spec.name for spec in registry.listed()}
    tools: list[dict[str, Any]] = []
    hidden: list[str] = []
    for spec in registry:
        if spec.name not in listed:
            hidden.append(spec.name)
        entry: dict[str, Any] = {
            "wire": spec.wire(),
            "affinity": spec.affinity,
            "timeout": spec.timeout,
            "context": spec.wants_context is not None,
            "task": spec.task,
        }
        skill = local.get(spec.name)
        if skill is not None and spec.source == f"skill:{skill.skill}":
            entry["skill"] = {f.name: getattr(skill, f.name) for f in dataclasses.fields(skill) if f.init}
        tools.append(entry)
    resources = [
        {
            "uri": r.uri,
            "name": r.name,
            "description": r.description,
            "mime_type": r.mime_type,
            "title": r.title,
            "context": r.wants_context is not None,
        }
        for r in components.resources
    ]
    prompts = [
        {
            "name": p.name,
            "description": p.description,
            "title": p.title,
            "arguments": [(a.name, a.description, a.required) for a in p.arguments],
            "context": p.wants_context is not None,
        }
        for p in components.prompts
    ]
    return {"tools": tools, "hidden": hidden, "pending": pending, "resources": resources, "prompts": prompts}


def _from_wire(value: Any) -> ToolResult:
    """The host's wire result back into a ``ToolResult`` (the child's ToolCaller re-serialises it)."""
    if isinstance(value, dict) and "content" in value:
        return ToolResult(list(value["content"]), value.get("structuredContent"), bool(value.get("isError")))
    result = ToolResult([])
    result.input_required = dict(value) if isinstance(value, dict) else None
    return result


def _pass_through(arguments: dict[str, Any]) -> dict[str, Any]:
    return {ARGS: arguments}  # validated in the host, by the tool's own validator


def proxy_spec(entry: dict[str, Any]) -> ToolSpec:
    """The child's registry entry for one catalogue entry."""
    skill = entry.get("skill")
    if skill is not None:
        from ...skills import SkillTool
        from ...skills.serve import skill_tool_spec

        return skill_tool_spec(SkillTool(**skill))
    wire_entry = entry["wire"]
    return ToolSpec(
        name=wire_entry["name"],
        title=wire_entry.get("title"),
        description=wire_entry.get("description", ""),
        input_schema=wire_entry["inputSchema"],
        output_schema=wire_entry.get("outputSchema"),
        annotations=wire_entry.get("annotations"),
        affinity=entry["affinity"],
        timeout=entry["timeout"],
        task=entry.get("task", "forbidden"),
        validate=_pass_through,
        wants_context=CTX if entry.get("context") else None,
        to_result=_from_wire,
        source=PROXY,
    )


class Mirror:
    """The child's registries, kept equal to the host's catalogue; reads go to the host."""

    def __init__(self, components: Components, request: Request) -> None:
        self.components = components
        self.request = request
        self.seq = 0
        #: Skills the host has not analysed yet: a call naming one of their tools asks it first.
        self.pending: frozenset[str] = frozenset()
        self._hidden: frozenset[str] = frozenset()  # tools tools/list leaves out (the meta-tool view)
        self._entries: dict[str, dict[str, Any]] = {}
        self._resources: list[dict[str, Any]] = []
        self._prompts: list[dict[str, Any]] = []

    def apply(self, seq: int, catalog: dict[str, Any]) -> None:
        """Make the registries match catalogue ``seq``: changed entries replaced, gone ones removed."""
        if seq <= self.seq:
            return
        self.seq = seq
        registry = self.components.tools
        self.pending = frozenset(catalog.get("pending", ()))
        hidden = frozenset(catalog.get("hidden", ()))
        # One tools/list_changed to the clients for the whole catalogue, not one per tool: the
        # child's registry tells its own clients (the host does not forward tool-list changes).
        with registry.batch():
            if hidden != self._hidden:  # before the tools, so a hidden one is never listed
                self._hidden = hidden
                registry.set_list_filter((lambda spec: spec.name not in hidden) if hidden else None)
            wanted = {entry["wire"]["name"]: entry for entry in catalog["tools"]}
            for name in set(registry.names()) - set(wanted):
                registry.remove(name)
                self._entries.pop(name, None)
            for name, entry in wanted.items():
                if self._entries.get(name) == entry and name in registry:
                    continue
                # A tool tools/list hides changes no list: no list_changed, as in dedicated mode.
                registry.add(proxy_spec(entry), replace=True, notify=name not in hidden)
                self._entries[name] = entry
        if catalog["resources"] != self._resources:
            self._resources = catalog["resources"]
            self._apply_resources()
        if catalog["prompts"] != self._prompts:
            self._prompts = catalog["prompts"]
            self._apply_prompts()

    def _apply_resources(self) -> None:
        from ...components.resources import build_resource

        registered = self.components.resources
        for spec in list(registered):
            registered.remove(spec.uri)
        for entry in self._resources:
            key = entry["uri"]

            async def read(_key: str = key, **args: Any) -> Any:
                meta = wire.ContextMeta.of(args.pop(CTX, None), _key)
                return await self.request(lambda cid: wire.Read(cid, _key, args, meta))

            spec = build_resource(
                key,
                read,
                name=entry["name"],
                description=entry["description"],
                mime_type=entry["mime_type"],
                title=entry["title"],
            )
            spec.wants_context = CTX if entry.get("context") else None
            registered.add(spec, replace=True)
        self.components.notify_resources_changed()

    def _apply_prompts(self) -> None:
        from ...components.prompts import PromptArgument, PromptSpec

        registered = self.components.prompts
        for spec in list(registered):
            registered.remove(spec.name)
        for entry in self._prompts:
            name = entry["name"]

            async def get(_name: str = name, **args: Any) -> Any:
                meta = wire.ContextMeta.of(args.pop(CTX, None), _name)
                return await self.request(lambda cid: wire.GetPrompt(cid, _name, args, meta))

            registered.add(
                PromptSpec(
                    name=name,
                    fn=get,
                    description=entry["description"],
                    title=entry["title"],
                    arguments=tuple(PromptArgument(n, d, r) for n, d, r in entry["arguments"]),
                    is_async=True,
                    wants_context=CTX if entry.get("context") else None,
                ),
                replace=True,
            )
        self.components.notify_prompts_changed()
