"""Two small seams a proxy of resources needs: a ``resources/read`` contents entry returned as a
dict goes out as it is, and ``ResourceRegistry.fallback`` answers URIs nothing registered serves
(never listed)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp.client import Client

from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.components.resources import ResourceRegistry, ResourceSpec, build_resource, contents_to_wire

ENTRY = {"uri": "proxy://a/b", "mimeType": "text/x-note", "text": "hi", "_meta": {"from": "elsewhere"}}


def test_a_contents_entry_dict_is_passed_on_as_it_is() -> None:
    spec = build_resource("app://x", lambda: "")
    blob = {"uri": "proxy://c", "blob": "AAEC"}
    assert contents_to_wire("app://x", spec, [ENTRY, blob, "plain"]) == {
        "contents": [ENTRY, blob, {"uri": "app://x", "mimeType": "text/plain", "text": "plain"}]
    }


def test_a_dict_that_is_no_contents_entry_is_still_refused() -> None:
    spec = build_resource("app://x", lambda: "")
    for value in ({"text": "no uri"}, {"uri": "app://x"}, {"uri": 3, "text": "x"}):
        with pytest.raises(TypeError, match="return str, bytes or EmbeddedResource"):
            contents_to_wire("app://x", spec, value)


def test_the_fallback_answers_only_what_nothing_registered_serves() -> None:
    registry = ResourceRegistry()
    registry.add(build_resource("app://static", lambda: "s"))
    registry.add(build_resource("app://t/{name}", lambda name: name))
    asked: list[str] = []
    stand_in = ResourceSpec(uri="fallback", name="fallback", read=lambda: "f")

    def fallback(uri: str) -> tuple[ResourceSpec, dict[str, str]] | None:
        asked.append(uri)
        return (stand_in, {}) if uri.startswith("other://") else None

    assert registry.resolve("other://x") is None
    registry.fallback = fallback
    found = registry.resolve("app://static")
    assert found is not None and found[0].uri == "app://static"
    found = registry.resolve("app://t/n")
    assert found is not None and found[1] == {"name": "n"}
    assert registry.resolve("other://x") == (stand_in, {})
    assert registry.resolve("nothing://x") is None
    assert asked == ["other://x", "nothing://x"]
    assert [s.uri for s in registry] == ["app://static", "app://t/{name}"]  # the fallback is never listed


def test_through_the_sdk_client_the_entry_and_the_fallback_answer() -> None:
    server = create_skill_server("seam", McpHttpConfig(port=0))
    server.add_resource("proxy://a/b", lambda: ENTRY)
    fallback = ResourceSpec(uri="x", name="x", read=lambda: {"uri": "late://1", "text": "from the fallback"})
    server.resources.fallback = lambda uri: (fallback, {}) if uri == "late://1" else None
    handle = server.start()

    async def main() -> None:
        with anyio.fail_after(30):
            await check()

    async def check() -> None:
        async with Client(handle.mcp_url(), mode="legacy", cache=None) as c:
            read: Any = (await c.read_resource("proxy://a/b")).contents[0]
            assert (read.uri, read.mime_type, read.text, read.meta) == (
                "proxy://a/b",
                "text/x-note",
                "hi",
                {"from": "elsewhere"},
            )
            late: Any = (await c.read_resource("late://1")).contents[0]
            assert (late.uri, late.text) == ("late://1", "from the fallback")
            assert [r.uri for r in (await c.list_resources()).resources] == ["proxy://a/b"]

    try:
        anyio.run(main)
    finally:
        handle.stop()
