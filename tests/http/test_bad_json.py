"""Bodies Python's json accepts but the stack chokes on: a JSON-RPC error or a 4xx, never a 500.

Deep nesting (RecursionError), lone surrogates (UnicodeEncodeError on the way out), integers past
the int/str conversion limit, NaN/Infinity tokens and duplicate keys: in the body, the id, the
params and the arguments, to the fast path's methods and to the SDK's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT, serving
from mcp_embed._json import MAX_DEPTH, JsonError, dumps, loads

DEEP = "[" * 1000 + "]" * 1000
SHALLOW_DEEP = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
BIG = "9" * 5000


def _req(method: str, params: str | None = None, rid: str = "1") -> bytes:
    p = "" if params is None else f',"params":{params}'
    return f'{{"jsonrpc":"2.0","id":{rid},"method":"{method}"{p}}}'.encode()


def _call(arguments: str, name: str = '"echo"', rid: str = "1") -> bytes:
    return _req("tools/call", f'{{"name":{name},"arguments":{arguments}}}', rid)


CORPUS: dict[str, bytes] = {
    "deep-body": DEEP.encode(),
    "deep-params-initialize": _req("initialize", DEEP),
    "deep-params-ping": _req("ping", DEEP),
    "deep-arguments": _call(f'{{"text":{DEEP}}}'),
    "deep-id": _req("ping", rid=DEEP),
    "over-max-depth-arguments": _call(f'{{"text":{SHALLOW_DEEP}}}'),
    "surrogate-arguments": _call('{"text":"\\ud800"}'),
    "surrogate-key": _call('{"\\udc00":"x"}'),
    "surrogate-name": _call("{}", name='"\\ud800"'),
    "surrogate-id-ping": _req("ping", rid='"\\ud800"'),
    "surrogate-id-list": _req("tools/list", rid='"\\udc00"'),
    "surrogate-id-call": _call('{"a":1,"b":2}', name='"add"', rid='"\\ud800"'),
    "surrogate-raw-bytes": _call('{"text":"x"}').replace(b'"x"', b'"\xed\xa0\x80"'),
    "big-int-id": _req("ping", rid=BIG),
    "big-int-argument": _call(f'{{"a":{BIG},"b":1}}', name='"add"'),
    "nan-id": _req("ping", rid="NaN"),
    "infinity-argument": _call('{"a":Infinity,"b":1}', name='"add"'),
    "overflow-float-argument": _call('{"a":1e999,"b":1}', name='"add"'),
    "duplicate-id": b'{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}',
    "duplicate-method": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}',
    "deep-batch": ("[" + DEEP + "]").encode(),
    "deep-response": b'{"jsonrpc":"2.0","id":"mcpe-x","result":' + DEEP.encode() + b"}",
    "surrogate-response": b'{"jsonrpc":"2.0","id":"\\ud800","result":{}}',
}


@pytest.fixture(scope="module", params=[False, True], ids=["stateful", "stateless"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    with serving(stateless=request.param) as h, httpx.Client(timeout=10) as client:
        headers = dict(ACCEPT)
        if not request.param:
            r = client.post(h.mcp_url(), json=INIT, headers=headers)
            headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
        yield h.mcp_url(), headers


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_json_gets_a_jsonrpc_error_or_4xx_never_a_500(
    server: tuple[str, dict[str, str]], case: str
) -> None:
    url, headers = server
    with httpx.Client(timeout=10) as client:
        r = client.post(url, content=CORPUS[case], headers=headers)
        assert r.status_code < 500, (case, r.status_code, r.text[:200])
        if r.status_code == 200 and r.headers["content-type"].startswith("application/json"):
            body = r.json()
            assert "result" in body or body["error"]["code"] != -32603, body
        ping = client.post(url, json={"jsonrpc": "2.0", "id": 9, "method": "ping"}, headers=headers)
        assert ping.status_code == 200


@pytest.mark.parametrize(
    "text",
    [
        DEEP,
        SHALLOW_DEEP,
        '["\\ud800"]',
        '{"\\udfff":1}',
        BIG,
        "NaN",
        "[-Infinity]",
        "1e999",
        '{"a":',
        "",
    ],
)
def test_loads_refuses_what_the_wire_must_not_carry(text: str) -> None:
    with pytest.raises(JsonError):
        loads(text.encode())


def test_loads_accepts_valid_json_and_duplicate_keys_take_the_last_value() -> None:
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(nested.encode()) is not None
    assert loads('{"a":1,"a":2}') == {"a": 2}  # as the SDK's parser does: no layer sees another message
    assert loads('["\\ud83d\\ude00", 1e10, 12345678901234567890]') == [
        "\U0001f600",
        1e10,
        12345678901234567890,
    ]
    with pytest.raises(JsonError):
        loads(b'"\xff"')


def test_dumps_always_gives_utf8_json() -> None:
    assert dumps({"a": "hé"}) == '{"a":"hé"}'.encode()
    assert json.loads(dumps({"id": "\ud800"})) == {"id": "\\ud800"}  # the text, as in the audit log
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(JsonError):
        dumps(deep)


@pytest.mark.parametrize(
    "case", ["deep-body", "deep-arguments", "surrogate-id-ping", "big-int-id", "duplicate-id"]
)
def test_legacy_messages_answer_a_jsonrpc_error_and_log_no_traceback(tmp_path: Any, case: str) -> None:
    with (
        serving(log_dir=str(tmp_path)) as h,
        httpx.Client(timeout=10) as client,
        httpx.Client(timeout=httpx.Timeout(10, read=None)) as sse,
        sse.stream("GET", h.sse_url()) as stream,
    ):
        lines = stream.iter_lines()  # kept: closing the iterator would end the stream (and the session)
        endpoint = next(line[5:].strip() for line in lines if line.startswith("data:"))
        r = client.post(h.url + endpoint, content=CORPUS[case], headers={"Content-Type": "application/json"})
        if case == "duplicate-id":  # valid JSON-RPC once the last key wins
            assert r.status_code == 202
        else:
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] in (-32700, -32600), r.text
        h.stop()
    assert "Traceback" not in (tmp_path / "mcp-embed.log").read_text("utf-8")
