"""CORS for browser clients. The SDK adds none to ``/mcp``.

It answers for exactly the Origins the guard admits (:mod:`mcp_embed.admission`), so a preflight
and the request it announces get the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..._asgi import ASGIApp, Message, Receive, Scope, Send, header
from ...admission import ANY
from ..responses import send_jsonrpc_error
from .guard import Patterns, origin_refused

ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = (
    b"Content-Type, Accept, Authorization, Last-Event-ID, Mcp-Session-Id, Mcp-Protocol-Version, "
    b"Mcp-Method, Mcp-Name, X-Requested-With"
)
EXPOSE_HEADERS = b"Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"


class Cors:
    """Answers preflights and adds CORS headers for ``origins`` (the guard's patterns; ``*``: any)."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        allowed = tuple(origins)
        self.any_origin = ANY in allowed
        self.origins = Patterns(allowed)

    def _allow(self, origin: str) -> bytes | None:
        if self.any_origin:
            return b"*"
        return origin.encode("latin-1") if self.origins.match(origin) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allow = self._allow(origin)
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method") is not None:
            if allow is None:
                await send_jsonrpc_error(send, 403, -32600, origin_refused(origin))
                return
            requested = header(scope, b"access-control-request-headers")
            headers = [
                (b"access-control-allow-origin", allow),
                (b"access-control-allow-methods", ALLOW_METHODS),
                # Mirror what was asked for: covers every Mcp-* header, present and future.
                (
                    b"access-control-allow-headers",
                    requested.encode("latin-1") if requested else ALLOW_HEADERS,
                ),
                (b"access-control-max-age", b"600"),
                (b"content-length", b"0"),
            ]
            if allow != b"*":
                headers.append((b"vary", b"Origin"))
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if allow is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers", ()))
                hdrs.append((b"access-control-allow-origin", allow))
                hdrs.append((b"access-control-expose-headers", EXPOSE_HEADERS))
                if allow != b"*":
                    hdrs.append((b"vary", b"Origin"))
                message["headers"] = hdrs
            await send(message)

        await self.app(scope, receive, send_with_cors)
