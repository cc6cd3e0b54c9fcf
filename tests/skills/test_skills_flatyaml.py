"""The plain-YAML fast path of the frontmatter reader gives exactly what its YAML 1.2 core loader gives
(and PyYAML's YAML 1.1 safe loader too), or steps aside."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_embed.skills._flatyaml import load_flat
from mcp_embed.skills.frontmatter import load_core_yaml
from skills.skillkit import EXAMPLES

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> object:
    return yaml.load(text, Loader=LOADER)


def agrees(text: str) -> None:
    fast = load_flat(text)
    if fast is not None:
        assert fast == load_core_yaml(text), text  # the reading every SKILL.md gets
        assert fast == safe_load(text), text  # it steps aside for YAML 1.1's booleans as well


def test_the_usual_frontmatter_takes_the_fast_path() -> None:
    text = (
        "name: mesh-ops\n"
        "description: Create and edit meshes. Use it when the user asks for geometry, e.g. a sphere.\n"
        "license: MIT\n"
        "# a comment\n"
        "metadata:\n"
        "  dcc: maya\n"
        '  version: "1.0.2"\n'
        "  dcc-mcp.tools: tools.yaml\n"
        "  author: 'Ana Lúcia'\n"
        "compatibility: Maya 2025 or later\n"
    )
    assert load_flat(text) == load_core_yaml(text) == safe_load(text)
    assert load_flat(text) is not None


def test_the_example_skills_agree() -> None:
    for skill_md in sorted(EXAMPLES.glob("*/SKILL.md")):
        body = skill_md.read_text(encoding="utf-8").split("---\n")[1]
        agrees(body)


def test_values_yaml_would_not_read_as_text_step_aside() -> None:
    for text in (
        "name: yes",
        "name: Null",
        "version: 1.0",
        "when: 2024-01-01",
        "name: a: b",
        "name: a #b",
        "name: [a]",
        "name: 'it''s'",
        'name: "a\\tb"',
        "on: x",
        "name:\n",
        "name: x\n  more",
        "metadata:\n  a: b\n    c: d",
        "name: x\r\n",
        "description: >-\n  folded text",
        "name:value",
        "a: A\n#\x85: A",  # NEL ends a comment for YAML
        "",
    ):
        assert load_flat(text) is None, text


_TRICKY = st.lists(
    st.sampled_from(
        [
            *list("abcXYZ019 -_.,:#'\"\\[]{}|>!&*%@`?=~()/+é中\xa0\x85\u2028\ufeff\t"),
            "yes",
            "No",
            "TRUE",
            "off",
            "null",
            "1.5",
            "0x1f",
            "2024-01-01",
            ": ",
            " #",
            "''",
        ]
    ),
    max_size=8,
).map("".join)
_WORD = st.from_regex(r"[A-Za-zé中ß][A-Za-z0-9 .,()/+?=~é-]{0,12}", fullmatch=True)
_VALUE = st.one_of(
    _WORD,
    _WORD.map(lambda w: f'"{w}"'),
    _WORD.map(lambda w: f"'{w}'"),
    st.sampled_from(["yes", "Off", "NULL", "1.0", "3", "~", '""', "x:y", "a # b", "- a"]),
    _TRICKY,
)
_KEY = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True),
    st.sampled_from(["on", "No", "y", "1", "-a", "a b"]),
    _TRICKY,
)
_SEP = st.sampled_from([": ", ": ", ": ", ":", ":   ", " : "])
_INDENT = st.sampled_from(["  ", "  ", "  ", " ", "    ", ""])


@st.composite
def _frontmatter(draw: st.DrawFn) -> str:
    """Mostly well-formed flat maps with one nested level, with every kind of defect mixed in."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["scalar", "scalar", "block", "comment", "blank", "junk"]))
        if kind == "scalar":
            lines.append(draw(_KEY) + draw(_SEP) + draw(_VALUE) + draw(st.sampled_from(["", "", " "])))
        elif kind == "block":
            lines.append(draw(_KEY) + ":")
            indent = draw(_INDENT)
            for _ in range(draw(st.integers(0, 3))):
                lines.append(
                    draw(st.one_of(st.just(indent), _INDENT)) + draw(_KEY) + draw(_SEP) + draw(_VALUE)
                )
        elif kind == "comment":
            lines.append(draw(st.sampled_from(["", "  "])) + "# " + draw(_WORD))
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", "  "])))
        else:
            lines.append(draw(_TRICKY))
    return "\n".join(lines)


@settings(max_examples=800, deadline=None)
@given(_frontmatter())
def test_the_fast_path_never_disagrees_with_the_yaml_loaders(text: str) -> None:
    fast = load_flat(text)
    if fast is None:
        return
    for load in (load_core_yaml, safe_load):
        try:
            expected = load(text)
        except yaml.YAMLError as exc:  # pragma: no cover - a disagreement is the bug this test finds
            raise AssertionError(f"fast path read {text!r} as {fast!r}, but YAML rejects it: {exc}") from None
        assert fast == expected, (load.__name__, text)


def test_the_generator_reaches_the_fast_path_often() -> None:
    # Otherwise the property above would hold vacuously.
    from hypothesis import find

    # find() stops at 2,000 examples by default, which CI once ran through without a match of 3
    # keys: a wider bound (find returns at the first match, so it costs nothing when it is found).
    wide = settings(max_examples=20_000, deadline=None, database=None)
    find(
        _frontmatter(),
        lambda t: (d := load_flat(t)) is not None and any(isinstance(v, dict) for v in d.values()),
        settings=wide,
    )
    find(_frontmatter(), lambda t: (d := load_flat(t)) is not None and len(d) >= 3, settings=wide)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
        st.one_of(
            st.text(st.characters(codec="utf-8"), max_size=30),
            st.dictionaries(
                st.from_regex(r"[a-z][a-z.-]{0,8}", fullmatch=True), st.text(max_size=20), max_size=3
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_what_pyyaml_writes_reads_back_the_same(doc: dict[str, object]) -> None:
    agrees(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=False))
