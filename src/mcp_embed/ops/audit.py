"""The audit log: one JSON line per tool call, denial and session event.

The request path only builds a small dict and puts it on a queue (no I/O, no hashing, no JSON);
the writer thread of :class:`~mcp_embed.ops.auditlog.AuditLog` formats, hashes, writes and rotates.
Nothing is written on the event loop or on the host's main thread.

:class:`Operations` is the one object the rest of the server talks to: it feeds the audit log,
the metrics and the tool allow-list from the same events, so ``/metrics`` and the audit file
agree by construction.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._asgi import header
from ..logs import get_logger, redact_text
from .allowlist import ToolAllowList
from .auditlog import ERROR_CHARS, AuditLog, args_sha256, canonical_json, default_log_dir, redact_arguments
from .peer import TrustedProxies, peer

if TYPE_CHECKING:
    from .._asgi import Scope
    from ..config import McpHttpConfig
    from .metrics import Metrics

__all__ = [
    "AUDIT_FILE",
    "AuditLog",
    "Operations",
    "args_sha256",
    "canonical_json",
    "default_log_dir",
    "redact_arguments",
]

log = get_logger("audit")

AUDIT_FILE = "audit.jsonl"
# -- the hub ---------------------------------------------------------------------------------------


class Operations:
    """Audit log, metrics and allow-list of one server run, fed from the same events."""

    def __init__(
        self,
        config: McpHttpConfig,
        *,
        log_dir: Path | None,
        metrics: Metrics | None = None,
        allowed_tools: ToolAllowList | None = None,
    ) -> None:
        self.config = config
        self.log_dir = log_dir
        self.metrics = metrics
        self.allow = allowed_tools
        self.proxies = TrustedProxies(config.trusted_proxies)
        self.audit: AuditLog | None = None
        if config.enable_file_logging and log_dir is not None:
            self.audit = AuditLog(
                log_dir / AUDIT_FILE,
                max_bytes=config.log_max_bytes,
                backups=config.log_backups,
                include_arguments=config.audit_arguments,
            )
            if metrics is not None:
                self.audit.on_lost = metrics.audit_lost
        # session id -> (client name, client version), from the legacy handshake
        self._clients: dict[str, tuple[str | None, str | None]] = {}
        # session id -> (remote address, principal) at initialize, repeated on session_close
        self._peers: dict[str, tuple[str | None, str | None]] = {}
        self.in_flight = 0
        self._closers: list[Callable[[], None]] = []

    # -- events --------------------------------------------------------------------------------------

    def allowed(self, tool: str) -> bool:
        return self.allow is None or self.allow.allows(tool)

    @property
    def open_sessions(self) -> int:
        """Sessions opened by ``initialize`` and not closed yet, on every transport."""
        return len(self._clients)

    def client_of(self, session_id: str | None) -> tuple[str | None, str | None]:
        if session_id is None:
            return None, None
        return self._clients.get(session_id, (None, None))

    def tool_call(
        self,
        *,
        tool: str,
        status: str,
        started: float,
        request_id: Any,
        session_id: str | None,
        scope: Scope | None,
        client: tuple[str | None, str | None] | None,
        arguments: Mapping[str, Any] | None,
        error: str | None = None,
        event: str = "tool_call",
    ) -> None:
        duration = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.tool_call(tool, status, duration)
        if self.audit is None:
            return
        remote, principal = peer(scope, self.proxies)
        name, version = client if client is not None else self.client_of(session_id)
        self.audit.write(
            {
                "time": time.time(),
                "event": event,
                "request_id": request_id,
                "session_id": session_id,
                "principal": principal,
                "client_name": name,
                "client_version": version,
                "remote_addr": remote,
                "tool": tool,
                "_args": arguments,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
                "error": error or None,  # masked, redacted and cut in the writer thread
            }
        )

    def session_open(
        self, session_id: str | None, client: tuple[str | None, str | None], scope: Scope | None
    ) -> None:
        who = peer(scope, self.proxies)
        if session_id is not None:
            if len(self._clients) > 100_000:  # bounded even if closes were missed
                self._clients.clear()
                self._peers.clear()
            self._clients[session_id] = client
            self._peers[session_id] = who
        if self.metrics is not None:
            self.metrics.session_event("open")
        self._session_event("session_open", session_id, client, who)

    def session_close(self, session_id: str | None) -> None:
        client = self._clients.pop(session_id, (None, None)) if session_id else (None, None)
        who = self._peers.pop(session_id, (None, None)) if session_id else (None, None)
        if self.metrics is not None:
            self.metrics.session_event("close")
        self._session_event("session_close", session_id, client, who)

    def _session_event(
        self,
        event: str,
        session_id: str | None,
        client: tuple[str | None, str | None],
        who: tuple[str | None, str | None],
    ) -> None:
        if self.audit is None:
            return
        remote, principal = who
        self.audit.write(
            {
                "time": time.time(),
                "event": event,
                "request_id": None,
                "session_id": session_id,
                "principal": principal,
                "client_name": client[0],
                "client_version": client[1],
                "remote_addr": remote,
                "status": "ok",
            }
        )

    def auth_denied(self, scope: Scope | None, reason: str, *, status: int = 401) -> None:
        """Record a refused credential. The authentication layer calls this; never pass the credential."""
        if self.metrics is not None:
            self.metrics.auth_failure(reason)
        self._refusal("auth_denied", scope, redact_text(reason)[:ERROR_CHARS], status)

    def rate_limited(self, scope: Scope | None, retry_after: float) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited()
        self._refusal("rate_limited", scope, f"rate limit exceeded; retry after {retry_after:.3f} s", 429)

    def _refusal(self, event: str, scope: Scope | None, error: str, http_status: int) -> None:
        if self.audit is None:
            return
        remote, principal = peer(scope, self.proxies)
        self.audit.write(
            {
                "time": time.time(),
                "event": event,
                "request_id": None,
                "session_id": header(scope, b"mcp-session-id") if scope is not None else None,
                "principal": principal,
                "remote_addr": remote,
                "path": scope.get("path") if scope is not None else None,
                "http_status": http_status,
                "status": "denied",
                "error": error,
            }
        )

    # -- lifecycle -----------------------------------------------------------------------------------

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        """Flush and close the audit log and detach the log file. Idempotent; any thread."""
        closers, self._closers = self._closers, []
        for fn in closers:
            try:
                fn()
            except Exception as exc:
                log.debug("closing: %s", exc)
        if self.audit is not None:
            self.audit.close()


def build_operations(
    config: McpHttpConfig, main_thread: Callable[[], dict[str, Any]] | None, registry: Any
) -> Operations:
    """This run's :class:`Operations`: the audit log and log file (``enable_file_logging``),
    metrics (``enable_metrics``) and the allow-list. Called in the server thread by ``start()``.
    ``main_thread`` is the dispatcher's status report, for the queue metrics (None: no queue)."""
    from ..errors import ServerStartError
    from ..logs import attach_file_logging
    from . import allowlist

    metrics: Metrics | None = None
    if config.enable_metrics:
        try:
            from .metrics import Metrics
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ServerStartError(str(exc)) from None
        try:
            metrics = Metrics(
                server_name=config.server_name,
                version=config.effective_server_version,
                known_tool=lambda name: registry.get(name) is not None,
            )
        except ImportError as exc:
            raise ServerStartError(str(exc)) from None
        status = main_thread
        if status is not None:
            metrics.main_queue_depth = lambda: float(status().get("queue_depth") or 0)
            metrics.main_queue_wait = lambda: float(status().get("busy_for_s") or 0)
    log_dir: Path | None = None
    if config.enable_file_logging:
        log_dir = Path(config.log_dir) if config.log_dir else default_log_dir(config.server_name)
    allowed = allowlist.from_config(config.allowed_tools)
    try:
        ops = Operations(config, log_dir=log_dir, metrics=metrics, allowed_tools=allowed)
    except OSError as exc:
        problem = f"cannot write the audit log in {log_dir}: {exc.strerror or exc}"
        if config.log_dir:  # asked for explicitly: refuse to run without it
            raise ServerStartError(
                f"{problem}; make log_dir a writable folder, or set enable_file_logging=False"
            ) from None
        # The default folder is not writable (a read-only home in a container): run, loudly.
        msg = f"{problem}; serving WITHOUT an audit log or log file (set log_dir to a writable folder)"
        log.error(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        log_dir = None
        ops = Operations(config, log_dir=None, metrics=metrics, allowed_tools=allowed)
    if metrics is not None:
        metrics.tools_in_flight = lambda: float(ops.in_flight)
    if log_dir is not None:
        ops.on_close(
            attach_file_logging(
                log_dir,
                level=config.log_level,
                fmt=config.log_format,
                max_bytes=config.log_max_bytes,
                backups=config.log_backups,
            )
        )
    return ops
