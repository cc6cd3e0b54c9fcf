"""A toy scene kept in the host's memory, standing in for a DCC's scene graph."""

from __future__ import annotations

from enum import Enum
from typing import Any


class Kind(Enum):
    MESH = "mesh"
    LIGHT = "light"
    CAMERA = "camera"


class Vector:
    """A type discovery cannot turn into a schema: tools.yaml declares the parameter instead."""


_SCENE: dict[str, dict[str, Any]] = {}


def list_objects(kind: Kind | None = None) -> list[dict[str, Any]]:
    """List the scene's objects.

    Args:
        kind: Only objects of this kind.
    """
    return [
        {"name": name, **data}
        for name, data in sorted(_SCENE.items())
        if kind is None or data["kind"] == kind.value
    ]


def add_object(name: str, kind: Kind = Kind.MESH, position: Vector | None = None) -> dict[str, Any]:
    """Add an object to the scene.

    Args:
        name: A unique name, e.g. ``hero_geo``.
        kind: What the object is.
        position: Where to put it.
    """
    if name in _SCENE:
        raise ValueError(f"an object named {name!r} already exists")
    _SCENE[name] = {"kind": kind.value, "position": list(position or [0.0, 0.0, 0.0])}
    return {"name": name, **_SCENE[name]}


def remove_object(name: str) -> bool:
    """Remove an object; returns whether it existed.

    Args:
        name: The object to remove.
    """
    return _SCENE.pop(name, None) is not None
