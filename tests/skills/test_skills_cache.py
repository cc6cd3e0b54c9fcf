"""The parse cache: unchanged files are not parsed again, in this process or the next one."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest

from mcp_embed.skills import discover_skills
from mcp_embed.skills.discovery import clear_cache
from skills.skillkit import FIXTURES, write_skill

HELLO = "def greet(name: str) -> str:\n    '''Greet.'''\n    return name\n"


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr("mcp_embed.skills.skilltools.analyze_script", refuse)
    monkeypatch.setattr("mcp_embed.skills.discovery.parse_skill_md", refuse)
    monkeypatch.setattr("mcp_embed.skills.skilltools.parse_tools_yaml", refuse)


def run(root: Path, cache_dir: Path | None = None, **kwargs: object):
    env = {} if cache_dir is None else {"MCP_EMBED_SKILL_CACHE_DIR": str(cache_dir)}
    return discover_skills("maya", [root], env=env, include_user_dir=False, **kwargs)


def test_a_new_process_reads_the_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_skill(tmp_path / "root", "cached", scripts={"k.py": HELLO})
    first = run(tmp_path / "root", tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.cache"))
    clear_cache()  # what a new process starts with
    _no_parsing(monkeypatch)
    second = run(tmp_path / "root", tmp_path / "cache")
    assert [t.to_dict() for t in second.tools] == [t.to_dict() for t in first.tools]
    assert second.skills[0].description == first.skills[0].description


def test_problems_survive_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_skill(tmp_path / "root", "warned", scripts={"k.py": "def f(x):\n    pass\n\ndef g(:\n"})
    write_skill(tmp_path / "root", "broken", skill_md="---\nname: nope\ndescription: x\n---\n")
    first = run(tmp_path / "root", tmp_path / "cache")
    clear_cache()
    _no_parsing(monkeypatch)
    assert run(tmp_path / "root", tmp_path / "cache").problems == first.problems
    assert {p.rule for p in first.problems} == {"script-syntax", "name-matches-folder"}


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    folder = write_skill(tmp_path / "root", "edited", scripts={"k.py": HELLO})
    run(tmp_path / "root", tmp_path / "cache")
    clear_cache()
    (folder / "scripts" / "k.py").write_text(HELLO.replace("greet", "salute") + "# longer now\n")
    assert [t.name for t in run(tmp_path / "root", tmp_path / "cache").tools] == ["edited__salute"]


@pytest.mark.parametrize(
    "damage",
    [b"", b"garbage", marshal.dumps(("other-stamp", ())), marshal.dumps(("x",)), marshal.dumps({"a": 1})],
)
def test_a_damaged_cache_is_ignored(tmp_path: Path, damage: bytes) -> None:
    write_skill(tmp_path / "root", "fine", scripts={"k.py": HELLO})
    run(tmp_path / "root", tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.cache")
    cache_file.write_bytes(damage)
    clear_cache()
    assert [t.name for t in run(tmp_path / "root", tmp_path / "cache").tools] == ["fine__greet"]


def test_a_mangled_entry_is_ignored(tmp_path: Path) -> None:
    write_skill(tmp_path / "root", "fine", scripts={"k.py": HELLO})
    run(tmp_path / "root", tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.cache")
    stamp, rows = marshal.loads(cache_file.read_bytes())
    cache_file.write_bytes(marshal.dumps((stamp, tuple((*row[:4], ("junk",)) for row in rows))))
    clear_cache()
    assert [t.name for t in run(tmp_path / "root", tmp_path / "cache").tools] == ["fine__greet"]


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    write_skill(tmp_path / "root", "fine", scripts={"k.py": HELLO})
    run(tmp_path / "root", tmp_path / "cache", cache=False)
    discover_skills(
        "maya", [tmp_path / "root"], env={"MCP_EMBED_SKILL_CACHE_DIR": ""}, include_user_dir=False
    )
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_folder_is_only_a_miss(tmp_path: Path) -> None:
    write_skill(tmp_path / "root", "fine", scripts={"k.py": HELLO})
    (tmp_path / "cache").write_text("a file where the folder should be")
    assert [t.name for t in run(tmp_path / "root", tmp_path / "cache").tools] == ["fine__greet"]


def test_declared_tools_survive_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run_fixture():
        env = {"MCP_EMBED_SKILL_CACHE_DIR": str(tmp_path / "cache")}
        return discover_skills("maya", [FIXTURES / "dcc-mcp-core"], env=env, include_user_dir=False)

    first = run_fixture()
    clear_cache()
    _no_parsing(monkeypatch)
    second = run_fixture()
    assert [t.to_dict() for t in second.tools] == [t.to_dict() for t in first.tools]
    assert [(t.function, t.execution, t.affinity, t.timeout) for t in second.tools] == [
        (t.function, t.execution, t.affinity, t.timeout) for t in first.tools
    ]
    assert second.problems == first.problems


def test_a_lazy_discovery_keeps_what_an_earlier_run_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("first", "second"):
        write_skill(tmp_path / "root", name, scripts={"k.py": HELLO})
    full = run(tmp_path / "root", tmp_path / "cache")  # analyses and caches every script
    clear_cache()
    lazy = run(tmp_path / "root", tmp_path / "cache", lazy=True)
    assert lazy.pending == ["first", "second"]
    lazy.tools_of("first")  # saves the cache again, having used only one script
    clear_cache()
    _no_parsing(monkeypatch)
    again = run(tmp_path / "root", tmp_path / "cache")
    assert [t.to_dict() for t in again.tools] == [t.to_dict() for t in full.tools]


def test_a_context_parameter_survives_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = "def f(n: int, ctx: 'ToolContext') -> int:\n    '''Doc.'''\n    return n\n"
    write_skill(tmp_path / "root", "ctxed", scripts={"k.py": script})
    first = run(tmp_path / "root", tmp_path / "cache")
    clear_cache()
    _no_parsing(monkeypatch)
    (tool,) = run(tmp_path / "root", tmp_path / "cache").tools
    assert tool.context_param == "ctx" == first.tools[0].context_param
    assert tool.input_schema["properties"].keys() == {"n"}
