"""The ``mcp_embed`` logger. An embedded library never touches the host's root logger."""

from __future__ import annotations

import logging

logger = logging.getLogger("mcp_embed")
logger.addHandler(logging.NullHandler())

_LEVELS = {"CRITICAL": 50, "ERROR": 40, "WARNING": 30, "INFO": 20, "DEBUG": 10}


def get_logger(name: str) -> logging.Logger:
    """A child of the ``mcp_embed`` logger."""
    return logger.getChild(name)


def level_number(name: str) -> int:
    return _LEVELS[name.upper()]
