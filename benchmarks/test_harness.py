"""Checks of the benchmark harness itself: parsing, verdicts, and one bounded real exchange.

Nothing here asserts on timings. `nox -s bench` runs it first; by hand:
``python -m pytest benchmarks/test_harness.py -q -o pythonpath=benchmarks`` (the project's
importlib import mode finds ``harness`` only through that pythonpath).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from harness import load, mcp_client, procfs, report
from harness.servers import SPECS, launch

pytestmark = pytest.mark.skipif(not procfs.available(), reason="Linux /proc only")


def test_procfs_reads_this_process() -> None:
    pid = os.getpid()
    assert pid in procfs.process_tree(pid)
    assert procfs.cpu_seconds(pid) > 0
    assert procfs.rss_bytes(pid) > 0
    assert procfs.peak_rss_bytes(pid) >= procfs.rss_bytes(pid)
    assert procfs.system_busy_seconds() > 0


def _response(ctype: str, text: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": ctype}, text=text)


def test_parse_json_and_sse_replies() -> None:
    body = '{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}'
    assert (
        mcp_client._parse_body(_response("application/json", body), 7)["result"]["content"][0]["text"] == "hi"
    )
    sse = f"event: message\ndata: {body}\n\n"
    assert mcp_client._parse_body(_response("text/event-stream", sse), 7)["id"] == 7
    with pytest.raises(mcp_client.ProtocolError):
        mcp_client._parse_body(_response("application/json", body), 8)
    with pytest.raises(mcp_client.ProtocolError):
        mcp_client._parse_body(_response("text/html", "<html>"), 7)


def test_target_verdicts() -> None:
    assert report.Target("t", 1.6, 1.5, True, "x").verdict == "PASS"
    assert report.Target("t", 1.4, 1.5, True, "x").verdict == "MISS"
    assert report.Target("t", 0.5, 0.6, False, "x").verdict == "PASS"
    assert report.Target("t", None, 0.6, False, "x").verdict == "n/a"


def _fake_result(rps: float) -> dict[str, Any]:
    return {
        "status": "ok",
        "summary": {
            "rps": rps,
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "cpu_per_call_us": 1000.0,
            "other_load_cores_max": 0.0,
        },
        "rss_bytes": 70 * 2**20,
        "cold_start_s": {"median": 0.7},
    }


def test_render_handles_ok_failed_and_skipped() -> None:
    results = {
        "embed-stateless": _fake_result(2000.0),
        "embed-stateful": {"status": "skipped", "error": "not importable"},
        "sdk-hypercorn-stateless": _fake_result(1000.0),
        "raw-hypercorn": {"status": "failed", "error": "boom"},
    }
    targets = report.targets(results, {"mcp_embed": {"best_s": 0.01}}, {"best": {"start_nowait_s": 0.005}})
    verdicts = {t.label: t.verdict for t in targets}
    assert verdicts["throughput c=16 (embed-stateless vs sdk-hypercorn-stateless)"] == "PASS"
    assert verdicts["import mcp_embed (best)"] == "PASS"
    assert verdicts["throughput c=16 (embed-stateful vs sdk-hypercorn-stateful)"] == "n/a"
    text = report.render(results, {}, {}, targets, "test")
    assert "skipped" in text and "failed" in text


def test_raw_server_answers_a_bounded_httpx_load() -> None:
    spec = next(s for s in SPECS if s.name == "raw-hypercorn")
    with httpx.Client(timeout=30.0) as client:
        server = launch(spec, client)
        try:
            mcp_client.check_echo(client, server.url, None)
            result = load.run_httpx(server.url, 2, 10.0, [], max_requests=20)
        finally:
            server.stop()
    assert result.requests == 20
    assert result.bad_responses == 0
    assert not any(result.errors.values())


@pytest.mark.skipif(load.wrk_path() is None, reason="wrk is not installed")
def test_wrk_script_counts_good_answers() -> None:
    spec = next(s for s in SPECS if s.name == "raw-hypercorn")
    with httpx.Client(timeout=30.0) as client:
        server = launch(spec, client)
        try:
            result = load.run_wrk(server.url, 2, 1, ["session-a", "session-b"], threads=1)
        finally:
            server.stop()
    assert result.requests > 0
    assert result.bad_responses == 0
    assert result.errors["status"] == 0
