"""The authentication layer: pure ASGI, in front of routing (so the fast path is guarded too).

- Serves the RFC 9728 protected-resource metadata at ``/.well-known/oauth-protected-resource``
  and ``/.well-known/oauth-protected-resource<endpoint_path>`` (always open).
- ``enforce="native"``: every request except ``/health``, the well-known routes and a ``/metrics``
  that has its own Basic auth needs a valid credential. Missing or invalid: 401 with an RFC 6750 /
  RFC 9728 challenge; a malformed header: 400; a token without the required scopes: 403
  ``insufficient_scope``. The caller's id goes to ``scope["mcp_embed.principal"]``, where the
  audit log, the rate limit and ``ToolContext.principal`` read it, and to ``scope["user"]``, so a
  session answers only to the principal that opened it. Each client address may fail
  ``auth_failures_burst`` times, then ``auth_failures_per_second``; past that it gets 429.
- ``enforce="edge"``: the proxy checks credentials. The server then answers nginx's
  ``auth_request`` at :data:`VERIFY_PATH` (OAuth), and, when ``trusted_proxies`` is set, refuses
  requests that did not come through the proxy.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from ..._asgi import ASGIApp, Receive, Scope, Send, header
from ..._jsonsafe import escape_surrogates
from ...auth.config import PRM_PATH, VERIFY_PATH, ApiKeyConfig, OAuthConfig, is_loopback_host
from ...logs import get_logger
from ...ops.peer import peer
from ..middleware.ratelimit import TokenBuckets, send_too_many
from ..responses import send_bytes, send_jsonrpc_error
from .native import ApiKeyVerifier, Denied, JwtVerifier, Principal, missing

if TYPE_CHECKING:
    from ...config import McpHttpConfig
    from ...ops.audit import Operations
    from ...ops.peer import TrustedProxies

__all__ = ["AuthLayer", "build_auth_layer", "challenge"]

log = get_logger("auth")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    resource_metadata: str | None,
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
    scheme: str = "Bearer",
) -> str:
    """An RFC 6750 ``WWW-Authenticate`` value with the RFC 9728 ``resource_metadata`` parameter."""
    params = []
    if error:
        params.append(f"error={_quote(error)}")
        if description:
            params.append(f"error_description={_quote(description)}")
    if scope:
        params.append(f"scope={_quote(scope)}")
    if resource_metadata:
        params.append(f"resource_metadata={_quote(resource_metadata)}")
    return f"{scheme} {', '.join(params)}" if params else scheme


class AuthLayer:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        config: McpHttpConfig,
        *,
        proxies: TrustedProxies,
        ops: Operations | None = None,
        api_keys: ApiKeyVerifier | None = None,
        jwt: JwtVerifier | None = None,
    ) -> None:
        assert config.auth is not None
        self.app = app
        self.config = config
        self.auth = config.auth
        self.native = config.auth.enforce == "native"
        self.proxies = proxies
        self.ops = ops
        self.api_keys = api_keys
        self.jwt = jwt
        path = config.endpoint_path
        self.prm_paths = frozenset({PRM_PATH, PRM_PATH + path})
        self.open_paths = frozenset({"/health"})
        if config.metrics_basic_auth is not None:
            self.open_paths |= {"/metrics"}  # it has its own credential
        self.scheme = (
            self.auth.scheme if isinstance(self.auth, ApiKeyConfig) and self.auth.scheme else "Bearer"
        )
        rate = config.auth_failures_per_second
        self.failures = TokenBuckets(rate, config.auth_failures_burst) if self.native and rate else None

    # -- URLs -----------------------------------------------------------------------------------------

    def base_url(self, scope: Scope) -> str:
        """``public_url``, else the address this server is bound to.

        Never a request header: a client that sends ``Host: 127.0.0.1:9`` (or a proxy's
        ``X-Forwarded-Host``) does not make this server another server's resource. Without
        ``public_url``, the Host the client used is echoed only when it names this very socket.
        """
        if self.config.public_url:
            return self.config.public_url
        scheme, names = self._bound(scope)
        given = header(scope, b"host")
        return f"{scheme}://{given if given in names else names[0]}"

    def resource(self, scope: Scope) -> str:
        return self.base_url(scope) + self.config.endpoint_path

    def audiences(self, scope: Scope) -> list[str]:
        """The ``aud`` values a token may carry: ``OAuthConfig.audience``, else this resource.

        Without ``public_url`` (config allows that only on a loopback bind, native enforcement
        and no proxy), the bound socket under each name a local client may use for it.
        """
        if isinstance(self.auth, OAuthConfig) and self.auth.audience:
            return [self.auth.audience]
        path = self.config.endpoint_path
        if self.config.public_url:
            return [self.config.public_url + path]
        scheme, names = self._bound(scope)
        return [f"{scheme}://{name}{path}" for name in names]

    def _bound(self, scope: Scope) -> tuple[str, list[str]]:
        """The scheme and ``host:port`` names of the socket that took this request.

        ``scope["server"]`` is the server's own socket address (hypercorn reads it from the
        socket), so nothing the client sends changes it.
        """
        server = scope.get("server") or (self.config.host, self.config.port)
        host, port = str(server[0]), int(server[1])
        literal = f"[{host}]" if ":" in host else host
        names = [f"{literal}:{port}"]
        if is_loopback_host(host):
            names.append(f"localhost:{port}")
        return ("https" if scope.get("scheme") == "https" else "http"), names

    def metadata_url(self, scope: Scope) -> str:
        return self.base_url(scope) + PRM_PATH + self.config.endpoint_path

    def metadata(self, scope: Scope) -> dict[str, Any]:
        doc: dict[str, Any] = {"resource": self.resource(scope)}
        if isinstance(self.auth, OAuthConfig):
            doc["authorization_servers"] = list(self.auth.advertised_servers)
            if self.auth.required_scopes:
                doc["scopes_supported"] = list(self.auth.required_scopes)
        doc["bearer_methods_supported"] = ["header"]
        doc["resource_name"] = self.config.server_name
        return doc

    # -- ASGI -----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.prm_paths:
            await self._metadata(scope, send)
            return
        if path == VERIFY_PATH:
            await self._verify_endpoint(scope, send)
            return
        if path in self.open_paths:
            await self.app(scope, receive, send)
            return
        if not self.native:
            if self.proxies and not self.proxies.trusts(_client(scope)):
                self._audit(scope, "request did not come through the trusted proxy", 403)
                await send_jsonrpc_error(
                    send, 403, -32001, "Forbidden: this server only accepts requests through its proxy"
                )
                return
            who = peer(scope, self.proxies)[1]  # the proxy's X-User-Id
            if who is not None:
                bind_principal(scope, Principal(who))
            await self.app(scope, receive, send)
            return
        address = None
        if self.failures is not None:
            address = str(peer(scope, self.proxies)[0])
            wait = self.failures.peek(address)
            if wait > 0.0:  # this address failed too often: not even looked at
                if self.ops is not None:
                    self.ops.rate_limited(scope, wait)
                await send_too_many(send, wait)
                return
        try:
            principal = await self.check(scope)
        except Denied as denied:
            if self.failures is not None and address is not None:
                self.failures.take(address)
            self._audit(scope, denied.description, denied.status)
            await self._refuse(scope, send, denied)
            return
        bind_principal(scope, principal)
        await self.app(scope, receive, send)

    async def check(self, scope: Scope) -> Principal:
        """The principal of a request, or :class:`Denied`."""
        if self.api_keys is not None:
            return await self.api_keys.verify(self.api_keys.credential(scope))
        if self.jwt is not None:
            values = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
            if len(values) > 1:
                raise Denied(400, "invalid_request", "more than one Authorization header")
            from .native import bearer_token

            token = bearer_token(values[0].decode("latin-1") if values else None)
            return await self.jwt.verify(token, self.audiences(scope))
        raise missing()

    async def _refuse(self, scope: Scope, send: Send, denied: Denied) -> None:
        www = challenge(
            self.metadata_url(scope),
            error=denied.error,
            description=denied.description,
            scope=denied.scope or self._scopes_hint(),
            scheme=self.scheme,
        )
        what = "Forbidden" if denied.status == 403 else "Unauthorized"
        body = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32001, "message": f"{what}: {denied.description}"},
        }
        await send_bytes(
            send,
            denied.status,
            json.dumps(body, separators=(",", ":")).encode(),
            headers=[(b"www-authenticate", www.encode("latin-1", "replace"))],
        )

    def _scopes_hint(self) -> str | None:
        if isinstance(self.auth, OAuthConfig) and self.auth.required_scopes:
            return " ".join(self.auth.required_scopes)
        return None

    async def _metadata(self, scope: Scope, send: Send) -> None:
        cors = [(b"access-control-allow-origin", b"*")]
        if scope["method"] == "OPTIONS":
            await send_bytes(
                send, 204, b"", headers=[*cors, (b"access-control-allow-methods", b"GET, OPTIONS")]
            )
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_bytes(send, 405, b'{"error":"use GET"}', headers=[(b"allow", b"GET"), *cors])
            return
        body = json.dumps(self.metadata(scope), separators=(",", ":")).encode()
        await send_bytes(send, 200, body, headers=[*cors, (b"cache-control", b"public, max-age=3600")])

    async def _verify_endpoint(self, scope: Scope, send: Send) -> None:
        """For nginx ``auth_request``: a bodiless answer the proxy turns into its own response."""
        if self.jwt is None and self.api_keys is None:
            await send_bytes(send, 404, b'{"error":"no verifier for this auth setting"}')
            return
        try:
            principal = await self.check(scope)
        except Denied as denied:
            www = challenge(
                self.metadata_url(scope),
                error=denied.error,
                description=denied.description,
                scope=denied.scope or self._scopes_hint(),
                scheme=self.scheme,
            )
            # auth_request knows only 2xx, 401 and 403 (anything else becomes a 500): a malformed
            # header is answered 401, its challenge still saying invalid_request.
            status = 401 if denied.status == 400 else denied.status
            await send_bytes(send, status, b"", headers=[(b"www-authenticate", www.encode("latin-1"))])
            return
        who = escape_surrogates(principal.id).encode("utf-8")  # a token's "sub" may hold a lone surrogate
        await send_bytes(send, 204, b"", headers=[(b"x-mcp-principal", who)])

    def _audit(self, scope: Scope, reason: str, status: int) -> None:
        log.info("refused %s %s: %s (%d)", scope.get("method"), scope.get("path"), reason, status)
        if self.ops is not None:
            self.ops.auth_denied(scope, reason, status=status)


def bind_principal(scope: Scope, principal: Principal) -> None:
    """Name the caller for everything below: ``scope["mcp_embed.principal"]`` (audit, rate limit,
    ``ToolContext.principal``, tasks, the back-channel) and ``scope["user"]``, which the SDK's
    session managers compare with the principal that opened a session (404 for anyone else)."""
    scope["mcp_embed.principal"] = principal.id
    # No token in it: the credential is checked here and needs to live nowhere else.
    token = AccessToken(
        token="", client_id=principal.id, scopes=sorted(principal.scopes), subject=principal.id
    )
    scope["user"] = AuthenticatedUser(token)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def build_auth_layer(app: ASGIApp, config: McpHttpConfig, ops: Operations | None) -> ASGIApp:
    """Wrap ``app`` in the auth layer when ``config.auth`` is set (``app.py`` calls this)."""
    auth = config.auth
    if auth is None:
        return app
    from ...ops.peer import TrustedProxies

    proxies = ops.proxies if ops is not None else TrustedProxies(config.trusted_proxies)
    api_keys: ApiKeyVerifier | None = None
    jwt: JwtVerifier | None = None
    if isinstance(auth, OAuthConfig):
        jwt = JwtVerifier(auth)
    elif auth.enforce == "native":
        from ...errors import ServerStartError

        try:
            api_keys = ApiKeyVerifier(auth)
        except ValueError as exc:
            raise ServerStartError(str(exc)) from None
    return AuthLayer(app, config, proxies=proxies, ops=ops, api_keys=api_keys, jwt=jwt)
