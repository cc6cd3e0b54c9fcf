"""Prometheus metrics at ``/metrics`` (opt-in: ``enable_metrics=True``).

Built with ``prometheus-client`` (the ``metrics`` extra, imported only when metrics are on) on a
registry of this server's own: the host's default registry, and any other server in the same
process, are left alone. Counters are fed from the same events as the audit log. The OpenTelemetry
metrics (``mcp.server.operation.duration``, ``mcp.server.session.duration``) are in ``tracing.py``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import platform
from collections.abc import Callable
from typing import Any

from .._jsonsafe import escape_surrogates

__all__ = ["METRICS_EXTRA_HINT", "Metrics", "check_basic_auth"]

METRICS_EXTRA_HINT = "enable_metrics needs prometheus-client: pip install 'mcp-embed[metrics]'"

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _zero() -> float:
    return 0.0


class Metrics:
    """The metric families of one server. Callbacks feed the gauges that are read, not counted."""

    def __init__(self, *, server_name: str, version: str, known_tool: Callable[[str], bool]) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(METRICS_EXTRA_HINT) from exc

        self._known_tool = known_tool
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        # Read at scrape time; the server and the dispatcher replace them.
        self.sessions_open: Callable[[], float] = _zero
        self.http_in_flight: Callable[[], float] = _zero
        self.tools_in_flight: Callable[[], float] = _zero
        self.main_queue_depth: Callable[[], float] = _zero
        self.main_queue_wait: Callable[[], float] = _zero

        r = self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "mcp_embed_tool_calls", "Tool calls by tool and outcome.", ["tool", "status"], registry=r
        )
        self.duration = Histogram(
            "mcp_embed_tool_call_duration_seconds",
            "Tool call duration, from validation to result.",
            ["tool"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.sessions = Counter(
            "mcp_embed_session_events", "Sessions opened and closed.", ["event"], registry=r
        )
        self.auth_failures = Counter(
            "mcp_embed_auth_failures",
            "Requests refused for a missing or bad credential.",
            ["reason"],
            registry=r,
        )
        self.limited = Counter(
            "mcp_embed_rate_limited", "Requests refused with 429 by the rate limit.", registry=r
        )
        self.audit_records_lost = Counter(
            "mcp_embed_audit_records_lost",
            "Audit records the file refused (a full disk, a failed rotation); each also logged as ERROR.",
            registry=r,
        )
        gauges = {
            "mcp_embed_sessions_open": ("Open MCP sessions, every transport.", lambda: self.sessions_open()),
            "mcp_embed_http_requests_in_flight": (
                "HTTP requests being served, open streams included.",
                lambda: self.http_in_flight(),
            ),
            "mcp_embed_tool_calls_in_flight": ("Tool calls running now.", lambda: self.tools_in_flight()),
            "mcp_embed_main_thread_queue_depth": (
                "Tool calls waiting for the host's main thread.",
                lambda: self.main_queue_depth(),
            ),
            "mcp_embed_main_thread_queue_wait_seconds": (
                "How long the oldest call waiting for the host's main thread has waited.",
                lambda: self.main_queue_wait(),
            ),
        }
        for name, (doc, fn) in gauges.items():
            Gauge(name, doc, registry=r).set_function(fn)
        import mcp_types

        build = Gauge(
            "mcp_embed_build_info",
            "Build information; the value is always 1.",
            ["version", "server", "mcp_sdk", "python"],
            registry=r,
        )
        build.labels(
            version=version,
            server=server_name,
            mcp_sdk=_sdk_version(mcp_types),
            python=platform.python_version(),
        ).set(1)

    # -- events --------------------------------------------------------------------------------------

    def tool_call(self, tool: str, status: str, duration: float) -> None:
        children = self._children.get((tool, status))
        if children is None:
            # Client-chosen names stay bounded; a label must encode as UTF-8 or /metrics fails for good.
            label = escape_surrogates(tool) if self._known_tool(tool) else "_unknown"
            children = (self.calls.labels(label, status), self.duration.labels(label))
            if label != "_unknown" and len(self._children) < 10_000:
                self._children[(tool, status)] = children  # skip labels()' lock and lookups next time
        children[0].inc()
        if status != "denied":
            children[1].observe(duration)

    def session_event(self, event: str) -> None:
        self.sessions.labels(event).inc()

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(escape_surrogates(reason[:40])).inc()

    def audit_lost(self, records: int) -> None:
        self.audit_records_lost.inc(records)

    def rate_limited(self) -> None:
        self.limited.inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _sdk_version(mod: Any) -> str:
    try:
        from importlib.metadata import version

        return version("mcp")
    except Exception:
        return str(getattr(mod, "__version__", "unknown"))


def check_basic_auth(authorization: str | None, expected: str) -> bool:
    """True when an ``Authorization: Basic`` header carries ``expected`` (``user:password``).

    Compared in constant time over the decoded bytes.
    """
    if not authorization or authorization[:6].lower() != "basic ":
        return False
    try:
        given = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected.encode("utf-8"))
