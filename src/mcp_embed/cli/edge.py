"""``mcp-embed edge nginx`` and ``mcp-embed edge nginx-keys``: render the edge from the server's config."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_edge_parser"]


def add_edge_parser(sub: Any) -> None:
    e = sub.add_parser("edge", help="render an authenticating reverse proxy (nginx) from the server's config")
    es = e.add_subparsers(dest="edge_command", metavar="SUBCOMMAND", required=True)

    n = es.add_parser(
        "nginx",
        help="an nginx config: TLS, bearer check, streaming, rate limit, CORS (holds no secret)",
        description=(
            "Render a complete nginx config (http-level: upstream, maps, one server) from the same "
            "settings the server reads: MCP_EMBED_* / MCP_* variables (--config-from-env, the "
            "default) plus the flags below. Several --upstream render one upstream block over all "
            "the replicas: with session affinity in stateful mode, round-robin in stateless mode "
            "(--balance overrides), a replica that is down skipped, a POST never sent twice."
        ),
    )
    _config_flags(n)
    n.add_argument(
        "--upstream",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help=(
            "host:port nginx proxies to (default: 127.0.0.1:<port>); repeat it for several replicas, "
            "one --upstream each"
        ),
    )
    n.add_argument(
        "--balance",
        choices=("affinity", "round-robin"),
        default=None,
        help=(
            "with several upstreams: affinity (hash on Mcp-Session-Id, a session stays on one "
            "replica) or round-robin (the replicas share session state, or the server is "
            "stateless). Default: affinity in stateful mode, round-robin in stateless mode"
        ),
    )
    n.add_argument("--listen", help="nginx listen address, e.g. 443 or 127.0.0.1:8443 (default 443/80)")
    n.add_argument("--server-name", help="nginx server_name (default: the public URL's host, else _)")
    n.add_argument("--tls-cert", help="path of the TLS certificate (PEM, full chain); omit for plain HTTP")
    n.add_argument("--tls-key", help="path of the TLS private key (PEM)")
    n.add_argument(
        "--keys-file",
        default="/etc/nginx/mcp-embed/keys.map",
        help="the API-key include that `edge nginx-keys` writes (default: %(default)s)",
    )
    n.add_argument(
        "--metrics-htpasswd",
        default="/etc/nginx/mcp-embed/metrics.htpasswd",
        help="htpasswd file guarding /metrics (default: %(default)s)",
    )
    n.add_argument("--rate", default="10r/s", help="limit_req rate per client address (default: %(default)s)")
    n.add_argument("--burst", type=int, default=20, help="limit_req burst (default: %(default)s)")
    n.add_argument("--read-timeout", default="1h", help="how long an idle stream stays open (default: 1h)")
    n.add_argument(
        "--oauth-verify-url", help="auth_request target for OAuth (default: the server's verifier)"
    )
    n.add_argument("--out", help="write here instead of stdout")
    n.set_defaults(func=_nginx)

    k = es.add_parser(
        "nginx-keys",
        help="the API-key map include for nginx (a SECRET file, written mode 0600)",
        description=(
            "Write nginx map entries for the configured API keys (MCP_EMBED_API_KEY, "
            "MCP_EMBED_API_KEY_FILE, MCP_EMBED_API_KEYS or --api-key-env/--api-key-file), read now "
            "from the environment or the key files. The output is a secret: give --out."
        ),
    )
    _config_flags(k)
    k.add_argument("--out", help="write here, mode 0600 (without it the keys go to stdout)")
    k.set_defaults(func=_nginx_keys)


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config-from-env",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start from MCP_EMBED_* / MCP_* variables (default: on)",
    )
    p.add_argument("--port", type=int, help="the server's port (env MCP_PORT)")
    p.add_argument("--public-url", help="the URL clients use (env MCP_PUBLIC_URL)")
    p.add_argument("--cors-origin", action="append", default=None, help="allowed browser origin (repeatable)")
    p.add_argument("--api-key-env", help="API keys: the variable holding the key (enforced by nginx)")
    p.add_argument("--api-key-file", help="API keys: the file holding the key (enforced by nginx)")
    p.add_argument("--api-key-header", help="API keys: the header carrying it (default Authorization)")
    p.add_argument("--oauth-issuer", help="OAuth: the issuer URL (tokens checked through auth_request)")
    p.add_argument("--oauth-scope", action="append", default=None, help="OAuth: a required scope")
    p.add_argument("--no-sse", dest="enable_sse", action="store_false", default=None, help="no /sse routes")


def _config(args: argparse.Namespace) -> Any:
    from ..auth.config import ApiKeyConfig, OAuthConfig
    from ..config import McpHttpConfig

    overrides: dict[str, Any] = {}
    for name in ("port", "public_url", "enable_sse"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.cors_origin:
        overrides["enable_cors"] = True
        overrides["cors_origins"] = tuple(args.cors_origin)
    if args.oauth_issuer:
        overrides["auth"] = OAuthConfig(
            issuer=args.oauth_issuer, required_scopes=tuple(args.oauth_scope or ())
        )
    elif args.api_key_env or args.api_key_file:
        data: dict[str, Any] = (
            {"key_env": args.api_key_env} if args.api_key_env else {"key_file": args.api_key_file}
        )
        if args.api_key_header:
            data["header"] = args.api_key_header
            if args.api_key_header.lower() != "authorization":
                data["scheme"] = ""
        overrides["auth"] = ApiKeyConfig(**data)
    if args.config_from_env:
        return McpHttpConfig.from_env(**overrides)
    return McpHttpConfig(**overrides)


def _emit(text: str, out: str | None, *, private: bool = False) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    from ..auth.edge import write_private

    if private:
        write_private(out, text)
    else:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)


def _nginx(args: argparse.Namespace) -> int:
    from ..auth.edge import NginxOptions, render_nginx
    from ..errors import ConfigError

    try:
        config = _config(args)
        options = NginxOptions(
            upstream=tuple(args.upstream or (f"127.0.0.1:{config.port}",)),
            balance=args.balance,
            listen=args.listen,
            server_name=args.server_name,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            keys_file=args.keys_file,
            metrics_htpasswd=args.metrics_htpasswd,
            rate=args.rate,
            burst=args.burst,
            read_timeout=args.read_timeout,
            oauth_verify_url=args.oauth_verify_url,
        )
    except (ConfigError, ValueError) as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    if config.auth is None:
        print(
            "mcp-embed: warning: no auth is configured (MCP_EMBED_API_KEY*, MCP_EMBED_OAUTH_ISSUER or "
            "--api-key-env/--oauth-issuer), so this proxy lets every request through",
            file=sys.stderr,
        )
    _emit(render_nginx(config, options), args.out)
    if args.out:
        print(f"mcp-embed: wrote {args.out}", file=sys.stderr)
    return 0


def _nginx_keys(args: argparse.Namespace) -> int:
    from ..auth.config import ApiKeyConfig
    from ..auth.edge import render_key_map
    from ..errors import ConfigError

    try:
        config = _config(args)
        if not isinstance(config.auth, ApiKeyConfig):
            raise ConfigError(
                "no API keys are configured: set MCP_EMBED_API_KEY, MCP_EMBED_API_KEY_FILE or "
                "MCP_EMBED_API_KEYS, or pass --api-key-env/--api-key-file"
            )
        if not config.auth.all_keys():
            raise ConfigError(
                "API keys are configured without any key: set MCP_EMBED_API_KEYS or MCP_EMBED_API_KEY"
            )
        text = render_key_map(config.auth)
    except (ConfigError, ValueError) as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    if args.out is None and sys.stdout.isatty():
        print("mcp-embed: refusing to print API keys to a terminal; give --out FILE", file=sys.stderr)
        return 2
    _emit(text, args.out, private=True)
    if args.out:
        print(
            f"mcp-embed: wrote {len(config.auth.all_keys())} key(s) to {args.out} (mode 0600)",
            file=sys.stderr,
        )
    return 0
