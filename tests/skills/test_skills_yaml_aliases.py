"""YAML aliases that make a document endless or huge are refused where the YAML is read, so no
later walk (JSON for skills/get, a schema for tools/list) meets them; ordinary aliases still work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from skillkit import write_skill

from mcp_embed.skills import discover_skills
from mcp_embed.skills.extension import answer_sync
from mcp_embed.skills.frontmatter import YAML_VALUES_MAX, check_aliases, load_frontmatter, load_yaml

ENDLESS = "an endless document"
LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)  # 10**9 values once expanded, a few hundred bytes on disk


def _catalog(root: Path):  # type: ignore[no-untyped-def]
    return discover_skills("generic", [root], include_user_dir=False, env={})


@pytest.mark.parametrize("key", ["allowed-tools", "unknown-extra", "metadata"])
def test_an_anchor_inside_itself_leaves_the_skill_out_with_a_reason(tmp_path: Path, key: str) -> None:
    md = f"---\nname: loopy\ndescription: Refers to itself.\n{key}: &l [*l]\n---\nBody.\n"
    write_skill(tmp_path, "loopy", skill_md=md)
    catalog = _catalog(tmp_path)
    assert [s.name for s in catalog.skills] == []
    assert any(ENDLESS in str(p) and p.severity == "error" for p in catalog.problems), catalog.problems


def test_an_expanding_frontmatter_is_refused(tmp_path: Path) -> None:
    md = "---\nname: laughs\ndescription: Expands.\n" + LAUGHS.replace("a0:", "x-a0:", 1) + "---\nBody.\n"
    write_skill(tmp_path, "laughs", skill_md=md)
    catalog = _catalog(tmp_path)
    assert [s.name for s in catalog.skills] == []
    assert any(f"more than {YAML_VALUES_MAX} values" in str(p) for p in catalog.problems), catalog.problems


def test_a_recursive_tools_yaml_is_a_tools_yaml_problem(tmp_path: Path) -> None:
    tools = """
    tools:
      - name: loop
        input_schema: &s
          type: object
          properties:
            again: *s
    """
    write_skill(tmp_path, "recur", tools_yaml=tools, scripts={"loop.py": "def loop(): ...\n"})
    catalog = _catalog(tmp_path)
    catalog.resolve(["recur"])
    problems = [p for p in catalog.problems if p.rule == "tools-yaml"]
    assert problems and ENDLESS in str(problems[0])


def test_shared_aliases_still_load_and_serve(tmp_path: Path) -> None:
    md = "---\nname: shared\ndescription: Shares.\nmetadata: &m\n  a: one\nx-copy: *m\n---\nBody.\n"
    write_skill(tmp_path, "shared", skill_md=md)
    catalog = _catalog(tmp_path)
    assert [s.name for s in catalog.skills] == ["shared"]
    entry = answer_sync(catalog, "skills/get", {"uri": "skill://shared/SKILL.md"})
    assert "one" in str(entry)
    assert load_yaml("base: &b {type: string}\nx: *b\ny: *b")["y"] == {"type": "string"}


def test_the_check_itself() -> None:
    with pytest.raises(yaml.YAMLError, match=ENDLESS):
        load_frontmatter("a: &a {b: *a}")
    with pytest.raises(yaml.YAMLError, match="values once its aliases are expanded"):
        load_yaml(LAUGHS)
    shared = [1, 2]
    assert check_aliases({"x": shared, "y": [shared, shared]}) == {"x": [1, 2], "y": [[1, 2], [1, 2]]}
    assert check_aliases("plain") == "plain"
