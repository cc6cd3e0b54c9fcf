"""The tool authors' kit: mcp_embed.testing and its fixtures, `skills new`, `call` and `tools`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import demo_server, serving
from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.cli import main
from mcp_embed.testing import InlineDispatchNote, ToolCallError, serve, serve_skills

EXAMPLES = Path(__file__).parent.parent / "examples" / "remote-server" / "skills"
PY = sys.executable


def _cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "mcp_embed", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


# -- mcp_embed.testing and the fixtures -----------------------------------------------------------


def test_example_skills_through_the_fixture(mcp_skills) -> None:
    client = mcp_skills(EXAMPLES)
    assert {"hello_world__say_hello", "scene_tools__add_object"} <= set(client.tool_names())
    assert client.call("hello_world__say_hello", name="Ada") == "Hello, Ada!"
    # main affinity, inline dispatcher: state persists between calls; a dict comes back as a dict
    added = client.call("scene_tools__add_object", name="hero_geo", kind="mesh")
    assert added == {"name": "hero_geo", "kind": "mesh", "position": [0.0, 0.0, 0.0]}
    assert "hero_geo" in client.call("scene_tools__list_objects")
    with pytest.raises(ToolCallError) as err:
        client.call("scene_tools__add_object", name="x", kind="teapot")
    assert err.value.tool == "scene_tools__add_object" and "kind" in err.value.message
    assert "hello" in client.read_resource("skill://hello-world/SKILL.md").lower()
    assert any(r["uri"] == "skill://scene-tools/SKILL.md" for r in client.list_resources())
    assert client.tool("scene_tools__list_objects")["annotations"]["readOnlyHint"] is True


def test_a_skills_progress_is_seen_by_the_test(mcp_skills, tmp_path: Path) -> None:
    folder = tmp_path / "render-kit"
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: render-kit\ndescription: Renders.\n---\n", encoding="utf-8")
    script = (
        "def render(frames: int, ctx: 'ToolContext') -> str:\n"
        '    """Render."""\n'
        "    for i in range(frames):\n"
        "        ctx.report_progress(i + 1, frames, f'frame {i + 1}')\n"
        "    return 'done'\n"
    )
    (folder / "scripts" / "render.py").write_text(script, encoding="utf-8")
    client = mcp_skills(tmp_path)
    seen: list[tuple[float, float | None, str | None]] = []
    assert (
        client.call_with("render_kit__render", {"frames": 2}, on_progress=lambda *p: seen.append(p)) == "done"
    )
    assert seen == [(1, 2, "frame 1"), (2, 2, "frame 2")]


def test_a_relative_path_is_found_beside_the_test_file(mcp_skills) -> None:
    client = mcp_skills("../examples/remote-server/skills/hello-world")
    assert client.tool_names() == ["hello_world__say_hello"]


def test_a_server_object_is_served_on_a_free_loopback_port_and_restored(mcp_server) -> None:
    server = demo_server(port=8765)  # the fixture replaces the port with an OS-assigned one
    client = mcp_server(server)
    assert client.url.startswith("http://127.0.0.1:") and ":8765/" not in client.url
    assert client.call("add", a=2, b=3) == 5  # {"result": 5} unwrapped: the return was an int
    assert client.call("echo", text="hi") == "hi"
    assert client.call_with("steps", {"n": 2}) == "2 steps"
    with pytest.raises(ToolCallError, match="kaboom"):
        client.call("fail", message="kaboom")
    raw = client.call_raw("fail", {"message": "x"})
    assert raw.is_error
    from mcp.shared.exceptions import MCPError

    with pytest.raises(MCPError, match="Unknown tool"):
        client.call("no_such_tool")
    with pytest.raises(KeyError, match="echo"):
        client.tool("no_such_tool")
    assert server.is_running


def test_serve_stops_everything_and_gives_the_config_back() -> None:
    from mcp_embed.testing import serve

    server = demo_server(port=8765)
    with serve(server) as client:
        assert client.call("add", a=1, b=1) == 2
    assert not server.is_running
    assert server.config.port == 8765 and server.config.dispatcher == "auto"
    server = demo_server()
    with server.start(), pytest.raises(RuntimeError, match="already running"), serve(server):
        pass


def test_a_tests_own_assertion_reaches_pytest_unwrapped() -> None:
    with pytest.raises(AssertionError, match="mine"), serve_skills(EXAMPLES / "hello-world") as client:
        client.tool_names()
        raise AssertionError("mine")


def test_skills_are_isolated_from_the_users_env_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_embed.skills.scaffold import new_skill

    other = tmp_path / "env-root"
    new_skill("from-env", other)
    monkeypatch.setenv("DCC_MCP_SKILL_PATHS", str(other))
    monkeypatch.setenv("MCP_EMBED_SKILL_CACHE_DIR", str(tmp_path / "cache"))
    with serve_skills(EXAMPLES / "hello-world") as client:
        assert client.tool_names() == ["hello_world__say_hello"]
    config = McpHttpConfig(port=0, dispatcher="inline", enable_file_logging=False)
    with serve_skills(EXAMPLES / "hello-world", isolated=False, config=config) as client:
        assert "from_env__from_env" in client.tool_names()


def test_main_affinity_tools_are_noted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import mcp_embed.testing as testing

    monkeypatch.setattr(testing, "_noted", False)
    with (
        pytest.warns(InlineDispatchNote, match="inline dispatcher"),
        serve_skills(EXAMPLES / "hello-world") as c,
    ):
        c.tool_names()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", InlineDispatchNote)
        with serve_skills(EXAMPLES / "hello-world") as client:
            assert client.call("hello_world__say_hello") == "Hello, world!"


def test_connect_reaches_a_running_server(mcp_connect) -> None:
    with serving() as handle:
        client = mcp_connect(handle.mcp_url())
        assert "echo" in client.tool_names()
        assert client.call("aecho", text="x") == "x"


def test_call_and_tools_over_legacy_sse(capsys) -> None:
    with serving() as handle:
        assert main(["call", "add", "--url", handle.sse_url(), "--arg", "a=1", "--arg", "b=2"]) == 0
        assert capsys.readouterr().out == "3\n"


def test_the_plugin_and_the_package_import_nothing_heavy() -> None:
    code = (
        "import sys, mcp_embed, mcp_embed.pytest_plugin\n"
        "heavy = [m for m in ('mcp', 'mcp_embed.testing', 'mcp_embed.server', 'anyio', 'hypercorn')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# -- mcp-embed skills new -------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "tools_yaml"), [((), False), (("--dcc", "maya", "--tools-yaml"), True)])
def test_skills_new_is_valid_and_its_own_test_passes(
    tmp_path: Path, extra: tuple[str, ...], tools_yaml: bool
) -> None:
    made = _cli("skills", "new", "rename-nodes", "--dir", str(tmp_path), *extra)
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "rename-nodes"
    assert (folder / "tools.yaml").is_file() is tools_yaml
    assert (folder / "scripts" / "rename_nodes.py").is_file()

    checked = _cli("skills", "validate", str(folder))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{folder}: ok" in checked.stdout  # no warnings either

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DCC_MCP_"))}
    ran = subprocess.run(
        [
            PY,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(folder / "tests"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "4 passed" in ran.stdout


def test_skills_new_refuses_a_bad_name_and_an_existing_folder(tmp_path: Path, capsys) -> None:
    assert main(["skills", "new", "Bad_Name", "--dir", str(tmp_path)]) == 2
    assert "invalid skill name 'Bad_Name'" in capsys.readouterr().err
    assert main(["skills", "new", "ok-name", "--dir", str(tmp_path)]) == 0
    assert main(["skills", "new", "ok-name", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


# -- mcp-embed call and tools ---------------------------------------------------------------------


def test_call_and_tools_against_a_running_server(capsys) -> None:
    with serving() as handle:
        url = handle.mcp_url()
        assert main(["call", "add", "--url", url, "--arg", "a=2", "--arg", "b=40"]) == 0
        assert capsys.readouterr().out == "42\n"  # {"result": 42} unwrapped
        assert main(["call", "echo", "--url", url, "--arg", "text=42"]) == 0  # a string stays a string
        assert capsys.readouterr().out == "42\n"
        assert main(["call", "add", "--url", url, "--json-args", '{"a": 1, "b": 1}', "--arg", "b=5"]) == 0
        assert capsys.readouterr().out == "6\n"

        assert main(["call", "add", "--url", url, "--arg", "a=two", "--arg", "b=1"]) == 2
        assert "--arg a: expected integer (as JSON), got 'two'" in capsys.readouterr().err
        assert main(["call", "nope", "--url", url]) == 2
        assert "no tool 'nope'" in capsys.readouterr().err

        assert main(["tools", "--url", url]) == 0
        out = capsys.readouterr().out
        assert "echo\n  Echo the text back.\n    text: string\n" in out
        assert '  input schema: {"type":"object"' in out and "tool(s) at " + url in out
        assert main(["tools", "--url", url, "--json"]) == 0
        listed = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
        assert listed["add"]["inputSchema"]["required"] == ["a", "b"]

        # a tool that errors: non-zero exit and its message, in a real process
        failed = _cli("call", "fail", "--url", url, "--arg", "message=the scene has no camera", timeout=120)
        assert failed.returncode == 1
        assert failed.stderr.strip() == "mcp-embed: Tool 'fail' failed: ValueError: the scene has no camera"
        assert "Traceback" not in failed.stderr


def test_call_on_skills_served_for_the_call(capsys) -> None:
    args = ["--skills", str(EXAMPLES)]
    assert (
        main(["call", "scene_tools__add_object", *args, "--arg", "name=a", "--arg", "position=[1,2,3]"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["position"] == [1.0, 2.0, 3.0]
    assert main(["call", "scene_tools__add_object", *args, "--arg", "name=a", "--arg", "kind=teapot"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mcp-embed: Invalid arguments for tool 'scene_tools__add_object': ")
    assert "kind': expected one of" in err and "teapot" not in err and err.count("\n") == 1
    assert main(["tools", *args]) == 0
    assert "hello_world__say_hello\n  Return a friendly greeting.\n" in capsys.readouterr().out


def test_an_unreachable_server_is_one_readable_line(capsys) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["tools", "--url", f"http://127.0.0.1:{port}/mcp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mcp-embed: http://127.0.0.1:{port}/mcp: cannot connect") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "integer"}, "3", 3),
        ({"type": "number"}, "1.5", 1.5),
        ({"type": "boolean"}, "true", True),
        ({"type": "array"}, "[1, 2]", [1, 2]),
        ({"type": "object"}, '{"a": 1}', {"a": 1}),
        ({"type": "string"}, "3", "3"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "null", None),
        ({"type": ["string", "integer"]}, "7", 7),
        ({"type": ["string", "array"]}, "7", "7"),
        ({"type": ["string", "integer"]}, "seven", "seven"),
        (None, "42", "42"),
        ({}, "true", "true"),
    ],
)
def test_arg_values_follow_the_schema(schema: object, value: str, expected: object) -> None:
    from mcp_embed.cli.tools import coerce

    assert coerce(value, schema, "k") == expected


def test_serve_in_a_server_created_by_hand(tmp_path: Path) -> None:
    from mcp_embed.testing import serve

    server = create_skill_server("maya", McpHttpConfig(port=0), skill_paths=[EXAMPLES])
    with serve(server) as client:
        # dcc filtering: hello-world is generic, scene-tools too; both load for maya
        assert "hello_world__say_hello" in client.tool_names()


def test_a_served_test_server_is_not_listed_among_the_running_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_embed.instances import FileRegistry

    monkeypatch.setenv("MCP_EMBED_REGISTRY_DIR", str(tmp_path / "instances"))
    server = create_skill_server("maya", McpHttpConfig(port=0, dispatcher="inline"), skill_paths=[EXAMPLES])
    with serve_skills(EXAMPLES) as client, serve(server) as served:
        assert client.call("hello_world__say_hello", name="Ada") == "Hello, Ada!"
        assert served.call("hello_world__say_hello", name="Bo") == "Hello, Bo!"
        assert FileRegistry(tmp_path / "instances").list() == []
    assert server.config.register is True  # given back as it was
