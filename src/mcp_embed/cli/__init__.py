"""The ``mcp-embed`` command: a thin layer over the public API."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ._stderr import log_to_stderr


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mcp-embed", description="Embed or run a remote MCP HTTP server.")
    p.add_argument("--version", action="version", version=f"mcp-embed {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="serve skills over Streamable HTTP (/mcp) and HTTP+SSE (/sse)")
    s.add_argument(
        "--app", default="generic", help="host application name for skill filtering (default: generic)"
    )
    s.add_argument("--name", dest="server_name", help="server name reported to clients")
    s.add_argument("--host", help="address to bind (default 127.0.0.1; env MCP_HOST)")
    s.add_argument("--port", type=int, help="port to bind, 0 for any (default 8765; env MCP_PORT)")
    s.add_argument("--public-url", help="URL clients use when a proxy fronts the server (env MCP_PUBLIC_URL)")
    s.add_argument(
        "--cors-origin", action="append", default=None, help="allow this browser origin (repeatable)"
    )
    s.add_argument("--allowed-host", action="append", default=None, help="extra Host header to accept")
    s.add_argument("--allowed-origin", action="append", default=None, help="extra Origin header to accept")
    s.add_argument("--skills", action="append", default=None, metavar="PATH", help="skill folder or root")
    s.add_argument("--stateless", action="store_true", default=None, help="no sessions (scale-out friendly)")
    s.add_argument(
        "--json-response", action="store_true", default=None, help="answer POSTs with JSON, not SSE"
    )
    s.add_argument("--no-sse", dest="enable_sse", action="store_false", default=None, help="no legacy /sse")
    s.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env LOG_LEVEL)")
    s.set_defaults(func=_serve)

    sk = sub.add_parser("skills", help="list and validate skills")
    sks = sk.add_subparsers(dest="skills_command", metavar="SUBCOMMAND", required=True)
    sl = sks.add_parser("list", help="the skills a server would serve, with shadowed and invalid ones")
    sl.add_argument("paths", nargs="*", help="skill folders or roots (before the DCC_MCP_* roots)")
    sl.add_argument("--app", default="generic", help="host name for dcc filtering (default: generic)")
    sl.add_argument("--tools", action="store_true", help="also list every tool with its description")
    sl.set_defaults(func=_skills_list)
    sv = sks.add_parser("validate", help="check skill folders; exits 1 if any has an error")
    sv.add_argument("paths", nargs="+", help="skill folders, or roots holding skill folders")
    sv.set_defaults(func=_skills_validate)

    from .edge import add_edge_parser  # `mcp-embed edge nginx` / `edge nginx-keys`

    add_edge_parser(sub)

    from .install import add_install_parser  # `mcp-embed install CLIENT`

    add_install_parser(sub)

    from .instances import add_instances_parser  # `mcp-embed instances`

    add_instances_parser(sub)

    from .gateway import add_gateway_parser  # `mcp-embed gateway`

    add_gateway_parser(sub)

    from .tools import add_parsers  # skills new, call, tools

    add_parsers(sub, sks)
    return p


def _serve(args: argparse.Namespace) -> int:
    from .. import ConfigError, McpEmbedError, McpHttpConfig, PortInUseError, create_skill_server

    overrides: dict[str, Any] = {}
    for field in ("host", "port", "public_url", "server_name", "stateless", "json_response", "enable_sse"):
        value = getattr(args, field)
        if value is not None:
            overrides[field] = value
    if args.log_level:
        overrides["log_level"] = args.log_level
    if args.cors_origin:
        overrides["enable_cors"] = True
        overrides["cors_origins"] = tuple(args.cors_origin)
    if args.allowed_host:
        overrides["allowed_hosts"] = tuple(args.allowed_host)
    if args.allowed_origin:
        overrides["allowed_origins"] = tuple(args.allowed_origin)
    try:
        config = McpHttpConfig.from_env(**overrides)
    except ConfigError as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    log_to_stderr(config.log_level)

    skill_paths = list(args.skills or [])
    missing = [p for p in skill_paths if not os.path.isdir(p)]
    if missing:  # serving 0 tools from a typo is worse than not starting
        print(f"mcp-embed: --skills {missing[0]}: no such folder", file=sys.stderr)
        return 2
    server = create_skill_server(args.app, config, skill_paths=skill_paths)
    try:
        with warnings.catch_warnings():
            # The exposure warning is logged to stderr already; the CLI shows it once.
            warnings.filterwarnings("ignore", message="mcp-embed is listening on", category=RuntimeWarning)
            handle = server.start()
    except PortInUseError as exc:
        print(f"mcp-embed: {exc.cli_message}", file=sys.stderr)
        return 1
    except McpEmbedError as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 1

    name = config.server_name
    url = handle.mcp_url()
    print(f"mcp-embed {__version__}: {name!r} serving {len(server.registry)} tool(s)", flush=True)
    print(f"  Streamable HTTP: {url}")
    if config.enable_sse:
        print(f"  HTTP+SSE:        {handle.sse_url()}")
    print(f"  Health:          {handle.url}/health")
    from .clients import key_ref, render_all

    print()
    print(render_all(name, url, key_ref(config.auth)))
    print("\nPress Ctrl-C to stop.", flush=True)

    stop_requested = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # The CLI owns this process, so it may handle SIGTERM (containers stop with it).
        signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    try:
        while not stop_requested.is_set() and not handle.wait(0.25):
            pass
    except KeyboardInterrupt:
        pass
    print("\nmcp-embed: stopping", file=sys.stderr, flush=True)
    handle.stop()
    return 0


def _skills_list(args: argparse.Namespace) -> int:
    from ..skills import discover_skills, format_skills_table

    catalog = discover_skills(args.app, args.paths)
    print(format_skills_table(catalog))
    if args.tools and catalog.tools:
        print()
        width = max(len(t.name) for t in catalog.tools)
        for t in sorted(catalog.tools, key=lambda t: t.name):
            summary = (t.description or "").strip().splitlines()[0] if t.description else ""
            print(f"{t.name:<{width}}  {t.execution:<11} {t.affinity:<4}  {summary}")
    return 1 if catalog.errors else 0


def _skills_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..skills import format_problems, validate_skill

    folders: list[Path] = []
    for raw in args.paths:
        p = Path(raw)
        if (p / "SKILL.md").is_file() or not p.is_dir():
            folders.append(p)
        else:  # a root: validate each child that looks like a skill
            folders.extend(sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")))
    errors = 0
    for folder in folders:
        problems = validate_skill(folder)
        n_err = sum(1 for p in problems if p.severity == "error")
        errors += n_err
        status = "ok" if not problems else f"{n_err} error(s), {len(problems) - n_err} warning(s)"
        print(f"{folder}: {status}")
        if problems:
            print(format_problems(problems))
    return 1 if errors else 0
