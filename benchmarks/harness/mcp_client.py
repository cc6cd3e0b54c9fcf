"""A minimal synchronous MCP-over-HTTP client for setup and verification (not for load)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

PROTOCOL_VERSION = "2025-11-25"
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": PROTOCOL_VERSION,
}
ECHO_ARGS = {"text": "hi"}

_ids = itertools.count(1)


class ProtocolError(RuntimeError):
    """The server answered, but not with what a correct MCP server answers."""


def _parse_body(response: httpx.Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC message answering `request_id`, from a JSON or an SSE reply."""
    ctype = response.headers.get("content-type", "")
    messages: list[Any] = []
    if ctype.startswith("application/json"):
        messages = [json.loads(response.text)]
    elif ctype.startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                messages.append(json.loads(line[5:]))
    else:
        raise ProtocolError(f"unexpected content-type {ctype!r}: {response.text[:200]!r}")
    for message in messages:
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    raise ProtocolError(f"no reply with id {request_id} in {response.text[:300]!r}")


def rpc(
    client: httpx.Client, url: str, method: str, params: dict[str, Any] | None, session: str | None
) -> tuple[dict[str, Any], httpx.Response]:
    """Send one JSON-RPC request; return the reply's `result` (raises on errors)."""
    request_id = next(_ids)
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        payload["params"] = params
    headers = dict(HEADERS)
    if session:
        headers["Mcp-Session-Id"] = session
    response = client.post(url, json=payload, headers=headers)
    if response.status_code != 200:
        raise ProtocolError(f"{method}: HTTP {response.status_code}: {response.text[:300]!r}")
    message = _parse_body(response, request_id)
    if "error" in message or "result" not in message:
        raise ProtocolError(f"{method}: {json.dumps(message)[:300]}")
    return message["result"], response


def notify(client: httpx.Client, url: str, method: str, session: str | None) -> None:
    headers = dict(HEADERS)
    if session:
        headers["Mcp-Session-Id"] = session
    response = client.post(url, json={"jsonrpc": "2.0", "method": method}, headers=headers)
    if response.status_code not in (200, 202):
        raise ProtocolError(f"{method}: HTTP {response.status_code}: {response.text[:300]!r}")


def open_session(client: httpx.Client, url: str) -> str:
    """initialize + notifications/initialized; return the Mcp-Session-Id."""
    params = {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "mcp-embed-bench", "version": "1"},
    }
    _, response = rpc(client, url, "initialize", params, None)
    session = str(response.headers.get("mcp-session-id") or "")
    if not session:
        raise ProtocolError("initialize: no Mcp-Session-Id header from a stateful server")
    notify(client, url, "notifications/initialized", session)
    return session


def list_tools(client: httpx.Client, url: str, session: str | None) -> list[str]:
    result, _ = rpc(client, url, "tools/list", {}, session)
    names = [tool.get("name") for tool in result.get("tools", [])]
    if "echo" not in names:
        raise ProtocolError(f"tools/list has no echo tool: {names}")
    return [str(n) for n in names]


def check_echo(client: httpx.Client, url: str, session: str | None) -> dict[str, Any]:
    """Call echo {"text":"hi"} and insist on a real, successful result."""
    result, _ = rpc(client, url, "tools/call", {"name": "echo", "arguments": ECHO_ARGS}, session)
    if result.get("isError"):
        raise ProtocolError(f"tools/call returned isError: {json.dumps(result)[:300]}")
    texts = [c.get("text") for c in result.get("content", []) if c.get("type") == "text"]
    if texts != ["hi"]:
        raise ProtocolError(f"tools/call echo gave {texts!r}, expected ['hi']: {json.dumps(result)[:300]}")
    return result
