"""``mcp-embed call``, ``mcp-embed tools`` and ``mcp-embed skills new`` (registered by cli.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..testing import McpTestClient

DEFAULT_URL = "http://127.0.0.1:8765/mcp"


def add_parsers(sub: Any, skills_sub: Any) -> None:
    """Add ``call`` and ``tools`` to the top-level subparsers and ``new`` to ``skills``."""
    c = sub.add_parser(
        "call",
        help="call a tool on a running MCP server (or on skills served for the call) and print the result",
        description="Call one tool. Values given with --arg are converted with the tool's input schema "
        "(integer, number, boolean, array, object and null are read as JSON); everything else is a "
        "string. Exits 1 if the tool answers isError.",
    )
    c.add_argument("tool", help="the tool's name")
    c.add_argument(
        "--arg", action="append", default=[], metavar="KEY=VALUE", help="one argument (repeatable)"
    )
    c.add_argument("--json-args", metavar="JSON", help="the arguments as a JSON object (--arg wins)")
    c.add_argument("--raw", action="store_true", help="print the whole CallToolResult as JSON")
    _target_args(c)
    c.set_defaults(func=_call)

    t = sub.add_parser("tools", help="list the tools of a running MCP server (or of skills) with schemas")
    t.add_argument("--json", action="store_true", help="print the tools/list entries as JSON")
    _target_args(t)
    t.set_defaults(func=_tools)

    n = skills_sub.add_parser("new", help="create a skill folder with one typed tool and its test")
    n.add_argument("name", help="the skill name: a-z, 0-9 and '-', e.g. rename-nodes")
    n.add_argument("--dcc", help="the host it is for: maya, blender, ... (default: generic)")
    n.add_argument("--dir", default=".", metavar="PATH", help="where to create it (default: here)")
    n.add_argument("--tools-yaml", action="store_true", help="also declare the tool in tools.yaml")
    n.add_argument("--description", help="the SKILL.md description (one line)")
    n.set_defaults(func=_skills_new)


def _target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--url", help=f"the server's Streamable HTTP URL (default {DEFAULT_URL}; env MCP_URL)")
    g.add_argument(
        "--skills",
        action="append",
        metavar="PATH",
        help="serve these skill folders or roots on a free loopback port for this command (repeatable)",
    )
    p.add_argument("--app", default="generic", help="with --skills: host name for dcc filtering")
    p.add_argument(
        "--header", action="append", default=[], metavar="NAME:VALUE", help="with --url: an HTTP header"
    )


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[McpTestClient]:
    from ..config import McpHttpConfig
    from ..testing import connect, serve_skills

    if args.skills:
        # The roots `mcp-embed serve --skills` would read (DCC_MCP_* and the user folder included),
        # on a free loopback port, with no log files for a one-shot command.
        paths = [p for raw in args.skills for p in raw.split(os.pathsep) if p]
        config = McpHttpConfig(
            port=0, server_name="mcp-embed-call", dispatcher="inline", enable_file_logging=False
        )
        with serve_skills(*paths, app=args.app, config=config, isolated=False) as client:
            yield client
        return
    headers: dict[str, str] = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise _UsageError(f"--header {h!r}: expected NAME:VALUE")
        headers[name.strip()] = value.strip()
    url = args.url or os.environ.get("MCP_URL") or DEFAULT_URL
    with connect(url, mode="auto", headers=headers or None) as client:
        yield client


class _UsageError(Exception):
    pass


def _run(args: argparse.Namespace, body: Any) -> int:
    """Run ``body(client)``; turn connection and protocol failures into one readable line."""
    import warnings

    from ..testing import InlineDispatchNote, ToolCallError

    warnings.simplefilter("ignore", InlineDispatchNote)
    where = "the skills" if args.skills else (args.url or os.environ.get("MCP_URL") or DEFAULT_URL)
    try:
        with _client(args) as client:
            result: int = body(client)
            return result
    except _UsageError as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    except ToolCallError as exc:
        # The server's message usually names the tool already ("Tool 'x' failed: ...").
        shown = exc.message if exc.tool in exc.message else f"{exc.tool}: {exc.message}"
        print(f"mcp-embed: {shown}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"mcp-embed: {where}: {_describe(exc)}", file=sys.stderr)
        return 1


def _describe(exc: BaseException) -> str:
    """The innermost meaningful message of an exception (groups unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    name = type(exc).__name__
    text = str(exc) or name
    if name in ("ConnectError", "ConnectTimeout", "ConnectionRefusedError", "OSError"):
        return f"cannot connect ({text})"
    if name == "MCPError":
        return text
    if name == "HTTPStatusError":
        return f"HTTP error: {text.splitlines()[0]}"
    return f"{name}: {text}"


def _call(args: argparse.Namespace) -> int:
    from ..testing import ToolCallError, result_text

    def body(client: McpTestClient) -> int:
        tools = {t["name"]: t for t in client.list_tools()}
        if args.tool not in tools:
            shown = ", ".join(sorted(tools)) or "none"
            hint = _other_hosts_hint(args) if not tools else ""
            raise _UsageError(f"no tool {args.tool!r} on {client.url}; tools: {shown}{hint}")
        arguments = parse_arguments(tools[args.tool].get("inputSchema") or {}, args.arg, args.json_args)
        raw = client.call_raw(args.tool, arguments)
        if args.raw:
            print(json.dumps(raw.model_dump(by_alias=True, exclude_none=True, mode="json"), indent=2))
        if raw.is_error:
            raise ToolCallError(args.tool, result_text(raw) or "(no message)", raw)
        if not args.raw:
            print(_format_result(raw, client._value(args.tool, raw)))
        return 0

    return _run(args, body)


def _other_hosts_hint(args: argparse.Namespace) -> str:
    """Why a skills folder serves no tool: its skills are for another host (``dcc:`` in SKILL.md)."""
    if not getattr(args, "skills", None):
        return ""
    from ..skills import discover_skills

    paths = [p for raw in args.skills for p in raw.split(os.pathsep) if p]
    hosts = sorted({d for s in discover_skills(args.app, paths).other_hosts for d in s.dcc})
    if not hosts:
        return ""
    return f" (the skills there are for {', '.join(hosts)}, not {args.app!r}: pass --app {hosts[0]})"


def _format_result(raw: Any, value: Any) -> str:
    """A string result as it is, structured content as indented JSON, other content summarized."""
    if isinstance(value, str):
        return value
    if raw.structured_content is not None or not isinstance(value, list):
        return json.dumps(value, indent=2, ensure_ascii=False)
    parts: list[str] = []
    for block in raw.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(block.text))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        else:
            parts.append(json.dumps(block.model_dump(by_alias=True, exclude_none=True, mode="json")))
    return "\n".join(parts)


def _tools(args: argparse.Namespace) -> int:
    def body(client: McpTestClient) -> int:
        tools = sorted(client.list_tools(), key=lambda t: t["name"])
        if args.json:
            print(json.dumps(tools, indent=2, ensure_ascii=False))
            return 0
        for t in tools:
            print(t["name"])
            desc = (t.get("description") or "").strip()
            if desc:
                print(f"  {desc.splitlines()[0]}")
            schema = t.get("inputSchema") or {}
            props: Mapping[str, Any] = schema.get("properties") or {}
            required = set(schema.get("required") or ())
            for key, prop in props.items():
                mark = "" if key in required else "?"
                print(f"    {key}{mark}: {_type_label(prop)}")
            print(f"  input schema: {json.dumps(schema, separators=(',', ':'))}")
            if t.get("outputSchema"):
                print(f"  output schema: {json.dumps(t['outputSchema'], separators=(',', ':'))}")
        print(f"{len(tools)} tool(s) at {client.url}")
        return 0

    return _run(args, body)


def _type_label(prop: Any) -> str:
    if not isinstance(prop, dict):
        return "any"
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    types = _types(prop)
    label = " | ".join(sorted(types)) if types else "any"
    if "default" in prop:
        label += f" = {json.dumps(prop['default'])}"
    return label


def _types(prop: Mapping[str, Any]) -> set[str]:
    """The JSON types a property schema allows (``type``, ``anyOf``/``oneOf`` arms, ``enum`` values)."""
    out: set[str] = set()
    t = prop.get("type")
    if isinstance(t, str):
        out.add(t)
    elif isinstance(t, list):
        out.update(x for x in t if isinstance(x, str))
    for key in ("anyOf", "oneOf"):
        for arm in prop.get(key) or ():
            if isinstance(arm, dict):
                out |= _types(arm)
    if "enum" in prop and not out:
        for v in prop["enum"]:
            out.add("string" if isinstance(v, str) else "number")
    return out


def parse_arguments(schema: Mapping[str, Any], pairs: list[str], json_args: str | None) -> dict[str, Any]:
    """The call's arguments: ``--json-args`` first, then each ``--arg KEY=VALUE`` converted by the
    property's schema (JSON for integer, number, boolean, array, object and null; else a string)."""
    arguments: dict[str, Any] = {}
    if json_args:
        try:
            loaded = json.loads(json_args)
        except json.JSONDecodeError as exc:
            raise _UsageError(f"--json-args is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise _UsageError("--json-args must be a JSON object")
        arguments.update(loaded)
    props: Mapping[str, Any] = schema.get("properties") or {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"--arg {pair!r}: expected KEY=VALUE")
        arguments[key] = coerce(value, props.get(key), key)
    return arguments


def coerce(value: str, prop: Any, key: str) -> Any:
    """``value`` as the type ``prop`` (a property schema) asks for."""
    types = _types(prop) if isinstance(prop, dict) else set()
    json_types = types & {"integer", "number", "boolean", "array", "object", "null"}
    if not json_types:
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        if "string" in types:
            return value
        wanted = " or ".join(sorted(json_types))
        raise _UsageError(f"--arg {key}: expected {wanted} (as JSON), got {value!r}") from None
    if "string" in types and isinstance(parsed, (int, float, bool)) and not (json_types & _kinds(parsed)):
        return value
    return parsed


def _kinds(v: Any) -> set[str]:
    if isinstance(v, bool):
        return {"boolean"}
    if isinstance(v, int):
        return {"integer", "number"}
    if isinstance(v, float):
        return {"number"}
    return set()


def _skills_new(args: argparse.Namespace) -> int:
    from ..skills.scaffold import new_skill

    try:
        folder = new_skill(
            args.name, args.dir, dcc=args.dcc, tools_yaml=args.tools_yaml, description=args.description
        )
    except (ValueError, FileExistsError) as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    print(f"created {folder}")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(folder)}")
    func = args.name.replace("-", "_")
    print(
        f"\nnext:\n  mcp-embed skills validate {folder}\n"
        f"  pytest {folder / 'tests'}    (pytest comes with: pip install 'mcp-embed[test]')\n"
        f"  mcp-embed call {func}__{func if not func[0].isdigit() else 'tool_' + func} "
        f"--skills {folder} --app {(args.dcc or 'generic').split(',')[0].strip()} --arg text=hi"
    )
    return 0
