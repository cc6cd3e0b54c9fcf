"""Random bodies and headers to /mcp: no 5xx, and the server still answers afterwards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import INIT, demo_server, serving

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_methods = st.sampled_from(
    [
        "initialize",
        "tools/list",
        "tools/call",
        "ping",
        "resources/list",
        "nope",
        "notifications/initialized",
        "",
    ]
)
_messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": _methods},
    optional={"id": st.one_of(st.integers(), st.text(max_size=8), st.none()), "params": _json},
)
_bodies = st.one_of(
    st.binary(max_size=300),
    _json.map(lambda v: json.dumps(v).encode()),
    _messages.map(lambda v: json.dumps(v).encode()),
    st.lists(_messages, max_size=3).map(lambda v: json.dumps(v).encode()),
)
# h11 (the client) refuses leading/trailing whitespace itself, so such values never reach a server.
_header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip)
_headers = st.dictionaries(
    st.sampled_from(
        [
            "accept",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "origin",
            "x-junk",
        ]
    ),
    _header_value,
    max_size=5,
)


def test_random_posts_never_get_a_5xx() -> None:
    with serving() as handle, httpx.Client(timeout=10) as client:

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            body=_bodies, headers=_headers, method=st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"])
        )
        def check(body: bytes, headers: dict[str, str], method: str) -> None:
            if method == "GET":
                # A GET may legitimately open an endless SSE stream: read only the status line.
                with client.stream(method, handle.mcp_url(), headers=headers) as r:
                    assert r.status_code < 500, (method, headers)
                return
            r = client.request(method, handle.mcp_url(), content=body, headers=headers)
            assert r.status_code < 500, (method, body, headers, r.status_code, r.text[:300])

        check()
        assert client.get(handle.url + "/health").json()["status"] == "healthy"
        r = client.post(
            handle.mcp_url(), json=INIT, headers={"Accept": "application/json, text/event-stream"}
        )
        assert r.status_code == 200


_VERSIONS = ["2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28"]
_EVERY_METHOD = [
    "initialize",
    "server/discover",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/directory/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "tasks/result",
    "skills/list",
    "skills/get",
    "notifications/cancelled",
    "notifications/initialized",
]
_word = st.one_of(
    st.sampled_from(["echo", "slow", "skill://hello/SKILL.md", "skill://hello", "greeting", "mem://notes"]),
    st.text(max_size=16),
)
_params = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "name": _word,
            "uri": _word,
            "taskId": _word,
            "cursor": _word,
            "arguments": _json,
            "level": st.sampled_from(["debug", "info", "loud"]),
            "requestId": st.integers() | st.text(max_size=6),
            "inputResponses": _json,
            "_meta": st.fixed_dictionaries(
                {},
                optional={
                    "io.modelcontextprotocol/protocolVersion": st.sampled_from(_VERSIONS)
                    | st.text(max_size=8),
                    "io.modelcontextprotocol/clientCapabilities": _json,
                    "io.modelcontextprotocol/clientInfo": _json,
                    "progressToken": st.integers() | st.text(max_size=6),
                },
            ),
        },
    ),
)
_requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.sampled_from(_EVERY_METHOD), "params": _params},
    optional={"id": st.one_of(st.integers(), st.text(max_size=8))},
)


@pytest.mark.parametrize(
    ("spawn_mode", "stateless"),
    [("dedicated", False), ("dedicated", True), ("subprocess", False)],
    ids=["dedicated-stateful", "dedicated-stateless", "subprocess"],
)
def test_random_requests_to_every_method_get_no_5xx_and_no_internal_error(
    spawn_mode: str, stateless: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Well-formed JSON-RPC with random params, to every method the server speaks (tasks, skills,
    subscriptions, the 2026 envelope included): a result or a precise error, never a 5xx or a
    -32603, and the server still answers afterwards."""
    monkeypatch.setenv("MCP_EMBED_SKILL_CACHE_DIR", str(tmp_path / "cache"))
    skills = tmp_path / "skills" / "hello"
    (skills / "references").mkdir(parents=True)
    (skills / "SKILL.md").write_text("---\nname: hello\ndescription: Says hello.\n---\n# Hello\n")
    (skills / "references" / "notes.md").write_text("# Notes\n")
    server = demo_server(spawn_mode=spawn_mode, stateless=stateless)
    server.skill_paths = [str(tmp_path / "skills")]

    @server.tool(task="optional")
    def slow(seconds: float = 0.0) -> str:
        """A task-capable tool."""
        return "done"

    @server.resource("mem://notes")
    def notes() -> str:
        return "notes"

    @server.prompt()
    def greeting(name: str) -> str:
        """Greet someone."""
        return f"Hello {name}"

    internal: list[str] = []
    with server.start() as handle, httpx.Client(timeout=10) as client:
        url = handle.mcp_url()
        base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        session: dict[str, str] = {}
        if not stateless:
            r = client.post(url, json=INIT, headers=base)
            session["Mcp-Session-Id"] = r.headers["mcp-session-id"]

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
        @given(message=_requests, version=st.sampled_from([None, *_VERSIONS]))
        def check(message: dict[str, Any], version: str | None) -> None:
            headers = {**base, **session}
            if version is not None:
                headers["MCP-Protocol-Version"] = version
            if message["method"] == "subscriptions/listen" and "id" in message:
                # A valid listen request opens an endless stream: read only the status line.
                with client.stream("POST", url, content=json.dumps(message), headers=headers) as r:
                    assert r.status_code < 500, message
                return
            r = client.post(url, content=json.dumps(message), headers=headers)  # Infinity tokens too
            assert r.status_code < 500, (message, headers, r.status_code, r.text[:300])
            if re.search(r"\"code\":\s*-32603\b", r.text):  # a code, not an id of -32603
                internal.append(f"{message} -> {r.text[:300]}")

        check()
        assert not internal, "\n".join(internal[:5])
        assert client.get(handle.url + "/health").json()["status"] == "healthy"
        params = {"name": "add", "arguments": {"a": 2, "b": 3}}
        r = client.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params},
            headers={**base, **session},
        )
        assert r.status_code == 200 and '"text":"5"' in r.text.replace(" ", ""), r.text
