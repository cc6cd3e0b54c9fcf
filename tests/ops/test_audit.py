"""The audit log (``src/mcp_embed/audit.py``): no record is lost or breaks another, whatever a caller
sends or a tool produces (lone surrogates, odd values), and no argument value reaches the audit or
app log unasked.

A lone surrogate a caller sends is refused at the door now (``_json.loads``, as the SDK's parser
does), so the poison that still reaches a record is what a tool produces: an error text built from a
file name read with ``surrogateescape``. Both are in the mix below."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import ACCEPT, demo_server
from mcp_embed.ops.audit import AuditLog, args_sha256

POISON = "bad \\ud800 text"  # in a raw body: the JSON escape of a lone surrogate, valid JSON


def poisoned_server(**config: Any) -> Any:
    """The demo server, plus a tool whose error text holds a lone surrogate, as an OS error can."""
    server = demo_server(**config)

    @server.tool()
    def open_file(i: int) -> str:
        """Fail the way a file name read with surrogateescape fails."""
        raise OSError(f"cannot open bad \udcff name {i}")

    return server


def _strict(text: str) -> Any:
    """``text`` parsed as a strict parser would: no NaN, and no lone surrogate (I-JSON, RFC 7493)."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    value = json.loads(text, parse_constant=no_constant)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate
    return value


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path``: strict UTF-8 and strict JSON, or the test fails."""
    return [_strict(line) for line in path.read_bytes().decode("utf-8").splitlines()]


def _body(id_: int, tool: str, arguments: str) -> str:
    return (
        f'{{"jsonrpc":"2.0","id":{id_},"method":"tools/call",'
        f'"params":{{"name":"{tool}","arguments":{arguments}}}}}'
    )


def _call_body(i: int) -> tuple[str, bool]:
    """The i-th call's raw body and whether it is refused at the door: every 40th sends a lone
    surrogate, every other 20th makes the tool's error text hold one, every 7th fails validation."""
    if i % 40 == 39:
        return _body(i, "echo", f'{{"text":"{POISON} {i}"}}'), True
    if i % 20 == 19:
        return _body(i, "open_file", f'{{"i":{i}}}'), False
    if i % 7 == 6:
        return _body(i, "add", '{"a":"one","b":1}'), False
    return _body(i, "echo", f'{{"text":"good {i}"}}'), False


INIT = (
    '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    '"capabilities":{},"clientInfo":{"name":"poison client","version":"1"}}}'
)


async def _session(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    r = await client.post(url, content=INIT, headers=ACCEPT)
    assert r.status_code == 200, r.text
    return {**ACCEPT, "mcp-session-id": r.headers["mcp-session-id"]}


# -- N calls, N records ----------------------------------------------------------------------------


def test_poisoned_calls_lose_no_record(spawn_mode: str, tmp_path: Path) -> None:
    n_calls, workers = 400, 8
    server = poisoned_server(log_dir=str(tmp_path), spawn_mode=spawn_mode, json_response=True)
    answers: list[int] = []
    with server.start() as handle:
        url = handle.mcp_url()

        async def main() -> None:
            async with httpx.AsyncClient(timeout=30) as client:

                async def worker(k: int) -> None:
                    headers = await _session(client, url)
                    for i in range(k, n_calls, workers):
                        body, refused = _call_body(i)
                        r = await client.post(url, content=body, headers=headers)
                        answer = _strict(r.text)  # every answer is strict JSON
                        if refused:
                            assert (r.status_code, answer["error"]["code"]) == (400, -32700), r.text
                        else:
                            assert r.status_code == 200, r.text
                            answers.append(i)
                        if '"open_file"' in body:  # the tool's poison is answered, marked
                            assert answer["result"]["isError"] is True
                            assert "bad \\udcff name" in answer["result"]["content"][0]["text"]

                async with anyio.create_task_group() as tg:
                    for k in range(workers):
                        tg.start_soon(worker, k)

        anyio.run(main)
    records = read_lines(tmp_path / "audit.jsonl")
    calls = [r for r in records if r["event"] == "tool_call"]
    assert len(answers) == n_calls - n_calls // 40
    assert sorted(r["request_id"] for r in calls) == sorted(answers)  # every call a record, once
    opened = [r for r in records if r["event"] == "session_open"]
    closed = [r for r in records if r["event"] == "session_close"]
    assert len(opened) == len(closed) == workers
    assert all(r["client_name"] == "poison client" for r in opened)
    for r in calls:
        body, _ = _call_body(r["request_id"])
        assert r["args_sha256"] == args_sha256(json.loads(body)["params"]["arguments"])
        assert r["status"] == ("ok" if r["tool"] == "echo" else "error")
        if r["tool"] == "open_file":
            assert (
                r["error"]
                == f"Tool 'open_file' failed: OSError: cannot open bad \\udcff name {r['request_id']}"
            )


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mcp-embed-audit")]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if sys.platform.startswith("linux") else 0


def test_a_poisoned_last_call_does_not_break_stop_or_restart(spawn_mode: str, tmp_path: Path) -> None:
    server = poisoned_server(log_dir=str(tmp_path), spawn_mode=spawn_mode, json_response=True)
    fds: list[int] = []
    for cycle in range(3):
        handle = server.start()
        with httpx.Client(timeout=10) as client:
            r = client.post(handle.mcp_url(), content=INIT, headers=ACCEPT)
            headers = {**ACCEPT, "mcp-session-id": r.headers["mcp-session-id"]}
            body = _body(cycle, "open_file", f'{{"i":{cycle}}}')  # the last record holds poison
            assert client.post(handle.mcp_url(), content=body, headers=headers).status_code == 200
        handle.stop()
        assert not handle.is_running
        assert _writer_threads() == []
        fds.append(_fds())
    assert fds[1] == fds[2]  # a cycle leaks no descriptor
    records = read_lines(tmp_path / "audit.jsonl")
    assert [r["request_id"] for r in records if r["event"] == "tool_call"] == [0, 1, 2]
    assert sum(r["event"] == "session_close" for r in records) == 3


# -- the writer ------------------------------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


def _odd_values() -> list[Any]:
    cycle: list[Any] = []
    cycle.append(cycle)
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    return [
        "lone \ud800 surrogate",
        {"key \udc00": 1},
        math.nan,
        -math.inf,
        _Unprintable(),
        cycle,
        deep,
        10**5000,  # more digits than int -> str allows
        b"\xff bytes",
        {1, 2},
        {("tuple", "key"): 1},
    ]


def test_odd_values_never_cost_a_record(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", max_bytes=10**8, backups=1, include_arguments=True)
    odd = _odd_values()
    n = 0
    for i, value in enumerate(odd):
        for record_args in ({"v": value}, {"good": i}):
            audit.write({"time": time.time(), "event": "tool_call", "tool": "t", "status": "ok",
                         "_args": record_args, "error": value if i % 2 else None})  # fmt: skip
            n += 1
    audit.write({"time": time.time(), "event": "tool_call", "tool": "\ud800", "status": "ok"})
    audit.close()
    records = read_lines(tmp_path / "audit.jsonl")
    assert len(records) == n + 1 and audit.written == n + 1 and audit.lost == 0
    assert records[0]["arguments"] == {"v": "lone \\ud800 surrogate"}  # marked, as text
    assert records[-1]["tool"] == "\\ud800"


def _rec(i: int) -> dict[str, Any]:
    return {"time": time.time(), "event": "tool_call", "tool": "t", "status": "ok", "_args": {"i": i}}


def test_a_record_that_cannot_be_written_is_counted_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lost: list[int] = []
    audit = AuditLog(tmp_path / "audit.jsonl", max_bytes=10**8, backups=1)
    audit.on_lost = lost.append
    real_write = os.write
    failing = {"on": True}

    def write(fd: int, data: Any) -> int:
        if failing["on"] and fd == audit._file.fileno():
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with caplog.at_level(logging.ERROR, logger="mcp_embed.ops.audit"):
        for i in range(3):
            audit.write(_rec(i))
        assert audit.flush()
        failing["on"] = False
        audit.write(_rec(9))
        audit.close()
    assert audit.lost == 3 and sum(lost) == 3 and audit.written == 1
    assert any("3 audit record(s) lost" in r.getMessage() for r in caplog.records), caplog.text
    assert len(read_lines(tmp_path / "audit.jsonl")) == 1


def test_lost_records_are_a_metric(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from mcp_embed.ops.metrics import Metrics

    metrics = Metrics(server_name="t", version="1", known_tool=lambda name: True)
    metrics.audit_lost(2)
    metrics.auth_failure("bad \ud800 reason")
    metrics.tool_call("tool \udfff", "ok", 0.01)
    text = metrics.render()[0].decode("utf-8")
    assert "mcp_embed_audit_records_lost_total 2.0" in text


# -- the app log -----------------------------------------------------------------------------------


def test_the_app_log_survives_lone_surrogates(tmp_path: Path) -> None:
    from mcp_embed.logs import JsonFormatter, attach_file_logging

    record = logging.LogRecord("mcp_embed.t", logging.ERROR, __file__, 1, "odd %s", ("\ud800",), None)
    assert _strict(JsonFormatter().format(record).encode("utf-8").decode())["message"] == "odd \\ud800"
    for fmt in ("json", "text"):
        folder = tmp_path / fmt
        detach = attach_file_logging(folder, level="INFO", fmt=fmt, max_bytes=10**6, backups=1)
        logging.getLogger("mcp_embed.t").error("odd %s value", "\udfff")
        logging.getLogger("mcp_embed.t").error("after")
        detach()
        text = (folder / "mcp-embed.log").read_bytes().decode("utf-8")
        if fmt == "json":
            assert [_strict(line)["message"] for line in text.splitlines()] == ["odd \\udfff value", "after"]
        else:
            assert "odd \\udfff value" in text and "after" in text


# -- no argument value in the audit or app log ------------------------------------------------------

SECRET = "hunter2-secret"
VALUE = "plain-value-xyz"


def _secret_server(tmp_path: Path, **config: Any) -> Any:
    server = demo_server(log_dir=str(tmp_path), json_response=True, log_level="DEBUG", **config)

    @server.tool()
    def login(user: str, password: int, count: int) -> str:
        """Typed wrongly on purpose: a string password fails validation."""
        return user

    @server.tool(input_schema={"type": "object", "properties": {"password": {"type": "integer"},
                 "count": {"type": "integer", "minimum": 1}}, "required": ["password"]})  # fmt: skip
    def raw_login(**kwargs: Any) -> str:
        """Validated by jsonschema."""
        return "ok"

    @server.tool()
    def leaky(password: str, note: str) -> str:
        """Raises with its arguments in the message."""
        raise ValueError(f"refused {password} for {note}")

    return server


def _call_all(url: str) -> list[str]:
    texts = []
    with httpx.Client(timeout=10) as client:
        for i, (tool, args) in enumerate(
            [
                ("login", {"user": "u", "password": SECRET, "count": VALUE}),
                ("raw_login", {"password": SECRET, "count": VALUE}),
                ("raw_login", {"password": 1, "count": 0}),
                ("leaky", {"password": SECRET, "note": VALUE}),
            ]
        ):
            params = {"name": tool, "arguments": args}
            msg = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
            result = client.post(url, json=msg, headers=ACCEPT).json()["result"]
            assert result["isError"], result
            texts.append(result["content"][0]["text"])
    return texts


def test_validation_errors_name_the_field_not_the_value(tmp_path: Path) -> None:
    server = _secret_server(tmp_path, stateless=True)
    with server.start() as handle:
        texts = _call_all(handle.mcp_url())
    assert "password" in texts[0] and "integer" in texts[0] and "count" in texts[0]
    assert "password" in texts[1] and "integer" in texts[1]
    assert "count" in texts[2] and "1" in texts[2]
    for text in texts[:3]:
        assert SECRET not in text and VALUE not in text, text
    for name in ("audit.jsonl", "mcp-embed.log"):
        content = (tmp_path / name).read_text("utf-8")
        assert SECRET not in content and VALUE not in content, (name, content)
    errors = [r["error"] for r in read_lines(tmp_path / "audit.jsonl") if r["event"] == "tool_call"]
    assert errors[0].startswith("Invalid arguments for tool 'login': password:") and "got string" in errors[0]


def test_with_audit_arguments_secret_fields_still_never_reach_the_logs(tmp_path: Path) -> None:
    server = _secret_server(tmp_path, stateless=True, audit_arguments=True)
    with server.start() as handle:
        _call_all(handle.mcp_url())
    for name in ("audit.jsonl", "mcp-embed.log"):
        assert SECRET not in (tmp_path / name).read_text("utf-8"), name
    leaky = next(r for r in read_lines(tmp_path / "audit.jsonl") if r.get("tool") == "leaky")
    assert leaky["arguments"] == {"password": "[REDACTED]", "note": VALUE}
    assert VALUE in leaky["error"]  # asked for: non-secret values may be recorded


def test_skill_argument_errors_name_the_field_not_the_value() -> None:
    from mcp_embed.skills._model import SkillTool
    from mcp_embed.skills.errors import SkillArgumentError

    tool = SkillTool(
        name="s_login", description="", input_schema={"type": "object", "properties": {
            "password": {"type": "integer"}, "mode": {"enum": ["a", "b"]}, "pin": {"pattern": "^[0-9]+$"}}},
        output_schema=None, annotations=None, affinity="any", execution="in-process", timeout=None, skill="s",
    )  # fmt: skip
    for args, field, expected in [
        ({"password": SECRET}, "password", "integer"),
        ({"mode": SECRET}, "mode", '"a"'),
        ({"pin": SECRET}, "pin", "^[0-9]+$"),
    ]:
        with pytest.raises(SkillArgumentError) as info:
            tool.validate(args)
        assert info.value.field == field and expected in str(info.value) and SECRET not in str(info.value)


def test_a_prompt_failure_does_not_log_its_arguments(tmp_path: Path) -> None:
    from conftest import sdk_client

    server = demo_server(log_dir=str(tmp_path))

    @server.prompt()
    def review(node: str) -> str:
        """Fails, quoting its argument."""
        raise ValueError(f"no node {node}")

    with server.start() as handle:

        async def main() -> None:
            from mcp.shared.exceptions import MCPError

            async with sdk_client(handle.mcp_url()) as client:
                with pytest.raises(MCPError):
                    await client.get_prompt("review", {"node": VALUE})

        anyio.run(main)
    app_log = (tmp_path / "mcp-embed.log").read_text("utf-8")
    assert "prompt 'review' failed: ValueError: no node [REDACTED]" in app_log and VALUE not in app_log


# -- what a tool returns ----------------------------------------------------------------------------


def test_a_lone_surrogate_a_tool_returns_is_answered_on_every_route(tmp_path: Path) -> None:
    from conftest import sdk_client

    server = demo_server(log_dir=str(tmp_path))

    @server.tool()
    def listing() -> str:
        """A file name read with surrogateescape."""
        return "file \udcff name"

    with server.start() as handle:

        async def main() -> None:
            for mode in ("legacy", "auto"):  # the fast path, and the SDK's route
                async with sdk_client(handle.mcp_url(), mode=mode) as client:
                    result = await client.call_tool("listing", {})
                    assert result.content[0].text == "file \\udcff name", mode

        anyio.run(main)
    calls = [r for r in read_lines(tmp_path / "audit.jsonl") if r["event"] == "tool_call"]
    assert [r["status"] for r in calls] == ["ok", "ok"]
