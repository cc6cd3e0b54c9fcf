"""The conformance fixture (tests/conformance/everything.py) really does what each scenario expects.

Several conformance checks only look at the shape of a reply, so a missing tool can pass them
("Unknown tool" is text, and an error). These tests call every fixture tool, resource and prompt
through the SDK's own client and assert the exact output, on both protocol eras.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from pydantic import ConfigDict

from conftest import sdk_client
from mcp_embed import ServerHandle

HERE = Path(__file__).parent / "conformance"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


everything = _load("everything")
run = _load("run")


@pytest.fixture(scope="module", params=["dedicated", "subprocess"])
def stateful(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    handle = everything.build(spawn_mode=request.param).start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module", params=["dedicated", "subprocess"])
def stateless(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    handle = everything.build(stateless=True, spawn_mode=request.param).start()
    try:
        yield handle
    finally:
        handle.stop()


async def _sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    text = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"echo {text}"), model="test"
    )


async def _elicitation(context: Any, params: Any) -> types.ElicitResult:
    props = params.requested_schema.get("properties", {})
    content: dict[str, Any] = {}
    for key, prop in props.items():
        if "default" in prop:
            content[key] = prop["default"]
        elif prop.get("type") == "boolean":
            content[key] = True
        elif prop.get("type") == "array":
            content[key] = []
        else:
            content[key] = {"username": "testuser", "email": "test@example.com"}.get(key, f"{key}-value")
    return types.ElicitResult(action="accept", content=content)


async def _roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])


def _client(url: str, mode: str = "legacy", **kw: Any) -> Any:
    from mcp.client import Client

    return Client(
        url,
        mode=mode,  # type: ignore[arg-type]
        sampling_callback=_sampling,
        elicitation_callback=_elicitation,
        list_roots_callback=_roots,
        **kw,
    )


def test_every_tool_a_scenario_needs_is_listed(stateful: ServerHandle) -> None:
    needed = {t for tools in run.REQUIRED_TOOLS.values() for t in tools}
    needed |= {t for tools in run.CHECK_TOOLS.values() for t in tools}

    async def main() -> set[str]:
        async with sdk_client(stateful.mcp_url()) as c:
            tools = (await c.list_tools()).tools
            assert all(t.description for t in tools), "tools-list fails a tool without a description"
            return {t.name for t in tools}

    listed = anyio.run(main)
    assert needed <= listed, sorted(needed - listed)


def test_content_tools_return_exactly_what_their_scenarios_expect(stateful: ServerHandle) -> None:
    async def main() -> None:
        async with sdk_client(stateful.mcp_url()) as c:
            r = await c.call_tool("test_simple_text")
            assert not r.is_error
            assert [b.model_dump(exclude_none=True) for b in r.content] == [
                {"type": "text", "text": "This is a simple text response for testing."}
            ]
            r = await c.call_tool("test_image_content", {})
            assert (r.content[0].type, r.content[0].mime_type) == ("image", "image/png")
            assert r.content[0].data == everything.PNG
            base64.b64decode(r.content[0].data, validate=True)
            r = await c.call_tool("test_audio_content", {})
            assert (r.content[0].type, r.content[0].mime_type, r.content[0].data) == (
                "audio",
                "audio/wav",
                everything.WAV,
            )
            r = await c.call_tool("test_embedded_resource", {})
            res = r.content[0].resource
            assert (r.content[0].type, res.uri, res.mime_type, res.text) == (
                "resource",
                "test://embedded-resource",
                "text/plain",
                "This is an embedded resource content.",
            )
            r = await c.call_tool("test_multiple_content_types", {})
            assert [b.type for b in r.content] == ["text", "image", "resource"]
            assert json.loads(r.content[2].resource.text) == {"test": "data", "value": 123}
            assert r.structured_content is None
            r = await c.call_tool("test_error_handling", {})
            assert r.is_error
            assert "This tool intentionally returns an error for testing" in r.content[0].text

    anyio.run(main)


def test_progress_and_logging_reach_the_client(stateful: ServerHandle) -> None:
    async def main() -> None:
        logs: list[Any] = []
        progress: list[tuple[float, float | None]] = []

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            logs.append(params.data)

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append((p, total))

        async with _client(stateful.mcp_url(), logging_callback=on_log) as c:
            await c.set_logging_level("debug")
            r = await c.call_tool("test_tool_with_logging", {})
            assert r.content[0].text == "Tool with logging executed successfully"
            assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]
            r = await c.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            assert progress == [(0, 100), (50, 100), (100, 100)]
            # logging/setLevel filters: below "error" nothing arrives.
            logs.clear()
            await c.set_logging_level("error")
            await c.call_tool("test_tool_with_logging", {})
            assert logs == []

    anyio.run(main)


def test_sampling_and_elicitation_over_the_back_channel(stateful: ServerHandle) -> None:
    _back_channel(stateful)


def test_sampling_and_elicitation_over_the_stateless_back_channel(stateless: ServerHandle) -> None:
    """The client's answer, posted separately, reaches the tool (backchannel.py)."""
    _back_channel(stateless)


def _back_channel(handle: ServerHandle) -> None:
    async def main() -> None:
        async with _client(handle.mcp_url()) as c:
            r = await c.call_tool("test_sampling", {"prompt": "hi"})
            assert r.content[0].text == "LLM response: echo hi"
            r = await c.call_tool("test_elicitation", {"message": "who?"})
            assert r.content[0].text == (
                'User response: action=accept, content={"username": "testuser", "email": "test@example.com"}'
            )
            r = await c.call_tool("test_elicitation_sep1034_defaults", {})
            got = json.loads(r.content[0].text.split("content=", 1)[1])
            assert got == {"name": "John Doe", "age": 30, "score": 95.5, "status": "active", "verified": True}
            r = await c.call_tool("test_elicitation_sep1330_enums", {})
            assert "action=accept" in r.content[0].text

    anyio.run(main)


def test_json_schema_2020_12_tool_is_verbatim_and_validated(stateful: ServerHandle) -> None:
    async def main() -> None:
        async with sdk_client(stateful.mcp_url()) as c:
            tool = next(t for t in (await c.list_tools()).tools if t.name == "json_schema_2020_12_tool")
            assert tool.input_schema == everything.JSON_SCHEMA_2020_12
            ok = await c.call_tool("json_schema_2020_12_tool", {"contactMethod": "email", "email": "a@b"})
            assert not ok.is_error
            bad = await c.call_tool("json_schema_2020_12_tool", {"contactMethod": "phone", "nope": 1})
            assert bad.is_error and "Invalid arguments" in bad.content[0].text

    anyio.run(main)


def test_resources_prompts_and_completion(stateful: ServerHandle) -> None:
    async def main() -> None:
        async with sdk_client(stateful.mcp_url()) as c:
            uris = {str(r.uri) for r in (await c.list_resources()).resources}
            assert {"test://static-text", "test://static-binary", "test://watched-resource"} <= uris
            templates = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
            assert templates == ["test://template/{id}/data"]
            text = (await c.read_resource("test://static-text")).contents[0]
            assert (text.mime_type, text.text) == (
                "text/plain",
                "This is the content of the static text resource.",
            )
            blob = (await c.read_resource("test://static-binary")).contents[0]
            assert (blob.mime_type, blob.blob) == ("image/png", everything.PNG)
            data = (await c.read_resource("test://template/123/data")).contents[0]
            assert json.loads(data.text) == {"id": "123", "templateTest": True, "data": "Data for ID: 123"}
            with pytest.raises(MCPError) as err:
                await c.read_resource("test://nonexistent")
            assert err.value.code == types.INVALID_PARAMS and err.value.data == {"uri": "test://nonexistent"}
            await c.subscribe_resource("test://watched-resource")
            await c.unsubscribe_resource("test://watched-resource")

            names = {p.name: p for p in (await c.list_prompts()).prompts}
            assert all(p.description for p in names.values())
            assert [(a.name, a.required) for a in names["test_prompt_with_arguments"].arguments or []] == [
                ("arg1", True),
                ("arg2", True),
            ]
            simple = await c.get_prompt("test_simple_prompt")
            assert simple.messages[0].role == "user"
            assert simple.messages[0].content.text == "This is a simple prompt for testing."
            args = await c.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
            assert args.messages[0].content.text == "Prompt with arguments: arg1='a', arg2='b'"
            emb = await c.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://x"})
            assert [m.content.type for m in emb.messages] == ["resource", "text"]
            assert str(emb.messages[0].content.resource.uri) == "test://x"
            img = await c.get_prompt("test_prompt_with_image")
            assert [m.content.type for m in img.messages] == ["image", "text"]
            with pytest.raises(MCPError):
                await c.get_prompt("test_prompt_with_arguments", {"arg1": "a"})

            done = await c.complete(
                types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
                {"name": "arg1", "value": "par"},
            )
            assert done.completion.values == ["paris", "park", "party"]

    anyio.run(main)


def test_input_required_round_trips_on_the_2026_protocol(stateful: ServerHandle) -> None:
    async def main() -> None:
        async with _client(stateful.mcp_url(), mode="auto") as c:
            r = await c.call_tool("test_input_required_result_elicitation", {})
            assert r.content[0].text == "Hello, name-value!"
            r = await c.call_tool("test_input_required_result_sampling", {})
            assert r.content[0].text == "Model said: echo What is the capital of France?"
            r = await c.call_tool("test_input_required_result_list_roots", {})
            assert r.content[0].text == "Client exposed 1 root(s): file:///work"
            r = await c.call_tool("test_input_required_result_request_state", {})
            assert r.content[0].text == "state-ok: confirmation received"
            r = await c.call_tool("test_input_required_result_multiple_inputs", {})
            assert r.content[0].text == "All inputs received."
            r = await c.call_tool("test_input_required_result_multi_round", {})
            assert r.content[0].text == "name-value likes color-value."
            r = await c.call_tool("test_streaming_elicitation", {})
            assert r.content[0].text == "Hello, name-value!"
            p = await c.get_prompt("test_input_required_result_prompt")
            assert p.messages[0].content.text == "Use the following context: context-value"
            # The other features on the 2026 wire too (results need resultType there).
            done = await c.complete(
                types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
                {"name": "arg1", "value": "par"},
            )
            assert done.completion.values == ["paris", "park", "party"]
            assert "test://static-text" in {str(r.uri) for r in (await c.list_resources()).resources}
            assert len((await c.list_resource_templates()).resource_templates) == 1
            text = (await c.read_resource("test://static-text")).contents[0]
            assert text.text == "This is the content of the static text resource."
            assert "test_simple_prompt" in {p.name for p in (await c.list_prompts()).prompts}
            simple = await c.get_prompt("test_simple_prompt")
            assert simple.messages[0].content.text == "This is a simple prompt for testing."
            # Without the sampling capability the diagnostic tool answers -32021.
        async with sdk_client(stateful.mcp_url(), mode="auto") as bare:
            with pytest.raises(MCPError) as err:
                await bare.call_tool("test_missing_capability", {})
            assert err.value.code == everything.MISSING_REQUIRED_CLIENT_CAPABILITY
            assert err.value.data == {"requiredCapabilities": {"sampling": {}}}

    anyio.run(main)


def test_input_required_on_a_2025_session_is_a_clear_tool_error(stateful: ServerHandle) -> None:
    async def main() -> None:
        async with _client(stateful.mcp_url()) as c:
            r = await c.call_tool("test_input_required_result_elicitation", {})
            assert r.is_error and "needs protocol 2026-07-28" in r.content[0].text

    anyio.run(main)


class _ListSkills(types.Request[types.PaginatedRequestParams, Literal["skills/list"]]):
    method: Literal["skills/list"] = "skills/list"


class _SkillsPage(types.Result):
    model_config = ConfigDict(extra="allow")
    skills: list[dict[str, Any]]


def test_the_fixture_serves_a_skill_for_the_sep_2640_scenarios(stateful: ServerHandle) -> None:
    # The sep-2640-* scenarios SKIP without the extension, and the directory checks need a subfolder.
    async def main() -> None:
        async with sdk_client(stateful.mcp_url(), mode="auto") as c:
            assert (c.server_capabilities.extensions or {})["io.modelcontextprotocol/skills"] == {
                "directoryRead": True
            }
            page = await c.session.send_request(
                _ListSkills(params=types.PaginatedRequestParams()), _SkillsPage
            )
            (entry,) = page.skills
            assert entry["uri"] == "skill://pdf-processing/SKILL.md"
            assert entry["frontmatter"]["name"] == "pdf-processing"
            assert [r["uri"] for r in entry["resources"]] == [
                "skill://pdf-processing/SKILL.md",
                "skill://pdf-processing/references/FORMS.md",
                "skill://pdf-processing/references/examples/invoice.md",
            ]

    anyio.run(main)
