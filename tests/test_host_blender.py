"""The Blender adapter in real headless ``bpy`` (PyPI's bpy 5.0.x, Python 3.11): ``nox -s blender``.

``import bpy`` is Blender in background mode, where ``bpy.app.timers`` never fire, so ``auto``
must pick Blender, fall back to the inline dispatcher and say so in the log. A main-affinity
``@server.tool`` (skills are not wired into the server yet) builds a mesh object through bpy,
called through the SDK's own client; the test then reads ``bpy.data.objects``.
"""

from __future__ import annotations

import os
import threading

import pytest

if os.environ.get("MCP_EMBED_REQUIRE_BPY"):
    import bpy  # the blender session must not skip
else:
    bpy = pytest.importorskip("bpy", reason="headless Blender (bpy) is installed by `nox -s blender` only")

from dispatch_helpers import Background, Records, client
from mcp_embed import McpHttpConfig, create_skill_server


def test_a_main_tool_builds_a_mesh_through_bpy_with_the_inline_fallback() -> None:
    assert bpy.app.background
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

            async def main() -> object:
                async with client(handle.mcp_url()) as c:
                    return await c.call_tool("create_box", {"name": "McpBox", "size": 3.0})

            result = Background(main).get()
        log = records.text()

    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"result": {"name": "McpBox", "vertices": 8, "faces": 6}}
    assert set(bpy.data.objects.keys()) - before == {"McpBox"}
    box = bpy.data.objects["McpBox"]
    assert box.type == "MESH" and len(box.data.vertices) == 8
    assert box.name in bpy.data.scenes[0].collection.objects
    assert max(v.co.x for v in box.data.vertices) == pytest.approx(1.5)
    assert "dispatcher 'auto' detected host 'blender'" in log
    assert "Blender is running in background mode (bpy.app.background)" in log
    assert "main-thread tools run inline" in log
    assert ran_on and ran_on[0].startswith("mcp-embed-main")  # the inline worker, one at a time
