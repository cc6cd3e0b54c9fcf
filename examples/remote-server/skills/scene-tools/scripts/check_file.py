"""Runs in a child process: a crash or a hang here never touches the host."""

from __future__ import annotations

import json
from pathlib import Path


def check_scene_file(path: str, max_objects: int = 10_000) -> dict[str, object]:
    """Check a JSON scene file: it must be a list of objects with unique names.

    Args:
        path: The file to check.
        max_objects: Fail when the file holds more objects than this.
    """
    objects = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(objects, list):
        raise ValueError("a scene file holds a JSON list of objects")
    names = [o.get("name") for o in objects if isinstance(o, dict)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    return {
        "objects": len(objects),
        "ok": not duplicates and len(objects) <= max_objects,
        "duplicates": duplicates,
    }
