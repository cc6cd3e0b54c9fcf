"""Where a CLI command shows mcp-embed's log: the command owns the process, so stderr."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["log_to_stderr"]


def log_to_stderr(level: str) -> None:
    """Show mcp-embed's log (never the root logger) on stderr at ``level``, once per process."""
    logger = logging.getLogger("mcp_embed")
    if not any(isinstance(h, logging.StreamHandler) and h.stream is sys.stderr for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
