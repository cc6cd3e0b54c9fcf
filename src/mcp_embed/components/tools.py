"""The tool model: a registered tool (``ToolSpec``), how it was asked for (``ToolOptions``), and
its result (``ToolResult``). Schemas from callables are ``schema.py``; the registry is ``registry.py``.

Nothing heavy is imported at module level: a tool is registered cheaply when the host plugin
loads, and its schema is built (with pydantic) when the server starts.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ..tasks import TaskSupport

if TYPE_CHECKING:
    pass

__all__ = ["Affinity", "TaskSupport", "ToolKwargs", "ToolOptions", "ToolSpec"]

Affinity = Literal["main", "any"]

# SEP-986 (2025-11-25): 1-128 chars of ASCII letters, digits, '_', '-' and '.'.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

# content.py loads when a tool, prompt or resource first uses its types, not with every server:
# before that, no value or annotation can be one of them.
CONTENT_MODULE = f"{__name__.partition('.')[0]}.content"

_ANNOTATION_KEYS = {
    "title": "title",
    "readOnlyHint": "readOnlyHint",
    "read_only_hint": "readOnlyHint",
    "destructiveHint": "destructiveHint",
    "destructive_hint": "destructiveHint",
    "idempotentHint": "idempotentHint",
    "idempotent_hint": "idempotentHint",
    "openWorldHint": "openWorldHint",
    "open_world_hint": "openWorldHint",
}


class ToolResult:
    """What a tool invocation produced, before it becomes a wire ``CallToolResult``."""

    __slots__ = ("content", "input_required", "is_error", "structured")

    def __init__(self, content: list[dict[str, Any]], structured: Any = None, is_error: bool = False) -> None:
        self.content = content
        self.structured = structured
        self.is_error = is_error
        # The wire form of an InputRequired the tool returned (2026-07-28), else None.
        self.input_required: dict[str, Any] | None = None

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls([{"type": "text", "text": message}], None, True)

    def to_wire(self) -> dict[str, Any]:
        if self.input_required is not None:
            return self.input_required
        out: dict[str, Any] = {"content": self.content, "isError": self.is_error}
        if self.structured is not None:
            out["structuredContent"] = self.structured
        return out


@dataclass
class ToolSpec:
    """One tool in the registry, whatever implements it (a callable or a skill script)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    affinity: Affinity = "any"
    timeout: float | None = None
    title: str | None = None
    task: TaskSupport = "forbidden"
    # Validates and converts raw arguments; raises ToolError naming the field.
    validate: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda a: a, repr=False)
    # Runs the tool with validated arguments. ``is_async`` tools are awaited on the event loop,
    # the others run on the thread the dispatcher picks.
    invoke: Callable[..., Any] = field(default=lambda **_: None, repr=False)
    is_async: bool = False
    wants_context: str | None = None  # the parameter name ToolContext is passed as
    # The context serves only progress and questions to the client (a gateway's proxy tool, which
    # runs without one too): the fast path may serve a call without progress from a client that
    # declared neither elicitation nor sampling, and runs it without a context.
    context_to_ask: bool = False
    to_result: Callable[[Any], ToolResult] = field(default=lambda v: default_result(v), repr=False)
    source: str = "python"

    def wire(self) -> dict[str, Any]:
        """The tool as it appears in ``tools/list``."""
        out: dict[str, Any] = {"name": self.name, "inputSchema": self.input_schema}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        if self.output_schema is not None:
            out["outputSchema"] = self.output_schema
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def check_tool_name(name: str) -> str:
    if not TOOL_NAME_RE.match(name):
        raise ValueError(
            f"invalid tool name {name!r}: use 1-128 characters from A-Z, a-z, 0-9, '_', '-' and '.'"
        )
    return name


def normalize_annotations(annotations: Mapping[str, Any] | Any | None) -> dict[str, Any] | None:
    """Accept a dict (camelCase or snake_case keys) or an SDK ``ToolAnnotations`` model."""
    if annotations is None:
        return None
    if hasattr(annotations, "model_dump"):
        dumped = annotations.model_dump(by_alias=True, exclude_none=True)
        return dict(dumped) or None
    if not isinstance(annotations, Mapping):
        raise TypeError(f"annotations must be a dict of MCP tool hints, not {type(annotations).__name__}")
    out: dict[str, Any] = {}
    for k, v in annotations.items():
        key = _ANNOTATION_KEYS.get(k)
        if key is None:
            raise ValueError(
                f"unknown tool annotation {k!r}; known: title, readOnlyHint, destructiveHint, "
                "idempotentHint, openWorldHint"
            )
        out[key] = v
    return out or None


# -- how a callable is served ----------------------------------------------------------------------


class ToolKwargs(TypedDict, total=False):
    """The keywords of ``server.tool()`` and ``add_tool()``: the fields of :class:`ToolOptions`."""

    name: str | None
    description: str | None
    annotations: Mapping[str, Any] | Any | None
    affinity: Affinity
    timeout: float | None
    title: str | None
    input_schema: Mapping[str, Any] | None
    task: TaskSupport


@dataclass(frozen=True, kw_only=True)
class ToolOptions:
    """How a callable is served as a tool; checked when made (see ``SkillServer.tool``)."""

    name: str | None = None
    description: str | None = None
    annotations: Mapping[str, Any] | Any | None = None
    affinity: Affinity = "any"
    timeout: float | None = None
    title: str | None = None
    input_schema: Mapping[str, Any] | None = None
    task: TaskSupport = "forbidden"

    def __post_init__(self) -> None:
        if self.affinity not in ("main", "any"):
            raise ValueError(f"affinity must be 'main' or 'any', not {self.affinity!r}")
        if self.task not in ("forbidden", "optional", "required"):
            raise ValueError(f"task must be 'forbidden', 'optional' or 'required', not {self.task!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.name is not None:
            check_tool_name(self.name)
        object.__setattr__(self, "annotations", normalize_annotations(self.annotations))
        schema = self.input_schema
        if schema is not None:
            if not isinstance(schema, Mapping) or schema.get("type") != "object":
                raise ValueError('input_schema must be a JSON Schema object with "type": "object"')
            from jsonschema import validators

            validators.validator_for(schema).check_schema(dict(schema))  # fail here, not per call
            object.__setattr__(self, "input_schema", dict(schema))


class PendingTool:
    """A callable registered before start; turned into a ``ToolSpec`` by :func:`build_tool`."""

    __slots__ = ("fn", "name", "options")

    def __init__(self, fn: Callable[..., Any], options: ToolOptions | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"a tool must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.options = options if options is not None else ToolOptions()
        self.name = self.options.name or check_tool_name(str(getattr(fn, "__name__", "")))


# -- results --------------------------------------------------------------------------------------

_CONTENT_TYPES = frozenset({"text", "image", "audio", "resource", "resource_link"})


def default_result(value: Any) -> ToolResult:
    if value is None:
        return ToolResult([])
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, str):
        return ToolResult([{"type": "text", "text": value}])
    blocks = as_content_blocks(value)
    if blocks is not None:
        return ToolResult(blocks)
    data = _dump_typed(value)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return ToolResult([{"type": "text", "text": text}], data if isinstance(data, dict) else None)


def as_content_blocks(value: Any) -> list[dict[str, Any]] | None:
    """Content items (helpers, SDK models, strings among them) as wire blocks, else None."""
    from ..content import content_block, is_content

    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not any(is_content(i) for i in items):
        return None
    out = []
    for item in items:
        block = content_block(item)
        if block is None:
            return None
        out.append(block)
    return out


def _dump_typed(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    from pydantic import TypeAdapter

    return TypeAdapter(type(value)).dump_python(value, mode="json")


def is_input_required(value: Any) -> bool:
    """``value`` is an :class:`~mcp_embed.InputRequired` (checked without loading content.py)."""
    content = sys.modules.get(CONTENT_MODULE)
    return content is not None and isinstance(value, content.InputRequired)
