"""``open_registry``: the registry a server writes to and a reader lists, from the same settings."""

from __future__ import annotations

import math
import os

from ..errors import ConfigError
from .record import DEFAULT_TTL, Registry

__all__ = ["TTL_ENV", "open_registry", "registry_ttl"]

TTL_ENV = "MCP_EMBED_REGISTRY_TTL"


def registry_ttl(ttl: float | None = None) -> float:
    """``ttl``, else ``$MCP_EMBED_REGISTRY_TTL``, else :data:`DEFAULT_TTL` (seconds)."""
    source = "the registry TTL"
    if ttl is None:
        raw = os.environ.get(TTL_ENV, "").strip()
        if not raw:
            return DEFAULT_TTL
        source = TTL_ENV
        try:
            ttl = float(raw)
        except ValueError:
            raise ConfigError(f"{source} must be a positive number of seconds, not {raw!r}") from None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not (ttl > 0 and math.isfinite(ttl)):
        raise ConfigError(f"{source} must be a positive number of seconds, not {ttl!r}")
    return float(ttl)


def open_registry(
    *, redis_url: str | None = None, folder: str | os.PathLike[str] | None = None, ttl: float | None = None
) -> Registry:
    """The Redis registry when ``redis_url`` is given, else the files in ``folder``.

    ``folder`` defaults to ``$MCP_EMBED_REGISTRY_DIR``, else ``instances`` in the user's runtime
    folder; ``ttl`` to ``$MCP_EMBED_REGISTRY_TTL``, else :data:`DEFAULT_TTL`. A reader and the
    servers it lists must agree on both: with the defaults, they do.
    """
    seconds = registry_ttl(ttl)
    if redis_url:
        from .redisreg import RedisRegistry

        return RedisRegistry(redis_url, seconds)
    from .files import FileRegistry

    return FileRegistry(folder, seconds)
