"""Stateless mode: a tool's sampling or elicitation request reaches the client on the tool call's
stream, and the client's answer, posted separately, reaches that tool (backchannel.py).

Every client here is the SDK's own, with real sampling and elicitation callbacks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest

from conftest import ACCEPT
from mcp_embed import ApiKey, ApiKeyConfig, McpHttpConfig, ServerHandle, ToolContext, create_skill_server

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
WAIT = 30.0  # a guard against a hang, never a measurement


def _server(**config: Any) -> ServerHandle:
    config.setdefault("port", 0)
    config.setdefault("stateless", True)
    server = create_skill_server("backchannel", McpHttpConfig(**config))

    @server.tool()
    async def ask_model(prompt: str, ctx: ToolContext) -> str:
        """Ask the client's model."""
        return str((await ctx.sample(prompt)).text)

    @server.tool()
    def ask_user(question: str, ctx: ToolContext) -> str:
        """Ask the user, from a worker thread."""
        answer = ctx.elicit_blocking(question, NAME_SCHEMA)
        return json.dumps({"action": answer.action, "content": answer.content})

    @server.tool()
    def whoami(ctx: ToolContext) -> str:
        """The caller's principal."""
        return str(ctx.principal)

    @server.tool(timeout=0.5)
    async def impatient(ctx: ToolContext) -> str:
        """Gives up on the client after half a second (its own timeout)."""
        await ctx.elicit("anyone?", NAME_SCHEMA)
        return "answered"

    return server.start()


def _pending(handle: ServerHandle) -> int:
    """Requests the server is still waiting on (dedicated mode: the server runs in this process)."""
    app = handle._runtime._app  # type: ignore[attr-defined]
    return len(app.transports.manager.backchannel)


@contextlib.asynccontextmanager
async def _client(url: str, headers: dict[str, str] | None = None, **callbacks: Any) -> AsyncIterator[Any]:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=headers or {}) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode="legacy", **callbacks) as client:  # the 2025 wire
            yield client


def _reply(text: str) -> types.CreateMessageResult:
    content = types.TextContent(type="text", text=text)
    return types.CreateMessageResult(role="assistant", content=content, model="t")


async def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        return await http.post(url, json=body, headers={**ACCEPT, **(headers or {})})


@pytest.fixture(scope="module")
def stateless() -> Iterator[ServerHandle]:
    handle = _server()
    try:
        yield handle
    finally:
        handle.stop()


def test_sampling_and_elicitation_reach_the_tool(spawn_mode: str) -> None:
    handle = _server(spawn_mode=spawn_mode)
    asked: list[str] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(str(context.request_id))
        return _reply(f"echo {params.messages[0].content.text}")  # type: ignore[union-attr]

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        asked.append(str(context.request_id))
        return types.ElicitResult(action="accept", content={"name": params.message})

    async def main() -> None:
        with anyio.fail_after(WAIT):
            callbacks = {"sampling_callback": sampling, "elicitation_callback": elicitation}
            async with _client(handle.mcp_url(), **callbacks) as c:
                r = await c.call_tool("ask_model", {"prompt": "hi"})
                assert (r.is_error, r.content[0].text) == (False, "echo hi")
                r = await c.call_tool("ask_user", {"question": "ada"})
                assert json.loads(r.content[0].text) == {"action": "accept", "content": {"name": "ada"}}

    try:
        anyio.run(main)
    finally:
        handle.stop()
    # The ids the client saw are unguessable, not the dispatcher's 1, 2, 3.
    assert len(asked) == 2 and all(a.startswith("mcpe-") and len(a) > 20 for a in asked), asked


def test_an_unknown_or_forged_answer_is_refused_and_the_real_one_still_lands(stateless: ServerHandle) -> None:
    url = stateless.mcp_url()
    refused: list[httpx.Response] = []

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        wire_id = context.request_id
        forged = {"jsonrpc": "2.0", "result": {"action": "accept", "content": {"name": "mallory"}}}
        for bad_id in (wire_id + "x", "mcpe-" + "A" * 22, 1, None):
            refused.append(await _post(url, {**forged, "id": bad_id}))
        return types.ElicitResult(action="accept", content={"name": "ada"})

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with _client(url, elicitation_callback=elicitation) as c:
                r = await c.call_tool("ask_user", {"question": "name?"})
                assert json.loads(r.content[0].text)["content"] == {"name": "ada"}

    anyio.run(main)
    assert [r.status_code for r in refused] == [404] * 4
    error = refused[0].json()["error"]
    assert error["code"] == types.INVALID_REQUEST
    assert "No server request is waiting for this response id" in error["message"]
    assert _pending(stateless) == 0


def test_an_answer_comes_once(stateless: ServerHandle) -> None:
    """The first answer wins; a second one for the same id is refused like an unknown id."""
    url = stateless.mcp_url()
    second: list[int] = []

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        answer = {"jsonrpc": "2.0", "id": context.request_id, "result": {"action": "decline"}}
        second.append((await _post(url, answer)).status_code)
        second.append((await _post(url, answer)).status_code)
        return types.ElicitResult(action="accept", content={"name": "late"})

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with _client(url, elicitation_callback=elicitation) as c:
                r = await c.call_tool("ask_user", {"question": "name?"})
                assert json.loads(r.content[0].text) == {"action": "decline", "content": None}

    anyio.run(main)
    assert second == [202, 404]
    assert _pending(stateless) == 0


@pytest.mark.parametrize(
    ("mode", "stateless"), [("dedicated", True), ("subprocess", True), ("dedicated", False)]
)
def test_a_client_that_never_answers_gets_a_clean_tool_error(mode: str, stateless: bool) -> None:
    """``client_request_timeout`` bounds the wait, in sessions too."""
    handle = _server(client_request_timeout=0.5, spawn_mode=mode, stateless=stateless)
    url = handle.mcp_url()
    late: list[int] = []
    gave_up = anyio.Event()

    async def sampling(context: Any, params: Any) -> types.CreateMessageResult:
        try:
            await anyio.sleep_forever()
        finally:  # the server's notifications/cancelled ends the wait
            with anyio.CancelScope(shield=True):
                body = {"jsonrpc": "2.0", "id": context.request_id, "result": {"role": "assistant"}}
                late.append((await _post(url, body)).status_code)
            gave_up.set()
        raise AssertionError("unreachable")

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with _client(url, sampling_callback=sampling) as c:
                r = await c.call_tool("ask_model", {"prompt": "hello?"})
                assert r.is_error
                assert r.content[0].text == (
                    "the client did not answer sampling/createMessage within 0.5 s (client_request_timeout)"
                )
                await gave_up.wait()

    try:
        anyio.run(main)
        if mode == "dedicated" and stateless:
            assert _pending(handle) == 0
    finally:
        handle.stop()
    if stateless:  # (the raw POST carries no session id, so a session would refuse it anyway)
        assert late == [404]


def test_the_tools_own_timeout_also_unregisters_the_request(stateless: ServerHandle) -> None:
    url = stateless.mcp_url()
    late: list[int] = []
    gave_up = anyio.Event()

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                body = {"jsonrpc": "2.0", "id": context.request_id, "result": {"action": "cancel"}}
                late.append((await _post(url, body)).status_code)
            gave_up.set()
        raise AssertionError("unreachable")

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with _client(url, elicitation_callback=elicitation) as c:
                r = await c.call_tool("impatient", {})
                assert r.is_error and r.content[0].text == "Tool 'impatient' timed out after 0.5 s"
                await gave_up.wait()

    anyio.run(main)
    assert late == [404]
    assert _pending(stateless) == 0


def test_a_client_that_goes_away_leaves_nothing_behind(stateless: ServerHandle) -> None:
    url = stateless.mcp_url()
    asked = anyio.Event()
    wire_ids: list[str] = []

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        wire_ids.append(context.request_id)
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with _client(url, elicitation_callback=elicitation) as c, anyio.create_task_group() as tg:
                tg.start_soon(c.call_tool, "ask_user", {"question": "name?"})
                await asked.wait()
                assert _pending(stateless) == 1
                tg.cancel_scope.cancel()  # the client drops the call: its POST disconnects
            while _pending(stateless):  # the server notices the disconnect on its own loop
                await anyio.sleep(0.01)
            body = {"jsonrpc": "2.0", "id": wire_ids[0], "result": {"action": "cancel"}}
            assert (await _post(url, body)).status_code == 404

    anyio.run(main)


def test_many_clients_at_once_each_get_their_own_answer(spawn_mode: str) -> None:
    handle = _server(spawn_mode=spawn_mode)
    n = 6
    waiting = 0
    all_waiting = anyio.Event()

    def sampling_for(tag: int) -> Any:
        async def sampling(context: Any, params: Any) -> types.CreateMessageResult:
            nonlocal waiting
            waiting += 1
            if waiting == n:
                all_waiting.set()
            await all_waiting.wait()  # every request is pending at once before any is answered
            return _reply(f"{tag}:{params.messages[0].content.text}")  # type: ignore[union-attr]

        return sampling

    results: dict[int, str] = {}

    async def one(tag: int) -> None:
        async with _client(handle.mcp_url(), sampling_callback=sampling_for(tag)) as c:
            r = await c.call_tool("ask_model", {"prompt": f"client-{tag}"})
            assert not r.is_error, r.content[0].text
            results[tag] = r.content[0].text

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                for tag in range(n):
                    tg.start_soon(one, tag)

    try:
        anyio.run(main)
        if spawn_mode == "dedicated":
            assert _pending(handle) == 0
    finally:
        handle.stop()
    assert results == {tag: f"{tag}:client-{tag}" for tag in range(n)}


def test_json_responses_have_no_stream_so_the_tool_gets_a_clear_error() -> None:
    handle = _server(json_response=True)

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        raise AssertionError("never asked")

    async def main() -> None:
        with anyio.fail_after(WAIT):
            async with _client(handle.mcp_url(), elicitation_callback=elicitation) as c:
                r = await c.call_tool("ask_user", {"question": "name?"})
                assert r.is_error
                assert "no channel for server requests (JSON responses" in r.content[0].text

    try:
        anyio.run(main)
    finally:
        handle.stop()


K_ADA = "ada-key-0123456789abcdef"
K_EVE = "eve-key-0123456789abcdef"


def test_with_native_auth_only_the_principal_that_was_asked_may_answer(tmp_path: Path) -> None:
    keys = (ApiKey(id="ada", key=K_ADA), ApiKey(id="eve", key=K_EVE))
    handle = _server(auth=ApiKeyConfig(keys=keys, enforce="native"), log_dir=str(tmp_path))
    url = handle.mcp_url()
    eve: list[int] = []

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        # Eve learned the id (it is only ever sent to Ada) and answers first: refused.
        body = {"jsonrpc": "2.0", "id": context.request_id, "result": {"action": "decline"}}
        eve.append((await _post(url, body, {"Authorization": f"Bearer {K_EVE}"})).status_code)
        return types.ElicitResult(action="accept", content={"name": "ada"})

    async def main() -> None:
        with anyio.fail_after(WAIT):
            auth = {"Authorization": f"Bearer {K_ADA}"}
            async with _client(url, auth, elicitation_callback=elicitation) as c:
                assert (await c.call_tool("whoami", {})).content[0].text == "ada"
                r = await c.call_tool("ask_user", {"question": "name?"})
                assert json.loads(r.content[0].text) == {"action": "accept", "content": {"name": "ada"}}

    try:
        anyio.run(main)
    finally:
        handle.stop()
    assert eve == [404]
