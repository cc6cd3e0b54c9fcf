"""``mcp-embed install CLIENT``: merge this server into a client's config file, as fastmcp install does.

The file is read, the entry merged (other servers kept), a backup ``<file>.bak`` made of an existing
file, and the result written atomically (a temp file, then ``os.replace``). A file that is not valid
JSON is refused untouched; a server of the same name at another URL is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import clients

__all__ = ["add_install_parser"]


class InstallError(Exception):
    pass


def add_install_parser(sub: Any) -> None:
    p = sub.add_parser(
        "install",
        help="add this server to a client's config file (merged, with a backup)",
        description=(
            "Add this server to CLIENT's config file in its documented place: claude-code writes the "
            "project's .mcp.json in the current folder (Claude Code's project scope; `claude mcp add` "
            "is the alternative serve prints), claude-desktop its claude_desktop_config.json (through "
            "mcp-remote), cursor ~/.cursor/mcp.json, vscode the user mcp.json, windsurf "
            "~/.codeium/windsurf/mcp_config.json."
        ),
    )
    p.add_argument("client", choices=clients.CLIENTS)
    p.add_argument("--url", default=None, help=f"the server's MCP URL (default {clients.DEFAULT_URL})")
    p.add_argument("--name", default=None, help="the server's name in the client (default: the server name)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the resulting file and its path; write nothing"
    )
    p.add_argument("--force", action="store_true", help="replace a same-named server that has another URL")
    p.set_defaults(func=_install)


def _install(args: argparse.Namespace) -> int:
    from .. import ConfigError, McpHttpConfig

    try:
        config = McpHttpConfig.from_env()
    except ConfigError as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    name = args.name or config.server_name
    url = args.url or clients.DEFAULT_URL
    key = clients.key_ref(config.auth)
    path = clients.config_path(args.client)
    try:
        doc = merge(_read(path), args.client, name, url, key, force=args.force)
    except InstallError as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(doc, indent=2) + "\n"
    if args.dry_run:
        print(f"{path} would become:")
        print(text, end="")
        return 0
    backup = _write(path, text)
    print(f"mcp-embed: added {name!r} ({url}) to {path}" + (f" (backup: {backup})" if backup else ""))
    if key:
        print(f"The API key is not in the file: {key.where}.")
    return 0


def _read(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    if not raw.strip():
        return None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InstallError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "fix or move it, it was not changed"
        ) from None
    if not isinstance(doc, dict):
        raise InstallError(f"{path} holds a JSON {type(doc).__name__}, not an object; it was not changed")
    return doc


def merge(
    doc: dict[str, Any] | None,
    client: str,
    name: str,
    url: str,
    key: clients.KeyRef | None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """``doc`` with this server's entry added; other servers and keys kept as they were."""
    out = dict(doc or {})
    top = clients.servers_key(client)
    servers = out.get(top, {})
    if not isinstance(servers, dict):
        raise InstallError(f"{top!r} in the config is not an object; it was not changed")
    servers = dict(servers)
    old = servers.get(name)
    if old is not None and not force:
        old_url = clients.entry_url(old)
        if old_url != url:
            what = f"the URL {old_url}" if old_url else "another server"
            raise InstallError(
                f"a server named {name!r} is already configured with {what}: pass --name for another "
                "name, or --force to replace it"
            )
    servers[name] = clients.entry(client, url, key, name=name)
    out[top] = servers
    if client == "vscode" and key:
        inputs = out.get("inputs", [])
        if not isinstance(inputs, list):
            raise InstallError("'inputs' in the config is not a list; it was not changed")
        wanted = clients.vscode_input(name)
        if not any(isinstance(i, dict) and i.get("id") == wanted["id"] for i in inputs):
            out["inputs"] = [*inputs, wanted]
    return out


def _write(path: Path, text: str) -> Path | None:
    """Write ``text`` to ``path`` atomically; back up an existing file first. Returns the backup."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup
