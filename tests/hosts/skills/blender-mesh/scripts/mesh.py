"""Mesh tools that run inside Blender (the host process) and call bpy."""

from __future__ import annotations

import threading
from typing import Any

import bpy

RAN_ON: list[str] = []


def create_box(name: str, size: float = 2.0) -> dict[str, Any]:
    """Create a box mesh object in the first scene.

    Args:
        name: The object's name.
        size: Edge length in scene units.
    """
    RAN_ON.append(threading.current_thread().name)
    h = size / 2
    verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(name + "Mesh")
    mesh.from_pydata(verts, [], faces)
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.data.scenes[0].collection.objects.link(obj)
    return {
        "name": obj.name,
        "vertices": len(mesh.vertices),
        "faces": len(mesh.polygons),
        "thread": RAN_ON[-1],
    }
