"""One YAML reading of ``SKILL.md``: the metadata discovery gives and the ``skills/get`` frontmatter agree.

Both read the frontmatter with ``frontmatter.load_frontmatter``, the YAML 1.2 core schema: ``yes`` and
dates stay the text they are, ``010`` is 10 and ``0o10`` is 8, as a host re-reading the file has them.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mcp_embed.skills import SkillCatalog, discover_skills
from mcp_embed.skills.extension import answer_sync
from mcp_embed.skills.frontmatter import load_frontmatter, parse_skill_md
from skills.skillkit import write_skill

# scalar as written -> what the YAML 1.2 core schema reads (and the skills/get JSON carries)
TRICKY: dict[str, Any] = {
    "yes": "yes",
    "no": "no",
    "on": "on",
    "Off": "Off",
    "y": "y",
    "true": True,
    "FALSE": False,
    "010": 10,
    "0o10": 8,
    "0x1f": 31,
    "1_000": "1_000",
    "12:30": "12:30",
    "2026-01-01": "2026-01-01",
    "2026-01-01 10:00:00": "2026-01-01 10:00:00",
    "~": None,
    "null": None,
    "": None,
    "1e3": 1000.0,
    "1.5": 1.5,
    "-7": -7,
    ".5": 0.5,
    "'010'": "010",
    '"yes"': "yes",
    "=": "=",
}


def as_text(value: Any) -> str:
    """A JSON scalar as metadata text, the way discovery turns a YAML scalar into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def skill_md(values: list[str]) -> str:
    lines = [f"  k{i}: {v}".rstrip() for i, v in enumerate(values)]
    return "---\nname: demo\ndescription: A demo.\nmetadata:\n" + "\n".join(lines) + "\n---\n# Demo\n"


def discover(root: Path) -> SkillCatalog:
    return discover_skills("maya", [root], env={}, include_user_dir=False, cache=False)


def both_readings(root: Path, text: str) -> tuple[dict[str, str], dict[str, Any]] | None:
    """``(Skill.metadata, the skills/get frontmatter metadata)`` of one SKILL.md, or ``None`` if invalid."""
    write_skill(root, "demo", skill_md=text)
    catalog = discover(root)
    skill = catalog.skill("demo")
    if skill is None:
        return None
    entry = answer_sync(catalog, "skills/get", {"uri": "skill://demo/SKILL.md"})["skill"]
    return skill.metadata, entry["frontmatter"]["metadata"]


def test_tricky_scalars_read_the_same_in_discovery_and_skills_get(tmp_path: Path) -> None:
    written = list(TRICKY)
    got = both_readings(tmp_path, skill_md(written))
    assert got is not None
    metadata, frontmatter = got
    for i, scalar in enumerate(written):
        key = f"k{i}"
        assert frontmatter[key] == TRICKY[scalar], scalar
        assert type(frontmatter[key]) is type(TRICKY[scalar]), scalar  # 10, not 10.0 or True
        assert metadata[key] == as_text(frontmatter[key]), scalar


@pytest.mark.parametrize("scalar", sorted(TRICKY))
def test_the_one_loader_reads_each_scalar_with_the_core_schema(scalar: str) -> None:
    loaded = load_frontmatter(f"k: {scalar}".rstrip())
    assert loaded == {"k": TRICKY[scalar]}
    assert not isinstance(loaded["k"], datetime.date)


def test_discovery_metadata_keeps_what_yaml_1_2_keeps_as_text() -> None:
    header, problems = parse_skill_md(
        skill_md(["yes", "010", "2026-01-01", "1_000"]), "/s/demo/SKILL.md", "demo"
    )
    assert header is not None
    assert header.metadata == {"k0": "yes", "k1": "10", "k2": "2026-01-01", "k3": "1_000"}
    # strings need no quoting; only the integer is read as something else than what was written
    assert [p.key for p in problems if p.rule == "metadata-string-map"] == ["metadata.k1"]


_ATOM = st.sampled_from(
    [
        "yes",
        "No",
        "on",
        "OFF",
        "~",
        "null",
        "Null",
        "true",
        "False",
        "0",
        "010",
        "0o",
        "0x",
        "1f",
        "_",
        "1",
        "9",
        "e",
        "E",
        "3",
        "-",
        "+",
        ".",
        ":",
        "2026",
        "-01",
        "inf",
        "nan",
        "Inf",
        "a",
        "y",
        "n",
        "=",
        "<<",
        "'x'",
    ]
)
_SCALAR = st.lists(_ATOM, min_size=1, max_size=4).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(_SCALAR, min_size=1, max_size=4))
def test_any_scalar_reads_the_same_in_discovery_and_skills_get(values: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        got = both_readings(Path(folder), skill_md(values))
    assume(got is not None)  # not YAML at all, or not a string map: neither path serves it
    assert got is not None
    metadata, frontmatter = got
    assert set(metadata) == set(frontmatter)
    for key, value in frontmatter.items():
        if value is None and metadata[key] in ("nan", "inf", "-inf"):
            continue  # JSON has no NaN or infinity: skills/get sends null for them, discovery the float
        assert metadata[key] == as_text(value), (key, values)
