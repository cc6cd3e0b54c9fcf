"""OpenTelemetry on every path (issue 18): the spans mcp-embed emits for a request are the ones the
SDK's own server emits for it, parented to the client's trace context, on the fast path and the SDK
path, in dedicated and subprocess mode.

The test process installs the OpenTelemetry SDK with an in-memory exporter (and reader, for the
metrics). In subprocess mode the request spans are made in the child process, which configures the
SDK from ``OTEL_*`` (inherited) and exports over OTLP/HTTP to a receiver on 127.0.0.1 in this test;
the host's ``execute_tool`` span and the tool's own span stay in this process.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from otlp_helpers import Receiver, from_memory

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import ACCEPT
from mcp_embed import McpHttpConfig, create_skill_server

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TRACESTATE = "congo=t61rcWkgMzE"
VERSION = "2025-11-25"
TOOL_TRACER = "a-tool's-own-instrumentation"


# -- the OpenTelemetry SDK in this process, and an OTLP/HTTP receiver ------------------------------


class Telemetry(NamedTuple):
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture(scope="module")
def telemetry() -> Iterator[Telemetry]:
    """One tracer and meter provider per process (the API allows one): installed here, or the one
    an earlier test module installed, with this module's exporter and reader added."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    else:  # pragma: no cover - another module installed one: its readers are fixed at creation
        pytest.skip("a meter provider without this module's reader is installed")
    try:
        yield Telemetry(exporter, reader)
    finally:
        exporter.shutdown()  # stops collecting the spans of later test modules


# -- one conversation, sent to any server ---------------------------------------------------------


def converse(url: str, *, carrier: str) -> None:
    """initialize, tools/list, tools/call (ok and isError), ping; the client's trace context in
    ``params._meta`` or in the HTTP ``traceparent`` header."""

    def meta(params: dict[str, Any]) -> dict[str, Any]:
        context = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
        return {**params, "_meta": context} if carrier == "meta" else params

    extra = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE} if carrier == "header" else {}
    headers = {**ACCEPT, **extra}
    init = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    with httpx.Client(timeout=30) as client:
        r = client.post(
            url,
            headers=headers,
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": meta(init)},
        )
        r.raise_for_status()
        headers["mcp-protocol-version"] = VERSION
        if sid := r.headers.get("mcp-session-id"):
            headers["mcp-session-id"] = sid
        client.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        calls: list[tuple[str, dict[str, Any]]] = [
            ("tools/list", {}),
            ("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
            ("tools/call", {"name": "fail", "arguments": {"message": "no"}}),
            ("ping", {}),
        ]
        for n, (method, params) in enumerate(calls, start=2):
            body = {"jsonrpc": "2.0", "id": n, "method": method, "params": meta(params)}
            assert client.post(url, headers=headers, json=body).status_code == 200
        if sid:
            client.delete(url, headers=headers)


def server_spans(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The SERVER spans of one conversation by name (``notifications/initialized`` has no parent)."""
    return {s["name"]: s for s in spans if s["kind"] == "SERVER" and s["name"] != "notifications/initialized"}


EXPECTED = {"initialize", "tools/list", "tools/call echo", "tools/call fail", "ping"}


@contextlib.contextmanager
def sdk_server() -> Iterator[str]:
    """The SDK's own ``MCPServer`` with the same tools, over its streamable HTTP app."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    sdk = MCPServer("sdk")

    @sdk.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    @sdk.tool()
    def fail(message: str) -> str:
        """Fail."""
        raise ValueError(message)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(sdk.streamable_http_app(json_response=True), log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.02)
        assert server.started, "the SDK's server did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def embed_server(mode: str, fast: bool, **config: Any) -> Any:
    server = create_skill_server("tests", McpHttpConfig(port=0, spawn_mode=mode, **config))  # type: ignore[arg-type]
    server.fast_path = fast

    @server.tool()
    def echo(text: str) -> str:
        """Echo; calls an upstream service inside its own span."""
        with trace.get_tracer(TOOL_TRACER).start_as_current_span("GET upstream", kind=trace.SpanKind.CLIENT):
            return text

    @server.tool()
    def fail(message: str) -> str:
        """Fail."""
        raise ValueError(message)

    return server


def wait_for(check: Any, bound_s: float = 30.0) -> Any:
    deadline = time.monotonic() + bound_s
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


# -- the tests -------------------------------------------------------------------------------------


def _sdk_reference(telemetry: Telemetry) -> dict[str, dict[str, Any]]:
    telemetry.spans.clear()
    with sdk_server() as url:
        converse(url, carrier="meta")
    return server_spans([from_memory(s) for s in telemetry.spans.get_finished_spans()])


@pytest.fixture
def reference(telemetry: Telemetry) -> dict[str, dict[str, Any]]:
    """The SDK's own server's spans for the same conversation, taken in each test that compares."""
    spans = _sdk_reference(telemetry)
    assert set(spans) == EXPECTED
    assert {s["trace_id"] for s in spans.values()} == {TRACE_ID}  # the SDK reads params._meta
    return spans


@pytest.mark.parametrize("carrier", ["meta", "header"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "sdk-path"])
@pytest.mark.parametrize("mode", ["dedicated", "subprocess"])
def test_spans_match_the_sdk_and_join_the_clients_trace(
    telemetry: Telemetry,
    reference: dict[str, dict[str, Any]],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    fast: bool,
    carrier: str,
) -> None:
    if mode == "subprocess":  # the child configures the SDK from OTEL_* and exports to the receiver
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    telemetry.spans.clear()
    handle = embed_server(mode, fast).start()
    try:
        converse(handle.url + "/mcp", carrier=carrier)
    finally:
        handle.stop()
    here = [from_memory(s) for s in telemetry.spans.get_finished_spans()]
    if mode == "subprocess":
        got = wait_for(
            lambda: (
                server_spans(receiver.spans()) if set(server_spans(receiver.spans())) >= EXPECTED else None
            )
        )
    else:
        got = server_spans(here)
    assert got and set(got) == EXPECTED
    for name, ref in reference.items():
        span = got[name]
        assert span["trace_id"] == TRACE_ID, name  # the client's trace, from _meta or the header
        assert span["parent_id"] == PARENT_ID, name
        assert span["trace_state"] == TRACESTATE, name
        assert span["status"] == ref["status"], name
        attrs = dict(span["attributes"])
        assert attrs.pop("mcp.session.id"), name  # ours: the semantic conventions' session id
        assert attrs == ref["attributes"], name
    assert got["tools/call fail"]["attributes"]["error.type"] == "tool_error"
    # The tool's own span is a child of the request's span; in subprocess mode through the host's
    # execute_tool span, itself a child of the child process's tools/call span.
    (upstream,) = [s for s in here if s["name"] == "GET upstream"]
    assert upstream["trace_id"] == TRACE_ID
    if mode == "dedicated":
        assert upstream["parent_id"] == got["tools/call echo"]["span_id"]
    else:
        hosts = {s["name"]: s for s in here if s["name"].startswith("execute_tool")}
        assert set(hosts) == {"execute_tool echo", "execute_tool fail"}
        assert upstream["parent_id"] == hosts["execute_tool echo"]["span_id"]
        assert hosts["execute_tool echo"]["parent_id"] == got["tools/call echo"]["span_id"]
        assert hosts["execute_tool fail"]["parent_id"] == got["tools/call fail"]["span_id"]
        assert hosts["execute_tool fail"]["status"] == "ERROR"
        assert hosts["execute_tool echo"]["attributes"]["gen_ai.tool.name"] == "echo"


def test_meta_wins_over_the_header_and_no_context_starts_a_trace(telemetry: Telemetry) -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    telemetry.spans.clear()
    handle = embed_server("dedicated", True, stateless=True).start()
    try:
        with httpx.Client(timeout=30) as client:
            for n, (meta, header) in enumerate([(TRACEPARENT, other), (None, None)], start=1):
                params: dict[str, Any] = {"name": "echo", "arguments": {"text": "x"}}
                if meta:
                    params["_meta"] = {"traceparent": meta}
                headers = {**ACCEPT, **({"traceparent": header} if header else {})}
                body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}
                assert client.post(handle.url + "/mcp", headers=headers, json=body).status_code == 200
    finally:
        handle.stop()
    calls = [from_memory(s) for s in telemetry.spans.get_finished_spans() if s.name == "tools/call echo"]
    assert [c["attributes"]["jsonrpc.request.id"] for c in calls] == ["1", "2"]
    assert calls[0]["trace_id"] == TRACE_ID
    assert calls[1]["trace_id"] not in (TRACE_ID, "1" * 32) and calls[1]["parent_id"] is None
    assert "mcp.session.id" not in calls[0]["attributes"]  # stateless: no session


def test_a_main_thread_tool_runs_inside_the_request_span(telemetry: Telemetry) -> None:
    """``dispatcher="manual"``: the host's main thread (here, the test's) runs the tool from the
    queue; the tool's span is still a child of the request's."""
    telemetry.spans.clear()
    server = create_skill_server("tests", McpHttpConfig(port=0, dispatcher="manual", stateless=True))

    @server.tool(affinity="main")
    def on_main() -> str:
        """Runs on the host's main thread."""
        with trace.get_tracer(TOOL_TRACER).start_as_current_span("host work"):
            return threading.current_thread().name

    handle = server.start()
    answers: list[Any] = []
    try:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "on_main", "arguments": {}, "_meta": {"traceparent": TRACEPARENT}},
        }

        def post() -> None:
            answers.append(httpx.post(handle.url + "/mcp", headers=ACCEPT, json=body, timeout=30).json())

        client = threading.Thread(target=post)
        client.start()
        deadline = time.monotonic() + 30
        while client.is_alive() and time.monotonic() < deadline:
            handle.pump()
            time.sleep(0.005)
        client.join(5)
    finally:
        handle.stop()
    assert answers[0]["result"]["structuredContent"]["result"] == threading.main_thread().name
    spans = {s.name: from_memory(s) for s in telemetry.spans.get_finished_spans()}
    assert spans["host work"]["parent_id"] == spans["tools/call on_main"]["span_id"]
    assert spans["host work"]["trace_id"] == TRACE_ID


def test_operation_and_session_duration_metrics(telemetry: Telemetry) -> None:
    telemetry.metrics.get_metrics_data()  # drop what earlier tests recorded (cumulative is fine)
    for fast in (True, False):
        handle = embed_server("dedicated", fast).start()
        try:
            converse(handle.url + "/mcp", carrier="meta")
        finally:
            handle.stop()
    points: dict[str, list[Any]] = {}
    data = telemetry.metrics.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    ops = {
        (
            p.attributes["mcp.method.name"],
            p.attributes.get("gen_ai.tool.name"),
            p.attributes.get("error.type"),
        ): p
        for p in points["mcp.server.operation.duration"]
    }
    assert ops[("tools/call", "echo", None)].count >= 2  # one on each path
    assert ops[("tools/call", "fail", "tool_error")].count >= 2
    assert ops[("tools/list", None, None)].count >= 2
    assert ops[("initialize", None, None)].attributes["mcp.protocol.version"] == VERSION
    (session,) = [
        p for p in points["mcp.server.session.duration"] if p.attributes == {"mcp.protocol.version": VERSION}
    ]
    assert session.count >= 2 and session.sum > 0


def test_a_jsonrpc_error_is_recorded_alike_on_both_paths(telemetry: Telemetry) -> None:
    """A call outside ``allowed_tools`` is a JSON-RPC error (-32602): the fast path's span records
    it as the SDK's middleware does on the SDK path."""
    seen = {}
    for fast in (True, False):
        telemetry.spans.clear()
        handle = embed_server("dedicated", fast, stateless=True, allowed_tools=("echo",)).start()
        try:
            params = {"name": "fail", "arguments": {"message": "x"}, "_meta": {"traceparent": TRACEPARENT}}
            body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params}
            answer = httpx.post(handle.url + "/mcp", headers=ACCEPT, json=body, timeout=30)
            assert "Unknown tool" in answer.text
        finally:
            handle.stop()
        (span,) = [
            from_memory(s) for s in telemetry.spans.get_finished_spans() if s.name == "tools/call fail"
        ]
        (status,) = [s.status for s in telemetry.spans.get_finished_spans() if s.name == "tools/call fail"]
        seen[fast] = (span["attributes"], span["status"], status.description, span["trace_id"])
    assert seen[True] == seen[False]
    attributes, status, description, trace_id = seen[True]
    assert attributes["error.type"] == attributes["rpc.response.status_code"] == "-32602"
    assert (status, description, trace_id) == ("ERROR", "Unknown tool: fail", TRACE_ID)
