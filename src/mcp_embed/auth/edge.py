"""Renderers for an authenticating edge: an nginx config, and the API-key include it reads.

``render_nginx`` writes no secret: API keys live in the include file that ``render_key_map``
produces (``mcp-embed edge nginx-keys``, mode 0600), and the ``/metrics`` password in an
htpasswd file the operator creates.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from .._version import __version__
from ..admission import ANY, admitted
from .config import PRM_PATH, VERIFY_PATH, ApiKeyConfig, OAuthConfig

if TYPE_CHECKING:
    from ..config import McpHttpConfig

__all__ = ["Balance", "NginxOptions", "render_key_map", "render_nginx", "write_private"]

_RATE = re.compile(r"^\d+r/[sm]$")

Balance = Literal["affinity", "round-robin"]
"""How nginx spreads requests over several upstreams: by ``Mcp-Session-Id``, or in turn."""
_BALANCES: tuple[Balance, ...] = ("affinity", "round-robin")

# With several upstreams: a replica that fails this often within this time is skipped for that
# long; a connection attempt that takes longer than this counts as failed.
_MAX_FAILS = 2
_FAIL_TIMEOUT = "10s"
_CONNECT_TIMEOUT = "5s"


@dataclass(frozen=True)
class NginxOptions:
    """Where nginx listens and what it fronts. Everything else comes from the server's config."""

    upstream: str | Sequence[str] = "127.0.0.1:8765"
    """host:port of the mcp-embed server as nginx reaches it (``mcp:8765`` in docker-compose), or
    several, one per replica (``("10.0.0.5:8765", "10.0.0.6:8765")``). ``upstreams`` is the tuple."""
    listen: str | None = None
    """nginx's ``listen`` address: ``443``, ``0.0.0.0:8443``... Default: 443 with TLS, else 80."""
    server_name: str | None = None
    """Default: the host of ``public_url``, else ``_`` (any)."""
    tls_cert: str | None = None
    tls_key: str | None = None
    keys_file: str = "/etc/nginx/mcp-embed/keys.map"
    """The API-key include (``mcp-embed edge nginx-keys`` writes it)."""
    metrics_htpasswd: str = "/etc/nginx/mcp-embed/metrics.htpasswd"
    rate: str = "10r/s"
    """``limit_req`` rate per client address on the MCP routes (``Nr/s`` or ``Nr/m``)."""
    burst: int = 20
    read_timeout: str = "1h"
    """How long an idle stream (SSE, a slow tool) may stay open."""
    oauth_verify_url: str | None = None
    """Where ``auth_request`` checks OAuth tokens. Default: the server's own verifier."""
    balance: Balance | None = None
    """With several upstreams: ``"affinity"`` (``hash $http_mcp_session_id consistent``: one session
    id always reaches one replica) or ``"round-robin"``. Default: affinity in stateful mode,
    round-robin in stateless mode."""
    extra_comments: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("tls_cert", "tls_key", "keys_file", "metrics_htpasswd"):  # pathlib.Path welcome
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        if not isinstance(self.upstream, str):  # a list welcome; kept as a tuple (hashable)
            object.__setattr__(self, "upstream", tuple(self.upstream))
            if not self.upstream or not all(isinstance(u, str) for u in self.upstream):
                raise ValueError("upstream needs one host:port string or several")
            twice = sorted({u for u in self.upstream if self.upstream.count(u) > 1})
            if twice:
                raise ValueError(f"upstream {twice[0]!r} is listed twice")
        if self.balance is not None and self.balance not in _BALANCES:
            raise ValueError(f"balance {self.balance!r} must be one of {', '.join(_BALANCES)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        if not _RATE.match(self.rate):
            raise ValueError(f"rate {self.rate!r} must look like 10r/s or 60r/m")
        if self.burst < 0:
            raise ValueError("burst must be 0 or more")
        checked = [("upstream", u) for u in self.upstreams]
        for name in ("listen", "server_name", "tls_cert", "tls_key", "keys_file", "metrics_htpasswd"):
            checked.append((name, getattr(self, name)))
        for name, value in checked:
            if value is not None and (not value or any(c in value for c in ";{}\"'\n\r\t ")):
                raise ValueError(f"{name} {value!r} has characters nginx would misread")

    @property
    def upstreams(self) -> tuple[str, ...]:
        """``upstream`` as a tuple: one host:port per replica."""
        return (self.upstream,) if isinstance(self.upstream, str) else tuple(self.upstream)

    def balance_for(self, config: McpHttpConfig) -> Balance:
        """``balance``, or the default for ``config``: affinity unless stateless or one upstream."""
        if self.balance is not None:
            return self.balance
        return "round-robin" if config.stateless or len(self.upstreams) == 1 else "affinity"


def _var(header: str) -> str:
    return "$http_" + header.lower().replace("-", "_")


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_nginx(config: McpHttpConfig, options: NginxOptions | None = None) -> str:
    """A complete nginx ``http {}``-level config (upstream, maps, one ``server``) for ``config``."""
    o = options or NginxOptions()
    auth = config.auth
    tls = o.tls_cert is not None
    listen = o.listen or ("443" if tls else "80")
    server_name = (
        o.server_name or (urlsplit(config.public_url).hostname if config.public_url else None) or "_"
    )
    path = config.endpoint_path
    if config.public_url:
        prm = config.public_url + PRM_PATH + path
        base_note = f"public_url {config.public_url}"
    else:
        prm = "$scheme://$http_host" + PRM_PATH + path
        base_note = "no public_url: the metadata URL is built from the request's scheme and Host"
    # The origins the server itself admits (mcp_embed.admission), those nginx can match exactly.
    admits = admitted(config)
    cors = tuple(c for c in admits.origins if c != ANY and not c.endswith(":*")) if config.enable_cors else ()
    any_origin = config.enable_cors and admits.any_origin
    max_body = config.max_body_bytes

    out: list[str] = []
    w = out.append
    w(f"# nginx edge for the mcp-embed server {config.server_name!r}, rendered by mcp-embed {__version__}")
    w("# (`mcp-embed edge nginx`). Regenerate it from the server's config rather than editing it.")
    w("#")
    w("# Include it inside nginx's http {} block, e.g. as /etc/nginx/conf.d/mcp-embed.conf.")
    w("# It holds no secret: API keys are in the include file written by `mcp-embed edge nginx-keys`")
    w("# (mode 0600), the /metrics password in an htpasswd file you create.")
    if auth is None:
        w("#")
        w("# WARNING: the config has no auth setting, so this proxy lets every request through.")
    elif auth.enforce == "native":
        w("#")
        w("# auth enforce='native': the server checks credentials itself; nginx only forwards them.")
    for c in o.extra_comments:
        w(f"# {c}")
    w("")
    w("# Requests per client address on the MCP routes; over the limit: 429.")
    w(f"limit_req_zone $binary_remote_addr zone=mcp_embed:10m rate={o.rate};")
    w("")
    edge_keys = isinstance(auth, ApiKeyConfig) and auth.enforce == "edge"
    edge_oauth = isinstance(auth, OAuthConfig) and auth.enforce == "edge"
    if edge_keys:
        assert isinstance(auth, ApiKeyConfig)
        w(f"# API keys: {auth.header} -> key id (empty: no valid key). The entries are case-sensitive")
        w(f"# regular expressions in {o.keys_file}, written by `mcp-embed edge nginx-keys`.")
        w(f"map {_var(auth.header)} $mcp_embed_key_id {{")
        w('    default "";')
        w(f"    include {o.keys_file};")
        w("}")
        w("")
    if cors or any_origin:
        w("# CORS: browser origins allowed to call the server (an empty value sends no header).")
        w("map $http_origin $mcp_embed_cors_origin {")
        w('    default "";')
        if any_origin:
            w('    "~." "*";')
        for origin in cors:
            w(f"    {_q(origin)} $http_origin;")
        w("}")
        w("")
    upstreams = o.upstreams
    several = len(upstreams) > 1
    balance = o.balance_for(config)
    if several or o.balance is not None:
        w(f"# {len(upstreams)} replica{'s' if several else ''}, balance {balance}:")
        if balance == "affinity":
            w("# session affinity: requests carrying the same Mcp-Session-Id reach the same replica (a")
            w("# consistent hash; those without one, the initialize among them, go round-robin). The")
            w("# replica a session id hashes to need not be the one that created it, so the replicas")
            w("# must share session state (redis_url): affinity is an optimisation, not a requirement.")
        elif config.stateless:
            w("# round-robin: stateless mode keeps no session, so any replica serves any request.")
        else:
            w("# round-robin without affinity: the replicas must share session state (redis_url), or a")
            w("# session created on one replica is unknown to the others.")
    if several:
        w(f"# A replica failing {_MAX_FAILS} times within {_FAIL_TIMEOUT} is skipped for {_FAIL_TIMEOUT}.")
    w("upstream mcp_embed {")
    if balance == "affinity":
        w("    hash $http_mcp_session_id consistent;")  # before keepalive, as nginx requires
    for upstream in upstreams:
        if several:
            w(f"    server {upstream} max_fails={_MAX_FAILS} fail_timeout={_FAIL_TIMEOUT};")
        else:
            w(f"    server {upstream};")
    w("    keepalive 32;")
    w("}")
    w("")
    w("server {")
    w(f"    listen {listen}{' ssl' if tls else ''};")
    w(f"    server_name {server_name};")
    if tls:
        w(f"    ssl_certificate {o.tls_cert};")
        w(f"    ssl_certificate_key {o.tls_key};")
        w("    ssl_protocols TLSv1.2 TLSv1.3;")
        w("    ssl_session_cache shared:mcp_embed_tls:10m;")
    else:
        w("    # Plain HTTP: terminate TLS in front of this (a load balancer), or render with --tls-cert.")
    w(f"    # The server refuses bodies over max_body_bytes ({max_body}); nginx refuses them first.")
    w(f"    client_max_body_size {max_body};")
    w("    server_tokens off;")
    if several:
        w("    # A replica that is down or unreachable is skipped: the request goes to the next one.")
        w("    # Without non_idempotent, a POST already sent to a replica is never sent to another")
        w("    # (a tool call must not run twice); GETs are retried.")
        w("    proxy_next_upstream error timeout;")
        w(f"    proxy_connect_timeout {_CONNECT_TIMEOUT};")
    w("")

    explained: set[str] = set()

    def note(key: str, *lines: str) -> None:
        if key not in explained:  # explain a block the first time it appears
            explained.add(key)
            for line in lines:
                w(f"        # {line}")

    def proxy(principal: str | None, *, strip_authorization: bool = False, stream: bool = False) -> None:
        w("        proxy_pass http://mcp_embed;")
        note(
            "proxy",
            "HTTP/1.1 with keep-alive to the upstream, and the Host the client used (the server's",
            "Host/Origin guard checks it against public_url). X-Forwarded-* and X-User-Id (who",
            "called, for the audit log and rate limit) are believed only from trusted_proxies.",
        )
        w("        proxy_http_version 1.1;")
        w('        proxy_set_header Connection "";')
        w("        proxy_set_header Host $http_host;")
        w("        proxy_set_header X-Real-IP $remote_addr;")
        w("        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
        w("        proxy_set_header X-Forwarded-Proto $scheme;")
        w("        proxy_set_header X-Forwarded-Host $http_host;")
        w(f"        proxy_set_header X-User-Id {principal or chr(34) * 2};  # never the client's own")
        if strip_authorization:
            w('        proxy_set_header Authorization "";  # the key stops here')
        if stream:
            note("stream", "Streamable HTTP and SSE: pass every event on at once, keep idle streams open.")
            w("        proxy_buffering off;")
            w("        proxy_request_buffering off;")
            w("        proxy_cache off;")
            w(f"        proxy_read_timeout {o.read_timeout};")
            w(f"        proxy_send_timeout {o.read_timeout};")

    def cors_headers(indent: str = "        ") -> None:
        if cors or any_origin:
            w(f"{indent}proxy_hide_header Access-Control-Allow-Origin;")
            w(f"{indent}proxy_hide_header Access-Control-Expose-Headers;")
            w(f"{indent}add_header Access-Control-Allow-Origin $mcp_embed_cors_origin always;")
            w(
                f'{indent}add_header Access-Control-Expose-Headers "Mcp-Session-Id, Mcp-Protocol-Version, '
                'WWW-Authenticate" always;'
            )
            w(f"{indent}add_header Vary Origin always;")

    w("    location = /health {  # open: load balancers and HEALTHCHECKs probe it")
    proxy(None)
    w("        access_log off;")
    w("    }")
    w("")
    w(f"    location ^~ {PRM_PATH} {{  # RFC 9728 metadata: open, clients read it after a 401")
    proxy(None)
    w("    }")
    w("")
    w("    location = /metrics {  # Prometheus: HTTP Basic (create the file with `htpasswd -c`)")
    w('        auth_basic "mcp-embed metrics";')
    w(f"        auth_basic_user_file {o.metrics_htpasswd};")
    proxy(None)
    w("    }")
    w("")

    routes = [f"= {path}"]
    if config.enable_sse:
        routes += ["= /sse", "^~ /messages/"]
    principal: str | None = None
    if edge_keys:
        principal = "$mcp_embed_key_id"
    elif edge_oauth:
        principal = "$mcp_embed_principal"
    for route in routes:
        w(f"    location {route} {{")
        if cors or any_origin:
            note("preflight", "CORS preflight, answered here before any credential check.")
            w("        if ($request_method = OPTIONS) {")
            w("            add_header Access-Control-Allow-Origin $mcp_embed_cors_origin always;")
            w('            add_header Access-Control-Allow-Methods "GET, POST, DELETE, OPTIONS" always;')
            w("            add_header Access-Control-Allow-Headers")
            w("                $http_access_control_request_headers always;")
            w("            add_header Access-Control-Max-Age 600 always;")
            w("            add_header Vary Origin always;")
            w("            return 204;")
            w("        }")
        w(f"        limit_req zone=mcp_embed burst={o.burst} nodelay;")
        w("        limit_req_status 429;")
        if edge_keys or edge_oauth:
            note("auth", "Every request is checked (after the rate limit) by the internal location below.")
            w("        auth_request /_mcp_embed_auth;")
            if edge_oauth:
                w("        auth_request_set $mcp_embed_principal $upstream_http_x_mcp_principal;")
                w("        auth_request_set $mcp_embed_www $upstream_http_www_authenticate;")
                w("        error_page 403 = @mcp_embed_403;")
            w("        error_page 401 = @mcp_embed_401;")
        proxy(principal, strip_authorization=edge_keys, stream=True)
        cors_headers()
        w("    }")
        w("")

    if edge_keys:
        w("    location = /_mcp_embed_auth {  # the API-key check: 204 or 401")
        w("        internal;")
        w('        if ($mcp_embed_key_id = "") {')
        w("            return 401;")
        w("        }")
        w("        return 204;")
        w("    }")
        w("")
    if edge_oauth:
        verify = o.oauth_verify_url or f"http://mcp_embed{VERIFY_PATH}"
        w("    location = /_mcp_embed_auth {  # OAuth: the token is checked by the verifier (204/401/403)")
        w("        internal;")
        w(f"        proxy_pass {verify};")
        w("        proxy_pass_request_body off;")
        w('        proxy_set_header Content-Length "";')
        w("        proxy_http_version 1.1;")
        w('        proxy_set_header Connection "";')
        w("        proxy_set_header Host $http_host;")
        w("        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
        w("        proxy_set_header X-Forwarded-Proto $scheme;")
        w("        proxy_set_header X-Forwarded-Host $http_host;")
        w("        proxy_set_header X-Original-URI $request_uri;")
        w("    }")
        w("")
    if edge_keys or edge_oauth:
        scheme = auth.scheme if isinstance(auth, ApiKeyConfig) and auth.scheme else "Bearer"
        static = f'{scheme} resource_metadata="{prm}"'
        www = f"'{static}'" if "'" not in static else _q(static)  # single quotes keep the inner ones
        w(f"    # 401: the RFC 6750 / RFC 9728 challenge that starts a client's discovery ({base_note}).")
        w("    location @mcp_embed_401 {")
        if edge_oauth:
            w("        # auth_request passes the verifier's WWW-Authenticate on a 401 by itself.")
        else:
            w(f"        add_header WWW-Authenticate {www} always;")
        cors_headers()
        w("        default_type application/json;")
        w(f"        return 401 '{_error_body('Unauthorized')}';")
        w("    }")
        w("")
        if edge_oauth:
            w("    location @mcp_embed_403 {  # a valid token without the required scopes")
            w("        add_header WWW-Authenticate $mcp_embed_www always;")
            cors_headers()
            w("        default_type application/json;")
            w(f"        return 403 '{_error_body('Forbidden')}';")
            w("    }")
            w("")
    w("    location / {  # nothing else is served")
    w("        return 404;")
    w("    }")
    w("}")
    return "\n".join(out) + "\n"


def _error_body(message: str) -> str:
    return '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"' + message + '"}}'


def _regex_literal(text: str) -> str:
    """``text`` (token68 characters only) as a PCRE literal, with no backslash for nginx to misread."""
    return "".join(f"[{c}]" if c in ".+" else c for c in text)


def render_key_map(auth: ApiKeyConfig, environ: Mapping[str, str] | None = None) -> str:
    """The ``map`` entries for the API keys of ``auth`` (reading env vars and files now).

    Each key becomes a case-sensitive regular expression (nginx matches plain map strings
    case-insensitively, which would weaken a key) mapping to its id. This output is a secret.
    """
    lines = [
        "# mcp-embed API keys for nginx (`mcp-embed edge nginx-keys`). SECRET: keep it mode 0600.",
        f"# Header {auth.header}{', scheme ' + auth.scheme if auth.scheme else ''}; value -> key id.",
    ]
    for kid, key in auth.resolve(environ):
        if auth.scheme:
            pattern = f"~^(?i:{_regex_literal(auth.scheme)})[ ]+{_regex_literal(key)}$"
        else:
            pattern = f"~^{_regex_literal(key)}$"
        lines.append(f'"{pattern}" "{kid}";')
    return "\n".join(lines) + "\n"


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (also when the file already existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if sys.platform != "win32":  # no os.fchmod on Windows before 3.13; there the ACL applies
            os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
