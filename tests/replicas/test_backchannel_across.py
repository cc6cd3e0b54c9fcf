"""Stateless mode behind a round-robin balancer: a tool's elicitation raised on replica A is
answered by a POST to replica B, through the Redis relay (``replicas/backchannel.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import ACCEPT, demo_server
from mcp_embed import ApiKey, ApiKeyConfig, ServerHandle, ToolContext
from redis_helpers import RedisServer

WAIT = 20.0  # a guard against a hang, never a measurement
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
K_ADA = "ada-key-0123456789abcdef"
K_EVE = "eve-key-0123456789abcdef"
CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ask", "arguments": {}}}


def _replica(redis_url: str, **config: Any) -> ServerHandle:
    server = demo_server(stateless=True, redis_url=redis_url, host="127.0.0.1", **config)

    @server.tool()
    async def ask(ctx: ToolContext) -> str:
        """Ask the user for a name."""
        answer = await ctx.elicit("name?", NAME)
        return json.dumps({"action": answer.action, "content": answer.content})

    return server.start()


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


async def _call_and_answer(
    a: ServerHandle, answer_to: ServerHandle, key: str | None = None, *, forger: str | None = None
) -> tuple[dict[str, Any], list[httpx.Response]]:
    """POST tools/call to A, read the elicitation off its SSE stream, POST the answer to B."""
    posted: list[httpx.Response] = []
    async with httpx.AsyncClient(timeout=WAIT) as http:
        headers = {**ACCEPT, **_auth(key)}
        async with http.stream("POST", a.mcp_url(), json=CALL, headers=headers) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("method") == "elicitation/create":
                    body = {
                        "jsonrpc": "2.0",
                        "id": msg["id"],
                        "result": {"action": "accept", "content": {"name": "ada"}},
                    }
                    if forger is not None:
                        posted.append(
                            await http.post(
                                answer_to.mcp_url(), json=body, headers={**ACCEPT, **_auth(forger)}
                            )
                        )
                    unknown = {**body, "id": msg["id"] + "x"}
                    posted.append(await http.post(answer_to.mcp_url(), json=unknown, headers=headers))
                    posted.append(await http.post(answer_to.mcp_url(), json=body, headers=headers))
                    posted.append(await http.post(answer_to.mcp_url(), json=body, headers=headers))
                elif msg.get("id") == 7:
                    return msg, posted
    raise AssertionError("the stream ended without the call's result")


def test_an_elicitation_on_a_is_answered_through_b(redis_server: RedisServer) -> None:
    a, b = _replica(redis_server.url), _replica(redis_server.url)
    try:

        async def main() -> tuple[dict[str, Any], list[httpx.Response]]:
            with anyio.fail_after(WAIT):
                return await _call_and_answer(a, b)

        result, posted = anyio.run(main)
    finally:
        a.stop()
        b.stop()
    assert [r.status_code for r in posted] == [404, 202, 404]  # unknown id; the answer; a second time
    assert "No server request is waiting for this response id" in posted[0].json()["error"]["message"]
    text = result["result"]["content"][0]["text"]
    assert json.loads(text) == {"action": "accept", "content": {"name": "ada"}}


def test_only_the_principal_that_was_asked_may_answer_on_b(redis_server: RedisServer, tmp_path: Path) -> None:
    keys = (ApiKey(id="ada", key=K_ADA), ApiKey(id="eve", key=K_EVE))
    auth = ApiKeyConfig(keys=keys, enforce="native")
    a = _replica(redis_server.url, auth=auth, log_dir=str(tmp_path / "a"))
    b = _replica(redis_server.url, auth=auth, log_dir=str(tmp_path / "b"))
    try:

        async def main() -> tuple[dict[str, Any], list[httpx.Response]]:
            with anyio.fail_after(WAIT):
                return await _call_and_answer(a, b, K_ADA, forger=K_EVE)

        result, posted = anyio.run(main)
    finally:
        a.stop()
        b.stop()
    assert [r.status_code for r in posted] == [404, 404, 202, 404]  # Eve refused; Ada's lands
    assert json.loads(result["result"]["content"][0]["text"])["content"] == {"name": "ada"}


def test_with_redis_stopped_the_elicitation_fails_clearly_and_b_says_503(redis_server: RedisServer) -> None:
    a, b = _replica(redis_server.url), _replica(redis_server.url)
    try:
        redis_server.stop()

        async def main() -> tuple[dict[str, Any], httpx.Response, float]:
            with anyio.fail_after(WAIT):
                start = anyio.current_time()
                async with httpx.AsyncClient(timeout=WAIT) as http:
                    r = await http.post(a.mcp_url(), json=CALL, headers=ACCEPT)
                    lines = [json.loads(x[5:]) for x in r.text.splitlines() if x.startswith("data:")]
                    took = anyio.current_time() - start
                    body = {"jsonrpc": "2.0", "id": "mcpe-" + "A" * 22, "result": {"action": "cancel"}}
                    routed = await http.post(b.mcp_url(), json=body, headers=ACCEPT)
                return lines[-1], routed, took

        result, routed, took = anyio.run(main)
    finally:
        a.stop()
        b.stop()
    assert result["id"] == 7
    # The tool's McpError: a JSON-RPC error for the call, or a tool result with isError.
    text = result["error"]["message"] if "error" in result else result["result"]["content"][0]["text"]
    assert "cannot wait for the client's answer, which may reach another replica" in text, text
    assert took < 10.0  # bounded (the relay's bound and Redis's timeouts), never a hang
    assert routed.status_code == 503
    assert "cannot route this response" in routed.json()["error"]["message"]


@pytest.mark.parametrize("restart", [True])
def test_the_relay_comes_back_with_redis(redis_server: RedisServer, restart: bool) -> None:
    a, b = _replica(redis_server.url), _replica(redis_server.url)
    try:

        async def main() -> tuple[dict[str, Any], list[httpx.Response]]:
            with anyio.fail_after(WAIT):
                await _call_and_answer(a, b)  # both relays subscribed
                redis_server.stop()
                await anyio.sleep(0.5)
                redis_server.start()
                for _ in range(100):  # bounded: the subscribers reconnect within their backoff
                    try:
                        return await _call_and_answer(a, b)
                    except AssertionError:
                        await anyio.sleep(0.1)
                raise AssertionError("the relay did not come back")

        result, posted = anyio.run(main)
    finally:
        a.stop()
        b.stop()
    assert posted[1].status_code == 202
    assert json.loads(result["result"]["content"][0]["text"])["content"] == {"name": "ada"}
