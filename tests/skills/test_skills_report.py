"""The CLI-facing text: the skills table and the problem lines."""

from __future__ import annotations

from pathlib import Path

from mcp_embed.skills import format_problems, format_skills_table
from skills.skillkit import write_skill

HELLO = "def greet(name: str) -> str:\n    '''Greet.'''\n    return name\n"


def test_the_table_shows_skills_shadowed_other_hosts_and_problems(tmp_path: Path, discover) -> None:
    write_skill(tmp_path / "a", "kit", dcc="maya", scripts={"k.py": HELLO})
    write_skill(tmp_path / "b", "kit", scripts={"k.py": HELLO})
    write_skill(tmp_path / "a", "for-blender", dcc="blender")
    write_skill(tmp_path / "a", "broken", skill_md="---\nname: broken\n---\n")
    text = format_skills_table(discover(tmp_path / "a", tmp_path / "b"))
    lines = text.splitlines()
    assert lines[0].split() == ["SKILL", "TOOLS", "DCC", "VERSION", "PATH"]
    assert lines[1].split()[:4] == ["kit", "1", "maya", "-"]
    assert "1 skills, 1 tools" in text
    assert f"kit: {tmp_path / 'b' / 'kit'} (shadowed by {tmp_path / 'a' / 'kit'})" in text
    assert "for-blender [blender]" in text
    assert "problems (1 errors, 0 warnings)" in text
    assert "error [description]: 'description' is required (description-required)" in text


def test_problem_lines_put_errors_first(tmp_path: Path, discover) -> None:
    write_skill(tmp_path, "warned", skill_md="---\nname: warned\ndescription: x\nextra: 1\n---\n")
    write_skill(tmp_path, "failed", skill_md="---\nname: nope\ndescription: x\n---\n")
    lines = format_problems(discover().problems).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["error [name]", "warning [extra]"]
    assert format_skills_table(discover(tmp_path / "empty")).startswith("no skills found")
