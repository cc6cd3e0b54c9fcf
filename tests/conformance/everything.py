"""The conformance suite's "everything" server, written with mcp-embed's public API only.

    python tests/conformance/everything.py --port 3001 [--stateless]

Every tool, resource and prompt the official suite (``@modelcontextprotocol/conformance``)
calls, with the exact names, arguments and outputs of tests/conformance/REQUIREMENTS.md §3.
``build(stateless=...)`` returns the unstarted server, for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from mcp_embed import (
    Audio,
    ElicitInput,
    EmbeddedResource,
    Image,
    InputRequired,
    McpError,
    McpHttpConfig,
    Message,
    RootsInput,
    SampleInput,
    SkillServer,
    ToolContext,
    create_skill_server,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
INTERNAL_ERROR = -32603

JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CONFIRM_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
CONFIRM_DELETE_SCHEMA = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean"}},
    "required": ["confirm"],
}
NAME_CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "confirm": {"type": "boolean"}},
    "required": ["name"],
}


def _answer(ctx: ToolContext, key: str) -> dict[str, Any] | None:
    responses = ctx.input_responses or {}
    value = responses.get(key)
    return value if isinstance(value, dict) else None


# One real skill (SKILL.md, references/ with a subfolder): the SEP-2640 skills extension is declared
# and its scenarios run (REQUIREMENTS.md §3.9).
SKILLS = Path(__file__).resolve().parent / "skills"


def build(*, stateless: bool = False, port: int = 0, spawn_mode: str = "dedicated") -> SkillServer:
    server = create_skill_server(
        "conformance",
        McpHttpConfig(
            port=port,
            server_name="mcp-embed-conformance",
            stateless=stateless,
            retry_interval_ms=100,
            spawn_mode=spawn_mode,
        ),
        skill_paths=[SKILLS],
    )
    tool, resource, prompt = server.tool, server.resource, server.prompt

    # -- content --------------------------------------------------------------------------------

    @tool()
    def test_simple_text() -> str:
        """Returns simple text content."""
        return "This is a simple text response for testing."

    @tool()
    def test_image_content() -> Image:
        """Returns image content."""
        return Image(PNG, "image/png")

    @tool()
    def test_audio_content() -> Audio:
        """Returns audio content."""
        return Audio(WAV, "audio/wav")

    @tool()
    def test_embedded_resource() -> EmbeddedResource:
        """Returns an embedded resource."""
        return EmbeddedResource(
            "test://embedded-resource", text="This is an embedded resource content.", mime_type="text/plain"
        )

    @tool()
    def test_multiple_content_types() -> list[str | Image | EmbeddedResource]:
        """Returns text, an image and an embedded resource."""
        return [
            "Multiple content types test:",
            Image(PNG, "image/png"),
            EmbeddedResource(
                "test://mixed-content-resource",
                text=json.dumps({"test": "data", "value": 123}),
                mime_type="application/json",
            ),
        ]

    @tool()
    def test_error_handling() -> str:
        """Always fails, to test error results."""
        raise RuntimeError("This tool intentionally returns an error for testing")

    # -- notifications --------------------------------------------------------------------------

    @tool()
    def test_tool_with_logging(ctx: ToolContext) -> str:
        """Logs three messages while it runs."""
        ctx.log("info", "Tool execution started")
        time.sleep(0.05)
        ctx.log("info", "Tool processing data")
        time.sleep(0.05)
        ctx.log("info", "Tool execution completed")
        return "Tool with logging executed successfully"

    @tool()
    def test_tool_with_progress(ctx: ToolContext) -> str:
        """Reports progress 0, 50 and 100 of 100."""
        for step in (0, 50, 100):
            ctx.report_progress(step, 100, f"Completed step {step} of 100")
            if step < 100:
                time.sleep(0.05)
        return str(ctx.progress_token)

    @tool()
    def test_reconnection(ctx: ToolContext) -> str:
        """Closes its SSE stream mid-call; the client resumes with Last-Event-ID (SEP-1699)."""
        ctx.log("info", "Before disconnect")
        ctx.close_sse_stream()
        time.sleep(0.2)
        ctx.log("info", "After reconnect")
        return "Reconnection test completed"

    # -- asking the client (2025 back-channel) --------------------------------------------------

    @tool()
    async def test_sampling(prompt: str, ctx: ToolContext) -> str:
        """Asks the client's model to answer the prompt.

        Args:
            prompt: The prompt to send.
        """
        result = await ctx.sample(prompt, max_tokens=100)
        return f"LLM response: {result.text if result.text is not None else 'No response'}"

    @tool()
    def test_elicitation(message: str, ctx: ToolContext) -> str:
        """Asks the user for a username and email (blocking variant, from a worker thread).

        Args:
            message: The question to show.
        """
        schema = {
            "type": "object",
            "properties": {"username": {"type": "string"}, "email": {"type": "string"}},
            "required": ["username", "email"],
        }
        result = ctx.elicit_blocking(message, schema)
        return f"User response: action={result.action}, content={json.dumps(result.content or {})}"

    @tool()
    async def test_elicitation_sep1034_defaults(ctx: ToolContext) -> str:
        """Elicitation whose fields carry defaults of every primitive type (SEP-1034)."""
        schema = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            },
        }
        result = await ctx.elicit("Please provide user information", schema)
        return f"Elicitation result: action={result.action}, content={json.dumps(result.content or {})}"

    @tool()
    async def test_elicitation_sep1330_enums(ctx: ToolContext) -> str:
        """Elicitation with the five enum shapes of SEP-1330."""
        schema = {
            "type": "object",
            "properties": {
                "untitledSingle": {"type": "string", "enum": ["active", "inactive", "pending"]},
                "titledSingle": {
                    "type": "string",
                    "oneOf": [
                        {"const": "low", "title": "Low Priority"},
                        {"const": "medium", "title": "Medium Priority"},
                        {"const": "high", "title": "High Priority"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "enum": ["small", "medium", "large"],
                    "enumNames": ["Small Size", "Medium Size", "Large Size"],
                },
                "untitledMulti": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["read", "write", "execute"]},
                },
                "titledMulti": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"const": "feature", "title": "New Feature"},
                            {"const": "bug", "title": "Bug Fix"},
                            {"const": "docs", "title": "Documentation"},
                        ]
                    },
                },
            },
            "required": ["untitledSingle", "titledSingle", "legacyEnum", "untitledMulti", "titledMulti"],
        }
        result = await ctx.elicit("Please select values using different enum schema types", schema)
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"

    # -- schemas and headers --------------------------------------------------------------------

    @tool(name="json_schema_2020_12_tool", input_schema=JSON_SCHEMA_2020_12)
    def json_schema_2020_12_tool(**arguments: Any) -> str:
        """Publishes a JSON Schema 2020-12 input schema verbatim."""
        return f"json_schema_2020_12_tool: {json.dumps(arguments, sort_keys=True)}"

    @tool()
    def test_x_mcp_header(
        region: Annotated[
            str,
            Field(
                description="Mirrored into the Mcp-Param-Region header",
                json_schema_extra={"x-mcp-header": "Region"},
            ),
        ] = "<none>",
    ) -> str:
        """Echoes a parameter the client mirrors into an HTTP header (SEP-2243)."""
        return f"region={region}"

    # -- 2026-07-28 diagnostics (server-stateless) ----------------------------------------------

    @tool()
    def test_missing_capability(ctx: ToolContext) -> str:
        """Needs the client's sampling capability; fails with -32021 without it."""
        if not ctx.supports("sampling"):
            raise McpError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                "This tool requires the client 'sampling' capability",
                {"requiredCapabilities": {"sampling": {}}},
            )
        return "Client declared sampling capability; proceeding."

    @tool()
    def test_trigger_tool_change() -> str:
        """Adds and removes a tool; clients are told the tool list changed."""

        def test_dynamic_tool() -> str:
            """A tool that exists for a moment."""
            return "dynamic"

        server.add_tool(test_dynamic_tool)
        server.remove_tool("test_dynamic_tool")
        return "tool list changed"

    @tool()
    def test_trigger_prompt_change() -> str:
        """Adds and removes a prompt; clients are told the prompt list changed."""

        def test_dynamic_prompt() -> str:
            """A prompt that exists for a moment."""
            return "dynamic"

        server.add_prompt(test_dynamic_prompt)
        server.remove_prompt("test_dynamic_prompt")
        return "prompt list changed"

    @tool()
    def test_logging_tool(ctx: ToolContext) -> str:
        """Logs one line; at 2026-07-28 it reaches the client only if the request asked for logs."""
        ctx.log("info", "diagnostic log line")
        return "logged"

    @tool()
    def test_streaming_elicitation(ctx: ToolContext) -> str | InputRequired:
        """Needs a name; asks with InputRequired, never with a request on the response stream."""
        answer = _answer(ctx, "user_name")
        if answer is not None:
            return f"Hello, {(answer.get('content') or {}).get('name', 'stranger')}!"
        return InputRequired({"user_name": ElicitInput("What is your name?", NAME_SCHEMA)})

    # -- SEP-2322 InputRequired (2026-07-28) ----------------------------------------------------

    @tool()
    def test_input_required_result_elicitation(ctx: ToolContext) -> str | InputRequired:
        """InputRequired with one elicitation."""
        answer = _answer(ctx, "user_name")
        if answer is not None:
            return f"Hello, {(answer.get('content') or {}).get('name', 'stranger')}!"
        return InputRequired({"user_name": ElicitInput("What is your name?", NAME_SCHEMA)})

    @tool()
    def test_input_required_result_sampling(ctx: ToolContext) -> str | InputRequired:
        """InputRequired with one sampling request."""
        answer = _answer(ctx, "capital_question")
        if answer is not None:
            content = answer.get("content") or {}
            return f"Model said: {content.get('text', '?') if isinstance(content, dict) else '?'}"
        return InputRequired({"capital_question": SampleInput("What is the capital of France?", 100)})

    @tool()
    def test_input_required_result_list_roots(ctx: ToolContext) -> str | InputRequired:
        """InputRequired with one roots/list request."""
        answer = _answer(ctx, "client_roots")
        if answer is not None:
            roots = answer.get("roots") or []
            return f"Client exposed {len(roots)} root(s): " + ", ".join(str(r.get("uri")) for r in roots)
        return InputRequired({"client_roots": RootsInput()})

    @tool()
    def test_input_required_result_request_state(ctx: ToolContext) -> str | InputRequired:
        """InputRequired whose state must come back unchanged."""
        if _answer(ctx, "confirm") is not None and ctx.request_state == "request-state-nonce":
            return "state-ok: confirmation received"
        return InputRequired(
            {"confirm": ElicitInput("Please confirm", CONFIRM_SCHEMA)}, state="request-state-nonce"
        )

    @tool()
    def test_input_required_result_multiple_inputs(ctx: ToolContext) -> str | InputRequired:
        """InputRequired with an elicitation, a sampling and a roots request at once."""
        if {"user_name", "greeting", "client_roots"} <= set(ctx.input_responses or {}):
            return "All inputs received."
        return InputRequired(
            {
                "user_name": ElicitInput("What is your name?", NAME_SCHEMA),
                "greeting": SampleInput("Generate a greeting", 50),
                "client_roots": RootsInput(),
            },
            state="multiple-inputs",
        )

    @tool()
    def test_input_required_result_multi_round(ctx: ToolContext) -> str | InputRequired:
        """Two rounds of InputRequired with a state that changes each round."""
        state = json.loads(ctx.request_state) if ctx.request_state else {"round": 0}
        step1 = _answer(ctx, "step1")
        step2 = _answer(ctx, "step2")
        if state.get("round") == 1 and step1 is not None:
            color = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
            name = (step1.get("content") or {}).get("name")
            return InputRequired(
                {"step2": ElicitInput("Step 2: What is your favorite color?", color)},
                state=json.dumps({"round": 2, "name": name}),
            )
        if state.get("round") == 2 and step2 is not None:
            return f"{state.get('name')} likes {(step2.get('content') or {}).get('color')}."
        return InputRequired(
            {"step1": ElicitInput("Step 1: What is your name?", NAME_SCHEMA)}, state=json.dumps({"round": 1})
        )

    @tool()
    def test_input_required_result_tampered_state(ctx: ToolContext) -> str | InputRequired:
        """InputRequired whose sealed state a client cannot alter (rejected by the server)."""
        if ctx.request_state is None:
            return InputRequired({"confirm": ElicitInput("Please confirm", CONFIRM_SCHEMA)}, state="round-1")
        return f"state-ok: {ctx.request_state}"

    @tool()
    def test_input_required_result_capabilities(ctx: ToolContext) -> InputRequired:
        """Asks only for what the client declared it supports."""
        requests: dict[str, Any] = {}
        if ctx.client_capabilities is None or ctx.supports("sampling"):
            requests["sample"] = SampleInput("Say hello", 50)
        if ctx.client_capabilities is None or ctx.supports("elicitation"):
            requests["ask"] = ElicitInput("What is your name?", NAME_SCHEMA)
        return InputRequired(requests, state="capability-gated")

    # -- SEP-2663 tasks (io.modelcontextprotocol/tasks, 2026-07-28) -------------------------------

    @tool()
    def greet(name: str) -> str:
        """Greets by name; never runs as a task.

        Args:
            name: Who to greet.
        """
        return f"Hello, {name}!"

    @tool(task="optional")
    def slow_compute(ctx: ToolContext, seconds: float = 0, label: str = "") -> str:
        """Works for `seconds` seconds, as a task when the client can take one.

        Args:
            seconds: How long to work; 0 answers at once.
            label: Echoed in the result.
        """
        if seconds > 0:
            ctx.report_progress(0, seconds, f"{label or 'slow_compute'}: working")  # hands over the task
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not ctx.cancelled:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return f"{label or 'slow_compute'}: computed for {seconds:g} s"

    @tool(task="required")
    def failing_job(ctx: ToolContext) -> str:
        """Runs only as a task and ends with a tool error after about a second."""
        ctx.report_progress(0, 1, "failing_job: working")
        time.sleep(1.0)
        raise RuntimeError("failing_job always fails")

    @tool(task="optional")
    def protocol_error_job(ctx: ToolContext) -> str:
        """Fails with a JSON-RPC error, which fails its task."""
        ctx.report_progress(0, 1, "protocol_error_job: working")
        raise McpError(INTERNAL_ERROR, "protocol_error_job failed at the protocol level")

    @tool(task="optional")
    async def confirm_delete(filename: str, ctx: ToolContext) -> str:
        """Asks the user to confirm (inside the task), then reports what it did.

        Args:
            filename: The file to delete.
        """
        answer = await ctx.elicit(f"Delete {filename}?", CONFIRM_DELETE_SCHEMA)
        confirmed = answer.action == "accept" and bool((answer.content or {}).get("confirm"))
        return f"{'Deleted' if confirmed else 'Kept'} {filename}"

    @tool(task="optional")
    async def multi_input(ctx: ToolContext) -> str:
        """Asks two questions at once, so two input requests are pending together."""
        first, second = await asyncio.gather(
            ctx.elicit("First: your name?", NAME_CONFIRM_SCHEMA),
            ctx.elicit("Second: your name?", NAME_CONFIRM_SCHEMA),
        )
        return f"Got {(first.content or {}).get('name')} and {(second.content or {}).get('name')}"

    @tool(task="required")
    def test_tool_with_task(ctx: ToolContext) -> str | InputRequired:
        """Asks for a name on the request itself (SEP-2322), then answers as a task."""
        answer = _answer(ctx, "user_name")
        if answer is None:
            return InputRequired({"user_name": ElicitInput("What is your name?", NAME_SCHEMA)})
        return f"Hello, {(answer.get('content') or {}).get('name', 'stranger')}! (from a task)"

    # -- resources ------------------------------------------------------------------------------

    @resource("test://static-text", name="static-text", mime_type="text/plain")
    def static_text() -> str:
        """A static text resource."""
        return "This is the content of the static text resource."

    @resource("test://static-binary", name="static-binary", mime_type="image/png")
    def static_binary() -> bytes:
        """A static binary resource (a PNG image)."""
        return base64.b64decode(PNG)

    @resource("test://template/{id}/data", name="template-data", mime_type="application/json")
    def template_data(id: str) -> str:
        """A resource template with one parameter."""
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @resource("test://watched-resource", name="watched-resource", mime_type="text/plain")
    def watched() -> str:
        """A resource clients can subscribe to."""
        return "Watched resource content"

    # -- prompts --------------------------------------------------------------------------------

    @prompt()
    def test_simple_prompt() -> str:
        """A simple prompt without arguments."""
        return "This is a simple prompt for testing."

    @prompt()
    def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
        """A prompt with two required arguments.

        Args:
            arg1: First argument.
            arg2: Second argument.
        """
        return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"

    @prompt()
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[Any]:
        """A prompt that embeds a resource.

        Args:
            resourceUri: The URI to embed.
        """
        return [
            EmbeddedResource(
                resourceUri, text="Embedded resource content for testing.", mime_type="text/plain"
            ),
            "Please process the embedded resource above.",
        ]

    @prompt()
    def test_prompt_with_image() -> list[Any]:
        """A prompt with an image."""
        return [Image(PNG, "image/png"), Message("user", "Please analyze the image above.")]

    @prompt()
    def test_input_required_result_prompt(ctx: ToolContext) -> list[Any] | InputRequired:
        """A prompt that asks the client for context first (SEP-2322)."""
        answer = _answer(ctx, "user_context")
        if answer is not None:
            return [f"Use the following context: {(answer.get('content') or {}).get('context', '?')}"]
        schema = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
        return InputRequired({"user_context": ElicitInput("What context should the prompt use?", schema)})

    # -- completion -----------------------------------------------------------------------------

    @server.completion()
    def complete(
        ref: dict[str, Any], argument_name: str, value: str, context: dict[str, str] | None
    ) -> list[str]:
        """Suggests values for test_prompt_with_arguments' arguments."""
        if ref.get("name") == "test_prompt_with_arguments":
            options = {"arg1": ["paris", "park", "party"], "arg2": ["alpha", "beta"]}.get(argument_name, [])
            return [o for o in options if o.startswith(value)]
        return []

    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--stateless", action="store_true", help="no sessions (stateless Streamable HTTP)")
    args = parser.parse_args(argv)
    handle = build(stateless=args.stateless, port=args.port).start()
    print(f"ready: {handle.mcp_url()} ({'stateless' if args.stateless else 'stateful'})", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
