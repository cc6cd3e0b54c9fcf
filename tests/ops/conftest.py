"""The ops tests' fixtures: an OTLP/HTTP receiver on 127.0.0.1 (``otlp_helpers``)."""

from __future__ import annotations

from otlp_helpers import receiver

__all__ = ["receiver"]
