"""Tools from Python callables: schemas from type hints, validated arguments, MCP results.

Nothing heavy is imported at module level: a tool is registered cheaply when the host plugin
loads, and its schema is built (with pydantic) when the server starts.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

from ._argerrors import pydantic_message, schema_errors_message
from .context import ToolContext
from .errors import ToolError

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter

__all__ = ["Affinity", "TaskSupport", "ToolKwargs", "ToolOptions", "ToolSpec"]

Affinity = Literal["main", "any"]
TaskSupport = Literal["forbidden", "optional", "required"]
"""Whether a tool may answer with a SEP-2663 task: never, when the client can take one, or only so."""

# SEP-986 (2025-11-25): 1-128 chars of ASCII letters, digits, '_', '-' and '.'.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

# content.py loads when a tool, prompt or resource first uses its types, not with every server:
# before that, no value or annotation can be one of them.
_CONTENT = f"{__package__}.content"

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
    to_result: Callable[[Any], ToolResult] = field(default=lambda v: _default_result(v), repr=False)
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


# -- callables ------------------------------------------------------------------------------------


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


def build_tool(p: PendingTool) -> ToolSpec:
    """Build the schema and validator of a callable tool (imports pydantic)."""
    from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

    fn = p.fn
    sig = inspect.signature(fn)
    try:
        hints = _type_hints(fn)
    except Exception as exc:
        raise TypeError(f"tool {p.name!r}: cannot resolve its type hints: {exc}") from exc
    doc = inspect.getdoc(fn) or ""
    summary, param_docs = _parse_docstring(doc)

    if p.options.input_schema is not None:
        return _build_verbatim(p, sig, hints, summary)

    fields: dict[str, Any] = {}
    ctx_param: str | None = None
    for pname, param in sig.parameters.items():
        ann = hints.get(pname, Any)
        if _is_context(ann):
            ctx_param = pname
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"tool {p.name!r}: *args and **kwargs parameters are not supported")
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"tool {p.name!r}: positional-only parameter {pname!r} is not supported")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (ann, Field(default, description=param_docs.get(pname)))

    model: type[BaseModel] = create_model(
        f"{p.name}_arguments", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False), **fields
    )
    input_schema = inline_refs(model.model_json_schema())
    input_schema.pop("title", None)
    input_schema.setdefault("properties", {})
    for prop in input_schema["properties"].values():
        # pydantic titles every field after its name ("text" -> "Text"): noise for a model.
        if isinstance(prop, dict):
            prop.pop("title", None)
    input_schema.pop("additionalProperties", None)

    output_schema: dict[str, Any] | None = None
    return_ann = hints.get("return", inspect.Signature.empty)
    adapter: TypeAdapter[Any] | None = None
    wrap = False
    if return_ann not in (inspect.Signature.empty, None, type(None)) and not _returns_content(return_ann):
        adapter = TypeAdapter(return_ann)
        schema = inline_refs(adapter.json_schema(mode="serialization"))
        if (schema.get("type") == "object" and "additionalProperties" not in schema) or _is_object_model(
            return_ann
        ):
            output_schema = schema
        else:
            wrap = True
            output_schema = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
        output_schema.pop("title", None)

    tool_name = p.name

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            inst = model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(pydantic_message(tool_name, exc)) from None
        return {k: getattr(inst, k) for k in fields}

    def to_result(value: Any) -> ToolResult:
        if adapter is None or (not isinstance(value, str) and _as_content_blocks(value) is not None):
            return _default_result(value)
        data = adapter.dump_python(value, mode="json")
        structured = {"result": data} if wrap else data
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return ToolResult([{"type": "text", "text": text}], structured)

    return _spec(
        p,
        summary,
        input_schema=input_schema,
        output_schema=output_schema,
        validate=validate,
        wants_context=ctx_param,
        to_result=to_result,
    )


def _spec(p: PendingTool, summary: str, **fields: Any) -> ToolSpec:
    """The ``ToolSpec`` of a callable: what the registration said, plus the built ``fields``."""
    fn, o = p.fn, p.options
    return ToolSpec(
        name=p.name,
        title=o.title,
        description=o.description if o.description is not None else summary,
        annotations=cast("dict[str, Any] | None", o.annotations),
        affinity=o.affinity,
        timeout=o.timeout,
        task=o.task,
        invoke=fn,
        is_async=inspect.iscoroutinefunction(fn)
        or inspect.iscoroutinefunction(getattr(fn, "__call__", None)),  # noqa: B004
        **fields,
    )


def _build_verbatim(p: PendingTool, sig: inspect.Signature, hints: dict[str, Any], summary: str) -> ToolSpec:
    """A tool whose input schema was given verbatim: validated with jsonschema, not pydantic."""
    from jsonschema import validators

    schema = cast("dict[str, Any] | None", p.options.input_schema)
    assert schema is not None
    validator = validators.validator_for(schema)(schema)
    ctx_param = next((n for n in sig.parameters if _is_context(hints.get(n, Any))), None)
    takes_all = any(x.kind is inspect.Parameter.VAR_KEYWORD for x in sig.parameters.values())
    accepted = {n for n in sig.parameters if n != ctx_param}
    tool_name = p.name

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            raise ToolError(schema_errors_message(tool_name, errors))
        # Properties the function does not declare are dropped, unless it takes **kwargs.
        return dict(arguments) if takes_all else {k: v for k, v in arguments.items() if k in accepted}

    return _spec(p, summary, input_schema=dict(schema), validate=validate, wants_context=ctx_param)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref`` to ``$defs`` with the definitions themselves, so every client accepts it.

    Recursive definitions cannot be inlined; those keep their ``$defs``.
    """
    defs = schema.get("$defs")
    if not defs:
        return schema
    recursive: set[str] = set()

    def resolve(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref[len("#/$defs/") :]
                if name in stack:
                    recursive.add(name)
                    return node
                target = resolve(defs[name], (*stack, name))
                extra = {k: resolve(v, stack) for k, v in node.items() if k != "$ref"}
                return {**target, **extra} if extra else target
            return {k: resolve(v, stack) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v, stack) for v in node]
        return node

    out: dict[str, Any] = resolve(schema, ())
    if recursive:
        out["$defs"] = {k: v for k, v in defs.items() if k in recursive}
    return out


# -- results --------------------------------------------------------------------------------------

_CONTENT_TYPES = frozenset({"text", "image", "audio", "resource", "resource_link"})


def _default_result(value: Any) -> ToolResult:
    if value is None:
        return ToolResult([])
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, str):
        return ToolResult([{"type": "text", "text": value}])
    blocks = _as_content_blocks(value)
    if blocks is not None:
        return ToolResult(blocks)
    data = _jsonable(value)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return ToolResult([{"type": "text", "text": text}], data if isinstance(data, dict) else None)


def _as_content_blocks(value: Any) -> list[dict[str, Any]] | None:
    """Content items (helpers, SDK models, strings among them) as wire blocks, else None."""
    from .content import content_block, is_content

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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    from pydantic import TypeAdapter

    return TypeAdapter(type(value)).dump_python(value, mode="json")


def _is_context(ann: Any) -> bool:
    """``ToolContext``, ``ToolContext | None`` or ``Optional[ToolContext]``."""
    import typing

    return ann is ToolContext or ToolContext in typing.get_args(ann)


def is_input_required(value: Any) -> bool:
    """``value`` is an :class:`~mcp_embed.InputRequired` (checked without loading content.py)."""
    content = sys.modules.get(_CONTENT)
    return content is not None and isinstance(value, content.InputRequired)


def _is_content_type(ann: Any) -> bool:
    content = sys.modules.get(_CONTENT)
    if content is not None and ann in (
        content.Text,
        content.Image,
        content.Audio,
        content.EmbeddedResource,
        content.InputRequired,
    ):
        return True
    mod = getattr(ann, "__module__", "") or ""
    name = getattr(ann, "__name__", "")
    return mod.startswith("mcp_types") and (name.endswith("Content") or name == "EmbeddedResource")


def _returns_content(ann: Any) -> bool:
    """True if a return annotation names content or InputRequired anywhere (no outputSchema then)."""
    import typing

    if _is_content_type(ann):
        return True
    return any(_returns_content(a) for a in typing.get_args(ann))


def _is_object_model(ann: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(ann, type) and (issubclass(ann, BaseModel) or _is_typeddict(ann) or _is_dataclass(ann))


def _is_typeddict(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, dict) and hasattr(ann, "__annotations__")


def _is_dataclass(ann: Any) -> bool:
    import dataclasses

    return dataclasses.is_dataclass(ann)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    target = fn
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)) and hasattr(fn, "__call__"):  # noqa: B004
        target = fn.__call__
    if isinstance(target, functools.partial):
        target = target.func
    return typing.get_type_hints(target, include_extras=True)


_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters|Params):\s*$")
_SECTION = re.compile(r"^[A-Z][A-Za-z ]+:\s*$")
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into the description and per-argument docs."""
    lines = doc.splitlines()
    desc: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if _ARGS_HEADER.match(lines[i].strip()):
            break
        if _SECTION.match(lines[i]) and desc:
            i = len(lines)
            break
        desc.append(lines[i])
        i += 1
    current: str | None = None
    for line in lines[i + 1 :]:
        if line and not line[0].isspace():
            break
        m = _ARG_LINE.match(line)
        if m and (len(line) - len(line.lstrip())) <= 4:
            current = m.group(1).lstrip("*")
            params[current] = m.group(2).strip()
        elif current and line.strip():
            params[current] = (params[current] + " " + line.strip()).strip()
    return "\n".join(desc).strip(), params


# -- the registry ---------------------------------------------------------------------------------


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
