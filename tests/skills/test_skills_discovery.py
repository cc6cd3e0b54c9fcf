"""Discovery: root order, shadowing, host filtering, broken skills, tools.yaml, naming and caching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_embed.skills import discover_skills, env_var_name, format_skills_table, skill_roots, validate_skill
from skills.skillkit import EXAMPLES, FIXTURES, frontmatter, rules, write_skill

HELLO = """
def greet(name: str) -> str:
    \"\"\"Greet someone.\"\"\"
    return "hi " + name
"""


def test_env_var_name_normalises_the_app() -> None:
    assert env_var_name("maya") == "DCC_MCP_MAYA_SKILL_PATHS"
    assert env_var_name("3ds Max") == "DCC_MCP_3DS_MAX_SKILL_PATHS"
    assert env_var_name("unreal-engine.5") == "DCC_MCP_UNREAL_ENGINE_5_SKILL_PATHS"


def test_roots_come_in_priority_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "data" / app))
    env = {
        "DCC_MCP_MAYA_SKILL_PATHS": os.pathsep.join([str(tmp_path / "app1"), "", str(tmp_path / "app2")]),
        "DCC_MCP_SKILL_PATHS": os.pathsep.join([str(tmp_path / "shared"), str(tmp_path / "explicit")]),
    }
    roots = skill_roots("Maya", [tmp_path / "explicit"], env=env)
    assert roots == [
        (tmp_path / "explicit", "explicit"),
        (tmp_path / "app1", "DCC_MCP_MAYA_SKILL_PATHS"),
        (tmp_path / "app2", "DCC_MCP_MAYA_SKILL_PATHS"),
        (tmp_path / "shared", "DCC_MCP_SKILL_PATHS"),
        (tmp_path / "data" / "mcp-embed" / "skills" / "maya", "user"),
    ]


def test_first_root_wins_and_shadowed_copies_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "data" / app))
    explicit, app_root, shared = tmp_path / "explicit", tmp_path / "app", tmp_path / "shared"
    user = tmp_path / "data" / "mcp-embed" / "skills" / "maya"
    for root in (explicit, app_root, shared, user):
        write_skill(root, "tool-kit", scripts={"k.py": HELLO})
    write_skill(shared, "only-shared", scripts={"s.py": HELLO})
    write_skill(user, "only-user", scripts={"u.py": HELLO})
    env = {"DCC_MCP_MAYA_SKILL_PATHS": str(app_root), "DCC_MCP_SKILL_PATHS": str(shared)}

    catalog = discover_skills("maya", [explicit], env=env)

    assert {s.name: s.root for s in catalog.skills} == {
        "tool-kit": explicit,
        "only-shared": shared,
        "only-user": user,
    }
    assert [(s.name, s.path, s.shadowed_by) for s in catalog.shadowed] == [
        ("tool-kit", app_root / "tool-kit", explicit / "tool-kit"),
        ("tool-kit", shared / "tool-kit", explicit / "tool-kit"),
        ("tool-kit", user / "tool-kit", explicit / "tool-kit"),
    ]
    assert "shadowed by" in format_skills_table(catalog)


def test_os_environ_is_the_default_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_skill(tmp_path / "r", "from-env", scripts={"k.py": HELLO})
    monkeypatch.setenv("DCC_MCP_BLENDER_SKILL_PATHS", str(tmp_path / "r"))
    catalog = discover_skills("blender", include_user_dir=False)
    assert [s.name for s in catalog.skills] == ["from-env"]


def test_a_root_that_is_a_skill_counts_as_one(tmp_path: Path, discover) -> None:
    folder = write_skill(tmp_path, "single", scripts={"k.py": HELLO})
    write_skill(folder, "not-a-child")  # children of a skill root are not skills
    catalog = discover(folder)
    assert [s.name for s in catalog.skills] == ["single"]
    assert [t.name for t in catalog.tools] == ["single__greet"]


def test_folders_without_skill_md_and_hidden_folders_are_ignored(tmp_path: Path, discover) -> None:
    (tmp_path / "plain-folder").mkdir()
    write_skill(tmp_path, ".hidden")
    write_skill(tmp_path, "real")
    catalog = discover()
    assert [s.name for s in catalog.skills] == ["real"]
    assert catalog.problems == []


def test_missing_roots_are_warnings(tmp_path: Path, discover) -> None:
    catalog = discover(tmp_path / "nope")
    assert [(p.severity, p.rule) for p in catalog.problems] == [("warning", "root-missing")]


@pytest.mark.parametrize(
    ("dcc", "maya", "blender"),
    [
        (None, True, True),
        ("generic", True, True),
        ("maya", True, False),
        ("Blender, houdini", False, True),
        ("maya,generic", True, True),
    ],
)
def test_dcc_filtering(tmp_path: Path, discover, dcc: str | None, maya: bool, blender: bool) -> None:
    write_skill(tmp_path, "filtered", dcc=f"'{dcc}'" if dcc else None)
    assert bool(discover(app="Maya").skills) is maya
    other = discover(app="blender")
    assert bool(other.skills) is blender
    assert bool(other.other_hosts) is not blender


def test_another_hosts_skill_does_not_shadow(tmp_path: Path, discover) -> None:
    write_skill(tmp_path / "a", "same", dcc="blender")
    write_skill(tmp_path / "b", "same", dcc="maya")
    catalog = discover(tmp_path / "a", tmp_path / "b", app="maya")
    assert [s.root for s in catalog.skills] == [tmp_path / "b"]
    assert catalog.shadowed == []


def test_a_broken_skill_is_skipped_and_the_others_load(tmp_path: Path, discover) -> None:
    write_skill(tmp_path, "good", scripts={"k.py": HELLO})
    write_skill(tmp_path, "no-frontmatter", skill_md="# nothing here\n")
    write_skill(tmp_path, "bad-yaml", skill_md="---\nname: bad-yaml\ndescription: [x\n---\n")
    write_skill(tmp_path, "mismatch", skill_md=frontmatter("other-name"), scripts={"k.py": HELLO})
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "SKILL.md").write_bytes(b"---\nname: binary\n\xff\xfe---\n")

    catalog = discover()

    assert [s.name for s in catalog.skills] == ["good"]
    assert [t.name for t in catalog.tools] == ["good__greet"]
    by_skill = {p.skill: p for p in catalog.errors}
    assert by_skill["no-frontmatter"].rule == "frontmatter-present"
    assert by_skill["bad-yaml"].rule == "frontmatter-yaml"
    assert by_skill["mismatch"].rule == "name-matches-folder"
    assert by_skill["mismatch"].key == "name"
    assert by_skill["mismatch"].path == str(tmp_path / "mismatch" / "SKILL.md")
    assert by_skill["binary"].rule == "encoding"


def test_a_script_with_a_syntax_error_is_reported_and_its_siblings_load(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "mixed",
        scripts={
            "a_good.py": HELLO,
            "b_broken.py": "def ok(x: int) -> int:\n    return x\n\ndef broken(:\n    pass\n",
            "c_good.py": "def other(y: float) -> float:\n    '''Other.'''\n    return y\n",
        },
    )
    catalog = discover()
    assert [t.name for t in catalog.tools] == ["mixed__greet", "mixed__other"]
    (problem,) = catalog.errors
    assert problem.rule == "script-syntax"
    assert problem.path == str(tmp_path / "mixed" / "scripts" / "b_broken.py")
    assert problem.line == 4
    assert "syntax error" in str(problem)


def test_inference_rules_for_which_functions_become_tools(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "picky",
        scripts={
            "main.py": '''
            import os

            def typed(a: int) -> int:
                """Typed."""
                return a

            def returns_only() -> str:
                """No parameters, a return hint."""
                return "x"

            def untyped(a):
                return a

            def _private(a: int) -> int:
                return a

            async def coroutine(a: int) -> int:
                return a

            def positional(a: int, /) -> int:
                return a

            class Helper:
                def method(self, a: int) -> int:
                    return a
        ''',
            "_helpers.py": "def helper(a: int) -> int:\n    return a\n",
            "exported.py": "__all__ = ['one']\n\ndef one() -> int:\n    return 1\n\n"
            "def two() -> int:\n    return 2\n",
        },
    )
    catalog = discover()
    assert [t.name for t in catalog.tools] == ["picky__one", "picky__typed", "picky__returns_only"]
    assert {(p.rule, p.key) for p in catalog.problems} == {("infer-docstring", "one")}


def test_same_function_name_in_two_scripts_first_wins(tmp_path: Path, discover) -> None:
    write_skill(tmp_path, "twins", scripts={"a.py": HELLO, "b.py": HELLO})
    catalog = discover()
    assert [t.name for t in catalog.tools] == ["twins__greet"]
    assert catalog.tools[0].source_file == tmp_path / "twins" / "scripts" / "a.py"
    (problem,) = catalog.errors
    assert (problem.rule, problem.path) == ("tool-name-unique", str(tmp_path / "twins" / "scripts" / "b.py"))


def test_tool_names_never_collide_across_skills(tmp_path: Path, discover) -> None:
    write_skill(tmp_path, "a", scripts={"s.py": "def b__c() -> int:\n    '''x'''\n    return 1\n"})
    write_skill(tmp_path, "a-b", scripts={"s.py": "def c() -> int:\n    '''x'''\n    return 1\n"})
    names = [t.name for t in discover().tools]
    assert names == ["a__b__c", "a_b__c"]
    assert len(set(names)) == len(names)


def test_invalid_tool_names_are_errors(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "names",
        tools_yaml="""
        tools:
          - name: has space
            source_file: scripts/s.py
            function: f
          - name: fine
            source_file: scripts/s.py
            function: f
    """,
        scripts={"s.py": "def f() -> int:\n    '''F.'''\n    return 1\n"},
    )
    catalog = discover()
    assert [t.name for t in catalog.tools] == ["names__fine"]
    assert ("tool-name", "tools[has space]") in {(p.rule, p.key) for p in catalog.errors}


def test_a_long_name_warns_and_a_too_long_name_is_refused(tmp_path: Path, discover) -> None:
    skill = "s" * 60
    write_skill(
        tmp_path,
        skill,
        scripts={
            "s.py": f"def {'f' * 10}() -> int:\n    '''F.'''\n    return 1\n"
            f"def {'g' * 70}() -> int:\n    '''G.'''\n    return 1\n"
        },
    )
    catalog = discover()
    assert [t.name for t in catalog.tools] == [f"{skill}__{'f' * 10}"]
    assert {(p.severity, p.rule) for p in catalog.problems} == {
        ("warning", "tool-name"),
        ("error", "tool-name"),
    }


# -- tools.yaml -------------------------------------------------------------------------------------------

SCRIPT = '''
from typing import Any

class Opaque:
    pass

def make(count: int, thing: Opaque, label: str = "x") -> dict:
    """Make things.

    Args:
        count: How many.
        thing: Something ast cannot read.
    """
    return {"count": count}

def other(a: int) -> int:
    """Other."""
    return a
'''


def test_tools_yaml_declares_tools_and_fills_unresolvable_types(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "declared",
        scripts={"tool.py": SCRIPT},
        tools_yaml="""
        tools:
          - name: make
            source_file: scripts/tool.py
            execution: subprocess
            affinity: any
            timeout: 12
            annotations: {readOnlyHint: true, title: Maker}
            input_schema:
              type: object
              properties:
                thing: {type: object, description: Declared.}
            output_schema:
              type: object
              properties: {count: {type: integer}}
    """,
    )
    catalog = discover()
    assert catalog.problems == []
    (tool,) = catalog.tools  # only declared tools: `other` is not exposed once tools.yaml exists
    assert (tool.name, tool.function, tool.execution, tool.affinity, tool.timeout) == (
        "declared__make",
        "make",
        "subprocess",
        "any",
        12.0,
    )
    assert tool.description == "Make things."
    assert tool.annotations == {"readOnlyHint": True, "title": "Maker"}
    assert tool.output_schema == {"type": "object", "properties": {"count": {"type": "integer"}}}
    assert tool.input_schema["properties"]["thing"] == {"type": "object", "description": "Declared."}
    assert tool.input_schema["properties"]["count"] == {"type": "integer", "description": "How many."}
    assert tool.input_schema["required"] == ["count", "thing"]


def test_an_unresolvable_type_without_a_declaration_is_any_with_a_warning(tmp_path: Path, discover) -> None:
    write_skill(tmp_path, "loose", scripts={"tool.py": SCRIPT})
    catalog = discover()
    make = catalog.tool("loose__make")
    assert make is not None
    assert make.input_schema["properties"]["thing"] == {"description": "Something ast cannot read."}
    (problem,) = catalog.problems
    assert (problem.rule, problem.key, problem.line) == ("infer-type", "make.thing", 7)
    assert "Opaque" in problem.message


def test_a_bad_tools_yaml_entry_is_skipped_and_the_rest_load(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "partial",
        scripts={"tool.py": SCRIPT},
        tools_yaml="""
        tools:
          - name: other
            execution: sideways
          - name: make
            source_file: scripts/tool.py
            input_schema: {type: object, properties: {thing: {type: string}}}
          - name: ghost
            source_file: scripts/ghost.py
          - name: escape
            source_file: ../outside.py
          - name: nofunc
            source_file: scripts/tool.py
            function: missing
          - "just a string"
          - name: make
            source_file: scripts/tool.py
          - name: other
            affinity: sideways
            timeout: -1
            task: sometimes
            annotations: {readOnlyHint: maybe}
            mystery: 1
    """,
    )
    catalog = discover()
    assert [t.name for t in catalog.tools] == ["partial__make"]
    tools_yaml = str(tmp_path / "partial" / "tools.yaml")
    found = {(p.rule, p.key) for p in catalog.errors}
    assert found == {
        ("tool-execution", "tools[other].execution"),
        ("tool-source", "tools[ghost].source_file"),
        ("tool-source", "tools[escape].source_file"),
        ("tool-function", "tools[nofunc].function"),
        ("tool-entry", "tools[5]"),
        ("tool-name-unique", "tools[6].name"),
        ("tool-affinity", "tools[other].affinity"),
        ("tool-timeout", "tools[other].timeout"),
        ("tool-task", "tools[other].task"),
        ("tool-annotations", "tools[other].readOnlyHint"),
    }
    assert all(p.path == tools_yaml for p in catalog.errors)
    assert ("unknown-key", "tools[other].mystery") in {(p.rule, p.key) for p in catalog.problems}


@pytest.mark.parametrize("text", ["tools: [unclosed\n", "tools: {a: 1}\n", "just a string\n"])
def test_an_unusable_tools_yaml_skips_the_skill(tmp_path: Path, discover, text: str) -> None:
    write_skill(tmp_path, "broken-decl", scripts={"tool.py": SCRIPT}, tools_yaml=text)
    write_skill(tmp_path, "fine", scripts={"k.py": HELLO})
    catalog = discover()
    assert [s.name for s in catalog.skills] == ["fine"]
    (problem,) = catalog.errors
    assert (problem.rule, problem.path) == ("tools-yaml", str(tmp_path / "broken-decl" / "tools.yaml"))


def test_dcc_mcp_core_style_skill_loads(discover) -> None:
    catalog = discover(FIXTURES / "dcc-mcp-core", app="maya")
    assert [s.name for s in catalog.skills] == ["maya-scene-ops"]
    assert [t.name for t in catalog.tools] == [
        "maya_scene_ops__create_sphere",
        "maya_scene_ops__rename",
        "maya_scene_ops__scene_report",
    ]
    sphere, rename, report = catalog.tools
    assert (sphere.function, sphere.execution, sphere.affinity) == ("main", "in-process", "main")
    assert sphere.annotations == {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False}
    assert sphere.input_schema["properties"]["radius"]["default"] == 1.0
    assert (rename.function, rename.timeout, rename.affinity) == ("rename_node", 5.0, "main")
    assert rename.input_schema["required"] == ["old", "new"]
    assert (report.function, report.execution, report.affinity) == (None, "subprocess", "any")
    assert [(p.severity, p.key) for p in catalog.problems] == [("warning", "metadata.dcc-mcp")]
    assert discover(FIXTURES / "dcc-mcp-core", app="blender").skills == []


def test_validate_skill_reports_everything(tmp_path: Path) -> None:
    folder = write_skill(
        tmp_path,
        "checked",
        scripts={"tool.py": SCRIPT, "broken.py": "def (\n"},
        tools_yaml="""
        tools:
          - name: make
            source_file: scripts/tool.py
            input_schema: {type: object, properties: {thing: {type: 12}}}
    """,
    )
    problems = validate_skill(folder)
    assert {p.rule for p in problems} >= {"script-syntax", "tool-schema"}
    assert any(
        p.key == "metadata.dcc-mcp" for p in validate_skill(FIXTURES / "dcc-mcp-core" / "maya-scene-ops")
    )
    assert rules(validate_skill(tmp_path / "nothing")) == {"skill-file"}


def test_examples_are_clean(discover) -> None:
    catalog = discover(EXAMPLES, app="blender")
    assert catalog.problems == []
    assert {t.name for t in catalog.tools} >= {"hello_world__say_hello", "scene_tools__check_scene_file"}
    for skill in catalog.skills:
        assert validate_skill(skill.path) == []


def test_rediscovery_sees_edits(tmp_path: Path, discover) -> None:
    folder = write_skill(tmp_path, "live", scripts={"k.py": HELLO})
    assert [t.name for t in discover().tools] == ["live__greet"]
    (folder / "scripts" / "k.py").write_text(
        HELLO + "\ndef wave(times: int) -> str:\n    '''Wave.'''\n    return 'o/' * times\n"
    )
    (folder / "SKILL.md").write_text(frontmatter("live", description="Changed description."))
    catalog = discover()
    assert [t.name for t in catalog.tools] == ["live__greet", "live__wave"]
    assert catalog.skills[0].description == "Changed description."


def test_importing_the_package_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mcp_embed.skills; heavy = {'yaml', 'jsonschema', 'platformdirs'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_broken_copy_does_not_claim_its_name(tmp_path: Path, discover) -> None:
    write_skill(tmp_path / "high", "kit", skill_md="---\nname: kit\n---\n")
    write_skill(tmp_path / "low", "kit", scripts={"k.py": HELLO})
    catalog = discover(tmp_path / "high", tmp_path / "low")
    assert [s.root for s in catalog.skills] == [tmp_path / "low"]
    assert catalog.shadowed == []
    assert [(p.rule, p.path) for p in catalog.errors] == [
        ("description-required", str(tmp_path / "high" / "kit" / "SKILL.md"))
    ]


def test_inference_warnings_of_declared_tools_point_at_the_script(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "kit",
        scripts={"make.py": "class Opaque:\n    pass\n\ndef make(thing: Opaque) -> None:\n    '''Make.'''\n"},
        tools_yaml="tools:\n  - name: make\n",
    )
    (problem,) = discover().problems
    assert (problem.path, problem.line, problem.key) == (
        str(tmp_path / "kit" / "scripts" / "make.py"),
        4,
        "make.thing",
    )


def test_discovery_restores_the_garbage_collector(tmp_path: Path, discover) -> None:
    import gc

    write_skill(tmp_path, "kit", scripts={"k.py": HELLO})
    assert gc.isenabled()
    discover()
    assert gc.isenabled()
    gc.disable()
    try:
        discover()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_lazy_discovery_reads_scripts_only_when_their_tools_are_asked_for(tmp_path: Path) -> None:
    write_skill(tmp_path, "a-good", scripts={"k.py": HELLO})
    write_skill(tmp_path, "b-broken", scripts={"k.py": "def f(:\n"})
    write_skill(tmp_path, "c-good", scripts={"k.py": HELLO})
    seen: list[tuple[str, list[str]]] = []

    catalog = discover_skills("maya", [tmp_path], env={}, include_user_dir=False, lazy=True)
    catalog.on_resolve(lambda skill, tools: seen.append((skill, [t.name for t in tools])))

    assert [s.name for s in catalog.skills] == ["a-good", "b-broken", "c-good"]
    assert catalog.pending == ["a-good", "b-broken", "c-good"]
    assert not catalog.problems  # no script was parsed yet
    assert catalog.tools_of("b-broken") == []
    assert rules(catalog.problems) == {"script-syntax"}
    assert catalog.pending == ["a-good", "c-good"]
    assert [t.name for t in catalog.tools] == ["a_good__greet", "c_good__greet"]
    assert catalog.pending == []
    assert seen == [("b-broken", []), ("a-good", ["a_good__greet"]), ("c-good", ["c_good__greet"])]
    assert catalog.skill("c-good").tool_names == ("c_good__greet",)  # type: ignore[union-attr]

    eager = discover_skills("maya", [tmp_path], env={}, include_user_dir=False)
    assert eager.pending == [] and rules(eager.problems) == {"script-syntax"}
