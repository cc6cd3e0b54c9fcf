"""Random bodies and headers to /mcp: no 5xx, and the server still answers afterwards."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import INIT, serving

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
