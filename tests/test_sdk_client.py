"""The SDK's own client against a real server: every transport and mode the issue names."""

from __future__ import annotations

import anyio
import pytest

from conftest import sdk_client, serving

MODES = [
    pytest.param({}, "streamable-http", "legacy", id="stateful-sse-replies"),
    pytest.param({}, "streamable-http", "auto", id="stateful-2026-era"),
    pytest.param({"stateless": True}, "streamable-http", "legacy", id="stateless"),
    pytest.param(
        {"stateless": True, "json_response": True}, "streamable-http", "legacy", id="stateless-json"
    ),
    pytest.param({"json_response": True}, "streamable-http", "legacy", id="stateful-json"),
    pytest.param({}, "sse", "legacy", id="legacy-http+sse"),
]


@pytest.mark.parametrize(("config", "transport", "mode"), MODES)
def test_initialize_list_call_and_validation_error(
    config: dict, transport: str, mode: str, spawn_mode: str
) -> None:
    with serving(spawn_mode=spawn_mode, **config) as handle:
        url = handle.sse_url() if transport == "sse" else handle.mcp_url()

        async def main() -> None:
            async with sdk_client(url, transport=transport, mode=mode) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                assert {"echo", "add", "aecho", "steps", "fail"} <= set(tools)
                assert tools["echo"].input_schema["properties"]["text"] == {
                    "type": "string",
                    "description": "What to echo.",
                }
                assert tools["echo"].description == "Echo the text back."
                assert tools["add"].output_schema == {
                    "type": "object",
                    "properties": {"result": {"type": "integer"}},
                    "required": ["result"],
                }

                ok = await client.call_tool("echo", {"text": "hi"})
                assert not ok.is_error
                assert ok.content[0].text == "hi"
                assert ok.structured_content == {"result": "hi"}

                summed = await client.call_tool("add", {"a": 2, "b": 40})
                assert summed.structured_content == {"result": 42}

                bad = await client.call_tool("add", {"a": "x", "b": 2})
                assert bad.is_error
                assert "Invalid arguments for tool 'add'" in bad.content[0].text
                assert "a: Input should be a valid integer" in bad.content[0].text

                missing = await client.call_tool("add", {"a": 1})
                assert missing.is_error and "b: required argument is missing" in missing.content[0].text

                raised = await client.call_tool("fail", {"message": "boom"})
                assert raised.is_error
                assert raised.content[0].text == "Tool 'fail' failed: ValueError: boom"
                assert "Traceback" not in raised.content[0].text

                assert (await client.call_tool("aecho", {"text": "async"})).content[0].text == "async"

        anyio.run(main)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_progress_reaches_the_client_in_order_before_the_result(mode: str, spawn_mode: str) -> None:
    with serving(spawn_mode=spawn_mode) as handle:

        async def main() -> None:
            seen: list[tuple[float, float | None, str | None]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append((progress, total, message))

            async with sdk_client(handle.mcp_url(), mode=mode) as client:
                result = await client.call_tool("steps", {"n": 5}, progress_callback=on_progress)
            assert result.content[0].text == "5 steps"
            assert seen == [(float(i), 5.0, f"step {i}") for i in range(1, 6)]

        anyio.run(main)


def test_unknown_tool_is_a_protocol_error(spawn_mode: str) -> None:
    from mcp.shared.exceptions import MCPError

    with serving(spawn_mode=spawn_mode) as handle:

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                with pytest.raises(MCPError) as info:
                    await client.call_tool("nope", {})
                assert info.value.code == -32602
                assert "Unknown tool: nope" in info.value.message

        anyio.run(main)


def test_tools_added_while_running_are_listed(spawn_mode: str) -> None:
    from conftest import demo_server

    server = demo_server(spawn_mode=spawn_mode)
    with server.start() as handle:

        def late(x: int) -> int:
            return x * 2

        server.add_tool(late)

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "late" in names
                assert (await client.call_tool("late", {"x": 21})).structured_content == {"result": 42}

        anyio.run(main)
