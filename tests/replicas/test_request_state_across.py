"""SEP-2322 request state sealed by one replica is opened by another (2026-07-28, stateless).

A tool answers ``InputRequired(state=...)``; the server seals the state into ``requestState``
and the client sends it back with its answers on the retry, which round-robin may land on
another replica. Replicas on one Redis share the sealing key (``<prefix>request-state-key``,
made once by whichever starts first) unless ``request_state_keys`` is given; before, each
process had its own and the retry was refused.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from conftest import ACCEPT, demo_server
from mcp_embed import ElicitInput, InputRequired, ToolContext
from redis_helpers import RedisServer

MODERN = "2026-07-28"
ANSWER = {"user": {"action": "accept", "content": {"name": "Ada"}}}


def _server(url: str, spawn_mode: str) -> Any:
    server = demo_server(redis_url=url, stateless=True, spawn_mode=spawn_mode)

    @server.tool()
    def greet(ctx: ToolContext) -> Any:
        """Ask for a name first, then greet it with the state kept between the rounds."""
        if not ctx.input_responses:
            return InputRequired(
                {
                    "user": ElicitInput(
                        "name?", {"type": "object", "properties": {"name": {"type": "string"}}}
                    )
                },
                state="round-1",
            )
        name = ctx.input_responses["user"]["content"]["name"]
        return f"hello {name} after {ctx.request_state}"

    return server


def _call(url: str, params: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "greet", "arguments": {}, **params, "_meta": meta},
    }
    headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "greet"}
    r = httpx.post(url, json=body, headers=headers, timeout=30)
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(x[5:]) for x in r.text.splitlines() if x.startswith("data:") and x[5:].strip()][-1]
    return dict(r.json())


def test_a_state_sealed_on_one_replica_is_opened_on_another(
    redis_server: RedisServer, spawn_mode: str
) -> None:
    url = redis_server.url
    with _server(url, spawn_mode).start() as a, _server(url, spawn_mode).start() as b:
        first = _call(a.mcp_url(), {})["result"]
        assert first["resultType"] == "input_required" and first["requestState"] != "round-1"  # sealed
        retry = _call(b.mcp_url(), {"inputResponses": ANSWER, "requestState": first["requestState"]})
        assert "result" in retry, retry
        assert retry["result"]["content"][0]["text"] == "hello Ada after round-1"
        # A forged state is still refused, on either replica.
        forged = _call(
            b.mcp_url(), {"inputResponses": ANSWER, "requestState": first["requestState"][:-4] + "AAAA"}
        )
        assert "error" in forged, forged


def test_given_keys_win_and_nothing_is_kept_in_redis(redis_server: RedisServer) -> None:
    import redis as redis_py

    from mcp_embed import McpHttpConfig, create_skill_server

    config = McpHttpConfig(port=0, redis_url=redis_server.url, stateless=True, register=False)
    with create_skill_server("t", config, request_state_keys=[b"k" * 32]).start() as handle:
        assert httpx.get(handle.local_url + "/health", timeout=10).json()["redis"] == "ok"
    client = redis_py.Redis.from_url(redis_server.url)
    try:
        assert not list(client.scan_iter(match="*request-state-key*"))
    finally:
        client.close()
