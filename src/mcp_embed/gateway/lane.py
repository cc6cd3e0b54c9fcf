"""``JsonLane``: a plain forwarded ``tools/call`` as one JSON POST, on the gateway server's own loop.

The SDK client costs about a millisecond per call (its dispatcher, streams and two pydantic
passes, plus the hop to the hub's loop): more than the whole gateway budget. A call without
progress needs none of it, so it goes here: its own MCP session with the instance (initialize
once), keep-alive HTTP/1.1 connections parsed by ``h11`` (hypercorn's own parser), answers in
JSON or SSE. A call cancelled while waiting closes its connection (the 2026 wire's cancellation;
the instance's fast path drops a queued main-thread call on it) and posts
``notifications/cancelled`` (the handshake era's), so the instance's tool stops either way. The
lane's session declares no client capability, and a request the instance sends on a call's stream
anyway (``ctx.elicit`` asked regardless) is refused at once, as the SDK's client refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..logs import get_logger

__all__ = ["JsonLane", "LaneError"]

_VERSION = "2025-11-25"
_MAX_IDLE = 8  # keep-alive connections kept per instance
#: The SDK client's refusal of a request it has no callback for (mcp.client.session's defaults).
_REFUSED = {
    "elicitation/create": "Elicitation not supported",
    "sampling/createMessage": "Sampling not supported",
    "roots/list": "List roots not supported",
}

log = get_logger("gateway")


class LaneError(Exception):
    """The instance could not be reached, or answered something that is not an MCP answer."""


_Answer = tuple[int, dict[str, str], bytes]  # HTTP status, headers (lower-case names), body


class _Closed(Exception):
    """The connection ended before the instance answered."""


class _Conn:
    __slots__ = ("http", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11

        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class JsonLane:
    """Plain ``tools/call`` requests to one instance, on whichever loop calls it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the JSON lane speaks plain http:// to an instance, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self._authority = parts.netloc.encode()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Conn] = []
        self._session: str | None = None  # None from a stateless instance, which has no sessions
        self._initialized = False
        self._version = _VERSION
        self._opening: asyncio.Lock | None = None
        self._replies: set[asyncio.Task[None]] = set()  # answers to the instance's requests

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The instance's wire result of ``tools/call``; raises :class:`LaneError` if unreachable,
        ``MCPError`` for a JSON-RPC error the instance answered."""
        self._bind_loop()
        if not self._initialized:
            await self._initialize()
        rid = next(self._ids)
        body = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        try:
            status, message = await self._rpc(body, rid)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()
            loop.create_task(self._cancelled(rid))  # noqa: RUF006 - bounded, and its failure is moot
            raise
        if status == 404 and self._session is not None:  # the instance forgot the session: once more
            self._session, self._initialized = None, False
            await self._initialize()
            status, message = await self._rpc(body, rid)
        return _result(status, message)

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            for conn in self._idle:
                conn.close()
            self._idle.clear()
            self._loop = loop
            self._opening = asyncio.Lock()

    async def _initialize(self) -> None:
        assert self._opening is not None
        async with self._opening:
            if self._initialized:
                return
            rid = next(self._ids)
            info = {"name": "mcp-embed-gateway", "version": "1"}
            params = {"protocolVersion": _VERSION, "capabilities": {}, "clientInfo": info}
            body = {"jsonrpc": "2.0", "id": rid, "method": "initialize", "params": params}
            status, message = await self._rpc(body, rid, initializing=True)
            result = _result(status, message)
            self._version = str(result.get("protocolVersion") or _VERSION)
            await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
            self._initialized = True

    async def _cancelled(self, rid: int) -> None:
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid}}
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._post(note), 5.0)

    async def _rpc(self, body: dict[str, Any], rid: int, *, initializing: bool = False) -> tuple[int, Any]:
        status, headers, raw = await self._post(body)
        if initializing:
            self._session = headers.get("mcp-session-id")
        kind = headers.get("content-type", "")
        if not raw:
            return status, None
        try:
            if kind.startswith("text/event-stream"):
                return status, _from_sse(raw, rid)
            return status, json.loads(raw)
        except ValueError as exc:
            raise LaneError(f"the instance answered HTTP {status} that is not JSON-RPC: {exc}") from None

    async def _post(self, body: dict[str, Any]) -> _Answer:

        headers = [
            (b"host", self._authority),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"mcp-protocol-version", self._version.encode()),
        ]
        if self._session is not None:
            headers.append((b"mcp-session-id", self._session.encode()))
        data = json.dumps(body, separators=(",", ":")).encode()
        headers.append((b"content-length", str(len(data)).encode()))
        for attempt in (1, 2):
            conn = self._take()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            try:
                return await self._exchange(conn, headers, data)
            except _Closed as exc:
                # A kept-alive connection the server closed meanwhile (its idle timeout, or its
                # request limit) ends before any answer, with the request unread: send it again
                # once, on a new connection. A new connection closed on us is the instance going.
                if not reused or attempt == 2:
                    raise LaneError(str(exc)) from None
        raise AssertionError("unreachable")

    def _take(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    async def _exchange(
        self, conn: _Conn, headers: list[tuple[bytes, bytes]], data: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        import h11

        answered = False
        questions: _Questions | None = None
        try:
            http = conn.http
            parts = (
                http.send(h11.Request(method="POST", target=self.path, headers=headers)),
                http.send(h11.Data(data=data)),
                http.send(h11.EndOfMessage()),
            )
            conn.writer.write(b"".join(p for p in parts if p))
            status, answer, chunks = 0, {}, []
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    chunk = await conn.reader.read(65536)
                    if not chunk:
                        raise _Closed("the instance closed the connection")
                    http.receive_data(chunk)
                elif isinstance(event, h11.Response):
                    answered = True
                    status = event.status_code
                    answer = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                    if answer.get("content-type", "").startswith("text/event-stream"):
                        questions = _Questions(self._refuse)
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                    if questions is not None:
                        questions.feed(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise _Closed("the instance closed the connection")
        except BaseException as exc:
            conn.close()  # mid-request (cancelled, or broken): never reused
            if isinstance(exc, _Closed | ConnectionError) and not answered:
                raise _Closed(f"{exc}") from None
            if isinstance(exc, OSError | h11.ProtocolError | _Closed):
                raise LaneError(f"{type(exc).__name__}: {exc}") from None
            raise
        self._recycle(conn)
        return status, answer, b"".join(chunks)

    def _refuse(self, request: dict[str, Any]) -> None:
        """Answer a request the instance sent on a call's stream, as the SDK's client does when it
        has no callback for it: a lane call's client declared no capability to answer it."""
        method = request.get("method")
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
        if method == "ping":
            reply["result"] = {}
        else:
            refused = _REFUSED.get(str(method))
            code, message = (-32600, refused) if refused else (-32601, "Method not found")
            reply["error"] = {"code": code, "message": message}
        task = asyncio.get_running_loop().create_task(self._reply(reply))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _reply(self, reply: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self._post(reply), 5.0)
        except Exception as exc:  # the instance went, or the call ended: its question is moot
            log.debug("could not answer the instance's request %r: %s", reply["id"], exc)

    def _recycle(self, conn: _Conn) -> None:
        import h11

        http = conn.http
        if http.our_state is h11.DONE and http.their_state is h11.DONE and len(self._idle) < _MAX_IDLE:
            http.start_next_cycle()
            self._idle.append(conn)
        else:
            conn.close()

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise LaneError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return _Conn(reader, writer)

    def close(self) -> None:
        """Close the idle connections (those in use close when their call ends)."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()


class _Questions:
    """Watches a call's SSE answer as it arrives and hands on each request the instance sends."""

    __slots__ = ("_pending", "_seen")

    def __init__(self, seen: Callable[[dict[str, Any]], None]) -> None:
        self._seen = seen
        self._pending = b""

    def feed(self, data: bytes) -> None:
        # Unlike _from_sse (the whole body, at its end), events here are handled while the stream
        # is open: the instance waits for the answer before it can end its call.
        text = (self._pending + data).replace(b"\r\n", b"\n")
        *events, self._pending = text.split(b"\n\n")
        for event in events:
            lines = event.decode(errors="replace").split("\n")
            payload = "\n".join(line[5:].lstrip(" ") for line in lines if line.startswith("data:"))
            try:
                message = json.loads(payload) if payload.strip() else None
            except ValueError:
                continue
            if isinstance(message, dict) and "method" in message and "id" in message:
                self._seen(message)


def _from_sse(raw: bytes, rid: int) -> Any:
    """The JSON-RPC message answering ``rid`` in an SSE body (progress and logs skipped)."""
    for event in raw.decode().replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:"))
        if data.strip():
            message = json.loads(data)
            if isinstance(message, dict) and message.get("id") == rid:
                return message
    raise ValueError("no answer to the request in the event stream")


def _result(status: int, message: Any) -> dict[str, Any]:
    from mcp.shared.exceptions import MCPError

    if isinstance(message, dict) and isinstance(message.get("result"), dict):
        result: dict[str, Any] = message["result"]
        return result
    if isinstance(message, dict) and isinstance(message.get("error"), dict):
        error = message["error"]
        raise MCPError(
            code=int(error.get("code", -32603)), message=str(error.get("message", "")), data=error.get("data")
        )
    raise LaneError(f"the instance answered HTTP {status} without a JSON-RPC result")
