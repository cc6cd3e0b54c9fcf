"""The registry of running instances: each server lists itself, ``mcp-embed instances`` and the
gateway read the list."""

from __future__ import annotations

from .record import Instance, Registry

__all__ = ["Instance", "Registry"]
