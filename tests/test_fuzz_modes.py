"""Every JSON value shape the wire can carry, everywhere, in every mode: no 5xx, and the audit holds.

Lone surrogates, nesting past every depth limit, huge numbers, NaN/Infinity tokens and duplicate
keys, as the whole body, the id, the params and the arguments, to every method on ``/mcp`` and on
the legacy ``/messages/``, in all four modes (dedicated/subprocess x stateful/stateless), with
native API-key enforcement on and off. Afterwards the server still answers, and every
``tools/call`` that was answered with a result has exactly one audit record (none has two, and a
refused credential has none).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import demo_server, read_audit
from mcp_embed import ApiKeyConfig, ServerHandle
from mcp_embed._json import MAX_DEPTH

KEY = "fuzz-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
BASE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT_PARAMS = '{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}'

# -- the value shapes, as JSON text (Python's json accepts every one but the last few) -------------

_depths = st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 999, 1000, 5000])
_deep = st.one_of(
    _depths.map(lambda n: "[" * n + "]" * n),
    _depths.map(lambda n: '{"a":' * n + "0" + "}" * n),
)
_surrogates = st.sampled_from(
    ['"\\ud800"', '"\\udfff"', '"a\\udc00b"', '"\\ud83d"', '"\\ude00\\ud83d"', '"\ud800"', '{"\\ud800":1}']
)  # '"\ud800"' is a raw surrogate: sent as the bytes ED A0 80
_numbers = st.sampled_from(
    [
        "9" * 19,
        "-" + "9" * 20,
        "1" + "0" * 400,
        "9" * 4300,
        "9" * 4301,
        "9" * 10_000,
        "1e999",
        "-1e999",
        "1e-999",
        "-0",
        "1" + "0" * 400 + ".5",
    ]
)
_constants = st.sampled_from(["NaN", "Infinity", "-Infinity", "[NaN]", '{"x":-Infinity}'])
_duplicates = st.sampled_from(['{"a":1,"a":2}', '{"text":"x","text":1}', '{"name":"echo","name":"add"}'])
_broken = st.sampled_from(["[", '{"a":', "\xff", "", "[1,]"])
_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
).map(json.dumps)
_value = st.one_of(_deep, _surrogates, _numbers, _constants, _duplicates, _broken, _plain)

_PARAMS = {
    "initialize": INIT_PARAMS,
    "tools/call": '{"name":"echo","arguments":{"text":"hi"}}',
    "resources/read": '{"uri":"mem://notes"}',
    "resources/subscribe": '{"uri":"mem://notes"}',
    "prompts/get": '{"name":"greeting","arguments":{"name":"x"}}',
    "completion/complete": (
        '{"ref":{"type":"ref/prompt","name":"greeting"},"argument":{"name":"name","value":"x"}}'
    ),
    "tasks/get": '{"taskId":"nope"}',
    "tasks/result": '{"taskId":"nope"}',
    "tasks/cancel": '{"taskId":"nope"}',
    "logging/setLevel": '{"level":"info"}',
    "notifications/cancelled": '{"requestId":"nope"}',
}
_METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/list",
    "tasks/get",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
]


@dataclass
class Case:
    route: str  # "/mcp" or "/messages"
    method: str
    body: str  # "__ID__" stands for a fresh, unique request id
    authorized: bool


@st.composite
def _cases(draw: st.DrawFn) -> Case:
    route = draw(st.sampled_from(["/mcp", "/mcp", "/mcp", "/messages"]))
    method = draw(st.sampled_from([*_METHODS, *["tools/call"] * 6]))  # the audited method, often
    where = draw(
        st.sampled_from(["body", "batch", "id", "params", "arguments", "arguments", "envelope", "plain"])
    )
    v = draw(_value)
    rid = '"__ID__"' if not method.startswith("notifications/") else None
    params = _PARAMS.get(method, "{}")
    if where == "body":
        return Case(route, method, v, True)
    if where == "batch":
        return Case(route, method, f"[{v}]", True)
    if where == "id":
        rid = v
    elif where == "params":
        params = v
    elif where == "arguments":
        method = draw(
            st.sampled_from(["tools/call", "tools/call", "tools/call", "prompts/get", "resources/read"])
        )
        rid = '"__ID__"'
        inner = draw(st.sampled_from(["{}", '{"text":%s}', '{"a":%s,"b":1}', '{"name":%s}', "%s"]))
        args = inner % v if "%s" in inner else inner
        # The SDK path (progress), a task-augmented call (SEP-2663), or the fast path.
        meta = draw(st.sampled_from(["", ',"_meta":{"progressToken":7}', ',"task":{}', ',"task":' + v]))
        if method == "tools/call":
            name = draw(st.sampled_from(['"echo"', '"add"', '"aecho"', '"slow"', v]))
            params = f'{{"name":{name},"arguments":{args}{meta}}}'
        elif method == "prompts/get":
            params = f'{{"name":"greeting","arguments":{args}{meta}}}'
        else:
            params = f'{{"uri":{v}{meta}}}'
    elif where == "envelope":  # duplicate keys in the envelope itself
        dup = draw(st.sampled_from(['"method":"ping",', '"id":1,', '"jsonrpc":"1.0",', '"params":[],']))
        body = (
            '{"jsonrpc":"2.0",'
            + dup
            + (f'"id":{rid},' if rid else "")
            + f'"method":"{method}","params":{params}}}'
        )
        return Case(route, method, body, True)
    body = '{"jsonrpc":"2.0",' + (f'"id":{rid},' if rid else "") + f'"method":"{method}","params":{params}}}'
    return Case(route, method, body, draw(st.sampled_from([True, True, True, False])))


# -- one server per mode and auth ----------------------------------------------------------------


@dataclass
class Served:
    handle: ServerHandle
    log_dir: Path
    auth: bool
    stateless: bool
    client: httpx.Client
    mcp_headers: dict[str, str]
    messages_url: str = ""
    sse_answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _sse_reader(stream: httpx.Response, served: Served, endpoint: threading.Event) -> None:
    """Read the legacy SSE stream: the endpoint event, then every message, by id."""
    event = None
    with contextlib.suppress(httpx.HTTPError):
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
                if event == "endpoint":
                    served.messages_url = served.handle.url + data
                    endpoint.set()
                else:
                    with contextlib.suppress(ValueError):
                        msg = json.loads(data)
                        if isinstance(msg, dict) and isinstance(msg.get("id"), str):
                            served.sse_answers.setdefault(msg["id"], []).append(msg)


MODES = [
    pytest.param((mode, stateless, auth), id=f"{mode}-{'stateless' if stateless else 'stateful'}-{a}")
    for mode in ("dedicated", "subprocess")
    for stateless in (False, True)
    for auth, a in ((False, "open"), (True, "native-auth"))
]


@pytest.fixture(scope="module", params=MODES)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    mode, stateless, auth = request.param
    log_dir = tmp_path_factory.mktemp("fuzz-logs")
    server = demo_server(
        spawn_mode=mode,
        stateless=stateless,
        log_dir=str(log_dir),
        auth=ApiKeyConfig(key=KEY, enforce="native") if auth else None,
    )

    @server.tool(task="optional")
    def slow(seconds: float = 0.0) -> str:
        """A task-capable tool."""
        return "done"

    @server.resource("mem://notes")
    def notes() -> str:
        return "notes"

    @server.prompt()
    def greeting(name: str) -> str:
        """Greet someone."""
        return f"Hello {name}"

    with server.start() as handle, httpx.Client(timeout=20) as client:
        headers = {**BASE, **(AUTH if auth else {})}
        if not stateless:
            r = client.post(handle.mcp_url(), content=_init_body(), headers=headers)
            assert r.status_code == 200, r.text
            headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
            client.post(handle.mcp_url(), content=_initialized(), headers=headers)
        s = Served(handle, log_dir, auth, stateless, client, headers)
        endpoint = threading.Event()
        sse_headers = {"Accept": "text/event-stream", **(AUTH if auth else {})}
        with (
            httpx.Client(timeout=httpx.Timeout(20, read=None)) as sse_client,
            sse_client.stream("GET", handle.sse_url(), headers=sse_headers) as stream,
        ):
            assert stream.status_code == 200
            reader = threading.Thread(target=_sse_reader, args=(stream, s, endpoint), daemon=True)
            reader.start()
            assert endpoint.wait(10), "no endpoint event on /sse"
            legacy = {"Content-Type": "application/json", **(AUTH if auth else {})}
            assert client.post(s.messages_url, content=_init_body(), headers=legacy).status_code == 202
            client.post(s.messages_url, content=_initialized(), headers=legacy)
            yield s
            handle.stop()  # the stream ends with the server


def _init_body() -> bytes:
    return ('{"jsonrpc":"2.0","id":"init","method":"initialize","params":' + INIT_PARAMS + "}").encode()


def _initialized() -> bytes:
    return b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def _messages(r: httpx.Response) -> list[Any]:
    """The JSON-RPC messages of a response, whether JSON or an SSE stream."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        out = []
        for line in r.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line[5:]))
        return out
    with contextlib.suppress(ValueError):
        body = r.json()
        return body if isinstance(body, list) else [body]
    return []


def _answered(messages: list[Any], uid: str) -> bool:
    return any(isinstance(m, dict) and m.get("id") == uid and "result" in m for m in messages)


_ids = itertools.count()


def test_every_value_shape_everywhere_gets_no_5xx_and_the_audit_stays_one_to_one(served: Served) -> None:
    s = served
    calls: list[str] = []  # the unique id of every tools/call sent
    answered: list[str] = []  # ... of those answered with a result (on /mcp)
    legacy_calls: list[str] = []
    refused: list[str] = []  # ... sent without a credential to a server that wants one
    internal: list[str] = []

    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_cases())
    def check(case: Case) -> None:
        uid = f"fz-{next(_ids)}"
        body = case.body.replace("__ID__", uid).encode("utf-8", "surrogatepass")
        legacy = case.route == "/messages"
        headers = (
            {"Content-Type": "application/json", **(AUTH if s.auth else {})}
            if legacy
            else dict(s.mcp_headers)
        )
        if not case.authorized:
            headers.pop("Authorization", None)
        if f'"id":"{uid}"' in case.body.replace("__ID__", uid) and '"tools/call"' in case.body:
            (legacy_calls if legacy else calls).append(uid)
            if s.auth and not case.authorized:
                refused.append(uid)
        url = s.messages_url if legacy else s.handle.mcp_url()
        r = s.client.post(url, content=body, headers=headers)
        assert r.status_code < 500, (case, r.status_code, r.text[:300])
        if s.auth and not case.authorized:
            assert r.status_code == 401, (case, r.status_code)
        msgs = _messages(r)
        if _answered(msgs, uid) and uid in calls:
            answered.append(uid)
        for m in msgs:
            if isinstance(m, dict) and isinstance(m.get("error"), dict) and m["error"].get("code") == -32603:
                internal.append(f"{case} -> {json.dumps(m)[:300]}")

    check()

    # Still serving: a ping and a real call on /mcp, and the legacy session still answers.
    legacy = {"Content-Type": "application/json", **(AUTH if s.auth else {})}
    r = s.client.post(s.messages_url, content=b'{"jsonrpc":"2.0","id":"lp","method":"ping"}', headers=legacy)
    assert r.status_code == 202, r.text
    for _ in range(100):  # bounded: the answer comes on the SSE stream
        if "lp" in s.sse_answers:
            break
        time.sleep(0.05)
    assert "result" in s.sse_answers["lp"][0], s.sse_answers.get("lp")
    ping = s.client.post(
        s.handle.mcp_url(), content=b'{"jsonrpc":"2.0","id":"p","method":"ping"}', headers=s.mcp_headers
    )
    assert ping.status_code == 200 and _answered(_messages(ping), "p"), ping.text[:300]
    add = b'{"name":"add","arguments":{"a":2,"b":3}}'
    call = b'{"jsonrpc":"2.0","id":"last","method":"tools/call","params":' + add + b"}"
    r = s.client.post(s.handle.mcp_url(), content=call, headers=s.mcp_headers)
    assert _answered(_messages(r), "last"), r.text[:300]
    calls.append("last")
    answered.append("last")
    assert not internal, "\n".join(internal[:5])

    s.handle.stop()  # flushes the audit log (the child's too, in subprocess mode)
    records = [r for r in read_audit(s.log_dir) if r.get("event") in ("tool_call", "tool_denied")]
    per_id = Counter(str(r.get("request_id")) for r in records)
    legacy_answered = [u for u in legacy_calls if any("result" in m for m in s.sse_answers.get(u, ()))]
    audit_dropped = _audit_write_failures(s.log_dir)
    # If only the audit writer's surrogate bug (fixed on its own branch) drops records, say so.
    why = f"audit writer dropped records: {audit_dropped[:2]}" if audit_dropped else ""
    missing = [u for u in answered + legacy_answered if per_id[u] != 1]
    assert not missing, (why, {u: per_id[u] for u in missing[:10]})
    assert all(per_id[u] <= 1 for u in calls + legacy_calls), why
    assert all(per_id[u] == 0 for u in refused), [u for u in refused if per_id[u]]
    assert len(records) <= len(calls) + len(legacy_calls), (len(records), len(calls), len(legacy_calls))
    log = s.log_dir / "mcp-embed.log"
    text = log.read_text("utf-8", "replace") if log.exists() else ""
    assert "Traceback" not in text, text[text.find("Traceback") - 300 :][:2000]  # bad input is not an error


def _audit_write_failures(log_dir: Path) -> list[str]:
    log = log_dir / "mcp-embed.log"
    if not log.exists():
        return []
    return [
        line for line in log.read_text("utf-8", "replace").splitlines() if "audit log write failed" in line
    ]
