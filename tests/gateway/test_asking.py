"""An instance's tool asks the gateway's client (elicitation, sampling) through the gateway: one
instance in its own process, the gateway in this one, the SDK's own client with callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import mcp_types as types
import pytest
from gateway_helpers import GUARD, Proc, child_env, spawn_instance, wait_until

from mcp_embed import McpHttpConfig
from mcp_embed.gateway import create_gateway
from mcp_embed.instances import open_registry


class Setup(NamedTuple):
    instance: str  # the instance's own MCP URL
    gateway: str


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    folder = tmp_path / "instances"
    env = child_env(MCP_EMBED_REGISTRY_DIR=str(folder))
    registry = open_registry(folder=folder)
    proc: Proc | None = None
    try:
        proc, url = spawn_instance("maya", env)
        wait_until(lambda: len(registry.list()) == 1, "the listed instance")
        gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=0.2)
        handle = gateway.start()
        try:
            yield Setup(url, handle.mcp_url())
        finally:
            handle.stop()
    finally:
        if proc is not None:
            proc.stop()
        registry.close()


@contextlib.asynccontextmanager
async def client(url: str, **callbacks: Any) -> AsyncIterator[Any]:
    from mcp.client import Client

    async with Client(url, mode="legacy", cache=None, **callbacks) as c:
        yield c


def text(result: Any) -> str:
    assert not result.is_error, result
    out: str = result.content[0].text
    return out


def run(main: Any) -> None:
    async def bounded() -> None:
        with anyio.fail_after(GUARD):
            await main()

    anyio.run(bounded)


def test_a_tool_behind_the_gateway_asks_the_client_and_gets_its_answer(setup: Setup) -> None:
    asked: list[str] = []

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def main() -> None:
        async with client(setup.gateway, elicitation_callback=answer) as c:
            result = await c.call_tool("maya-1__ask", {"question": "who renames shot 10?"})
            assert text(result) == 'can elicit; accept {"name": "Ada"}'
            # With progress asked too: the same session of its own, progress relayed.
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            again = await c.call_tool("maya-1__ask", {"question": "and 20?"}, progress_callback=on_progress)
            assert text(again) == 'can elicit; accept {"name": "Ada"}'
        assert asked == ["who renames shot 10?", "and 20?"]

    run(main)


def test_two_concurrent_asking_calls_each_get_their_own_clients_answer(setup: Setup) -> None:
    both = anyio.Event()
    waiting: list[str] = []

    def answering(who: str) -> Any:
        async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
            waiting.append(params.message)
            if len(waiting) == 2:
                both.set()
            await both.wait()  # both calls are asking at once
            return types.ElicitResult(action="accept", content={"name": f"{who} for {params.message}"})

        return answer

    async def main() -> None:
        results: dict[str, str] = {}
        async with (
            client(setup.gateway, elicitation_callback=answering("alice")) as a,
            client(setup.gateway, elicitation_callback=answering("bob")) as b,
        ):

            async def call(c: Any, question: str) -> None:
                results[question] = text(await c.call_tool("maya-1__ask", {"question": question}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, a, "q-a")
                tg.start_soon(call, b, "q-b")
        assert results == {
            "q-a": 'can elicit; accept {"name": "alice for q-a"}',
            "q-b": 'can elicit; accept {"name": "bob for q-b"}',
        }

    run(main)


def test_two_concurrent_calls_of_one_client_each_get_the_answer_to_their_own_question(setup: Setup) -> None:
    both = anyio.Event()
    waiting: list[str] = []

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        waiting.append(params.message)
        if len(waiting) == 2:
            both.set()
        await both.wait()
        return types.ElicitResult(action="accept", content={"name": f"answer to {params.message}"})

    async def main() -> None:
        results: dict[str, str] = {}
        async with client(setup.gateway, elicitation_callback=answer) as c:

            async def call(question: str) -> None:
                results[question] = text(await c.call_tool("maya-1__ask", {"question": question}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "first")
                tg.start_soon(call, "second")
        assert results == {q: f'can elicit; accept {{"name": "answer to {q}"}}' for q in ("first", "second")}

    run(main)


def test_a_client_that_cannot_elicit_is_refused_as_it_would_be_directly(setup: Setup) -> None:
    async def ask(url: str, tool: str, *, progress: bool) -> str:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            pass

        async with client(url) as c:  # no callbacks: the SDK's client declares no capability
            callback = on_progress if progress else None
            return text(await c.call_tool(tool, {"question": "who?"}, progress_callback=callback))

    async def main() -> None:
        direct = await ask(setup.instance, "ask", progress=False)
        assert direct == "cannot elicit; McpError -32600: Elicitation not supported"
        # Without progress the call goes as one JSON POST (the lane), with it over the shared session.
        assert await ask(setup.gateway, "maya-1__ask", progress=False) == direct
        assert await ask(setup.gateway, "maya-1__ask", progress=True) == direct

    run(main)


def test_the_client_declining_or_failing_reaches_the_tool(setup: Setup) -> None:
    async def decline(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async def fail(context: Any, params: types.ElicitRequestParams) -> types.ErrorData:
        return types.ErrorData(code=-32042, message="the user is away")

    async def main() -> None:
        async with client(setup.gateway, elicitation_callback=decline) as c:
            assert text(await c.call_tool("maya-1__ask", {"question": "q"})) == "can elicit; decline null"
        async with client(setup.gateway, elicitation_callback=fail) as c:
            result = text(await c.call_tool("maya-1__ask", {"question": "q"}))
            assert result == "can elicit; McpError -32042: the user is away"

    run(main)


def test_sampling_reaches_the_clients_model(setup: Setup) -> None:
    asked: list[tuple[str | None, Any]] = []

    async def model(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append((params.system_prompt, params.messages[0].content))
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="a teal cube"), model="m-1"
        )

    async def main() -> None:
        async with client(setup.gateway, sampling_callback=model) as c:
            result = await c.call_tool("maya-1__sample", {"prompt": "describe the scene"})
            assert text(result) == "m-1: a teal cube"
        async with client(setup.gateway) as c:  # cannot sample: refused as directly
            result = await c.call_tool("maya-1__sample", {"prompt": "describe the scene"})
            assert text(result) == "McpError -32600: Sampling not supported"
        assert len(asked) == 1
        system, content = asked[0]
        assert system == "be brief"
        assert content.text == "describe the scene"

    run(main)


def test_a_client_that_goes_away_while_asked_releases_the_tool(setup: Setup) -> None:
    asked = anyio.Event()

    async def never(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def main() -> None:
        async with client(setup.gateway, elicitation_callback=never) as c, anyio.create_task_group() as tg:
            tg.start_soon(lambda: c.call_tool("maya-1__ask", {"question": "left"}))
            await asked.wait()
            tg.cancel_scope.cancel()
        # The client is gone (its call cancelled, its session ended): the instance's tool ends.
        async with client(setup.instance) as direct:
            while True:
                ended = (await direct.call_tool("asked", {})).structured_content["result"]
                if any(e.startswith("left: ") for e in ended):
                    break
                await anyio.sleep(0.05)
        assert ended == ["left: cancelled"] or ended[0].startswith("left: McpError")

    run(main)


def _raw_call(url: str, capabilities: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A stateful session opened with ``capabilities``; one plain call of ``maya-1__echo``: the
    content type it was answered with and the JSON-RPC result."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=GUARD)
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

    def post(body: dict[str, Any]) -> tuple[str, bytes]:
        conn.request("POST", parts.path, json.dumps(body), headers)
        response = conn.getresponse()
        if "mcp-session-id" not in headers and response.getheader("mcp-session-id"):
            headers["mcp-session-id"] = response.getheader("mcp-session-id") or ""
        return response.getheader("content-type") or "", response.read()

    try:
        info = {"name": "probe", "version": "1"}
        init = {"protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": info}
        post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        headers["mcp-protocol-version"] = "2025-11-25"
        post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"name": "maya-1__echo", "arguments": {"text": "x"}}
        kind, raw = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
    finally:
        conn.close()
    text_body = raw.decode()
    if kind.startswith("text/event-stream"):  # the answer is the last data line
        text_body = [line[5:] for line in text_body.splitlines() if line.startswith("data:")][-1]
    answer: dict[str, Any] = json.loads(text_body)["result"]
    return kind, answer


def test_a_client_that_cannot_be_asked_keeps_the_fast_path_one_that_can_gets_a_stream(setup: Setup) -> None:
    kind, answer = _raw_call(setup.gateway, {})
    assert kind.startswith("application/json")  # the fast path: one JSON answer
    assert answer["content"][0]["text"] == "maya:x"
    kind, answer = _raw_call(setup.gateway, {"elicitation": {}})
    assert kind.startswith("text/event-stream")  # the SDK's path: a stream the instance may ask on
    assert answer["content"][0]["text"] == "maya:x"


def test_the_fast_path_serves_a_context_to_ask_tool_only_for_a_quiet_client() -> None:
    from mcp_embed.components.tools import ToolSpec
    from mcp_embed.http.fastpath import _Head, refusal

    head = _Head(accepts_json=True, content_json=True, session_id=None, version=None)
    call = (1, "tools/call", {"name": "t", "arguments": {}})
    spec = ToolSpec(name="t", description="", input_schema={"type": "object"}, wants_context="ctx")
    assert refusal(head, True, None, False, call, spec, True) is not None  # a plain context: never
    spec.context_to_ask = True
    assert refusal(head, True, None, False, call, spec, True) is None
    assert refusal(head, True, None, False, call, spec, False) is not None  # the client may be asked


def test_a_client_that_does_not_answer_in_time_is_a_tool_error_at_the_instance(tmp_path: Path) -> None:
    folder = tmp_path / "instances"
    registry = open_registry(folder=folder)
    proc, _ = spawn_instance("maya", child_env(MCP_EMBED_REGISTRY_DIR=str(folder)))
    try:
        wait_until(lambda: len(registry.list()) == 1, "the listed instance")
        config = McpHttpConfig(port=0, client_request_timeout=0.5)  # the gateway's own wait
        handle = create_gateway(config, registry=registry, poll_interval=0.2).start()
        try:

            async def silent(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
                await anyio.sleep_forever()
                raise AssertionError("unreachable")

            async def main() -> None:
                async with client(handle.mcp_url(), elicitation_callback=silent) as c:
                    result = text(await c.call_tool("maya-1__ask", {"question": "q"}))
                # A ToolError, as when asking the client directly. (The instance words it with its own
                # client_request_timeout, whatever the gateway's was: it words every REQUEST_TIMEOUT so.)
                did_not = "can elicit; ToolError: the client did not answer elicitation/create"
                assert result.startswith(did_not)
                assert result.endswith("(client_request_timeout)")

            run(main)
        finally:
            handle.stop()
    finally:
        proc.stop()
        registry.close()
