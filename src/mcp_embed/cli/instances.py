"""``mcp-embed instances``: the running servers of this user (or, with Redis, of every machine)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..instances import Instance

__all__ = ["add_instances_parser", "format_age", "format_table"]

_METADATA_WIDTH = 60
_COLUMNS = ("ID", "APP", "HOST", "PID", "URL", "AGE", "METADATA")


def add_instances_parser(sub: Any) -> None:
    p = sub.add_parser(
        "instances",
        help="list the running mcp-embed servers (a table, or --json)",
        description=(
            "List the running mcp-embed servers: those of this user on this machine (files in the "
            "user's runtime folder, or $MCP_EMBED_REGISTRY_DIR), or with --redis-url every instance "
            "registered in that Redis, on any machine. Dead processes and stale records are never listed."
        ),
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of the instance records")
    p.add_argument(
        "--redis-url",
        default=None,
        metavar="URL",
        help="read the Redis registry at URL (default: $MCP_EMBED_REDIS_URL, else the local files)",
    )
    p.set_defaults(func=_instances)


def _instances(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..instances import open_registry

    redis_url = args.redis_url or os.environ.get("MCP_EMBED_REDIS_URL") or None
    try:
        registry = open_registry(redis_url=redis_url)
    except (ConfigError, ImportError, ValueError) as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    try:
        found = registry.list()
    except ConfigError as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    except (ConnectionError, OSError) as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    if args.json:
        print(json.dumps([i.to_json() for i in found], indent=2, ensure_ascii=False))
    elif found:
        print(format_table(found, time.time()))
    else:
        print(f"No running instances in {registry!r}.")
    return 0


def format_age(seconds: float) -> str:
    """``42s``, ``7m``, ``3h``, ``2d``: how long an instance has run, for people."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _metadata(values: Mapping[str, Any]) -> str:
    text = ", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in values.items()
    )
    return text if len(text) <= _METADATA_WIDTH else text[: _METADATA_WIDTH - 3] + "..."


def format_table(instances: Sequence[Instance], now: float) -> str:
    """One line per instance under a header: id, app, host, pid, url, age, metadata."""
    rows = [_COLUMNS] + [
        (i.id, i.app_name, i.host, str(i.pid), i.url, format_age(now - i.started_at), _metadata(i.metadata))
        for i in instances
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
