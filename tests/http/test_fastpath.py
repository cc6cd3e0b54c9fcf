"""The direct route answers exactly what the SDK's own path answers, and steps aside otherwise."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server

REQUESTS = [
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hé"}},
    },
    {
        "jsonrpc": "2.0",
        "id": "s",
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
    },
    {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "add", "arguments": {"a": "x"}}},
    {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "fail", "arguments": {"message": "m"}},
    },
    {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "nope", "arguments": {}}},
    {"jsonrpc": "2.0", "id": 7, "method": "ping"},
    {
        "jsonrpc": "2.0",
        "id": 8,
        "method": "tools/call",
        "params": {"name": "aecho", "arguments": {"text": "a"}},
    },
]


def _decode(r: httpx.Response) -> Any:
    if r.headers["content-type"].startswith("text/event-stream"):
        data = [
            line[5:].strip() for line in r.text.splitlines() if line.startswith("data:") and line[5:].strip()
        ]
        return json.loads(data[-1])
    return r.json()


def _run(config: dict[str, Any], fast: bool) -> tuple[list[Any], list[str]]:
    server = demo_server(**config)
    server.fast_path = fast
    with server.start() as handle, httpx.Client() as client:
        headers = dict(ACCEPT)
        if not config.get("stateless"):
            r = client.post(handle.mcp_url(), json=INIT, headers=headers)
            headers["mcp-session-id"] = r.headers["mcp-session-id"]
            headers["mcp-protocol-version"] = "2025-11-25"
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert client.post(handle.mcp_url(), json=note, headers=headers).status_code == 202
        out, types = [], []
        for req in REQUESTS:
            r = client.post(handle.mcp_url(), json=req, headers=headers)
            assert r.status_code == 200, r.text
            out.append(_decode(r))
            types.append(r.headers["content-type"].split(";")[0])
        return out, types


@pytest.mark.parametrize(
    "config", [{}, {"stateless": True}, {"stateless": True, "json_response": True}, {"json_response": True}]
)
def test_fast_answers_equal_the_sdk_answers(config: dict[str, Any]) -> None:
    fast, fast_types = _run(config, fast=True)
    slow, _ = _run(config, fast=False)
    assert fast == slow
    # Every plain request took the direct route; the unknown tool is left to the SDK's error path.
    assert [t for i, t in enumerate(fast_types) if i != 5] == ["application/json"] * (len(REQUESTS) - 1)


def test_requests_it_does_not_own_go_to_the_sdk() -> None:
    server = demo_server()
    with server.start() as handle, httpx.Client() as client:
        # initialize (no session yet) and a progress-token call both need the SDK's session.
        r = client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)
        assert r.headers["content-type"].startswith("text/event-stream")
        headers = {
            **ACCEPT,
            "mcp-session-id": r.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        client.post(
            handle.mcp_url(), json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
        call = {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "steps", "arguments": {"n": 2}, "_meta": {"progressToken": "p"}},
        }
        r = client.post(handle.mcp_url(), json=call, headers=headers)
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[5:])
            for line in r.text.splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
        assert [e["params"]["progress"] for e in events if e.get("method") == "notifications/progress"] == [
            1,
            2,
        ]
        assert events[-1]["result"]["content"][0]["text"] == "2 steps"
        # an unknown session id is the SDK's 404, not an answer
        r = client.post(handle.mcp_url(), json=REQUESTS[1], headers={**headers, "mcp-session-id": "nope"})
        assert r.status_code == 404
        # a body larger than the fast route reads still works
        big = {
            "jsonrpc": "2.0",
            "id": 10,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x" * 300_000}},
        }
        r = client.post(handle.mcp_url(), json=big, headers=headers)
        assert _decode(r)["result"]["content"][0]["text"] == "x" * 300_000
