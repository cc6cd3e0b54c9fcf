"""Tools from Python callables: the input schema from type hints (or given verbatim), the
validator, and the output schema from the return annotation. Runs when the server starts (pydantic).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..context import ToolContext
from ..errors import ToolError
from ._argerrors import pydantic_message, schema_errors_message
from .tools import CONTENT_MODULE, PendingTool, ToolResult, ToolSpec, as_content_blocks, default_result

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter

__all__ = ["build_tool", "inline_refs", "is_context", "parse_docstring", "type_hints"]


def build_tool(p: PendingTool) -> ToolSpec:
    """Build the schema and validator of a callable tool (imports pydantic)."""
    from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

    fn = p.fn
    sig = inspect.signature(fn)
    try:
        hints = type_hints(fn)
    except Exception as exc:
        raise TypeError(f"tool {p.name!r}: cannot resolve its type hints: {exc}") from exc
    doc = inspect.getdoc(fn) or ""
    summary, param_docs = parse_docstring(doc)

    if p.options.input_schema is not None:
        return _build_verbatim(p, sig, hints, summary)

    fields: dict[str, Any] = {}
    ctx_param: str | None = None
    for pname, param in sig.parameters.items():
        ann = hints.get(pname, Any)
        if is_context(ann):
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
        if adapter is None or (not isinstance(value, str) and as_content_blocks(value) is not None):
            return default_result(value)
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
    ctx_param = next((n for n in sig.parameters if is_context(hints.get(n, Any))), None)
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


def is_context(ann: Any) -> bool:
    """``ToolContext``, ``ToolContext | None`` or ``Optional[ToolContext]``."""
    import typing

    return ann is ToolContext or ToolContext in typing.get_args(ann)


def _is_content_type(ann: Any) -> bool:
    content = sys.modules.get(CONTENT_MODULE)
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


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
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


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
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
