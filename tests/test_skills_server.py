"""Skills served end to end: discovery -> tools/list -> tools/call through the SDK's real client."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import anyio
import pytest

from conftest import sdk_client
from mcp_embed import McpHttpConfig, create_skill_server

EXAMPLES = Path(__file__).parent.parent / "examples" / "remote-server" / "skills"


class ToolListChanges:
    """A client ``message_handler`` that records the ``tools/list_changed`` notifications it gets.

    Build it inside the event loop (it holds an ``anyio.Event``).
    """

    def __init__(self) -> None:
        self.seen: list[object] = []
        self.first = anyio.Event()

    async def __call__(self, message: object) -> None:
        if "ToolListChanged" in type(getattr(message, "root", message)).__name__:
            self.seen.append(message)
            self.first.set()


def _skill(
    root: Path, name: str, script: str, tools_yaml: str | None = None, frontmatter: str | None = None
) -> Path:
    folder = root / name
    (folder / "scripts").mkdir(parents=True)
    fm = frontmatter or f"name: {name}\ndescription: Test skill {name}."
    (folder / "SKILL.md").write_text(f"---\n{fm}\n---\n# {name}\n\nInstructions for {name}.\n")
    (folder / "scripts" / "tool.py").write_text(textwrap.dedent(script))
    if tools_yaml is not None:
        (folder / "tools.yaml").write_text(textwrap.dedent(tools_yaml))
    return folder


def test_example_skills_in_process_and_subprocess(isolated_skill_env: None, spawn_mode: str) -> None:
    from mcp_embed.skills.execute import clear_module_cache

    clear_module_cache()  # the example scene lives in the host's imported script: start it empty
    config = McpHttpConfig(port=0, spawn_mode=spawn_mode)
    server = create_skill_server("generic", config, skill_paths=[EXAMPLES])
    with server.start() as handle:

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                assert {
                    "hello_world__say_hello",
                    "scene_tools__add_object",
                    "scene_tools__check_scene_file",
                } <= set(tools)
                assert tools["scene_tools__list_objects"].annotations.read_only_hint is True
                hello = await client.call_tool("hello_world__say_hello", {"name": "Ada"})
                assert not hello.is_error and hello.content[0].text == "Hello, Ada!"
                # in-process, main affinity (inline dispatcher here): state persists between calls
                added = await client.call_tool(
                    "scene_tools__add_object", {"name": "hero_geo", "kind": "mesh"}
                )
                assert not added.is_error, added.content[0].text
                listed = await client.call_tool("scene_tools__list_objects", {})
                assert "hero_geo" in listed.content[0].text
                # a bad argument never reaches the script, and names the field
                bad = await client.call_tool("scene_tools__add_object", {"name": "x", "kind": "teapot"})
                assert bad.is_error and "kind" in bad.content[0].text
                # the SKILL.md body is a resource
                res = await client.read_resource("skill://hello-world/SKILL.md")
                assert "hello" in res.contents[0].text.lower()

        try:
            anyio.run(main)
        finally:
            clear_module_cache()  # and leave it empty for the next test
        assert server.skills is not None and not server.skills.errors


def test_subprocess_tool_runs_in_a_child_and_errors_are_clean(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str
) -> None:
    _skill(
        tmp_path / "skills",
        "proc-tools",
        '''
        import os, sys, time

        def pid() -> int:
            """The process id the tool ran in."""
            return os.getpid()

        def boom(message: str) -> str:
            """Raise."""
            raise RuntimeError(message)

        def hang() -> str:
            """Never returns."""
            time.sleep(60)
            return "late"
        ''',
        """
        tools:
          - {name: pid, source_file: scripts/tool.py, function: pid, execution: subprocess}
          - {name: boom, source_file: scripts/tool.py, function: boom, execution: subprocess}
          - {name: hang, source_file: scripts/tool.py, function: hang, execution: subprocess, timeout: 1}
          - {name: boom_inline, source_file: scripts/tool.py, function: boom, execution: in-process}
        """,
    )
    import os

    config = McpHttpConfig(port=0, spawn_mode=spawn_mode)
    server = create_skill_server("generic", config, skill_paths=[tmp_path / "skills"])
    with server.start() as handle:

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                r = await client.call_tool("proc_tools__pid", {})
                assert not r.is_error and int(r.content[0].text) != os.getpid()
                for name in ("proc_tools__boom", "proc_tools__boom_inline"):
                    r = await client.call_tool(name, {"message": "kaboom"})
                    assert r.is_error and "kaboom" in r.content[0].text
                    assert "Traceback" not in r.content[0].text
                r = await client.call_tool("proc_tools__hang", {})
                assert r.is_error and "timed out" in r.content[0].text.lower()
                # still serving
                assert (await client.call_tool("proc_tools__pid", {})).is_error is False

        anyio.run(main)


def test_a_broken_skill_is_skipped_and_the_rest_are_served(isolated_skill_env: None, tmp_path: Path) -> None:
    root = tmp_path / "skills"
    _skill(root, "good-one", "def ping() -> str:\n    '''Ping.'''\n    return 'pong'\n")
    _skill(root, "bad-one", "def x() -> int:\n    return 1\n", frontmatter="name: other-name\ndescription: d")
    _skill(root, "syntax-err", "def broken(:\n")
    server = create_skill_server("generic", McpHttpConfig(port=0), skill_paths=[root])
    with server.start() as handle:
        names = server.tool_names
        assert "good_one__ping" in names
        assert not any(n.startswith("bad_one") for n in names)
        assert server.skills is not None
        assert any("bad-one" in p.path and p.severity == "error" for p in server.skills.problems)
        assert any(
            "syntax" in str(p).lower() or p.line for p in server.skills.problems if "syntax-err" in p.path
        )
        assert handle.is_running


def test_reload_adds_changes_and_removes_tools_and_notifies(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str
) -> None:
    root = tmp_path / "skills"
    first = _skill(root, "live", "def one() -> str:\n    '''One.'''\n    return '1'\n")
    config = McpHttpConfig(port=0, spawn_mode=spawn_mode)
    server = create_skill_server("generic", config, skill_paths=[root])
    with server.start() as handle:

        async def main() -> None:
            changed = ToolListChanges()

            from mcp.client import Client

            async with Client(handle.mcp_url(), mode="legacy", message_handler=changed) as client:
                assert {t.name for t in (await client.list_tools()).tools} >= {"live__one"}
                (first / "scripts" / "tool.py").write_text(
                    "def two(x: int) -> int:\n    '''Two.'''\n    return x\n"
                )
                await anyio.to_thread.run_sync(server.reload_skills)
                names = {t.name for t in (await client.list_tools()).tools}
                assert "live__two" in names and "live__one" not in names
                with anyio.fail_after(10):
                    await changed.first.wait()

        anyio.run(main)


def test_cli_skills_list_and_validate(
    isolated_skill_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcp_embed.cli import main

    assert main(["skills", "list", str(EXAMPLES), "--tools"]) == 0
    out = capsys.readouterr().out
    assert "hello-world" in out and "scene_tools__check_scene_file" in out and "subprocess" in out
    assert main(["skills", "validate", str(EXAMPLES)]) == 0
    assert "scene-tools: ok" in capsys.readouterr().out

    root = tmp_path / "broken"
    _skill(root, "bad-one", "def x() -> int:\n    return 1\n", frontmatter="name: Bad_Name\ndescription: d")
    assert main(["skills", "validate", str(root / "bad-one")]) == 1
    out = capsys.readouterr().out
    assert "SKILL.md" in out and "name" in out and "error" in out


def test_the_opt_in_watcher_adds_changes_and_removes_skills(isolated_skill_env: None, tmp_path: Path) -> None:
    import shutil
    import time

    root = tmp_path / "skills"
    root.mkdir()
    server = create_skill_server(
        "generic", McpHttpConfig(port=0, skills_watch_interval=0.05), skill_paths=[root]
    )

    def wait_for(predicate: object) -> bool:
        for _ in range(400):  # bounded: about 20 s
            if predicate():  # type: ignore[operator]
                return True
            time.sleep(0.05)
        return False

    with server.start():
        assert not any(n.startswith("later__") for n in server.tool_names)
        folder = _skill(root, "later", "def first() -> str:\n    '''First.'''\n    return '1'\n")
        assert wait_for(lambda: "later__first" in server.tool_names), server.tool_names
        (folder / "scripts" / "tool.py").write_text(
            "def second() -> str:\n    '''Second.'''\n    return '2'\n"
        )
        assert wait_for(
            lambda: "later__second" in server.tool_names and "later__first" not in server.tool_names
        )
        shutil.rmtree(folder)
        assert wait_for(lambda: not any(n.startswith("later__") for n in server.tool_names))
    # the watcher thread ends with the server
    import threading

    assert wait_for(lambda: not any(t.name == "mcp-embed:skills-watch" for t in threading.enumerate()))


def test_many_skills_list_meta_tools_until_a_skill_is_activated(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str
) -> None:
    root = tmp_path / "skills"
    _skill(
        root,
        "mesh-ops",
        "def make_sphere(r: float) -> str:\n    '''Create a sphere.'''\n    return f's{r}'\n",
    )
    _skill(
        root,
        "light-ops",
        "def add_lamp(power: int) -> int:\n    '''Add a lamp to the scene.'''\n    return power\n",
    )
    _skill(
        root,
        "cam-ops",
        "def frame_all() -> str:\n    '''Frame every object in the camera.'''\n    return 'ok'\n",
    )
    config = McpHttpConfig(port=0, skills_list_limit=2, spawn_mode=spawn_mode)
    server = create_skill_server("generic", config, skill_paths=[root])

    @server.tool()
    def ping() -> str:
        """Always listed: a Python tool."""
        return "pong"

    with server.start() as handle:

        async def main() -> None:
            changed = ToolListChanges()

            from mcp.client import Client

            async with Client(handle.mcp_url(), mode="legacy", message_handler=changed) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == {"ping", "search_tools", "describe_tool", "activate_skill"}
                found = await client.call_tool("search_tools", {"query": "sphere"})
                assert not found.is_error
                assert found.structured_content["result"][0]["name"] == "mesh_ops__make_sphere"
                described = await client.call_tool("describe_tool", {"name": "light_ops__add_lamp"})
                schema = described.structured_content["result"]["inputSchema"]
                assert schema["properties"]["power"]["type"] == "integer"
                # hidden from the list, still callable by name
                direct = await client.call_tool("mesh_ops__make_sphere", {"r": 2.5})
                assert direct.content[0].text == "s2.5"
                bad = await client.call_tool("activate_skill", {"skill": "mesh"})
                assert bad.is_error and "mesh-ops" in bad.content[0].text
                activated = await client.call_tool("activate_skill", {"skill": "mesh-ops"})
                assert activated.structured_content["result"]["tools"] == ["mesh_ops__make_sphere"]
                with anyio.fail_after(10):
                    await changed.first.wait()
                names = {t.name for t in (await client.list_tools()).tools}
                assert "mesh_ops__make_sphere" in names and "light_ops__add_lamp" not in names

        anyio.run(main)


def test_few_tools_are_all_listed(isolated_skill_env: None) -> None:
    server = create_skill_server("generic", McpHttpConfig(port=0), skill_paths=[EXAMPLES])
    with server.start():
        assert "search_tools" not in server.tool_names
        assert len(server.registry.listed()) == len(server.tool_names)


def test_above_the_limit_hidden_skills_are_analysed_when_first_needed(
    isolated_skill_env: None, tmp_path: Path, caplog: pytest.LogCaptureFixture, spawn_mode: str
) -> None:
    root = tmp_path / "skills"
    for i in range(6):
        _skill(root, f"ops-{i}", f"def run_{i}(n: int) -> int:\n    '''Step {i}.'''\n    return n + {i}\n")
    _skill(root, "zz-broken", "def oops(:\n")
    config = McpHttpConfig(port=0, skills_list_limit=2, spawn_mode=spawn_mode)
    server = create_skill_server("generic", config, skill_paths=[root])

    def broken_logged() -> bool:
        return any("zz-broken" in r.getMessage() and "syntax" in r.getMessage() for r in caplog.records)

    caplog.set_level("ERROR", logger="mcp_embed.skills")
    with server.start() as handle:
        catalog = server.skills
        assert catalog is not None
        # Deciding "over the limit" needed three skills; the other four are not analysed yet.
        assert catalog.pending == ["ops-3", "ops-4", "ops-5", "zz-broken"]
        assert "ops_4__run_4" not in server.tool_names

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                called = await client.call_tool("ops_4__run_4", {"n": 1})  # hidden and never analysed
                assert not called.is_error and called.content[0].text == "5"
                assert catalog.pending == ["ops-3", "ops-5", "zz-broken"]
                described = await client.call_tool("describe_tool", {"name": "ops_5__run_5"})
                assert described.structured_content["result"]["description"] == "Step 5."
                assert catalog.pending == ["ops-3", "zz-broken"]
                from mcp.shared.exceptions import MCPError

                with pytest.raises(MCPError, match="Unknown tool: ops_9__run_9"):
                    await client.call_tool("ops_9__run_9", {"n": 1})
                assert not broken_logged()  # its script was not needed yet
                found = await client.call_tool("search_tools", {"query": "step 3"})
                assert found.structured_content["result"][0]["name"] == "ops_3__run_3"
                assert catalog.pending == []
                assert broken_logged()
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == {"search_tools", "describe_tool", "activate_skill"}
                # every tool search_tools analysed is callable, and the server still serves
                third = await client.call_tool("ops_3__run_3", {"n": 1})
                assert not third.is_error and third.content[0].text == "4"

        anyio.run(main)


def test_activate_skill_analyses_a_hidden_skill_and_lists_it(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str
) -> None:
    root = tmp_path / "skills"
    for i in range(6):
        _skill(root, f"ops-{i}", f"def run_{i}(n: int) -> int:\n    '''Step {i}.'''\n    return n + {i}\n")
    _skill(
        root,
        "zz-proc",
        "import os\n\ndef pid() -> int:\n    '''The process id.'''\n    return os.getpid()\n",
        "tools:\n  - {name: pid, source_file: scripts/tool.py, function: pid, execution: subprocess}\n",
    )
    config = McpHttpConfig(port=0, skills_list_limit=2, spawn_mode=spawn_mode)
    server = create_skill_server("generic", config, skill_paths=[root])
    with server.start() as handle:
        catalog = server.skills
        assert catalog is not None
        assert catalog.pending == ["ops-3", "ops-4", "ops-5", "zz-proc"]

        async def main() -> None:
            changed = ToolListChanges()

            from mcp.client import Client
            from mcp.shared.exceptions import MCPError

            async with Client(handle.mcp_url(), mode="legacy", message_handler=changed) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == {"search_tools", "describe_tool", "activate_skill"}
                activated = await client.call_tool("activate_skill", {"skill": "ops-4"})
                assert not activated.is_error
                assert activated.structured_content["result"]["tools"] == ["ops_4__run_4"]
                assert catalog.pending == ["ops-3", "ops-5", "zz-proc"]
                with anyio.fail_after(10):
                    await changed.first.wait()
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == {"search_tools", "describe_tool", "activate_skill", "ops_4__run_4"}
                run = await client.call_tool("ops_4__run_4", {"n": 2})
                assert not run.is_error and run.content[0].text == "6"
                # a hidden subprocess-execution skill, called by name before anything analysed it
                pid = await client.call_tool("zz_proc__pid", {})
                assert not pid.is_error and int(pid.content[0].text) > 0
                # a skill exists but not that tool: analysed, then refused
                with pytest.raises(MCPError, match="Unknown tool: ops_5__nope"):
                    await client.call_tool("ops_5__nope", {"n": 1})
                assert catalog.pending == ["ops-3"]
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == {"search_tools", "describe_tool", "activate_skill", "ops_4__run_4"}

        anyio.run(main)


def test_registry_batch_tells_listeners_once_and_only_about_changes() -> None:
    server = create_skill_server("batch")
    registry = server.registry
    calls: list[int] = []
    registry.subscribe(lambda: calls.append(registry.version))

    def tool(name: str) -> None:
        server.add_tool(lambda: name, name=name, description="T.")

    calls.clear()
    with registry.batch():
        with registry.batch():  # nested: still one call, at the outer end
            tool("a")
            tool("b")
        assert calls == []
        registry.remove("a")
    assert calls == [registry.version]
    with registry.batch():
        registry.remove("missing")  # no change, no call
    assert len(calls) == 1
    tool("c")  # outside a batch: at once
    assert len(calls) == 2


def test_a_reload_sends_one_change_for_all_its_tools(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str
) -> None:
    # One list_changed, and in subprocess mode one catalogue push, per reload: a push per tool
    # made a 1,000-tool reload in subprocess mode take about 20 s, and sent a notification per tool.
    root = tmp_path / "skills"
    source = "def t{0}() -> str:\n    '''T.'''\n    return '{0}'\n"
    for i in range(12):
        _skill(root, f"s{i}", source.format(i))
    server = create_skill_server("generic", McpHttpConfig(port=0, spawn_mode=spawn_mode), skill_paths=[root])
    with server.start() as handle:
        changes: list[int] = []
        server.registry.subscribe(lambda: changes.append(1))
        for i in range(6):
            shutil.rmtree(root / f"s{i}")
        for i in range(12, 16):
            _skill(root, f"s{i}", source.format(i))

        async def main() -> int:
            from mcp.client import Client

            changed = ToolListChanges()
            async with Client(handle.mcp_url(), mode="legacy", message_handler=changed) as client:
                await anyio.to_thread.run_sync(server.reload_skills)
                with anyio.fail_after(10):
                    await changed.first.wait()
                await anyio.sleep(0.5)  # room for any second notification to arrive
                names = {t.name for t in (await client.list_tools()).tools}
                assert {n for n in names if n.startswith("s")} == {f"s{i}__t{i}" for i in range(6, 16)}
            return len(changed.seen)

        assert anyio.run(main) == 1
        assert changes == [1]


def test_the_child_serves_others_while_the_host_analyses_a_hidden_skill(
    isolated_skill_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The subprocess child waits for the host's analysis without blocking its event loop: /health,
    # tools/list and other calls answer while the host (busy with its own Python) gets to it.
    import threading

    import httpx

    from mcp_embed.runtime.subprocess.host import SubprocessRuntime

    root = tmp_path / "skills"
    for i in range(6):
        _skill(root, f"ops-{i}", f"def run_{i}(n: int) -> int:\n    '''Step {i}.'''\n    return n + {i}\n")
    entered, release = threading.Event(), threading.Event()
    analyse = SubprocessRuntime._resolve

    def slow_host(self: SubprocessRuntime, send: object, rid: int, name: str) -> None:
        entered.set()
        release.wait(30)
        analyse(self, send, rid, name)  # type: ignore[arg-type]

    monkeypatch.setattr(SubprocessRuntime, "_resolve", slow_host)
    config = McpHttpConfig(
        port=0, skills_list_limit=2, spawn_mode="subprocess", stateless=True, json_response=True
    )
    server = create_skill_server("generic", config, skill_paths=[root])
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}

    def call(client: httpx.Client, url: str, name: str, n: int) -> dict[str, object]:
        params = {"name": name, "arguments": {"n": n}}
        body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}
        reply: dict[str, object] = client.post(url, json=body, headers=headers).json()
        return reply

    with server.start() as handle, httpx.Client(timeout=10) as client:
        url = handle.mcp_url()
        assert "ops-4" in (server.skills.pending if server.skills else [])
        hidden: dict[str, object] = {}
        waiter = threading.Thread(target=lambda: hidden.update(call(client, url, "ops_4__run_4", 1)))
        waiter.start()
        try:
            assert entered.wait(10), "the child never asked the host to analyse ops-4"
            # The host is still 'busy': the child answers everything else meanwhile.
            assert client.get(url.rsplit("/", 1)[0] + "/health").status_code == 200
            body = {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}
            listed = client.post(url, json=body, headers=headers)
            assert "search_tools" in listed.text
            assert call(client, url, "ops_0__run_0", 2)["result"]["content"][0]["text"] == "2"  # type: ignore[index]
            assert not hidden, "the hidden call finished before the host analysed its skill"
        finally:
            release.set()
            waiter.join(10)
        assert hidden["result"]["content"][0]["text"] == "5"  # type: ignore[index]
