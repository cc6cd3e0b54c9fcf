"""Resources, prompts, content, McpError, verbatim schemas and change notifications, through the
SDK's own client; and the direct (fast) route answering these exactly as the SDK route does."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from conftest import ACCEPT
from mcp_embed import (
    EmbeddedResource,
    Image,
    McpError,
    McpHttpConfig,
    Message,
    SkillServer,
    ToolContext,
    create_skill_server,
)

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 1}, "tag": {"type": "string"}},
    "required": ["n"],
    "additionalProperties": False,
}


def feature_server(**config: Any) -> SkillServer:
    server = create_skill_server("features", McpHttpConfig(port=0, **config))

    @server.tool()
    def picture() -> Image:
        """An image."""
        return Image(b"\x89PNG", "image/png")

    @server.tool()
    def mixed() -> list[str | Image | EmbeddedResource]:
        """Text, image and a resource."""
        return ["caption", Image(b"x", "image/gif"), EmbeddedResource("app://a", blob=b"\x00\x01")]

    @server.tool()
    def refuse() -> str:
        """Answers with a JSON-RPC error."""
        raise McpError(-32602, "no thanks", {"why": "testing"})

    @server.tool(input_schema=SCHEMA)
    def counted(n: int, tag: str = "-") -> str:
        """Validated by jsonschema."""
        return f"{tag}{n}"

    @server.tool()
    async def wrong_variant(ctx: ToolContext) -> str:
        """Calls the blocking variant on the event loop: refused, not deadlocked."""
        ctx.elicit_blocking("x", {"type": "object", "properties": {}})
        return "unreachable"

    @server.resource("app://scene/{name}", description="One node.")
    def node(name: str) -> str:
        return json.dumps({"node": name})

    @server.prompt(description="Review a node.")
    def review(node: str, depth: str = "1") -> list[Any]:
        return [Message("assistant", "Sure."), f"Review {node} to depth {depth}"]

    return server


def _client(url: str, **kw: Any) -> Client:
    return Client(url, mode="legacy", **kw)


def test_resources_and_prompts_from_decorators_and_add_resource() -> None:
    server = feature_server()
    server.add_resource("app://doc/readme", lambda: "# Readme", name="readme", mime_type="text/markdown")
    server.add_resource("app://doc/logo", lambda: b"\x89PNG\r\n", name="logo", mime_type="image/png")
    with server.start() as handle:

        async def main() -> None:
            async with _client(handle.mcp_url()) as c:
                listed = {str(r.uri): r for r in (await c.list_resources()).resources}
                assert listed["app://doc/readme"].mime_type == "text/markdown"
                assert (await c.read_resource("app://doc/readme")).contents[0].text == "# Readme"
                assert (await c.read_resource("app://doc/logo")).contents[0].blob == "iVBORw0K"
                tpl = (await c.list_resource_templates()).resource_templates[0]
                assert (tpl.uri_template, tpl.name, tpl.description) == (
                    "app://scene/{name}",
                    "node",
                    "One node.",
                )
                read = await c.read_resource("app://scene/cube1")
                assert json.loads(read.contents[0].text) == {"node": "cube1"}
                with pytest.raises(MCPError) as err:
                    await c.read_resource("app://elsewhere")
                assert err.value.code == -32602 and err.value.data == {"uri": "app://elsewhere"}

                prompt = (await c.list_prompts()).prompts[0]
                assert [(a.name, a.required) for a in prompt.arguments or []] == [
                    ("node", True),
                    ("depth", False),
                ]
                got = await c.get_prompt("review", {"node": "cube1"})
                assert [(m.role, m.content.text) for m in got.messages] == [
                    ("assistant", "Sure."),
                    ("user", "Review cube1 to depth 1"),
                ]

        anyio.run(main)
        assert server.remove_resource("app://doc/readme")
        assert not server.remove_resource("app://doc/readme")


def test_content_mcperror_and_verbatim_schema_through_the_client() -> None:
    with feature_server().start() as handle:

        async def main() -> None:
            async with _client(handle.mcp_url()) as c:
                tools = {t.name: t for t in (await c.list_tools()).tools}
                assert tools["counted"].input_schema == SCHEMA
                assert tools["mixed"].output_schema is None
                img = await c.call_tool("picture", {})
                assert (img.content[0].type, img.content[0].data) == ("image", "iVBORw==")
                mixed = await c.call_tool("mixed", {})
                assert [b.type for b in mixed.content] == ["text", "image", "resource"]
                assert mixed.content[2].resource.blob == "AAE="
                with pytest.raises(MCPError) as err:
                    await c.call_tool("refuse", {})
                assert (err.value.code, err.value.message, err.value.data) == (
                    -32602,
                    "no thanks",
                    {"why": "testing"},
                )
                assert (await c.call_tool("counted", {"n": 3, "tag": "#"})).content[0].text == "#3"
                bad = await c.call_tool("counted", {"n": 0, "extra": 1})
                assert bad.is_error
                assert "Invalid arguments for tool 'counted'" in bad.content[0].text
                assert "n: expected a number at least 1" in bad.content[0].text  # the value is not quoted
                wrong = await c.call_tool("wrong_variant", {})
                assert wrong.is_error and "would deadlock" in wrong.content[0].text

        anyio.run(main)


def _post_all(fast: bool, requests: list[dict[str, Any]]) -> list[Any]:
    server = feature_server()
    server.fast_path = fast
    with server.start() as handle, httpx.Client() as client:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        r = client.post(handle.mcp_url(), json=init, headers=ACCEPT)
        headers = {
            **ACCEPT,
            "mcp-session-id": r.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        client.post(
            handle.mcp_url(), json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
        out = []
        for req in requests:
            r = client.post(handle.mcp_url(), json=req, headers=headers)
            if r.headers["content-type"].startswith("text/event-stream"):
                data = [
                    ln[5:].strip() for ln in r.text.splitlines() if ln.startswith("data:") and ln[5:].strip()
                ]
                out.append(json.loads(data[-1]))
            else:
                out.append(r.json())
        return out


def test_the_fast_route_answers_new_result_kinds_like_the_sdk_route() -> None:
    calls = [
        ("picture", {}),
        ("mixed", {}),
        ("refuse", {}),
        ("counted", {"n": 2}),
        ("counted", {"n": "two"}),
    ]
    requests = [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": n, "arguments": a}}
        for i, (n, a) in enumerate(calls, 1)
    ]
    requests.append({"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
    fast = _post_all(True, requests)
    slow = _post_all(False, requests)
    assert fast == slow
    assert fast[2]["error"] == {"code": -32602, "message": "no thanks", "data": {"why": "testing"}}


def test_notifications_reach_2025_sessions_from_any_thread() -> None:
    server = feature_server()
    server.add_resource("app://watched", lambda: "v1", name="watched")
    with server.start() as handle:
        got: list[str] = []
        arrived = threading.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, Exception):
                return
            got.append(message.method)
            if {"notifications/resources/updated", "notifications/tools/list_changed"} <= set(got):
                arrived.set()

        async def main() -> None:
            async with _client(handle.mcp_url(), message_handler=on_message) as c:
                await c.subscribe_resource("app://watched")
                # From a host thread, not the server's loop:
                t = threading.Thread(target=lambda: server.notify_resource_updated("app://watched"))
                t.start()
                t.join()

                def extra() -> str:
                    """Added while running."""
                    return "x"

                server.add_tool(extra)
                with anyio.fail_after(20):
                    while not arrived.is_set():
                        await anyio.sleep(0.02)
                assert "extra" in {t.name for t in (await c.list_tools()).tools}

        anyio.run(main)
        assert "notifications/resources/updated" in got


def test_a_2025_session_is_told_each_change_once() -> None:
    # initialize has no Mcp-Session-Id header yet: it was tracked under a key of its own, so every
    # list_changed went out twice, and the session's initialize request stayed in memory.
    server = feature_server()
    with server.start() as handle:
        got: list[str] = []

        async def on_message(message: Any) -> None:
            if not isinstance(message, Exception):
                got.append(message.method)

        async def main() -> None:
            async with _client(handle.mcp_url(), message_handler=on_message) as c:
                await c.list_tools()

                def extra() -> str:
                    """Added while running."""
                    return "x"

                server.add_tool(extra)
                with anyio.fail_after(20):
                    while "notifications/tools/list_changed" not in got:
                        await anyio.sleep(0.02)
                await anyio.sleep(0.5)  # a second copy follows the first at once

        anyio.run(main)
        assert got.count("notifications/tools/list_changed") == 1


def test_listen_streams_get_change_events_on_the_2026_protocol() -> None:
    server = feature_server()
    with server.start() as handle:

        async def main() -> list[Any]:
            events: list[Any] = []
            async with (
                Client(handle.mcp_url(), mode="auto") as c,
                c.listen(tools_list_changed=True, prompts_list_changed=True) as sub,
            ):

                def later() -> str:
                    """Added while listening."""
                    return "x"

                server.add_tool(later)
                server.remove_prompt("review")
                with anyio.fail_after(20):
                    async for event in sub:
                        events.append(event)
                        if len(events) == 2:
                            break
            return events

        events = anyio.run(main)
        assert sorted(type(e).__name__ for e in events) == ["PromptsListChanged", "ToolsListChanged"]


def test_bad_registrations_fail_where_they_are_made() -> None:
    server = create_skill_server("bad", McpHttpConfig(port=0))
    with pytest.raises(ValueError, match="scheme://"):
        server.add_resource("no-scheme", lambda: "x", name="x")
    with pytest.raises(TypeError, match="no parameter"):
        server.add_resource("app://x/{id}", lambda: "x", name="x")
    with pytest.raises(ValueError, match="input_schema"):
        server.add_tool(lambda: "x", name="t", input_schema={"type": "string"})
    server.add_resource("app://dup", lambda: "x", name="d")
    with pytest.raises(ValueError, match="already registered"):
        server.add_resource("app://dup", lambda: "y", name="d")


def test_input_required_types_build_valid_wire_requests() -> None:
    from mcp_embed import ElicitInput, InputRequired, RootsInput, SampleInput

    wire = InputRequired(
        {
            "a": ElicitInput("Name?", {"type": "object", "properties": {"n": {"type": "string"}}}),
            "b": SampleInput([Message("user", "hi")], 10, "sys"),
            "c": RootsInput(),
        },
        state="s",
    ).to_wire()
    assert wire["resultType"] == "input_required" and wire["requestState"] == "s"
    types.InputRequiredResult.model_validate(wire)
    with pytest.raises(ValueError):
        InputRequired()


def test_async_readers_context_and_errors() -> None:
    server = create_skill_server("more", McpHttpConfig(port=0))
    seen: dict[str, Any] = {}

    @server.resource("app://live/{item}")
    async def live(item: str, ctx: ToolContext) -> bytes:
        seen["caps"] = ctx.client_capabilities
        return item.encode()

    @server.resource("app://broken")
    def broken() -> str:
        raise OSError("disk gone")

    @server.prompt()
    async def greet(who: str) -> str:
        """Greets someone."""
        return f"Hello {who}"

    @server.completion()
    async def complete(ref: dict[str, Any], argument_name: str, value: str, context: Any) -> list[str]:
        seen["ref"], seen["context"] = ref, context
        return [f"{value}{i}" for i in range(150)]

    server.add_resource("app://lambda", lambda: "x")
    with server.start() as handle:

        async def main() -> None:
            async with _client(handle.mcp_url()) as c:
                names = {str(r.uri): r.name for r in (await c.list_resources()).resources}
                assert names["app://lambda"] == "app://lambda"  # not "<lambda>"
                blob = (await c.read_resource("app://live/abc")).contents[0]
                assert (blob.mime_type, blob.blob) == ("application/octet-stream", "YWJj")
                assert seen["caps"] is not None
                with pytest.raises(MCPError) as err:
                    await c.read_resource("app://broken")
                assert err.value.code == types.INTERNAL_ERROR and "disk gone" in err.value.message
                assert (await c.get_prompt("greet", {"who": "you"})).messages[0].content.text == "Hello you"
                with pytest.raises(MCPError) as err:
                    await c.get_prompt("nope")
                assert err.value.code == types.INVALID_PARAMS
                done = await c.complete(
                    types.PromptReference(type="ref/prompt", name="greet"),
                    {"name": "who", "value": "a"},
                    context_arguments={"other": "1"},
                )
                assert len(done.completion.values) == 100
                assert (done.completion.total, done.completion.has_more) == (150, True)
                assert seen["ref"] == {"type": "ref/prompt", "name": "greet"}
                assert seen["context"] == {"other": "1"}

        anyio.run(main)


def test_a_cancelled_call_releases_a_tool_blocked_in_elicit() -> None:
    server = create_skill_server("cancel", McpHttpConfig(port=0))
    released = threading.Event()
    asked = threading.Event()
    outcome: list[str] = []

    @server.tool()
    def ask(ctx: ToolContext) -> str:
        """Waits for an answer that never comes."""
        try:
            ctx.elicit_blocking("Name?", {"type": "object", "properties": {"n": {"type": "string"}}})
            outcome.append("answered")
        except Exception as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            released.set()
        return "unreachable"

    async def never(context: Any, params: Any) -> types.ElicitResult:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError

    with server.start() as handle:

        async def main() -> None:
            async with _client(handle.mcp_url(), elicitation_callback=never) as c:
                with anyio.move_on_after(30):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(c.call_tool, "ask", {})
                        while not asked.is_set():
                            await anyio.sleep(0.02)
                        tg.cancel_scope.cancel()  # the client gives up: notifications/cancelled

        anyio.run(main)
        assert released.wait(30), "the tool thread is still blocked in elicit_blocking"
    # The pending request fails with the call (McpError), or the wait notices ctx.cancelled.
    assert outcome in (["McpError"], ["ToolError"])
