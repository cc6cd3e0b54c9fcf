"""What the host's own code hands the server always reaches the client, and the session lives on.

The inbound side (what a client sends) is fuzzed in tests/test_fuzz_modes.py. This is the other
way: a tool's progress message and log data, an error it raises, a question it asks, a resource's
text and a prompt's messages may hold lone surrogates (a file name read with ``surrogateescape``),
values JSON cannot hold, or nesting past every limit. pydantic's encoder refuses a lone
surrogate; before the fix a progress note with one ended the call's stream with no answer, and
with the Redis event store it ended the SDK's message router: every later request of the session
hung. Each case is asserted on the wire, in both spawn modes, with the in-memory and the Redis
event store, and the session must still answer afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server
from mcp_embed import McpError, ToolContext
from redis_helpers import redis_server

__all__ = ["redis_server"]  # the fixture, for the Redis event store's cases

BAD = "a\ud800b"  # a lone surrogate, as a file name read with surrogateescape may hold
SENT = "a\\ud800b"  # what the client reads: the six characters, as text


def _deep(n: int) -> Any:
    value: Any = "bottom"
    for _ in range(n):
        value = [value]
    return value


def _server(**config: Any) -> Any:
    server = demo_server(**config)

    @server.tool()
    def noisy(ctx: ToolContext) -> str:
        """Report progress and log what JSON cannot hold, then answer."""
        ctx.report_progress(1, 2, BAD)
        ctx.log("info", {BAD: BAD, "set": {1}, "deep": _deep(500), "nan": float("nan")}, logger=BAD)
        return "done"

    @server.tool()
    def refuses() -> str:
        """Answer with a JSON-RPC error whose message and data hold a lone surrogate."""
        raise McpError(-32050, f"no: {BAD}", {"why": BAD, "odd": object()})

    @server.tool()
    async def asks(ctx: ToolContext) -> str:
        """Ask a question whose text and schema hold lone surrogates."""
        answer = await ctx.elicit(BAD, {"type": "object", "properties": {BAD: {"type": "string"}}})
        return str(answer.action)

    @server.resource("app://bad", mime_type="text/plain")
    def bad_text() -> str:
        return BAD

    @server.prompt(description="A prompt whose text holds a lone surrogate.")
    def bad_prompt() -> str:
        return BAD

    @server.prompt(description="A prompt that fails with a lone surrogate in its message.")
    def failing_prompt() -> str:
        raise RuntimeError(BAD)

    return server


def _messages(response: httpx.Response) -> list[dict[str, Any]]:
    if response.headers["content-type"].startswith("application/json"):
        return [response.json()]
    return [
        json.loads(line[5:])
        for line in response.text.splitlines()
        if line.startswith("data:") and line[5:].strip()
    ]


class Session:
    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client, self.url, self.next_id = client, url, 10
        r = client.post(url, json=INIT, headers=ACCEPT)
        assert r.status_code == 200, r.text
        self.headers = {
            **ACCEPT,
            "Mcp-Session-Id": r.headers["mcp-session-id"],
            "Mcp-Protocol-Version": "2025-11-25",
        }
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert client.post(url, json=note, headers=self.headers).status_code == 202

    def ask(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every message of the answer's stream; the last is the answer itself."""
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        messages = _messages(self.client.post(self.url, json=body, headers=self.headers))
        assert messages and messages[-1].get("id") == self.next_id, messages  # answered, not cut
        return messages


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    return {"redis_url": request.getfixturevalue("redis_server").url}


@pytest.fixture
def session(spawn_mode: str, store: dict[str, Any]) -> Iterator[Session]:
    config = {"spawn_mode": spawn_mode, "client_request_timeout": 0.5, **store}
    with _server(**config).start() as handle, httpx.Client(timeout=30) as client:
        yield Session(client, handle.mcp_url())


def test_a_tools_progress_log_and_error_reach_the_client_as_text(session: Session) -> None:
    messages = session.ask("tools/call", {"name": "noisy", "arguments": {}, "_meta": {"progressToken": "p"}})
    progress = next(m for m in messages if m.get("method") == "notifications/progress")
    assert progress["params"]["message"] == SENT
    logged = next(m for m in messages if m.get("method") == "notifications/message")["params"]
    assert logged["logger"] == SENT
    data = logged["data"]
    assert data[SENT] == SENT and data["set"] == "{1}" and data["nan"] == "nan"
    depth, node = 0, data["deep"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert depth <= 65 and isinstance(node, str)  # cut where JSON parsers stop reading, as text
    assert messages[-1]["result"]["content"][0]["text"] == "done"

    error = session.ask("tools/call", {"name": "refuses", "arguments": {}})[-1]["error"]
    assert error["code"] == -32050 and error["message"] == f"no: {SENT}"
    assert error["data"]["why"] == SENT and error["data"]["odd"].startswith("<object object")

    # The question goes out (the client here never answers: the tool hears of the timeout).
    asked = session.ask("tools/call", {"name": "asks", "arguments": {}})
    question = next(m for m in asked if m.get("method") == "elicitation/create")["params"]
    assert question["message"] == SENT and SENT in question["requestedSchema"]["properties"]
    assert asked[-1]["result"]["isError"] is True

    assert session.ask("tools/list", {})[-1]["result"]["tools"]  # the session lives on


def test_a_resource_and_a_prompt_reach_the_client_as_text(session: Session) -> None:
    read = session.ask("resources/read", {"uri": "app://bad"})[-1]["result"]
    assert read["contents"][0]["text"] == SENT
    got = session.ask("prompts/get", {"name": "bad_prompt"})[-1]["result"]
    assert got["messages"][0]["content"]["text"] == SENT
    error = session.ask("prompts/get", {"name": "failing_prompt"})[-1]["error"]
    assert SENT in error["message"]
    assert session.ask("tools/list", {})[-1]["result"]["tools"]
