"""SEP-2640 skills extension (``io.modelcontextprotocol/skills``) over real HTTP, both spawn modes.

Raw 2026-07-28 POSTs check the wire (declaration, cache hints, errors); the SDK's own client drives
the methods on the 2025 handshake, stateful and stateless. Every digest and size is checked against
the bytes ``resources/read`` returns, and the frontmatter against the file it came from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client
from pydantic import ConfigDict

from conftest import ACCEPT, INIT
from mcp_embed import McpHttpConfig, ServerHandle, SkillServer, create_skill_server
from mcp_embed.skills import extension

SKILLS = "io.modelcontextprotocol/skills"
MODERN = "2026-07-28"
GUARD = 30.0  # seconds before a request gives up: a hang guard, never an assertion on timing

# YAML 1.2 reads ``yes`` and ``2024-01-01`` as strings and ``010`` as 10 (PyYAML's 1.1 would not).
PDF_FRONTMATTER = """\
name: pdf-processing
description: Extract, fill, and assemble PDF documents.
license: Apache-2.0
metadata:
  version: "2.1.0"
  enabled: yes
  released: 2024-01-01
  build: 010
  tags: [pdf, forms]
"""
PDF_JSON = {
    "name": "pdf-processing",
    "description": "Extract, fill, and assemble PDF documents.",
    "license": "Apache-2.0",
    "metadata": {
        "version": "2.1.0",
        "enabled": "yes",
        "released": "2024-01-01",
        "build": 10,
        "tags": ["pdf", "forms"],
    },
}


def _skill(root: Path, name: str, *, script: bool = True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: The {name} skill.\n---\n# {name}\n")
    if script:
        (folder / "scripts").mkdir()
        (folder / "scripts" / "tool.py").write_text(
            textwrap.dedent(
                '''
                def run(x: int) -> int:
                    """Echo x.

                    Args:
                        x: A number.
                    """
                    return x
                '''
            )
        )
    return folder


@pytest.fixture
def skills_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Only the skills a test writes here: no env roots, no user data folder, a private parse cache."""
    monkeypatch.delenv("DCC_MCP_SKILL_PATHS", raising=False)
    monkeypatch.setenv("MCP_EMBED_SKILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("platformdirs.user_data_dir", lambda *a, **k: str(tmp_path / "nodata"))
    root = tmp_path / "skills"
    pdf = root / "pdf-processing"
    (pdf / "references" / "regional").mkdir(parents=True)
    (pdf / "assets").mkdir()
    # CRLF line ends: a text read must give back these very bytes, not universal newlines.
    (pdf / "SKILL.md").write_bytes(
        f"---\n{PDF_FRONTMATTER}---\r\n\r\n# PDF processing\r\n\r\nSee references/FORMS.md.\r\n".encode()
    )
    (pdf / "references" / "FORMS.md").write_bytes("\ufeff# Forms\n".encode())  # a BOM stays
    (pdf / "references" / "regional" / "eu.md").write_text("# EU\n")
    (pdf / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    (pdf / "scripts").mkdir()
    (pdf / "scripts" / "fill.py").write_text(
        'def fill(path: str) -> str:\n    """Fill a form."""\n    return path\n'
    )
    _skill(root, "alpha")
    _skill(root, "beta")
    return root


def _build(root: Path | None, spawn_mode: str = "dedicated", **config: Any) -> SkillServer:
    cfg = McpHttpConfig(port=0, spawn_mode=spawn_mode, **config)
    return create_skill_server("skillsext", cfg, skill_paths=[root] if root is not None else None)


def _serve(root: Path | None, spawn_mode: str = "dedicated", **config: Any) -> ServerHandle:
    return _build(root, spawn_mode, **config).start()


@pytest.fixture
def served(skills_root: Path, spawn_mode: str) -> Iterator[ServerHandle]:
    handle = _serve(skills_root, spawn_mode)
    try:
        yield handle
    finally:
        handle.stop()


def post(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One 2026-07-28 request; returns the JSON-RPC reply."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": meta}}
    headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method == "resources/read":
        headers["Mcp-Name"] = params["uri"]
    r = httpx.post(url, json=body, headers=headers, timeout=GUARD)  # an error may come with a 4xx
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        out: dict[str, Any] = _sse(r.text)[-1]
        return out
    reply: dict[str, Any] = r.json()
    return reply


def _sse(text: str) -> list[Any]:
    """The JSON messages of an SSE body (the priming event has no data)."""
    return [json.loads(x[5:]) for x in text.splitlines() if x.startswith("data:") and x[5:].strip()]


def result(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = post(url, method, params)
    assert "result" in reply, reply
    out: dict[str, Any] = reply["result"]
    return out


def error(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = post(url, method, params)
    assert "error" in reply, reply
    out: dict[str, Any] = reply["error"]
    return out


def all_skills(url: str) -> tuple[list[dict[str, Any]], int]:
    """Every skills/list entry, following nextCursor; and how many pages it took."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    for pages in range(1, 100):
        page = result(url, "skills/list", {"cursor": cursor} if cursor else {})
        entries.extend(page["skills"])
        cursor = page.get("nextCursor")
        if cursor is None:
            return entries, pages
    raise AssertionError("skills/list never ended")


def read_bytes(url: str, uri: str) -> tuple[bytes, str | None]:
    """The raw bytes ``resources/read`` returns for ``uri`` (text as UTF-8, blobs decoded)."""
    (content,) = result(url, "resources/read", {"uri": uri})["contents"]
    if "text" in content:
        return content["text"].encode("utf-8"), content.get("mimeType")
    return base64.b64decode(content["blob"]), content.get("mimeType")


# -- declaration ---------------------------------------------------------------------------------


def test_declared_on_discover_by_a_server_with_skill_roots_only(
    served: ServerHandle, spawn_mode: str
) -> None:
    bare = _serve(None, spawn_mode)
    try:
        caps = result(bare.mcp_url(), "server/discover", {})["capabilities"]
        assert SKILLS not in (caps.get("extensions") or {})
        assert error(bare.mcp_url(), "skills/list", {})["code"] == -32601
    finally:
        bare.stop()
    url = served.mcp_url()
    caps = result(url, "server/discover", {})["capabilities"]
    assert caps["extensions"][SKILLS] == {"directoryRead": True}
    assert "resources" in caps  # the extension needs the resources capability
    # The 2025-11-25 InitializeResult has no capabilities.extensions; the SDK leaves it out there.
    init = httpx.post(url, json=INIT, headers=ACCEPT, timeout=GUARD)
    reply = _sse(init.text)[-1] if "event-stream" in init.headers["content-type"] else init.json()
    assert "extensions" not in reply["result"]["capabilities"]


# -- skills/list and skills/get ------------------------------------------------------------------


def test_list_gives_every_skill_with_cache_hints(served: ServerHandle) -> None:
    url = served.mcp_url()
    page = result(url, "skills/list", {})
    assert page["resultType"] == "complete" and page["ttlMs"] == 0 and page["cacheScope"] == "private"
    assert "nextCursor" not in page
    by_uri = {e["uri"]: e for e in page["skills"]}
    assert sorted(by_uri) == [
        "skill://alpha/SKILL.md",
        "skill://beta/SKILL.md",
        "skill://pdf-processing/SKILL.md",
    ]
    pdf = by_uri["skill://pdf-processing/SKILL.md"]
    assert pdf["frontmatter"] == PDF_JSON
    # SKILL.md first, then references and assets; scripts are served as tools, not files.
    assert [r["uri"] for r in pdf["resources"]] == [
        "skill://pdf-processing/SKILL.md",
        "skill://pdf-processing/references/FORMS.md",
        "skill://pdf-processing/references/regional/eu.md",
        "skill://pdf-processing/assets/logo.png",
    ]
    for r in pdf["resources"]:
        assert r["digest"].startswith("sha256:") and len(r["digest"]) == 7 + 64


def test_list_pages_with_a_cursor(served: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    url = served.mcp_url()
    whole = result(url, "skills/list", {})["skills"]
    monkeypatch.setattr(extension, "PAGE_SIZE", 1)  # the host answers, in both spawn modes
    entries, pages = all_skills(url)
    assert pages == 3 and entries == whole
    bad = error(url, "skills/list", {"cursor": "not-a-cursor"})
    assert bad["code"] == -32602 and "cursor" in bad["message"]


def test_get_returns_the_list_entry_and_refuses_unknown_uris(served: ServerHandle) -> None:
    url = served.mcp_url()
    listed = {e["uri"]: e for e in result(url, "skills/list", {})["skills"]}
    got = result(url, "skills/get", {"uri": "skill://pdf-processing/SKILL.md"})
    assert got["skill"] == listed["skill://pdf-processing/SKILL.md"]
    assert "nextCursor" not in got and got["ttlMs"] == 0 and got["cacheScope"] == "private"
    for uri in (
        "skill://nope/SKILL.md",
        "skill://pdf-processing/references/FORMS.md",  # a file of a skill, not a skill
        "skill://pdf-processing",
        "file:///etc/passwd",
    ):
        err = error(url, "skills/get", {"uri": uri})
        assert err["code"] == -32602 and err["data"] == {"uri": uri}, err
    assert error(url, "skills/get", {})["code"] == -32602  # uri is required


def test_digests_and_sizes_match_what_resources_read_returns(served: ServerHandle) -> None:
    url = served.mcp_url()
    entry = result(url, "skills/get", {"uri": "skill://pdf-processing/SKILL.md"})["skill"]
    for r in entry["resources"]:
        data, _ = read_bytes(url, r["uri"])
        assert r["size"] == len(data), r["uri"]
        assert r["digest"] == "sha256:" + hashlib.sha256(data).hexdigest(), r["uri"]


def test_skill_md_is_read_whole_and_its_frontmatter_is_the_entry(served: ServerHandle) -> None:
    from mcp_embed.skills.frontmatter import split_frontmatter

    url = served.mcp_url()
    data, mime = read_bytes(url, "skill://pdf-processing/SKILL.md")
    assert mime == "text/markdown" and data.startswith(b"---\nname: pdf-processing\n")
    parts = split_frontmatter(data.decode())
    assert parts is not None and parts[0] == PDF_FRONTMATTER
    listed = result(url, "resources/list", {})["resources"]
    md = next(r for r in listed if r["uri"] == "skill://pdf-processing/SKILL.md")
    assert (md["name"], md["description"]) == ("pdf-processing", PDF_JSON["description"])


# -- resources/directory/read ----------------------------------------------------------------------


def test_directory_read_lists_direct_children(served: ServerHandle) -> None:
    url = served.mcp_url()
    root = result(url, "resources/directory/read", {"uri": "skill://pdf-processing"})
    assert [(r["uri"], r["mimeType"]) for r in root["resources"]] == [
        ("skill://pdf-processing/SKILL.md", "text/markdown"),
        ("skill://pdf-processing/references", "inode/directory"),
        ("skill://pdf-processing/assets", "inode/directory"),
    ]
    refs = result(url, "resources/directory/read", {"uri": "skill://pdf-processing/references"})
    assert [(r["uri"], r["mimeType"]) for r in refs["resources"]] == [
        ("skill://pdf-processing/references/regional", "inode/directory"),
        ("skill://pdf-processing/references/FORMS.md", "text/markdown"),
    ]
    # every file a directory read shows is a listed resource of the skill
    entry = result(url, "skills/get", {"uri": "skill://pdf-processing/SKILL.md"})["skill"]
    files = {r["uri"] for r in entry["resources"]}
    assert {r["uri"] for r in refs["resources"] if r["mimeType"] != "inode/directory"} <= files
    for uri in (
        "skill://pdf-processing/SKILL.md",  # a file
        "skill://pdf-processing/references/FORMS.md",
        "skill://pdf-processing/scripts",  # not served
        "skill://pdf-processing/references/",  # directory URIs have no trailing slash
        "skill://nope",
    ):
        err = error(url, "resources/directory/read", {"uri": uri})
        assert err["code"] == -32602 and err["data"] == {"uri": uri}, err


def test_directory_read_pages(served: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    url = served.mcp_url()
    whole = result(url, "resources/directory/read", {"uri": "skill://pdf-processing"})["resources"]
    monkeypatch.setattr(extension, "PAGE_SIZE", 2)
    got: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"uri": "skill://pdf-processing", **({"cursor": cursor} if cursor else {})}
        page = result(url, "resources/directory/read", params)
        got.extend(page["resources"])
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert got == whole and len(whole) == 3


# -- lazy discovery and the SDK client -------------------------------------------------------------


def test_listing_skills_analyses_no_script(skills_root: Path, spawn_mode: str) -> None:
    for name in ("gamma", "delta"):
        _skill(skills_root, name)
    server = _build(skills_root, spawn_mode, skills_list_limit=1)
    handle = server.start()
    try:
        catalog = server.skills
        assert catalog is not None
        hidden = list(catalog.pending)
        assert hidden, "the limit should leave skills unanalysed"
        url = handle.mcp_url()
        entries, _ = all_skills(url)
        assert {e["frontmatter"]["name"] for e in entries} >= set(hidden)
        for name in hidden:
            result(url, "skills/get", {"uri": f"skill://{name}/SKILL.md"})
            result(url, "resources/directory/read", {"uri": f"skill://{name}"})
        assert catalog.pending == hidden
    finally:
        handle.stop()


class ListSkills(types.Request[types.PaginatedRequestParams, Literal["skills/list"]]):
    method: Literal["skills/list"] = "skills/list"


class SkillsPage(types.Result):
    model_config = ConfigDict(extra="allow")
    skills: list[dict[str, Any]]


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
def test_the_sdk_client_sees_the_extension_and_lists_skills_on_the_2025_handshake(
    skills_root: Path, spawn_mode: str, stateless: bool
) -> None:
    handle = _serve(skills_root, spawn_mode, stateless=stateless)

    async def main() -> None:
        async with Client(handle.mcp_url(), mode="auto") as modern:
            assert (modern.server_capabilities.extensions or {})[SKILLS] == {"directoryRead": True}
        async with Client(handle.mcp_url(), mode="legacy") as c:
            page = await c.session.send_request(ListSkills(params=types.PaginatedRequestParams()), SkillsPage)
            pdf = next(e for e in page.skills if e["uri"] == "skill://pdf-processing/SKILL.md")
            assert pdf["frontmatter"] == PDF_JSON
            assert "ttlMs" not in (page.model_extra or {})  # no 2026 cache hints on a 2025 session
            read = await c.read_resource("skill://pdf-processing/references/FORMS.md")
            text = read.contents[0].text  # type: ignore[union-attr]
            forms = next(r for r in pdf["resources"] if r["uri"].endswith("FORMS.md"))
            assert forms["digest"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    try:
        anyio.run(main)
    finally:
        handle.stop()


# -- bad input -----------------------------------------------------------------------------------

_URIS = st.one_of(
    st.sampled_from(
        [
            "skill://pdf-processing/SKILL.md",
            "skill://pdf-processing",
            "skill://pdf-processing/",
            "skill://pdf-processing/references",
            "skill://pdf-processing/references/FORMS.md",
            "skill://pdf-processing/../alpha/SKILL.md",
            "skill://pdf-processing/%2e%2e/%2e%2e/etc/passwd",
            "skill://pdf-processing/scripts",
            "skill://pdf-processing/references//regional",
            "skill:///SKILL.md",
            "skill://PDF-PROCESSING/SKILL.md",
            "file:///etc/passwd",
            "",
        ]
    ),
    st.text(max_size=60).map(lambda t: "skill://" + t),
    st.text(max_size=30),
)
_VALUES = st.one_of(_URIS, st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))


def test_bad_params_get_a_json_rpc_error_and_the_server_keeps_serving(skills_root: Path) -> None:
    """Random uris and cursors: a result or -32602, never an internal error or a 5xx."""
    handle = _serve(skills_root)
    url = handle.mcp_url()
    try:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            method=st.sampled_from(extension.METHODS),
            params=st.dictionaries(st.sampled_from(["uri", "cursor"]), _VALUES, max_size=2),
        )
        def check(method: str, params: dict[str, Any]) -> None:
            reply = post(url, method, params)
            if "error" in reply:
                assert reply["error"]["code"] == -32602, reply
            else:
                assert isinstance(reply["result"], dict), reply

        check()
        assert len(all_skills(url)[0]) == 3  # still serving, and nothing was lost
    finally:
        handle.stop()
