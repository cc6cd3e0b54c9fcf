"""Each MCP client's own config form for this server, and where each client keeps its config file.

``mcp-embed serve`` prints these forms; ``mcp-embed install CLIENT`` merges one into the client's
file. Every form was checked against the client's own documentation (linked per client below).
A configured API key is never written out: each form names an environment variable (or, for VS
Code, a password prompt) that the client fills in, and :func:`key_hint` says where the key lives.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CLIENTS",
    "DEFAULT_URL",
    "KeyRef",
    "claude_mcp_add",
    "config_path",
    "document",
    "entry",
    "entry_url",
    "key_ref",
    "render_all",
    "servers_key",
]

DEFAULT_URL = "http://127.0.0.1:8765/mcp"
CLIENTS = ("claude-code", "claude-desktop", "cursor", "vscode", "windsurf")
LABELS = {
    "claude-code": "Claude Code",
    "claude-desktop": "Claude Desktop (stdio only: through mcp-remote)",
    "cursor": "Cursor",
    "vscode": "VS Code (GitHub Copilot agent mode)",
    "windsurf": "Windsurf",
}
DEFAULT_KEY_ENV = "MCP_EMBED_API_KEY"
# mcp-remote reads the whole header value from this variable, so no space sits in the argument
# list (Cursor and Claude Desktop on Windows do not escape spaces in args; mcp-remote's README).
REMOTE_HEADER_ENV = "MCP_EMBED_AUTH_HEADER"
KEY_PLACEHOLDER = "<your API key>"


@dataclass(frozen=True)
class KeyRef:
    """How a client sends the API key, without the key: the header, its scheme, the variable."""

    header: str = "Authorization"
    scheme: str = "Bearer"
    env: str = DEFAULT_KEY_ENV
    """The environment variable the client reads the key from."""
    where: str = ""
    """Where the key itself is to be found (never the key)."""

    def value(self, ref: str) -> str:
        return f"{self.scheme} {ref}" if self.scheme else ref


def key_ref(auth: Any) -> KeyRef | None:
    """The :class:`KeyRef` for an ``ApiKeyConfig`` (duck-typed), or None for no auth or OAuth."""
    if auth is None or not hasattr(auth, "all_keys"):
        return None  # OAuth: the clients sign in themselves (RFC 9728 metadata), no header to give
    env = auth.key_env or DEFAULT_KEY_ENV
    if auth.key_env:
        where = f"the server reads it from its environment variable {auth.key_env}"
    elif auth.key_file:
        where = f"the server reads it from the file {auth.key_file}"
    elif auth.keys:
        ids = ", ".join(k.id for k in auth.keys)
        where = f"use one of the server's keys (ids: {ids}); give each client its own"
    elif auth.key is not None:
        where = "it is the key given to ApiKeyConfig(key=...) in the host application"
    else:
        where = "the authenticating proxy holds the keys (mcp-embed edge nginx-keys renders them)"
    return KeyRef(header=auth.header, scheme=auth.scheme, env=env, where=where)


def input_id(name: str) -> str:
    return f"{name}-api-key"


def entry(client: str, url: str, key: KeyRef | None = None, *, name: str = "") -> dict[str, Any]:
    """The server's entry in ``client``'s config (the value under its name)."""
    if client == "claude-code":
        # https://code.claude.com/docs/en/mcp: .mcp.json, "type": "http", ${VAR} expanded in headers
        out: dict[str, Any] = {"type": "http", "url": url}
        if key:
            out["headers"] = {key.header: key.value("${" + key.env + "}")}
        return out
    if client == "cursor":
        # https://cursor.com/docs/mcp: "url" (+ "headers"), ${env:NAME} interpolated
        out = {"url": url}
        if key:
            out["headers"] = {key.header: key.value("${env:" + key.env + "}")}
        return out
    if client == "windsurf":
        # https://docs.windsurf.com/windsurf/cascade/mcp: remote servers take "serverUrl"; headers
        # interpolate ${env:NAME}
        out = {"serverUrl": url}
        if key:
            out["headers"] = {key.header: key.value("${env:" + key.env + "}")}
        return out
    if client == "vscode":
        # https://code.visualstudio.com/docs/copilot/reference/mcp-configuration: top-level
        # "servers", "type": "http", headers may use ${input:id} (a password prompt in "inputs")
        out = {"type": "http", "url": url}
        if key:
            out["headers"] = {key.header: key.value("${input:" + input_id(name) + "}")}
        return out
    if client == "claude-desktop":
        # Claude Desktop's claude_desktop_config.json starts stdio servers only
        # (https://modelcontextprotocol.io/quickstart/user); https://github.com/geelen/mcp-remote
        # bridges: "--header", "Name:${VAR}" with the value in "env".
        args = ["-y", "mcp-remote", url]
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            args.append("--allow-http")
        out = {"command": "npx", "args": args}
        if key:
            args += ["--header", f"{key.header}:${{{REMOTE_HEADER_ENV}}}"]
            out["env"] = {REMOTE_HEADER_ENV: key.value(KEY_PLACEHOLDER)}
        return out
    raise ValueError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")


def servers_key(client: str) -> str:
    """The top-level key that maps server names to entries in ``client``'s file."""
    return "servers" if client == "vscode" else "mcpServers"


def vscode_input(name: str) -> dict[str, Any]:
    return {
        "type": "promptString",
        "id": input_id(name),
        "description": f"API key for the {name} MCP server",
        "password": True,
    }


def document(client: str, name: str, url: str, key: KeyRef | None = None) -> dict[str, Any]:
    """A whole config file holding only this server, as the client's documentation shows it."""
    doc: dict[str, Any] = {servers_key(client): {name: entry(client, url, key, name=name)}}
    if client == "vscode" and key:
        doc = {"inputs": [vscode_input(name)], **doc}
    return doc


def entry_url(entry_value: Any) -> str | None:
    """The URL an existing entry points at (any client's form), or None if it names no URL."""
    if not isinstance(entry_value, Mapping):
        return None
    for field in ("url", "serverUrl"):
        if isinstance(entry_value.get(field), str):
            return str(entry_value[field])
    args = entry_value.get("args")
    if isinstance(args, list) and "mcp-remote" in args:
        i = args.index("mcp-remote") + 1
        if i < len(args) and isinstance(args[i], str):
            return str(args[i])
    return None


def claude_mcp_add(name: str, url: str, key: KeyRef | None = None) -> str:
    """The ``claude mcp add`` command line (https://code.claude.com/docs/en/mcp)."""
    cmd = f"claude mcp add --transport http {name} {url}"
    if key:
        cmd += f' --header "{key.header}: {key.value("$" + key.env)}"'
    return cmd


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2)


def render_all(name: str, url: str, key: KeyRef | None = None) -> str:
    """What ``mcp-embed serve`` prints: each client's own form, labelled."""
    out = ["Client configs (or let `mcp-embed install CLIENT` merge one into the client's file):"]
    out.append(f"\n{LABELS['claude-code']}: run\n  {claude_mcp_add(name, url, key)}")
    out.append("or check this into the project as .mcp.json:")
    out.append(dumps(document("claude-code", name, url, key)))
    for client, where in (
        ("cursor", "~/.cursor/mcp.json, or .cursor/mcp.json in a project"),
        ("vscode", ".vscode/mcp.json in the workspace, or the user mcp.json"),
        ("windsurf", "~/.codeium/windsurf/mcp_config.json"),
        ("claude-desktop", "claude_desktop_config.json; needs Node >= 18"),
    ):
        out.append(f"\n{LABELS[client]} ({where}):")
        out.append(dumps(document(client, name, url, key)))
    if key:
        out.append(
            f"\nAPI key: the configs above never hold it. Set {key.env} in the environment the client "
            "starts from (Claude Code, Cursor, Windsurf); VS Code prompts for it once; for Claude "
            f"Desktop, replace {KEY_PLACEHOLDER} in its env block. Where to find the key: {key.where}."
        )
    return "\n".join(out)


def config_path(
    client: str,
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    cwd: Path | None = None,
) -> Path:
    """The file ``mcp-embed install`` writes for ``client``, in the place the client documents."""
    plat = sys.platform if platform is None else platform
    env = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    cwd = Path.cwd() if cwd is None else cwd

    def appdata() -> Path:
        return Path(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"

    if client == "claude-code":
        return cwd / ".mcp.json"  # the project scope Claude Code documents (`--scope project`)
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    if client == "windsurf":
        return home / ".codeium" / "windsurf" / "mcp_config.json"
    if client == "claude-desktop":
        if plat == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if plat == "win32":
            return appdata() / "Claude" / "claude_desktop_config.json"
        return home / ".config" / "Claude" / "claude_desktop_config.json"
    if client == "vscode":  # the user profile's mcp.json ("MCP: Open User Configuration")
        if plat == "darwin":
            return home / "Library" / "Application Support" / "Code" / "User" / "mcp.json"
        if plat == "win32":
            return appdata() / "Code" / "User" / "mcp.json"
        return home / ".config" / "Code" / "User" / "mcp.json"
    raise ValueError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
