"""Minimal ASGI response helpers (no framework on the hot path)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .._asgi import Message, Receive, Send


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    hdrs = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, data: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send_bytes(send, status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)


async def send_jsonrpc_error(
    send: Send, status: int, code: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON-RPC error body with no request id, for errors found before the message is parsed."""
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    await send_json(send, status, body, headers)


async def read_body(receive: Receive, limit: int | None = None) -> tuple[bytes, bool]:
    """Read the request body, stopping once more than ``limit`` bytes came (``None``: to the end).

    ``more`` is true when the body did not end: over the limit, or the client went away.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if limit is not None and size > limit:
            return b"".join(chunks), True


def replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A ``receive`` that first gives back ``body`` (already read), then continues the real stream."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed
