"""The ``mcp_embed`` logger. An embedded library never touches the host's root logger."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

from ._jsonsafe import escape_surrogates, escape_surrogates_in_json

logger = logging.getLogger("mcp_embed")
logger.addHandler(logging.NullHandler())

_LEVELS = {"CRITICAL": 50, "ERROR": 40, "WARNING": 30, "INFO": 20, "DEBUG": 10}


def get_logger(name: str) -> logging.Logger:
    """A child of the ``mcp_embed`` logger."""
    return logger.getChild(name)


def level_number(name: str) -> int:
    return _LEVELS[name.upper()]


# -- secrets ---------------------------------------------------------------------------------------

_REDACTED = "[REDACTED]"
_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization schemes: "Bearer abc.def", "Basic dXNlcjpwYXNz"
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1\2" + _REDACTED),
    # key=value, key: value, "key": "value" for secret-looking keys
    (
        re.compile(
            r"(?i)((?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|apikey|authorization|credential|"
            r"private[_-]?key|access[_-]?key|cookie|x-api-key)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[REDACTED\])[^\s\"',;&}\]]+"
        ),
        r"\1" + _REDACTED,
    ),
    # JSON Web Tokens wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), _REDACTED),
]


def redact_text(text: str) -> str:
    """``text`` with bearer tokens, ``password=...``-style values and JWTs replaced by ``[REDACTED]``."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw template
            message = str(record.msg)
        # A lone surrogate (a caller's "\\ud800") would make every handler's encode fail.
        record.msg = escape_surrogates(redact_text(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = escape_surrogates(redact_text(record.exc_text))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339 UTC), level, logger, thread, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime as _dt
        import json

        out: dict[str, object] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return escape_surrogates_in_json(json.dumps(out, ensure_ascii=False))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
APP_LOG_FILE = "mcp-embed.log"


def attach_file_logging(
    directory: os.PathLike[str] | str,
    *,
    level: str,
    fmt: str,
    max_bytes: int,
    backups: int,
) -> Callable[[], None]:
    """Send the ``mcp_embed`` logger's records to a rotating file in ``directory``.

    The logger gets a queue handler (no file I/O in the caller's thread) and a listener thread
    writes the file, mode 0600. The root logger and the host's handlers are not touched. Returns
    a function that detaches and flushes everything, restoring the logger's level.
    """
    import logging.handlers
    import queue

    class _QueueHandler(logging.handlers.QueueHandler):
        """Hands the listener the merged message and the (redacted) traceback text separately,
        so the JSON format can put the traceback in ``exc``."""

        def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
            import copy

            record = copy.copy(record)
            record.msg = record.getMessage()
            record.args = None
            record.exc_info = None  # RedactingFilter kept it as text in exc_text
            return record

    class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
        """A ``RotatingFileHandler`` whose files are created mode 0600."""

        def _open(self) -> Any:
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)

    path = os.path.join(os.fspath(directory), APP_LOG_FILE)
    os.makedirs(os.fspath(directory), exist_ok=True)
    file_handler = _PrivateRotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", errors="backslashreplace"
    )
    file_handler.setLevel(level_number(level))
    if fmt == "json":
        file_handler.setFormatter(JsonFormatter())
    else:
        file_handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    queue_handler = _QueueHandler(q)
    queue_handler.setLevel(level_number(level))
    queue_handler.addFilter(RedactingFilter())
    listener = logging.handlers.QueueListener(q, file_handler, respect_handler_level=True)
    listener.start()
    previous_level = logger.level
    wanted = level_number(level)
    if previous_level == logging.NOTSET or previous_level > wanted:
        logger.setLevel(wanted)
    logger.addHandler(queue_handler)
    done = False

    def detach() -> None:
        nonlocal done
        if done:
            return
        done = True
        logger.removeHandler(queue_handler)
        if logger.level == wanted:
            logger.setLevel(previous_level)
        listener.stop()
        file_handler.close()

    return detach
