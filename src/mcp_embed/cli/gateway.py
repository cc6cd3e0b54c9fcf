"""``mcp-embed gateway``: one MCP server fronting every registered instance, one at a time.

Start it on several hosts at once: the first to bind the port serves, the others wait and take
over when it goes (with ``--redis-url``, a lease in Redis decides first). The configuration comes
from the environment as for ``serve`` (``MCP_EMBED_*``), the flags override it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

from ._stderr import log_to_stderr

if TYPE_CHECKING:
    from ..handle import ServerHandle

__all__ = ["add_gateway_parser"]


def add_gateway_parser(sub: Any) -> None:
    p = sub.add_parser(
        "gateway",
        help="one MCP server fronting every registered instance (with failover)",
        description=(
            "Serve every registered instance's tools from one URL, as <prefix>__<tool> (maya-1__rename), "
            "with list_instances. Several may be started: one serves, the others take over when it goes."
        ),
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1; env MCP_HOST)")
    p.add_argument("--port", type=int, help="port to bind (default 8765; env MCP_PORT)")
    p.add_argument(
        "--redis-url",
        metavar="URL",
        help="read the Redis registry, hold a lease there (default: $MCP_EMBED_REDIS_URL, else local files)",
    )
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="registry poll interval (1)")
    p.add_argument(
        "--retry", type=float, default=1.0, metavar="SECONDS", help="standby: try to take over every (1)"
    )
    p.add_argument(
        "--lease-ttl", type=float, default=5.0, metavar="SECONDS", help="with Redis: the lease's expiry (5)"
    )
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env LOG_LEVEL)")
    p.set_defaults(func=_gateway)


def _gateway(args: argparse.Namespace) -> int:
    from .. import ConfigError, McpHttpConfig
    from ..gateway import create_gateway
    from ..gateway.failover import serve_one_at_a_time
    from ..instances import open_registry

    overrides: dict[str, Any] = {
        k: getattr(args, k) for k in ("host", "port") if getattr(args, k) is not None
    }
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    if args.log_level:
        overrides["log_level"] = args.log_level
    for flag in ("poll", "retry", "lease_ttl"):
        if not getattr(args, flag) > 0:
            print(
                f"mcp-embed: --{flag.replace('_', '-')} must be a positive number of seconds", file=sys.stderr
            )
            return 2
    try:
        config = McpHttpConfig.from_env(**overrides)
        redis_url = config.redis_url.get_secret_value() if config.redis_url else None
        registry = open_registry(redis_url=redis_url)
    except (ConfigError, ImportError) as exc:
        print(f"mcp-embed: {exc}", file=sys.stderr)
        return 2
    log_to_stderr(config.log_level)
    lease = None
    if redis_url:
        from ..gateway.lease import RedisLease

        lease = RedisLease(redis_url, ttl=args.lease_ttl)
    gateway = create_gateway(config, registry=registry, poll_interval=args.poll)

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def standby(reason: str) -> None:
        print(f"mcp-embed gateway: standby: {reason}; trying every {args.retry:g} s", flush=True)

    def serving(handle: ServerHandle) -> None:
        n = len(gateway.instances)
        print(f"mcp-embed gateway: serving {n} instance(s) at {handle.mcp_url()}", flush=True)

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="mcp-embed is listening on", category=RuntimeWarning)
            serve_one_at_a_time(
                gateway, stop, interval=args.retry, lease=lease, on_standby=standby, on_serving=serving
            )
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
        if lease is not None:
            lease.close()
        registry.close()
    print("mcp-embed gateway: stopped", file=sys.stderr, flush=True)
    return 0
