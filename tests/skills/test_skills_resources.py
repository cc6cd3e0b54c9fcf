"""Skill resources: stable URIs, SKILL.md read whole (frontmatter included), and path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_embed.skills import SkillCatalog, SkillResourceError, list_skill_resources, read_skill_resource
from mcp_embed.skills.resources import read_skill_instructions
from skills.skillkit import write_skill


@pytest.fixture
def catalog(tmp_path: Path, discover) -> SkillCatalog:
    folder = write_skill(
        tmp_path / "root",
        "docs",
        files={
            "references/guide.md": "# Guide\n",
            "references/deep/more notes.txt": "more\n",
            "references/.hidden": "no\n",
            "assets/logo.png": "",
        },
    )
    (folder / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (tmp_path / "secret.txt").write_text("top secret\n")
    return discover(tmp_path / "root")


def uris(catalog: SkillCatalog) -> list[str]:
    return [r.uri for r in list_skill_resources(catalog)]


def test_listing_gives_stable_uris(catalog: SkillCatalog) -> None:
    assert uris(catalog) == [
        "skill://docs/SKILL.md",
        "skill://docs/references/guide.md",
        "skill://docs/references/deep/more%20notes.txt",
        "skill://docs/assets/logo.png",
    ]
    first = list_skill_resources(catalog)[0]
    assert first.mime_type == "text/markdown"
    assert "A test skill." in first.description


def test_reading_skill_md_gives_the_whole_file(catalog: SkillCatalog) -> None:
    # SEP-2640: the SKILL.md resource is the file itself, frontmatter included, byte for byte.
    content = read_skill_resource(catalog, "skill://docs/SKILL.md")
    skill = catalog.skill("docs")
    assert skill is not None and content.text is not None
    assert content.text.encode() == skill.skill_md.read_bytes()
    assert content.text.startswith("---\nname: docs\n") and content.text.endswith("Use it well.\n")
    assert content.mime_type == "text/markdown"
    assert read_skill_instructions(skill) == "# Instructions\n\nUse it well.\n"  # the body alone


def test_reading_text_and_binary_files(catalog: SkillCatalog) -> None:
    for resource in list_skill_resources(catalog)[1:]:
        content = read_skill_resource(catalog, resource.uri)
        assert content.mime_type == resource.mime_type
    assert read_skill_resource(catalog, "skill://docs/references/deep/more%20notes.txt").text == "more\n"
    logo = read_skill_resource(catalog, "skill://docs/assets/logo.png")
    assert (logo.text, logo.blob, logo.mime_type) == (None, b"\x89PNG\r\n\x1a\n\x00", "image/png")


@pytest.mark.parametrize(
    "uri",
    [
        "skill://docs/references/../../secret.txt",
        "skill://docs/references/%2e%2e/%2e%2e/secret.txt",
        "skill://docs/references/..%2F..%2Fsecret.txt",
        "skill://docs/references/..\\..\\secret.txt",
        "skill://docs/references//etc/passwd",
        "skill://docs/scripts/x.py",
        "skill://docs/SKILL.md/../x",
        "skill://nobody/SKILL.md",
        "file:///etc/passwd",
        "skill://docs/references/missing.md",
    ],
)
def test_unsafe_or_unknown_uris_are_refused(catalog: SkillCatalog, uri: str) -> None:
    with pytest.raises(SkillResourceError):
        read_skill_resource(catalog, uri)


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlinks_escaping_the_skill_folder_are_refused(catalog: SkillCatalog, tmp_path: Path) -> None:
    refs = tmp_path / "root" / "docs" / "references"
    (refs / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (refs / "outside").symlink_to(tmp_path, target_is_directory=True)
    (refs / "inside.md").symlink_to(refs / "guide.md")  # a link that stays inside is fine

    listed = uris(catalog)
    assert "skill://docs/references/inside.md" in listed
    assert not any("leak" in u or "outside" in u for u in listed)
    assert read_skill_resource(catalog, "skill://docs/references/inside.md").text == "# Guide\n"
    for uri in ("skill://docs/references/leak.txt", "skill://docs/references/outside/secret.txt"):
        with pytest.raises(SkillResourceError, match="outside the skill folder"):
            read_skill_resource(catalog, uri)


def _undecodable_file(folder: Path) -> str:
    """A reference file whose name is not UTF-8 (POSIX keeps any bytes; others refuse: skipped)."""
    (folder / "references").mkdir(exist_ok=True)
    raw = os.fsencode(folder / "references") + b"/take\xff 1.md"
    try:
        with open(raw, "w", encoding="utf-8") as fh:
            fh.write("# take one\n")
    except (OSError, ValueError):
        pytest.skip("this file system keeps only valid UTF-8 file names")
    return os.fsdecode(raw)


def test_a_file_name_that_is_not_utf8_gets_a_uri_that_reads_it(tmp_path: Path, discover) -> None:
    folder = write_skill(tmp_path / "root", "docs")
    name = _undecodable_file(folder)
    listed = {r.uri: r for r in list_skill_resources(discover(tmp_path / "root"))}
    uri = "skill://docs/references/take%FF%201.md"  # the name's own bytes, percent-encoded
    assert uri in listed, sorted(listed)
    assert listed[uri].name == "docs/references/take\\udcff 1.md"  # display text that encodes
    assert listed[uri].path == Path(name)
    assert read_skill_resource(discover(tmp_path / "root"), uri).text == "# take one\n"


def test_a_server_with_such_a_skill_starts_and_lists_and_reads_it(tmp_path: Path) -> None:
    import httpx

    from conftest import ACCEPT, INIT
    from mcp_embed import McpHttpConfig, create_skill_server

    folder = write_skill(tmp_path / "root", "docs")
    _undecodable_file(folder)
    config = McpHttpConfig(port=0, register=False, enable_file_logging=False, json_response=True)
    server = create_skill_server("t", config, skill_paths=[tmp_path / "root"])
    with server.start() as handle, httpx.Client(timeout=30) as client:  # before: start() failed
        r = client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)
        headers = {
            **ACCEPT,
            "Mcp-Session-Id": r.headers["mcp-session-id"],
            "Mcp-Protocol-Version": "2025-11-25",
        }
        ask = {"jsonrpc": "2.0", "id": 2, "method": "resources/list", "params": {}}
        listed = client.post(handle.mcp_url(), json=ask, headers=headers).json()["result"]["resources"]
        uri = "skill://docs/references/take%FF%201.md"
        assert uri in [r["uri"] for r in listed]
        ask = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}
        read = client.post(handle.mcp_url(), json=ask, headers=headers).json()
        assert read["result"]["contents"][0]["text"] == "# take one\n", read
