"""SKILL.md frontmatter: the agentskills.io rules, dcc-mcp-core's forms, and hostile input."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_embed.skills import SkillProblem
from mcp_embed.skills.frontmatter import parse_skill_md, split_frontmatter
from mcp_embed.skills.toolsyaml import parse_tools_yaml
from skills.skillkit import rules

PATH = "/skills/demo/SKILL.md"


def parse(text: str, folder: str | None = "demo"):
    return parse_skill_md(text, PATH, folder)


def test_a_valid_header_reads_every_field() -> None:
    header, problems = parse(
        "---\nname: demo\ndescription: Does demo things.\nlicense: MIT\ncompatibility: Maya 2024+\n"
        "allowed-tools: Bash Read\nmetadata:\n  dcc: Maya, blender\n  version: '1.2.0'\n---\n# Body\n"
    )
    assert problems == []
    assert header is not None
    assert (header.name, header.description, header.license) == ("demo", "Does demo things.", "MIT")
    assert header.dcc == ("maya", "blender")
    assert header.version == "1.2.0"
    assert header.allowed_tools == "Bash Read"


def test_split_keeps_the_body_and_its_first_line() -> None:
    assert split_frontmatter("---\na: 1\n---\nbody\n") == ("a: 1\n", "body\n", 4)
    assert split_frontmatter("---\r\na: 1\r\n...\r\nbody") == ("a: 1\r\n", "body", 4)
    assert split_frontmatter("no frontmatter") == ("", "no frontmatter", 1)
    assert split_frontmatter("---\nname: x\n") is None


@pytest.mark.parametrize(
    ("text", "rule", "line"),
    [
        ("# just markdown\n", "frontmatter-present", 1),
        ("---\nname: demo\ndescription: x\n", "frontmatter-closed", 1),
        ("---\nname: demo\ndescription: [unclosed\n---\n", "frontmatter-yaml", None),
        ("---\n- a\n- b\n---\n", "frontmatter-mapping", 2),
    ],
)
def test_structural_errors_name_the_file_the_rule_and_the_line(
    text: str, rule: str, line: int | None
) -> None:
    header, problems = parse(text)
    assert header is None
    (problem,) = problems
    assert (problem.severity, problem.rule, problem.path) == ("error", rule, PATH)
    if line is not None:
        assert problem.line == line
    else:
        assert problem.line is not None and problem.line >= 2


def test_yaml_error_line_is_the_file_line() -> None:
    _, problems = parse("---\nname: demo\ndescription: ok\nmetadata: {a: [}\n---\n")
    assert problems[0].rule == "frontmatter-yaml"
    assert problems[0].line == 4


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Demo", "name-format"),
        ("-demo", "name-format"),
        ("demo-", "name-format"),
        ("de--mo", "name-format"),
        ("de_mo", "name-format"),
        ("a" * 65, "name-length"),
    ],
)
def test_name_rules(name: str, rule: str) -> None:
    header, problems = parse(f"---\nname: {name}\ndescription: x\n---\n", folder=name)
    assert header is None
    assert rule in rules(problems)
    assert all(p.key == "name" for p in problems if p.severity == "error")


def test_name_must_equal_the_folder() -> None:
    header, problems = parse("---\nname: other\ndescription: x\n---\n", folder="demo")
    assert header is None
    (problem,) = problems
    assert (problem.rule, problem.key) == ("name-matches-folder", "name")
    assert "'other'" in problem.message and "'demo'" in problem.message


@pytest.mark.parametrize(
    ("body", "rule", "key"),
    [
        ("name: demo\n", "description-required", "description"),
        ("name: demo\ndescription: '   '\n", "description-required", "description"),
        (f"name: demo\ndescription: {'x' * 1025}\n", "description-length", "description"),
        ("description: x\n", "name-required", "name"),
        ("name: 12\ndescription: x\n", "field-type", "name"),
        (
            f"name: demo\ndescription: x\ncompatibility: {'c' * 501}\n",
            "compatibility-length",
            "compatibility",
        ),
        ("name: demo\ndescription: x\nmetadata: [a, b]\n", "metadata-string-map", "metadata"),
        (
            "name: demo\ndescription: x\nmetadata:\n  nested: {a: b}\n",
            "metadata-string-map",
            "metadata.nested",
        ),
    ],
)
def test_field_rules(body: str, rule: str, key: str) -> None:
    header, problems = parse(f"---\n{body}---\n")
    assert header is None
    assert any(p.rule == rule and p.key == key and p.severity == "error" for p in problems), problems


def test_limits_are_inclusive() -> None:
    header, problems = parse(
        f"---\nname: {'a' * 64}\ndescription: {'d' * 1024}\ncompatibility: {'c' * 500}\n---\n",
        folder="a" * 64,
    )
    assert header is not None, problems


def test_unknown_keys_and_loose_metadata_are_warnings() -> None:
    header, problems = parse("---\nname: demo\ndescription: x\ntags: [a]\nmetadata:\n  version: 1.5\n---\n")
    assert header is not None
    assert header.version == "1.5"
    assert {(p.severity, p.rule, p.key) for p in problems} == {
        ("warning", "unknown-key", "tags"),
        ("warning", "metadata-string-map", "metadata.version"),
    }


def test_dcc_mcp_core_nested_metadata_is_read_with_a_warning() -> None:
    header, problems = parse(
        "---\nname: demo\ndescription: x\nmetadata:\n  dcc-mcp:\n    dcc: maya\n    tools: decl.yaml\n"
        "    version: 2.0.0\n---\n"
    )
    assert header is not None
    assert header.dcc == ("maya",)
    assert header.tools_file == "decl.yaml"
    assert header.version == "2.0.0"
    (problem,) = problems
    assert (problem.severity, problem.key) == ("warning", "metadata.dcc-mcp")
    assert "not spec-valid" in problem.message


def test_dcc_mcp_core_flat_metadata_is_spec_valid() -> None:
    header, problems = parse("---\nname: demo\ndescription: x\nmetadata:\n  dcc-mcp.dcc: houdini\n---\n")
    assert problems == []
    assert header is not None and header.dcc == ("houdini",)


def test_a_bom_and_crlf_are_fine() -> None:
    header, problems = parse("\ufeff---\r\nname: demo\r\ndescription: x\r\n---\r\nbody\r\n")
    assert header is not None, problems


# -- hostile input: only ever problems, never an exception -------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.dates(),
    st.binary(max_size=10),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.booleans()), inner, max_size=5),
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "description",
                    "license",
                    "compatibility",
                    "metadata",
                    "allowed-tools",
                    "dcc",
                    "dcc-mcp",
                    "tools",
                ]
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=12,
)
_yamlish = st.text(alphabet=string.printable + "é—\u2028\ufeff", max_size=300)


def _check(result: tuple[object, list[SkillProblem]]) -> None:
    header, problems = result
    assert all(isinstance(p, SkillProblem) and p.path and p.rule and p.message for p in problems)
    assert (header is None) == any(p.severity == "error" for p in problems)


@settings(max_examples=300, deadline=None)
@given(_yamlish)
def test_arbitrary_text_gives_only_problems(text: str) -> None:
    _check(parse(text))
    _check(parse("---\n" + text + "\n---\nbody"))
    decls, problems = parse_tools_yaml(text, "/s/tools.yaml", "demo")
    assert decls is None or isinstance(decls, list)
    assert all(isinstance(p, SkillProblem) for p in problems)


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_arbitrary_yaml_documents_give_only_problems(document: object) -> None:
    dumped = yaml.safe_dump(document, allow_unicode=True)
    _check(parse("---\n" + dumped + "---\n"))
    decls, problems = parse_tools_yaml(dumped, "/s/tools.yaml", "demo")
    assert all(isinstance(p, SkillProblem) for p in problems)
    wrapped = yaml.safe_dump({"tools": [document, {"name": "ok"}]}, allow_unicode=True)
    decls, problems = parse_tools_yaml(wrapped, "/s/tools.yaml", "demo")
    assert decls is not None and any(d.name == "ok" for d in decls)


@pytest.mark.parametrize(
    "text",
    [
        "---\na: 2001-13-45\n---\n",  # the timestamp resolver raises ValueError, not YAMLError
        "---\n? [a, b]\n: c\n---\n",  # an unhashable key
        "---\na: &x [*x]\nname: demo\n---\n",  # a recursive alias
        "---\n" + "[" * 5000 + "\n---\n",  # deep nesting
        "---\nname: !!python/object:os.system x\n---\n",  # the unsafe tag the safe loader refuses
    ],
)
def test_known_loader_traps(text: str) -> None:
    header, problems = parse(text)
    assert header is None
    assert problems
