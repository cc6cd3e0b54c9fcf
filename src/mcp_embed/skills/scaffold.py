"""``mcp-embed skills new``: a spec-valid skill folder with one typed tool and a test that passes."""

from __future__ import annotations

import os
from pathlib import Path

from .frontmatter import NAME_RE

__all__ = ["new_skill"]

_SKILL_MD = """\
---
name: {name}
description: {description}
metadata:
  dcc: {dcc}
  version: "0.1.0"
---

# {title}

Instructions for the agent: say what this skill is for, when to use it, and how to call its tools.

- Call `{tool}` with `text` (and optionally `repeat`) to {verb}.
- Tell the user what it returned.
"""

_SCRIPT = '''\
"""Tools of the {name} skill. mcp-embed reads this file with `ast` to build each tool's schema,
so import host modules (maya.cmds, bpy, hou, nuke) inside the functions, not at the top."""


def {func}(text: str, repeat: int = 1) -> dict:
    """Echo the text back, as an example tool: replace it with what the skill does.

    Args:
        text: What to echo.
        repeat: How many times to repeat it.
    """
    return {{"text": text, "repeat": repeat, "echo": " ".join([text] * repeat)}}
'''

_TOOLS_YAML = """\
# Declared tools: only these are exposed (see the skills docs for every field).
tools:
  - name: {func}
    description: Echo the text back, as an example tool.
    source_file: scripts/{func}.py
    function: {func}
    execution: in-process        # or subprocess
    affinity: main               # main: the host's main thread; any: a worker thread
    timeout: 30
    annotations: {{readOnlyHint: true, openWorldHint: false}}
"""

_TEST = '''\
"""Tests of the {name} skill, served for real by mcp-embed's pytest fixture `mcp_skills`.

Run them with `pytest {rel_test}`. Main-thread tools run through mcp-embed's inline dispatcher
here: no host is faked, so a tool that imports maya.cmds needs Maya's Python (mayapy) to run.
"""

from pathlib import Path

import pytest

from mcp_embed.testing import ToolCallError

SKILL = Path(__file__).resolve().parent.parent


def test_the_tool_is_listed(mcp_skills):
    assert "{tool}" in mcp_skills(SKILL, app="{app}").tool_names()


def test_the_tool_answers(mcp_skills):
    result = mcp_skills(SKILL, app="{app}").call("{tool}", text="hi", repeat=2)
    assert result == {{"text": "hi", "repeat": 2, "echo": "hi hi"}}


def test_a_bad_argument_is_refused(mcp_skills):
    with pytest.raises(ToolCallError, match="repeat"):
        mcp_skills(SKILL, app="{app}").call("{tool}", text="hi", repeat="many")


def test_the_instructions_are_a_resource(mcp_skills):
    assert "{tool}" in mcp_skills(SKILL, app="{app}").read_resource("skill://{name}/SKILL.md")
'''


def new_skill(
    name: str,
    directory: str | os.PathLike[str] = ".",
    *,
    dcc: str | None = None,
    tools_yaml: bool = False,
    description: str | None = None,
) -> Path:
    """Create ``directory/name/``: ``SKILL.md``, ``scripts/<name>.py`` with one typed tool,
    ``tests/test_<name>.py`` using :mod:`mcp_embed.testing`, and ``tools.yaml`` if asked.

    ``name`` must be a valid skill name (``a-z0-9-``, 1-64 characters, no leading, trailing or
    doubled ``-``). ``dcc`` is the host it is for (``maya``, ``blender``, a comma list; default
    ``generic``). Raises ``ValueError`` for a bad name and ``FileExistsError`` if the folder exists.
    Returns the skill folder.
    """
    if not (1 <= len(name) <= 64) or not NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid skill name {name!r}: use 1-64 characters from a-z, 0-9 and '-', "
            "with no leading, trailing or doubled '-' (e.g. 'rename-nodes')"
        )
    dcc_value = (dcc or "generic").strip().lower() or "generic"
    if any(c in dcc_value for c in ":\n#\"'"):
        raise ValueError(f"invalid dcc {dcc!r}: a host name such as 'maya', or a comma list")
    folder = Path(directory) / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists")
    func = name.replace("-", "_")
    if func[0].isdigit():
        func = f"tool_{func}"
    tool = f"{name.replace('-', '_')}__{func}"
    app = "generic" if dcc_value == "generic" else dcc_value.split(",")[0].strip()
    title = name.replace("-", " ").capitalize()
    desc = description or (
        f"Example skill {name}: echo text back. Replace this with what the skill does and when to use it."
    )
    if len(desc) > 1024 or "\n" in desc:
        raise ValueError("the description must be one line of at most 1024 characters")
    fields = {
        "name": name,
        "description": _yaml_str(desc),
        "dcc": _yaml_str(dcc_value),
        "title": title,
        "tool": tool,
        "func": func,
        "app": app,
        "verb": "echo text back",
        "rel_test": f"{name}/tests/test_{func}.py",
    }
    (folder / "scripts").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "SKILL.md").write_text(_SKILL_MD.format(**fields), encoding="utf-8")
    (folder / "scripts" / f"{func}.py").write_text(_SCRIPT.format(**fields), encoding="utf-8")
    (folder / "tests" / f"test_{func}.py").write_text(_TEST.format(**fields), encoding="utf-8")
    if tools_yaml:
        (folder / "tools.yaml").write_text(_TOOLS_YAML.format(**fields), encoding="utf-8")
    return folder


def _yaml_str(value: str) -> str:
    """A YAML scalar for ``value``: plain when that reads back the same, else double-quoted."""
    import json

    plain_safe = value and value[0] not in "!&*-?[]{}|>@`\"'%#,:" and ": " not in value and " #" not in value
    return value if plain_safe else json.dumps(value, ensure_ascii=False)
