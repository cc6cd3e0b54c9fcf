"""The Blender adapter in real headless ``bpy`` (PyPI's bpy 5.0.x, Python 3.11): ``nox -s blender``.

``import bpy`` is Blender in background mode, where ``bpy.app.timers`` never fire, so ``auto``
must pick Blender, fall back to the inline dispatcher and say so in the log. A skill
(tests/hosts/skills/blender-mesh: SKILL.md, tools.yaml, a script calling bpy, ``affinity: main``)
and a main-affinity ``@server.tool`` each build a mesh object, called through the SDK's own
client; the test then reads ``bpy.data.objects``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("MCP_EMBED_REQUIRE_BPY"):
    import bpy  # the blender session must not skip
else:
    bpy = pytest.importorskip("bpy", reason="headless Blender (bpy) is installed by `nox -s blender` only")

from dispatch_helpers import Background, Records, client
from mcp_embed import McpHttpConfig, create_skill_server

SKILLS = Path(__file__).parent / "hosts" / "skills"


def _call(handle: Any, tool: str, arguments: dict[str, Any]) -> Any:
    async def main() -> Any:
        async with client(handle.mcp_url()) as c:
            return await c.call_tool(tool, arguments)

    return Background(main).get()


def _assert_box(name: str, size: float) -> None:
    box = bpy.data.objects[name]
    assert box.type == "MESH" and len(box.data.vertices) == 8 and len(box.data.polygons) == 6
    assert box.name in bpy.data.scenes[0].collection.objects
    assert max(v.co.x for v in box.data.vertices) == pytest.approx(size / 2)


def _assert_inline_fallback_logged(log: str) -> None:
    assert "dispatcher 'auto' detected host 'blender'" in log
    assert "Blender is running in background mode (bpy.app.background)" in log
    assert "main-thread tools run inline" in log


def test_a_skill_builds_a_mesh_through_bpy_with_the_inline_fallback() -> None:
    assert bpy.app.background
    server = create_skill_server("blender", McpHttpConfig(port=0), skill_paths=[SKILLS])
    before = set(bpy.data.objects.keys())
    with Records() as records:
        with server.start() as handle:
            assert handle.dispatcher == "inline"
            spec = server.registry.get("blender_mesh__create_box")
            assert spec is not None and spec.affinity == "main" and spec.source == "skill:blender-mesh"
            result = _call(handle, "blender_mesh__create_box", {"name": "SkillBox", "size": 3.0})
        log = records.text()

    assert not result.is_error, result.content[0].text
    out = result.structured_content
    out = out.get("result", out)
    assert (out["name"], out["vertices"], out["faces"]) == ("SkillBox", 8, 6)
    assert out["thread"].startswith("mcp-embed-main")  # the inline worker: one call at a time
    assert set(bpy.data.objects.keys()) - before == {"SkillBox"}
    _assert_box("SkillBox", 3.0)
    _assert_inline_fallback_logged(log)


def test_a_main_tool_builds_a_mesh_through_bpy_with_the_inline_fallback() -> None:
    server = create_skill_server("blender", McpHttpConfig(port=0))  # dispatcher "auto"
    ran_on: list[str] = []

    @server.tool(affinity="main")
    def create_box(name: str, size: float = 2.0) -> dict[str, object]:
        """Create a box mesh object in the current scene.

        Args:
            name: The object's name.
            size: Edge length.
        """
        ran_on.append(threading.current_thread().name)
        h = size / 2
        verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
        faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        mesh = bpy.data.meshes.new(name + "Mesh")
        mesh.from_pydata(verts, [], faces)
        mesh.update()
        obj = bpy.data.objects.new(name, mesh)
        bpy.data.scenes[0].collection.objects.link(obj)
        return {"name": obj.name, "vertices": len(mesh.vertices), "faces": len(mesh.polygons)}

    before = set(bpy.data.objects.keys())
    with Records() as records:
        with server.start() as handle:
            assert handle.dispatcher == "inline"
            result = _call(handle, "create_box", {"name": "McpBox", "size": 3.0})
        log = records.text()

    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"result": {"name": "McpBox", "vertices": 8, "faces": 6}}
    assert set(bpy.data.objects.keys()) - before == {"McpBox"}
    _assert_box("McpBox", 3.0)
    _assert_inline_fallback_logged(log)
    assert ran_on and ran_on[0].startswith("mcp-embed-main")
