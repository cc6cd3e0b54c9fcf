"""Schemas and descriptions inferred with ast from annotations, defaults and docstrings."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from mcp_embed.skills.docstrings import parse_docstring
from mcp_embed.skills.infer import analyze_script, build_input_schema


def schema_of(signature: str, prelude: str = "") -> dict[str, Any]:
    source = textwrap.dedent(prelude) + f"\ndef f({signature}) -> None:\n    '''F.'''\n"
    info = analyze_script(source, "s.py", "demo")
    assert info.ok, info.problems
    schema, _ = build_input_schema(info.functions["f"], None, path="s.py", skill="demo", tool="demo__f")
    return schema


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("str", {"type": "string"}),
        ("int", {"type": "integer"}),
        ("float", {"type": "number"}),
        ("bool", {"type": "boolean"}),
        ("dict", {"type": "object"}),
        ("list", {"type": "array"}),
        ("list[int]", {"type": "array", "items": {"type": "integer"}}),
        ("typing.List[str]", {"type": "array", "items": {"type": "string"}}),
        ("set[str]", {"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
        ("tuple[int, ...]", {"type": "array", "items": {"type": "integer"}}),
        (
            "tuple[int, str]",
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        ("dict[str, float]", {"type": "object", "additionalProperties": {"type": "number"}}),
        ("dict[str, Any]", {"type": "object"}),
        ("Literal['a', 'b']", {"type": "string", "enum": ["a", "b"]}),
        ("Literal[1, 'b']", {"enum": [1, "b"]}),
        ("Optional[int]", {"type": ["integer", "null"]}),
        ("int | None", {"type": ["integer", "null"]}),
        ("Union[int, str]", {"type": ["integer", "string"]}),
        ("list[int] | None", {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}),
        ("'int'", {"type": "integer"}),
        ("Any", {}),
        ("Color", {"type": "string", "enum": ["red", "blue"]}),
        ("Level", {"type": "integer", "enum": [1, 2]}),
        ("Mode", {"type": "string", "enum": ["fast", "slow"]}),
        ("Annotated[int, 'how many']", {"type": "integer", "description": "how many"}),
    ],
)
def test_annotation_schemas(annotation: str, expected: dict[str, Any]) -> None:
    prelude = """
        import typing
        from enum import Enum, IntEnum, auto
        from typing import Annotated, Any, Literal, Optional, Union

        class Color(Enum):
            RED = "red"
            BLUE = "blue"

        class Level(IntEnum):
            LOW = auto()
            HIGH = auto()

        Mode = Literal["fast", "slow"]
    """
    schema = schema_of(f"x: {annotation}", prelude)
    assert schema["properties"]["x"] == expected
    assert schema["required"] == ["x"]
    assert schema["additionalProperties"] is False


def test_defaults_make_parameters_optional_and_are_recorded() -> None:
    schema = schema_of("a: int, b: str = 'x', *, c: float = 1.5, d: list[int] = (1, 2), e: object = object()")
    assert schema["required"] == ["a"]
    props = schema["properties"]
    assert (props["b"]["default"], props["c"]["default"], props["d"]["default"]) == ("x", 1.5, [1, 2])
    assert "default" not in props["e"]


def test_enum_member_defaults_become_values() -> None:
    schema = schema_of(
        "c: Color = Color.BLUE", "from enum import Enum\nclass Color(Enum):\n    RED = 'r'\n    BLUE = 'b'\n"
    )
    assert schema["properties"]["c"] == {"type": "string", "enum": ["r", "b"], "default": "b"}


def test_var_keyword_allows_extra_properties() -> None:
    assert "additionalProperties" not in schema_of("a: int, **kw: int")


def test_unresolvable_types_are_any_with_a_warning_unless_declared() -> None:
    info = analyze_script(
        "import numpy as np\ndef f(m: np.ndarray, k: int) -> None:\n    '''F.'''\n", "s.py", "d"
    )
    fn = info.functions["f"]
    schema, problems = build_input_schema(fn, None, path="s.py", skill="d", tool="d__f")
    assert schema["properties"]["m"] == {}
    (problem,) = problems
    assert (problem.severity, problem.rule, problem.key, problem.line) == ("warning", "infer-type", "f.m", 2)
    assert "np.ndarray" in problem.message
    declared = {"type": "object", "properties": {"m": {"type": "array"}}, "description": "declared"}
    schema, problems = build_input_schema(fn, declared, path="s.py", skill="d", tool="d__f")
    assert problems == []
    assert schema["properties"]["m"] == {"type": "array"}
    assert schema["description"] == "declared"


def test_google_docstrings() -> None:
    summary, args = parse_docstring("""Do the thing.

        Longer text.

        Args:
            name (str): The name,
                continued here.
            *rest: Extra.
            count: How many.

        Returns:
            name: not an argument.
        """)
    assert summary == "Do the thing.\n\nLonger text."
    assert args == {"name": "The name, continued here.", "rest": "Extra.", "count": "How many."}


def test_syntax_errors_carry_file_and_line() -> None:
    info = analyze_script("x = 1\n\ndef f(a: int -> None:\n    pass\n", "/s/broken.py", "demo")
    assert not info.ok
    (problem,) = info.problems
    assert (problem.path, problem.line, problem.rule, problem.skill) == (
        "/s/broken.py",
        3,
        "script-syntax",
        "demo",
    )
    assert analyze_script(b"x = '\0'\x00", "/s/nul.py", "demo").problems[0].rule == "script-syntax"
