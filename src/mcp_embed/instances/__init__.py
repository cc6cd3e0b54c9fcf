"""The registry of running instances: each server lists itself, ``mcp-embed instances`` and the
gateway read the list.

- :class:`FileRegistry` (the embedded default): one JSON file per instance in the user's runtime
  folder (``$MCP_EMBED_REGISTRY_DIR`` overrides), dead pids and stale heartbeats never listed;
- :class:`RedisRegistry` (with ``redis_url``): keys with a TTL, for instances on several machines;
- :func:`open_registry` picks one from the settings; :class:`Registration` is a running server's
  side: its record, refreshed by a heartbeat thread until ``close()``.

Importing this package loads neither platformdirs nor redis-py.
"""

from __future__ import annotations

from .choose import TTL_ENV, open_registry, registry_ttl
from .files import FOLDER_ENV, FileRegistry, default_folder, pid_alive
from .record import DEFAULT_TTL, Instance, Registry
from .redisreg import KEY_PREFIX, RedisRegistry
from .registration import Registration, check_metadata, new_instance, start_registration

__all__ = [
    "DEFAULT_TTL",
    "FOLDER_ENV",
    "KEY_PREFIX",
    "TTL_ENV",
    "FileRegistry",
    "Instance",
    "RedisRegistry",
    "Registration",
    "Registry",
    "check_metadata",
    "default_folder",
    "new_instance",
    "open_registry",
    "pid_alive",
    "registry_ttl",
    "start_registration",
]
