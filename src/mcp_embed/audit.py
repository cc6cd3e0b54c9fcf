"""The audit log: one JSON line per tool call, denial and session event.

The request path only builds a small dict and puts it on a queue (no I/O, no hashing, no JSON);
a writer thread of its own formats, hashes, writes and rotates. Nothing is written on the event
loop or on the host's main thread. ``close()`` drains the queue, so a stop right after a call
loses nothing, and rotation happens in the writer thread between two whole records, so a record
is never lost, split or written twice.

:class:`Operations` is the one object the rest of the server talks to: it feeds the audit log,
the metrics and the tool allow-list from the same events, so ``/metrics`` and the audit file
agree by construction.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import errno
import hashlib
import ipaddress
import os
import queue
import re
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._argerrors import is_secret_key, mask_argument_values
from ._jsonsafe import dumps_bytes, safe_str
from .allowlist import ToolAllowList
from .logs import get_logger, redact_text

if TYPE_CHECKING:
    from ._asgi.http import Scope
    from .config import McpHttpConfig
    from .metrics import Metrics

__all__ = [
    "AUDIT_FILE",
    "AuditLog",
    "Operations",
    "args_sha256",
    "default_log_dir",
    "redact_arguments",
]

log = get_logger("audit")

AUDIT_FILE = "audit.jsonl"
PRINCIPAL_SCOPE_KEY = "mcp_embed.principal"
"""Where an authentication layer leaves the caller's identity (token ``sub`` or API-key id)."""

_REDACTED = "[REDACTED]"
_ERROR_CHARS = 300
_ERROR_SCAN = 65536  # an error text is cut to this before it is masked, then to _ERROR_CHARS


# -- arguments -------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same arguments always give the same bytes.

    Never raises: a lone surrogate is hashed as its JSON escape ``\\udXXX``, an odd value as text.
    """
    return dumps_bytes(value, sort_keys=True, strict=False, exact=True)


def args_sha256(arguments: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the canonical JSON of a call's arguments (``{}`` when there are none)."""
    return hashlib.sha256(canonical_json(arguments or {})).hexdigest()


def redact_arguments(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with secret-looking fields replaced and secret-looking text masked."""
    if _depth > 32:
        return _REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): (_REDACTED if is_secret_key(str(k)) else redact_arguments(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_arguments(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


# -- who is calling --------------------------------------------------------------------------------


class TrustedProxies:
    """Addresses whose ``X-Forwarded-For`` and ``X-User-Id`` headers are believed."""

    __slots__ = ("nets",)

    def __init__(self, entries: Iterable[str]) -> None:
        self.nets = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.nets)

    def trusts(self, addr: str | None) -> bool:
        if not addr or not self.nets:
            return False
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in n for n in self.nets)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


def peer(scope: Scope | None, proxies: TrustedProxies) -> tuple[str | None, str | None]:
    """``(remote address, principal)`` of a request.

    The principal is what an authentication layer put in ``scope["mcp_embed.principal"]`` (or
    ``scope["state"]["mcp_embed.principal"]``); behind a trusted proxy, ``X-User-Id`` when no layer
    set one. The address is the peer's, or behind a trusted proxy the nearest untrusted hop of
    ``X-Forwarded-For``.
    """
    if scope is None:
        return None, None
    client = scope.get("client")
    addr: str | None = client[0] if client else None
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        state = scope.get("state")
        if isinstance(state, Mapping):
            principal = state.get(PRINCIPAL_SCOPE_KEY)
    if proxies and proxies.trusts(addr):
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
                addr = hop
                if not proxies.trusts(hop):
                    break
        if principal is None:
            principal = _header(scope, b"x-user-id")
    return addr, (str(principal)[:256] if principal is not None else None)


# -- the file --------------------------------------------------------------------------------------


def default_log_dir(server_name: str) -> Path:
    """``$MCP_EMBED_LOG_DIR`` or the platform's user log folder, then ``mcp-embed/<server_name>``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", server_name).strip("._") or "server"
    base = os.environ.get("MCP_EMBED_LOG_DIR")
    if base:
        return Path(base) / "mcp-embed" / safe
    import platformdirs

    return Path(platformdirs.user_log_dir("mcp-embed", appauthor=False)) / safe


def _rfc3339(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ROTATE = object()
_STOP = object()


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_OPEN_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for a in list(_OPEN_LOGS):
        a.close(timeout=2.0)


atexit.register(_close_all_at_exit)


class AuditLog:
    """An append-only JSONL file written by a thread of its own, with size rotation.

    ``write`` only enqueues. Records are dicts; ``time`` (epoch seconds) is formatted as RFC 3339,
    and ``_args`` (the raw arguments) becomes ``args_sha256`` (and ``arguments``, redacted, when
    ``include_arguments``) in the writer thread, which also masks argument values in ``error``.

    Every record is written, whatever it holds (lone surrogates are kept as JSON escapes, values
    JSON cannot hold become text), or, if the file refuses it, counted in ``lost``, reported to
    ``on_lost`` and in an ERROR line. One record never costs another its place.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int, include_arguments: bool = False) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.include_arguments = include_arguments
        self.batch_delay = 0.05
        self.written = 0
        self.lost = 0
        self.on_lost: Callable[[int], None] | None = None  # told how many records each failure cost
        self.rotations = 0
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._file: Any = None
        self._size = 0
        self._ino: int | None = None
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        _private_dir(path.parent)
        self._open()
        self._thread = threading.Thread(target=self._run, name=f"mcp-embed-audit:{path.name}", daemon=True)
        self._thread.start()
        _OPEN_LOGS.add(self)

    # -- any thread ---------------------------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record. Cheap and non-blocking; safe from any thread."""
        if not self._closed:
            self._q.put(record)

    def rotate(self, timeout: float = 5.0) -> bool:
        """Rotate now, between two records. Returns once the new file is open."""
        done = _Flush()
        self._q.put(_ROTATE)
        self._q.put(done)
        return done.done.wait(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until every record queued so far is written and flushed."""
        if self._closed:
            return True
        done = _Flush()
        self._q.put(done)
        return done.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._q.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the audit writer did not finish within %.1f s; records may be missing", timeout)
        _OPEN_LOGS.discard(self)

    @property
    def files(self) -> list[Path]:
        """The current file and its rotated backups, oldest first."""
        out = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.backups, 0, -1)]
        return [p for p in [*out, self.path] if p.exists()]

    # -- the writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        q = self._q
        stop = False
        try:
            while not stop:
                item = q.get()
                if isinstance(item, dict) and self.batch_delay:
                    # Let records gather: one wake-up a batch, not one a record, keeps this thread
                    # from taking the GIL from the event loop on every call. close() and flush()
                    # still see everything queued before them.
                    time.sleep(self.batch_delay)
                batch = [item]
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 4096:
                        batch.append(q.get_nowait())
                stop = self._write_batch(batch)
        finally:
            with contextlib.suppress(Exception):
                self._file.flush()
                os.fsync(self._file.fileno())
            with contextlib.suppress(Exception):
                self._file.close()
            self._release_waiters()

    def _write_batch(self, batch: list[Any]) -> bool:
        """Write one batch; each record on its own, so one that fails costs only itself. True on stop."""
        stop = False
        problems: dict[str, int] = {}

        def lost(n: int, exc: BaseException) -> None:
            # The type and errno only: a message may quote the record it failed on.
            why = type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror:
                why += f" ({exc.strerror})"
            problems[why] = problems.get(why, 0) + n

        try:
            self._reopen_if_moved()
        except Exception as exc:
            lost(0, exc)
        for item in batch:
            try:
                if item is _STOP:
                    stop = True
                elif item is _ROTATE:
                    self._rotate()
                elif isinstance(item, _Flush):
                    try:
                        self._flush()
                    finally:
                        item.done.set()
                else:
                    self._write(item)
            except _Unwritten as exc:  # buffered records, and this one if it is a record
                lost(exc.records + isinstance(item, dict), exc.__cause__ or exc)
            except Exception as exc:  # a full disk, a rotation that failed, a record that cannot be encoded
                lost(1 if isinstance(item, dict) else 0, exc)
        try:
            self._flush()
        except _Unwritten as exc:
            lost(exc.records, exc.__cause__ or exc)
        if problems:
            self._report(problems)
        return stop

    def _report(self, problems: dict[str, int]) -> None:
        n = sum(problems.values())
        self.lost += n
        why = "; ".join(f"{k}: {v}" for k, v in problems.items())
        log.error("%d audit record(s) lost (%s); %d lost since start, in %s", n, why, self.lost, self.path)
        if n and self.on_lost is not None:
            with contextlib.suppress(Exception):
                self.on_lost(n)

    def _flush(self) -> None:
        """Write what is buffered; the records that did not reach the file are no longer counted written."""
        try:
            self._file.flush()
        except OSError as exc:
            unwritten = self._file.drop()
            self.written -= unwritten
            raise _Unwritten(unwritten) from exc

    def _release_waiters(self) -> None:
        """Wake every flush() and rotate() still queued once the writer has gone."""
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._q.get_nowait()
                if isinstance(item, _Flush):
                    item.done.set()

    def _write(self, record: dict[str, Any]) -> None:
        has_args = "_args" in record
        args = record.pop("_args", None)
        if has_args:
            record["args_sha256"] = args_sha256(args)
            if self.include_arguments:
                record["arguments"] = redact_arguments(args or {})
        error = record.get("error")
        if error:
            text = safe_str(error)[:_ERROR_SCAN]
            text = mask_argument_values(text, args, all_values=not self.include_arguments)
            record["error"] = redact_text(text)[:_ERROR_CHARS]
        record["time"] = _rfc3339(record["time"])
        line = dumps_bytes(record) + b"\n"
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._size += len(line)
        self.written += 1

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o600)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # an existing file keeps its mode otherwise
        self._file = _AppendFile(fd)
        st = os.fstat(fd)
        self._size = st.st_size
        self._ino = st.st_ino if st.st_ino else None

    def _reopen_if_moved(self) -> None:
        """Follow an external rotation (logrotate ``create``): the path no longer names our file."""
        if self._file.closed:  # a rotation failed half-way: try again
            self._open()
            return
        if self._ino is None:
            return
        try:
            moved = os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            moved = True
        if moved:
            self._flush()
            self._file.close()
            self._open()

    def _rotate(self) -> None:
        self._flush()
        self._file.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.truncate(self.path, 0)
        self._open()
        self.rotations += 1


class _Unwritten(Exception):
    """``records`` buffered records did not reach the file (the cause is chained)."""

    def __init__(self, records: int) -> None:
        super().__init__(records)
        self.records = records


class _AppendFile:
    """An ``O_APPEND`` descriptor written one batch per ``write(2)``: whole lines only, so two
    writers on one file (two hosts with the same ``server_name``) never interleave inside a line."""

    __slots__ = ("_chunks", "_cut", "_fd", "_torn")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._chunks: list[bytes] = []
        self._cut = 0  # lines a failed write cut short
        self._torn = False  # the file ends inside a cut line: start the next write with a newline

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def write(self, data: bytes) -> None:
        self._chunks.append(data)

    def flush(self) -> None:
        """Write the buffered lines. On an error, the lines not wholly written stay buffered."""
        if not self._chunks:
            return
        if self._fd < 0:  # never write to a closed number: the process may have reused it
            raise OSError(errno.EBADF, "the audit file is closed")
        lead = b"\n" if self._torn else b""
        data = memoryview(b"".join([lead, *self._chunks]))
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError:
            if done >= len(lead):
                self._torn = False
                self._keep_unwritten(done - len(lead))
            raise
        self._torn = False
        self._chunks.clear()

    def _keep_unwritten(self, done: int) -> None:
        while self._chunks and done >= len(self._chunks[0]):
            done -= len(self._chunks.pop(0))
        if done > 0:
            self._chunks.pop(0)
            self._cut += 1
            self._torn = True

    def drop(self) -> int:
        """Forget the buffered lines; how many lines were not written (cut ones included)."""
        n = len(self._chunks) + self._cut
        self._chunks.clear()
        self._cut = 0
        return n

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1


def _private_dir(path: Path) -> None:
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o700)


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
        self._refusal("auth_denied", scope, redact_text(reason)[:_ERROR_CHARS], status)

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
                "session_id": _header(scope, b"mcp-session-id") if scope is not None else None,
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


def build_operations(config: McpHttpConfig, dispatcher: Any, registry: Any) -> Operations:
    """This run's :class:`Operations`: the audit log and log file (``enable_file_logging``),
    metrics (``enable_metrics``) and the allow-list. Called in the server thread by ``start()``."""
    from . import allowlist
    from .errors import ServerStartError
    from .logs import attach_file_logging

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
        status = getattr(dispatcher, "status", None)
        if callable(status):
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
