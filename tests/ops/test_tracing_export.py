"""Export by the standard ``OTEL_*`` environment variables (the ``otel`` extra), and nothing at all
without them. Each case runs a real ``mcp-embed`` server in a fresh Python process, since the
OpenTelemetry API takes one provider per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otlp_helpers import Receiver

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

# One tools/call with the client's trace context, then a clean stop (which flushes the exporters).
SCRIPT = """
import json, logging, sys, httpx
from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.ops import tracing

logging.getLogger("mcp_embed").addHandler(logging.StreamHandler())  # warnings to stderr

server = create_skill_server("traced", McpHttpConfig(port=0, stateless=True, server_name="traced"))

@server.tool()
def echo(text: str) -> str:
    "Echo."
    return text

handle = server.start()
try:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": {"traceparent": sys.argv[1]}}}
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    answer = httpx.post(handle.url + "/mcp", json=body, headers=headers, timeout=30).json()
finally:
    handle.stop()
tracing.shutdown()
print(json.dumps({"on": tracing.on(), "answer": answer,
                  "sdk_loaded": "opentelemetry.sdk.trace" in sys.modules}))
"""


def run_server(env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "traced.py"
    script.write_text(SCRIPT, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(
        [sys.executable, str(script), TRACEPARENT],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["stderr"] = err
    assert result["answer"]["result"]["structuredContent"] == {"result": "x"}
    return result


def test_otlp_http_export_reaches_a_receiver(receiver: Receiver, tmp_path: Path) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    result = run_server({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}, tmp_path)
    assert result["on"] is True
    traces = [ExportTraceServiceRequest.FromString(b) for p, b in receiver.posts if p == "/v1/traces"]
    spans = [
        (rs, s) for req in traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    (resource, span), *_ = [(rs, s) for rs, s in spans if s.name == "tools/call echo"]
    assert span.trace_id.hex() == TRACE_ID
    assert {kv.key: kv.value.string_value for kv in span.attributes}["gen_ai.tool.name"] == "echo"
    service = {kv.key: kv.value.string_value for kv in resource.resource.attributes}["service.name"]
    assert service == "traced"  # the server_name, as OTEL_SERVICE_NAME is not set
    sent = [ExportMetricsServiceRequest.FromString(b) for p, b in receiver.posts if p == "/v1/metrics"]
    names = {
        m.name for req in sent for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert "mcp.server.operation.duration" in names


def test_otel_service_name_and_a_traces_only_exporter(receiver: Receiver, tmp_path: Path) -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url + "/v1/traces",
        "OTEL_SERVICE_NAME": "from-env",
    }
    run_server(env, tmp_path)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    paths = {p for p, _ in receiver.posts}
    assert paths == {"/v1/traces"}
    (req, *_) = [ExportTraceServiceRequest.FromString(b) for p, b in receiver.posts]
    attrs = {kv.key: kv.value.string_value for kv in req.resource_spans[0].resource.attributes}
    assert attrs["service.name"] == "from-env"


def test_nothing_configured_means_nothing_observed(receiver: Receiver, tmp_path: Path) -> None:
    """No provider, no OTEL_* asking for one: the hooks stay off and the SDK is never imported."""
    result = run_server({}, tmp_path)
    assert result["on"] is False
    assert result["sdk_loaded"] is False
    assert receiver.posts == []


def test_otel_sdk_disabled_wins(receiver: Receiver, tmp_path: Path) -> None:
    result = run_server({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SDK_DISABLED": "true"}, tmp_path)
    assert result["on"] is False and receiver.posts == []


def test_an_exporter_we_lack_is_named_and_nothing_breaks(receiver: Receiver, tmp_path: Path) -> None:
    env = {"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_METRICS_EXPORTER": "none"}
    result = run_server(env, tmp_path)
    assert result["on"] is False  # the call above was still answered (run_server checks)
    assert "OTEL_TRACES_EXPORTER='zipkin' is not supported here (use otlp or console)" in result["stderr"]
