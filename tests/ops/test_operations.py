"""Operations: the audit log under load, secret hygiene, /metrics, the allow-list, the rate limit,
and a host's own logging left alone."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import stat
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import ACCEPT, demo_server, read_audit, sdk_client
from mcp_embed.ops.audit import args_sha256


def rpc(id_: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


# -- the audit log under load ----------------------------------------------------------------------


def test_audit_under_load_with_rotation_and_hard_stop(tmp_path: Path) -> None:
    n_calls, n_clients, per_client_concurrency = 2000, 8, 16
    server = demo_server(log_dir=str(tmp_path))
    handle = server.start()
    audit = server.operations.audit
    assert audit is not None
    stats = {"done": 0, "rotated": False}

    async def main() -> None:
        async def client_run(k: int) -> None:
            # Half the clients speak the legacy handshake (direct route for plain calls), half the
            # 2026 per-request era (the SDK route): both reach ToolCaller.call.
            mode = "legacy" if k % 2 == 0 else "auto"
            limiter = anyio.CapacityLimiter(per_client_concurrency)
            async with sdk_client(handle.mcp_url(), mode=mode) as client:

                async def one(i: int) -> None:
                    async with limiter:
                        result = await client.call_tool("echo", {"text": f"unique-{i}"})
                    assert result.content[0].text == f"unique-{i}"
                    stats["done"] += 1
                    if stats["done"] == n_calls // 2 and not stats["rotated"]:
                        stats["rotated"] = True
                        # Rotate while the other half is still in flight.
                        assert await anyio.to_thread.run_sync(audit.rotate)

                async with anyio.create_task_group() as tg:
                    for i in range(k, n_calls, n_clients):
                        tg.start_soon(one, i)

        async with anyio.create_task_group() as tg:
            for k in range(n_clients):
                tg.start_soon(client_run, k)

    anyio.run(main)
    handle.stop()  # at once: nothing is flushed by hand

    assert stats["done"] == n_calls and stats["rotated"]
    assert audit.rotations >= 1 and (tmp_path / "audit.jsonl.1").exists()
    records = read_audit(tmp_path)
    calls = [r for r in records if r["event"] == "tool_call"]
    assert len(calls) == n_calls
    expected = {args_sha256({"text": f"unique-{i}"}) for i in range(n_calls)}
    hashes = [r["args_sha256"] for r in calls]
    assert len(set(hashes)) == n_calls  # none duplicated
    assert set(hashes) == expected  # none lost
    assert all(r["status"] == "ok" and r["tool"] == "echo" for r in calls)
    assert all(r["client_name"] == "mcp" and r["remote_addr"] == "127.0.0.1" for r in calls)
    assert all("unique-" not in json.dumps(r) for r in calls)  # raw arguments are not written
    opened = [r for r in records if r["event"] == "session_open"]
    closed = [r for r in records if r["event"] == "session_close"]
    assert len(opened) == n_clients // 2  # the legacy-handshake clients open sessions
    assert {r["session_id"] for r in closed} == {r["session_id"] for r in opened}


def test_audit_record_schema_statuses_and_file_mode(tmp_path: Path) -> None:
    server = demo_server(log_dir=str(tmp_path), allowed_tools=("echo", "fail", "slow"))

    @server.tool(timeout=0.2)
    def slow(seconds: float) -> str:
        """Sleep."""
        time.sleep(seconds)
        return "done"

    with server.start() as handle:

        async def main() -> None:
            from mcp.shared.exceptions import MCPError

            async with sdk_client(handle.mcp_url()) as client:
                assert not (await client.call_tool("echo", {"text": "a"})).is_error
                assert (await client.call_tool("fail", {"message": "boom"})).is_error
                assert (await client.call_tool("slow", {"seconds": 3})).is_error
                with pytest.raises(MCPError) as denied:
                    await client.call_tool("add", {"a": 1, "b": 2})
                assert denied.value.code == -32602 and denied.value.message == "Unknown tool: add"
                with pytest.raises(MCPError):
                    await client.call_tool("nope", {})

        anyio.run(main)

    records = read_audit(tmp_path)
    by_tool = {r["tool"]: r for r in records if "tool" in r}
    assert by_tool["echo"]["status"] == "ok" and by_tool["echo"]["error"] is None
    assert by_tool["fail"]["status"] == "error"
    # The message quotes the argument "boom": without audit_arguments, no argument value is recorded.
    assert by_tool["fail"]["error"] == "Tool 'fail' failed: ValueError: [REDACTED]"
    assert by_tool["slow"]["status"] == "timeout"
    assert by_tool["add"]["event"] == "tool_denied" and by_tool["add"]["status"] == "denied"
    # Outside the allow-list, a name is refused whether or not such a tool exists.
    assert by_tool["nope"]["event"] == "tool_denied"
    for r in records:
        when = dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
        assert r["time"].endswith("Z") and when.utcoffset() == dt.timedelta(0)
        assert r["event"] in {"tool_call", "tool_denied", "session_open", "session_close"}
        assert r["status"] in {"ok", "error", "denied", "timeout", "cancelled"}
    call = by_tool["echo"]
    assert set(call) == {
        "time", "event", "request_id", "session_id", "principal", "client_name", "client_version",
        "remote_addr", "tool", "args_sha256", "status", "duration_ms", "error",
    }  # fmt: skip
    assert call["session_id"] and call["request_id"] is not None and call["duration_ms"] >= 0
    assert call["args_sha256"] == args_sha256({"text": "a"})
    if sys.platform != "win32":
        for f in tmp_path.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_a_call_cut_short_by_stop_is_audited_cancelled(tmp_path: Path) -> None:
    server = demo_server(log_dir=str(tmp_path))

    @server.tool()
    async def wait_forever() -> str:
        """Never returns."""
        await anyio.sleep_forever()
        return "never"

    handle = server.start()
    with httpx.Client(timeout=10) as client:
        r = client.post(handle.mcp_url(), json=rpc(0, "initialize", _init_params()), headers=ACCEPT)
        headers = {**ACCEPT, "mcp-session-id": r.headers["mcp-session-id"]}
        call = rpc(1, "tools/call", {"name": "wait_forever"})

        def post() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server goes away mid-call
                client.post(handle.mcp_url(), json=call, headers=headers)

        caller = threading.Thread(target=post)
        caller.start()
        for _ in range(500):  # bounded: until the call is running
            if server.operations.in_flight:
                break
            time.sleep(0.01)
        assert server.operations.in_flight == 1
        handle.stop()
        caller.join(10)
    statuses = [r["status"] for r in read_audit(tmp_path) if r.get("tool") == "wait_forever"]
    assert statuses == ["cancelled"]


def test_sessions_open_and_close_on_every_transport(tmp_path: Path) -> None:
    server = demo_server(log_dir=str(tmp_path))
    with server.start() as handle:

        async def main() -> None:
            async with sdk_client(handle.sse_url(), transport="sse") as client:
                await client.call_tool("echo", {"text": "over sse"})
            async with sdk_client(handle.mcp_url()) as client:
                await client.call_tool("echo", {"text": "over streamable http"})

        anyio.run(main)
    records = read_audit(tmp_path)
    opened = [r["session_id"] for r in records if r["event"] == "session_open"]
    closed = [r["session_id"] for r in records if r["event"] == "session_close"]
    assert len(opened) == 2 and all(opened) and sorted(opened) == sorted(closed)
    ends = [r for r in records if r["event"] == "session_close"]
    assert all(r["remote_addr"] == "127.0.0.1" and r["client_name"] == "mcp" for r in ends)
    calls = [r for r in records if r["event"] == "tool_call"]
    assert {r["session_id"] for r in calls} == set(opened)
    assert all(r["client_name"] == "mcp" for r in calls)


def _init_params() -> dict[str, Any]:
    return {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "9"},
    }


# -- secrets ---------------------------------------------------------------------------------------


def test_secrets_never_reach_the_log_or_audit_files(tmp_path: Path) -> None:
    secrets = {
        "password": "pw-Zq81-hunter2",
        "api_key": "sk-live-Kx9Pq27LmN",
        "bearer": "tok-Bearer-7f6e5d4c3b2a",
        "nested": "nested-secret-Vv55",
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA",
    }
    server = demo_server(log_dir=str(tmp_path), audit_arguments=True, log_level="DEBUG", log_format="json")
    tool_log = logging.getLogger("mcp_embed.tests.login")

    @server.tool()
    def login(user: str, password: str, api_key: str, options: dict[str, Any]) -> str:
        """Log in."""
        tool_log.warning("login for %s with api_key=%s password: %s", user, api_key, password)
        tool_log.info("Authorization: Bearer %s", secrets["bearer"])
        tool_log.info("token %s", secrets["jwt"])
        raise ValueError(f"rejected password={password} token={secrets['bearer']}")

    with server.start() as handle, httpx.Client(timeout=10) as client:
        headers = {
            **ACCEPT,
            "Authorization": f"Bearer {secrets['bearer']}",
            "X-API-Key": secrets["api_key"],
        }
        r = client.post(handle.mcp_url(), json=rpc(0, "initialize", _init_params()), headers=headers)
        headers["mcp-session-id"] = r.headers["mcp-session-id"]
        args = {
            "user": "alice",
            "password": secrets["password"],
            "api_key": secrets["api_key"],
            "options": {"client_secret": secrets["nested"], "note": f"token={secrets['jwt']}"},
        }
        r = client.post(
            handle.mcp_url(), json=rpc(1, "tools/call", {"name": "login", "arguments": args}), headers=headers
        )
        assert r.status_code == 200 and r.json()["result"]["isError"]
    files = [f for f in tmp_path.iterdir() if f.is_file()]
    assert {f.name for f in files} >= {"audit.jsonl", "mcp-embed.log"}
    text = "\n".join(f.read_text("utf-8") for f in files)
    assert "login for alice" in text  # the log did get written...
    for name, value in secrets.items():
        assert value not in text, f"{name} leaked into a log file"  # ...without a secret in it
    call = next(r for r in read_audit(tmp_path) if r.get("tool") == "login")
    assert call["arguments"]["password"] == "[REDACTED]"
    assert call["arguments"]["options"]["client_secret"] == "[REDACTED]"
    assert call["arguments"]["user"] == "alice"
    assert call["args_sha256"] == args_sha256(args)


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_parse_and_agree_with_the_audit_log(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server = demo_server(
        log_dir=str(tmp_path),
        enable_metrics=True,
        metrics_basic_auth="prom:s3cret-metrics-pw",
        allowed_tools=("echo", "add", "fail"),
    )
    with server.start() as handle:

        async def main() -> None:
            from mcp.shared.exceptions import MCPError

            for mode in ("legacy", "auto"):
                async with sdk_client(handle.mcp_url(), mode=mode) as client:
                    for i in range(3):
                        await client.call_tool("echo", {"text": str(i)})
                    await client.call_tool("add", {"a": 1, "b": 2})
                    await client.call_tool("fail", {"message": "x"})
                    await client.call_tool("add", {"a": "not a number", "b": 2})
                    with pytest.raises(MCPError):
                        await client.call_tool("steps", {"n": 1})  # hidden by the allow-list

        anyio.run(main)
        url = handle.url + "/metrics"
        assert httpx.get(url).status_code == 401
        wrong = httpx.get(url, auth=("prom", "wrong-password-xyz"))
        assert wrong.status_code == 401 and "Basic" in wrong.headers["www-authenticate"]
        r = httpx.get(url, auth=("prom", "s3cret-metrics-pw"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(r.text)}

    calls = {
        (s.labels["tool"], s.labels["status"]): s.value
        for s in families["mcp_embed_tool_calls"].samples
        if s.name == "mcp_embed_tool_calls_total"
    }
    audited = Counter(
        (r["tool"], r["status"]) for r in read_audit(tmp_path) if r["event"] in ("tool_call", "tool_denied")
    )
    assert calls == {k: float(v) for k, v in audited.items()}
    assert calls[("echo", "ok")] == 6 and calls[("add", "error")] == 2 and calls[("steps", "denied")] == 2
    counts = {
        s.labels["tool"]: s.value
        for s in families["mcp_embed_tool_call_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts["echo"] == 6
    auth = [s for s in families["mcp_embed_auth_failures"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in auth) == 2
    assert sum(1 for r in read_audit(tmp_path) if r["event"] == "auth_denied") == 2
    build = families["mcp_embed_build_info"].samples[0]
    assert build.value == 1 and build.labels["version"]
    for gauge in (
        "mcp_embed_sessions_open",
        "mcp_embed_http_requests_in_flight",
        "mcp_embed_tool_calls_in_flight",
        "mcp_embed_main_thread_queue_depth",
        "mcp_embed_main_thread_queue_wait_seconds",
    ):
        assert families[gauge].type == "gauge"
    assert families["mcp_embed_tool_calls_in_flight"].samples[0].value == 0
    text = "\n".join(f.read_text("utf-8") for f in tmp_path.iterdir())
    assert "s3cret-metrics-pw" not in text and "wrong-password-xyz" not in text


def test_metrics_are_off_by_default_and_basic_auth_is_constant_time_checked() -> None:
    from mcp_embed.ops.metrics import check_basic_auth

    good = "Basic " + base64.b64encode(b"u:p w").decode()
    assert check_basic_auth(good, "u:p w")
    assert not check_basic_auth(good, "u:p x")
    assert not check_basic_auth("Basic !!!", "u:p")
    assert not check_basic_auth("Bearer abc", "u:p")
    assert not check_basic_auth(None, "u:p")
    server = demo_server(enable_file_logging=False)
    with server.start() as handle:
        assert httpx.get(handle.url + "/metrics").status_code == 404


# -- the allow-list --------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["direct-route", "sdk-route"])
def test_allow_list_hides_and_denies_with_globs(tmp_path: Path, fast: bool) -> None:
    server = demo_server(log_dir=str(tmp_path), allowed_tools=("*echo", "a?d"))
    server.fast_path = fast
    with server.start() as handle, httpx.Client(timeout=10) as client:
        r = client.post(handle.mcp_url(), json=rpc(0, "initialize", _init_params()), headers=ACCEPT)
        headers = {
            **ACCEPT,
            "mcp-session-id": r.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        client.post(
            handle.mcp_url(), json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )

        def post(msg: dict[str, Any]) -> dict[str, Any]:
            resp = client.post(handle.mcp_url(), json=msg, headers=headers)
            if resp.headers["content-type"].startswith("text/event-stream"):
                data = [
                    ln[5:].strip()
                    for ln in resp.text.splitlines()
                    if ln.startswith("data:") and ln[5:].strip()
                ]
                return json.loads(data[-1])
            return resp.json()

        names = {t["name"] for t in post(rpc(1, "tools/list"))["result"]["tools"]}
        assert names == {"echo", "aecho", "add"}
        assert post(rpc(2, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}))["result"][
            "structuredContent"
        ] == {"result": 3}
        denied = post(rpc(3, "tools/call", {"name": "fail", "arguments": {"message": "m"}}))
        unknown = post(rpc(4, "tools/call", {"name": "nope", "arguments": {}}))
        assert denied["error"] == {"code": -32602, "message": "Unknown tool: fail"}
        assert unknown["error"]["code"] == denied["error"]["code"]  # indistinguishable from absent
    refused = [r for r in read_audit(tmp_path) if r["event"] == "tool_denied"]
    assert [(r["tool"], r["status"], r["request_id"]) for r in refused] == [
        ("fail", "denied", 3),
        ("nope", "denied", 4),
    ]
    assert refused[0]["client_name"] == "raw" and refused[0]["client_version"] == "9"


def test_allow_list_from_the_environment_narrows_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_embed.ops.allowlist import ToolAllowList, from_config

    assert from_config(None, {}) is None
    only_env = from_config(None, {"MCP_EMBED_ALLOWED_TOOLS": "scene.*, render"})
    assert only_env is not None and only_env.allows("scene.open") and only_env.allows("render")
    assert not only_env.allows("renderer") and not only_env.allows("shell")
    both = from_config(("scene.*", "shell"), {"MCP_EMBED_ALLOWED_TOOLS": "scene.open,shell"})
    assert both is not None and both.allows("scene.open") and both.allows("shell")
    assert not both.allows("scene.close")
    assert not ToolAllowList([]).allows("anything")  # an empty list allows nothing

    monkeypatch.setenv("MCP_EMBED_ALLOWED_TOOLS", "echo")
    server = demo_server(enable_file_logging=False)
    with server.start() as handle:

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                assert [t.name for t in (await client.list_tools()).tools] == ["echo"]

        anyio.run(main)


# -- the rate limit --------------------------------------------------------------------------------


def test_rate_limit_answers_429_then_recovers(tmp_path: Path) -> None:
    server = demo_server(
        log_dir=str(tmp_path),
        stateless=True,
        rate_limit_per_second=2,
        rate_limit_burst=3,
        enable_metrics=True,
    )
    with server.start() as handle, httpx.Client(timeout=10) as client:
        ping = rpc(1, "ping")
        statuses = [client.post(handle.mcp_url(), json=ping, headers=ACCEPT).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = client.post(handle.mcp_url(), json=ping, headers=ACCEPT)
        assert limited.status_code == 429
        retry_after = int(limited.headers["retry-after"])
        assert retry_after >= 1
        assert limited.json()["error"]["message"].startswith("Too many requests")
        assert client.get(handle.url + "/health").status_code == 200  # never limited
        time.sleep(retry_after)
        assert client.post(handle.mcp_url(), json=ping, headers=ACCEPT).status_code == 200
        metrics = client.get(handle.url + "/metrics").text
    assert "mcp_embed_rate_limited_total 1.0" in metrics
    events = [r for r in read_audit(tmp_path) if r["event"] == "rate_limited"]
    assert len(events) == 1 and events[0]["http_status"] == 429 and events[0]["remote_addr"] == "127.0.0.1"


def test_token_buckets_are_per_key_and_refill() -> None:
    from mcp_embed.http.middleware.ratelimit import TokenBuckets

    now = [100.0]
    buckets = TokenBuckets(rate=1.0, burst=2, max_keys=3, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)
    assert buckets.take("b") == 0.0  # another principal has its own bucket
    now[0] += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    for k in "cdefg":
        buckets.take(k)
    assert len(buckets) == 3  # bounded


def test_principal_and_address_behind_a_trusted_proxy() -> None:
    from mcp_embed.ops.peer import TrustedProxies, peer

    proxies = TrustedProxies(["10.0.0.0/8"])
    scope = {
        "client": ("10.1.2.3", 5000),
        "headers": [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.7"), (b"x-user-id", b"alice")],
    }
    assert peer(scope, proxies) == ("203.0.113.9", "alice")
    untrusted = {**scope, "client": ("198.51.100.1", 5000)}
    assert peer(untrusted, proxies) == ("198.51.100.1", None)  # headers from anyone else are ignored
    authed = {**scope, "mcp_embed.principal": "sub-123"}
    assert peer(authed, proxies)[1] == "sub-123"  # an authentication layer wins over X-User-Id
    assert (
        peer({"client": ("127.0.0.1", 1), "state": {"mcp_embed.principal": "key-7"}}, TrustedProxies([]))[1]
        == "key-7"
    )


# -- the host's logging ----------------------------------------------------------------------------


def test_host_logging_is_untouched(tmp_path: Path) -> None:
    root = logging.getLogger()
    ours = logging.getLogger("mcp_embed")
    host_handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - closed below
    host_filter = logging.Filter("host")
    saved_root = (root.level, list(root.handlers), list(root.filters))
    root.addHandler(host_handler)
    root.setLevel(logging.ERROR)
    root.addFilter(host_filter)
    try:
        before_root = (root.level, list(root.handlers), list(root.filters), root.disabled)
        before_ours = (ours.level, list(ours.handlers), ours.propagate, ours.disabled)
        server = demo_server(log_dir=str(tmp_path), log_level="DEBUG")
        with server.start() as handle:
            assert (root.level, list(root.handlers), list(root.filters), root.disabled) == before_root
            httpx.get(handle.url + "/nowhere")
            logging.getLogger("mcp_embed.tests").info("hello from the test")
        assert (root.level, list(root.handlers), list(root.filters), root.disabled) == before_root
        assert (ours.level, list(ours.handlers), ours.propagate, ours.disabled) == before_ours
        log_file = tmp_path / "mcp-embed.log"
        assert "hello from the test" in log_file.read_text("utf-8")
        if sys.platform != "win32":
            assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    finally:
        root.removeHandler(host_handler)
        root.removeFilter(host_filter)
        host_handler.close()
        root.setLevel(saved_root[0])


def test_json_log_format_writes_one_object_a_line(tmp_path: Path) -> None:
    server = demo_server(log_dir=str(tmp_path), log_format="json")
    with server.start():
        logging.getLogger("mcp_embed.tests").warning("structured %s", "line")
        try:
            raise KeyError("api_key=sk-in-a-traceback-123")
        except KeyError:
            logging.getLogger("mcp_embed.tests").exception("it failed")
    lines = [json.loads(ln) for ln in (tmp_path / "mcp-embed.log").read_text("utf-8").splitlines()]
    mine = [ln for ln in lines if ln["message"] == "structured line"]
    assert mine and mine[0]["level"] == "WARNING" and mine[0]["logger"] == "mcp_embed.tests"
    assert mine[0]["time"].endswith("Z")
    failed = next(ln for ln in lines if ln["message"] == "it failed")
    assert failed["level"] == "ERROR" and "Traceback" in failed["exc"] and "KeyError" in failed["exc"]
    assert "sk-in-a-traceback-123" not in json.dumps(lines)


def test_default_log_dir_is_per_server_and_file_logging_can_be_off(tmp_path: Path) -> None:
    from mcp_embed.ops.audit import default_log_dir

    assert os.environ["MCP_EMBED_LOG_DIR"]  # conftest points every test server at a temp folder
    assert default_log_dir("maya mcp/1").parts[-2:] == ("mcp-embed", "maya_mcp_1")
    server = demo_server(enable_file_logging=False, log_dir=str(tmp_path / "off"))
    with server.start() as handle:
        httpx.post(handle.mcp_url(), json=rpc(1, "ping"), headers=ACCEPT)
    assert not (tmp_path / "off").exists()


# -- the writer ------------------------------------------------------------------------------------


def _record(i: int) -> dict[str, Any]:
    return {"time": time.time(), "event": "tool_call", "tool": "t", "status": "ok", "_args": {"i": i}}


def test_audit_log_size_rotation_keeps_n_backups_in_order(tmp_path: Path) -> None:
    from mcp_embed.ops.audit import AuditLog

    audit = AuditLog(tmp_path / "audit.jsonl", max_bytes=2000, backups=3)
    for i in range(300):
        audit.write(_record(i))
    audit.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"]
    assert all(f.stat().st_size <= 2000 for f in files)
    kept = [r["args_sha256"] for r in read_audit(tmp_path)]
    newest = [args_sha256({"i": i}) for i in range(300 - len(kept), 300)]
    assert kept == newest  # the oldest records rotated out; the rest in order, none duplicated


def test_audit_log_follows_an_external_rename(tmp_path: Path) -> None:
    from mcp_embed.ops.audit import AuditLog

    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, max_bytes=10**6, backups=2)
    for i in range(10):
        audit.write(_record(i))
    assert audit.flush()
    os.replace(path, tmp_path / "moved.jsonl")  # what logrotate's default "create" mode does
    for i in range(10, 25):
        audit.write(_record(i))
    audit.close()
    assert len((tmp_path / "moved.jsonl").read_text().splitlines()) == 10
    assert len(path.read_text().splitlines()) == 15
    audit.write(_record(99))  # after close: ignored, not an error


def test_an_unwritable_log_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_embed import ServerStartError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # Asked for explicitly: the server refuses to start without its audit log.
    with pytest.raises(ServerStartError, match="cannot write the audit log"):
        demo_server(log_dir=str(blocker / "logs")).start()
    # The default folder unwritable (a read-only home in a container): it serves, and says so.
    monkeypatch.setenv("MCP_EMBED_LOG_DIR", str(blocker))
    server = demo_server()
    with pytest.warns(RuntimeWarning, match="WITHOUT an audit log"), server.start() as handle:
        assert httpx.get(handle.url + "/health").status_code == 200
        assert server.operations is not None and server.operations.audit is None
