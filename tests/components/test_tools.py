"""Schemas from type hints, outputSchema from typed returns, and argument validation."""

from __future__ import annotations

import enum
from typing import Literal

import pytest
from pydantic import BaseModel

from mcp_embed import ToolContext, ToolError
from mcp_embed.components.schema import build_tool, inline_refs
from mcp_embed.components.tools import PendingTool, ToolOptions


def _spec(fn, **kw):
    return build_tool(
        PendingTool(fn, ToolOptions(name=kw.pop("name", None), annotations=kw.pop("annotations", None)))
    )


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Point(BaseModel):
    x: float
    y: float


class Shape(BaseModel):
    name: str
    points: list[Point]


def make_shape(
    name: str,
    points: list[Point],
    color: Color = Color.RED,
    kind: Literal["a", "b"] = "a",
    note: str | None = None,
    ctx: ToolContext | None = None,
) -> Shape:
    """Make a shape.

    Args:
        name: The shape's name.
        points: Its corners,
            in order.
    """
    return Shape(name=name, points=points)


def test_input_schema_has_no_refs_and_documents_parameters() -> None:
    spec = _spec(make_shape)
    schema = spec.input_schema
    assert "$defs" not in schema and "$ref" not in str(schema)
    props = schema["properties"]
    assert props["name"] == {"type": "string", "description": "The shape's name."}
    assert props["points"]["description"] == "Its corners, in order."
    assert props["points"]["items"]["properties"]["x"]["type"] == "number"
    assert props["color"]["enum"] == ["red", "green"]
    assert props["kind"]["enum"] == ["a", "b"]
    assert schema["required"] == ["name", "points"]
    assert "ctx" not in props
    assert spec.description == "Make a shape."


def test_model_return_gives_object_output_schema_and_structured_content() -> None:
    spec = _spec(make_shape)
    assert spec.output_schema is not None and spec.output_schema["type"] == "object"
    assert "$ref" not in str(spec.output_schema)
    args = spec.validate({"name": "tri", "points": [{"x": 0, "y": 0}]})
    result = spec.to_result(spec.invoke(**args))
    assert result.structured == {"name": "tri", "points": [{"x": 0.0, "y": 0.0}]}


def test_scalar_return_is_wrapped_in_result() -> None:
    def f(a: int) -> list[int]:
        return [a]

    spec = _spec(f)
    assert spec.output_schema == {
        "type": "object",
        "properties": {"result": {"type": "array", "items": {"type": "integer"}}},
        "required": ["result"],
    }
    assert spec.to_result([1]).structured == {"result": [1]}


def test_untyped_return_has_no_output_schema() -> None:
    def f(a: int):
        return {"a": a}

    spec = _spec(f)
    assert spec.output_schema is None
    assert spec.to_result({"a": 1}).structured == {"a": 1}


def test_validation_error_names_the_field_path() -> None:
    spec = _spec(make_shape)
    with pytest.raises(ToolError) as info:
        spec.validate({"name": "x", "points": [{"x": "nan?", "y": 1}]})
    assert "points.0.x" in str(info.value)
    with pytest.raises(ToolError, match="extra: unexpected argument"):
        spec.validate({"name": "x", "points": [], "extra": 1})


def test_tool_names_and_annotations_are_checked() -> None:
    def f() -> None: ...

    with pytest.raises(ValueError, match="invalid tool name"):
        PendingTool(f, ToolOptions(name="has space"))
    spec = _spec(f, annotations={"read_only_hint": True, "openWorldHint": False})
    assert spec.annotations == {"readOnlyHint": True, "openWorldHint": False}
    with pytest.raises(ValueError, match="unknown tool annotation"):
        PendingTool(f, ToolOptions(annotations={"fast": True}))


def test_inline_refs_keeps_recursive_definitions() -> None:
    schema = {
        "$defs": {"N": {"type": "object", "properties": {"child": {"$ref": "#/$defs/N"}}}},
        "properties": {"root": {"$ref": "#/$defs/N"}},
    }
    out = inline_refs(schema)
    assert out["properties"]["root"]["properties"]["child"] == {"$ref": "#/$defs/N"}
    assert "N" in out["$defs"]
