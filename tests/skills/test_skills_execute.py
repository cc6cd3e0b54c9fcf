"""Running skill tools: validation first, in-process import and re-import, subprocesses and their timeouts."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from mcp_embed.errors import ToolError
from mcp_embed.skills import SkillArgumentError, SkillCatalog, SkillTool, SkillToolError
from skills.skillkit import FIXTURES, write_skill

TOOLS = '''
import os
import sys
from enum import Enum
from typing import Literal


class Color(Enum):
    RED = "red"
    BLUE = "blue"


CALLS = []


def add(a: int, b: int = 2) -> int:
    """Add."""
    CALLS.append((a, b))
    return a + b


def paint(color: Color, finish: Literal["matte", "gloss"] = "matte", tags: list[str] | None = None) -> dict:
    """Paint."""
    assert isinstance(color, Color)
    return {"color": color.value, "finish": finish, "tags": tags or []}


def nested(options: dict[str, int]) -> dict[str, int]:
    """Nested."""
    return options


def fail(message: str) -> None:
    """Raise."""
    def deeper():
        raise ValueError("first line\\n  context\\n" + message)
    deeper()


def polite_failure() -> None:
    """Raise the clean kind of error."""
    from mcp_embed.errors import ToolError
    raise ToolError("the scene has no camera")


def leave() -> None:
    """Exit."""
    sys.exit(7)


def chatty(n: int) -> dict:
    """Print to stdout and stderr before returning."""
    print("noise on stdout")
    print("noise on stderr", file=sys.stderr)
    return {"n": n, "pid": os.getpid()}


def odd() -> object:
    """Return something JSON cannot hold as is."""
    return {"set": {1}, "tuple": (1, 2), "path": __import__("pathlib").Path("/x")}


def search_path() -> list:
    """The child's sys.path."""
    return sys.path


def hard_exit() -> None:
    """Die without a word."""
    print("about to die", file=sys.stderr)
    os._exit(3)
'''

HANG = '''
import subprocess
import sys
import time


def hang(pid_file: str) -> None:
    """Start a grandchild, record both pids, then hang."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(pid_file, "w") as fh:
        fh.write(f"{child.pid}")
    print("hanging now", file=sys.stderr, flush=True)
    time.sleep(600)
'''


@pytest.fixture
def catalog(tmp_path: Path, discover) -> SkillCatalog:
    write_skill(tmp_path / "root", "calc", scripts={"tools.py": TOOLS})
    write_skill(
        tmp_path / "root",
        "slow",
        scripts={"hang.py": HANG},
        tools_yaml="""
        tools:
          - name: hang
            source_file: scripts/hang.py
            execution: subprocess
            timeout: 1.5
    """,
    )
    return discover(tmp_path / "root")


def tool(catalog: SkillCatalog, name: str, **changes: object) -> SkillTool:
    found = catalog.tool(name)
    assert found is not None, [t.name for t in catalog.tools]
    for key, value in changes.items():
        setattr(found, key, value)
    return found


def test_in_process_call_and_defaults(catalog: SkillCatalog) -> None:
    assert tool(catalog, "calc__add").invoke({"a": 1}) == 3
    assert tool(catalog, "calc__add").invoke({"a": 1, "b": 5}) == 6


@pytest.mark.parametrize(
    ("name", "arguments", "field", "words"),
    [
        ("calc__add", {}, "a", "required"),
        ("calc__add", {"a": "one"}, "a", "integer"),
        ("calc__add", {"a": 1, "c": 3}, "c", "unexpected argument"),
        ("calc__paint", {"color": "green"}, "color", "expected one of"),
        ("calc__paint", {"color": "red", "tags": ["a", 2]}, "tags.1", "string"),
        ("calc__nested", {"options": {"x": 1.5}}, "options.x", "integer"),
    ],
)
def test_bad_arguments_name_the_field_before_any_code_runs(
    catalog: SkillCatalog, name: str, arguments: dict, field: str, words: str
) -> None:
    module_calls_before = _calls(catalog)
    with pytest.raises(SkillArgumentError) as info:
        tool(catalog, name).invoke(arguments)
    assert info.value.field == field
    assert words in str(info.value)
    assert f"'{field}'" in str(info.value)
    assert "green" not in str(info.value)  # the field and what was expected, never the value
    assert _calls(catalog) == module_calls_before


def _calls(catalog: SkillCatalog) -> list:
    from mcp_embed.skills.execute import load_script

    add = tool(catalog, "calc__add")
    assert add.source_file is not None
    return list(load_script(add.source_file).CALLS)


def test_arguments_must_be_an_object(catalog: SkillCatalog) -> None:
    with pytest.raises(SkillArgumentError):
        tool(catalog, "calc__add").validate([1, 2])  # type: ignore[arg-type]


def test_enums_arrive_as_enum_members(catalog: SkillCatalog) -> None:
    paint = tool(catalog, "calc__paint")
    assert paint.invoke({"color": "blue"}) == {"color": "blue", "finish": "matte", "tags": []}
    paint.execution = "subprocess"
    assert paint.invoke({"color": "red", "finish": "gloss"}) == {
        "color": "red",
        "finish": "gloss",
        "tags": [],
    }


@pytest.mark.parametrize("execution", ["in-process", "subprocess"])
def test_a_raising_script_gives_a_readable_error_without_traceback(
    catalog: SkillCatalog, execution: str
) -> None:
    with pytest.raises(SkillToolError) as info:
        tool(catalog, "calc__fail", execution=execution).invoke({"message": "last line wins"})
    message = str(info.value)
    assert message == "calc__fail: ValueError: last line wins"
    assert "Traceback" not in message and "File " not in message
    assert isinstance(info.value, ToolError)


@pytest.mark.parametrize("execution", ["in-process", "subprocess"])
def test_a_tool_error_keeps_its_own_message(catalog: SkillCatalog, execution: str) -> None:
    with pytest.raises(
        SkillToolError, match=r"^calc__polite_failure: (ToolError: )?the scene has no camera$"
    ):
        tool(catalog, "calc__polite_failure", execution=execution).invoke({})


@pytest.mark.parametrize("execution", ["in-process", "subprocess"])
def test_sys_exit_is_an_error_and_the_host_lives_on(catalog: SkillCatalog, execution: str) -> None:
    with pytest.raises(SkillToolError, match="SystemExit: 7"):
        tool(catalog, "calc__leave", execution=execution).invoke({})


def test_a_non_zero_exit_without_a_result_reports_code_and_stderr(catalog: SkillCatalog) -> None:
    with pytest.raises(SkillToolError) as info:
        tool(catalog, "calc__hard_exit", execution="subprocess").invoke({})
    assert "exited with code 3" in str(info.value)
    assert "about to die" in str(info.value)


def test_subprocess_output_noise_does_not_corrupt_the_result(catalog: SkillCatalog) -> None:
    result = tool(catalog, "calc__chatty", execution="subprocess").invoke({"n": 4})
    assert result["n"] == 4
    assert result["pid"] != os.getpid()


def test_results_are_made_json_able(catalog: SkillCatalog) -> None:
    for execution in ("in-process", "subprocess"):
        result = tool(catalog, "calc__odd", execution=execution).invoke({})
        assert result == {"set": "{1}", "tuple": [1, 2], "path": str(Path("/x"))}
        json.dumps(result)


def test_a_subprocess_script_sees_its_own_folder_not_the_runners(catalog: SkillCatalog) -> None:
    import mcp_embed.skills

    search = tool(catalog, "calc__search_path", execution="subprocess").invoke({})
    script_dir = tool(catalog, "calc__search_path").source_file.parent
    assert search[0] == str(script_dir)
    assert str(Path(mcp_embed.skills.__file__).parent) not in search


def test_the_interpreter_is_configurable(catalog: SkillCatalog, tmp_path: Path) -> None:
    with pytest.raises(SkillToolError, match="cannot start"):
        tool(catalog, "calc__add", execution="subprocess", interpreter=str(tmp_path / "no-python")).invoke(
            {"a": 1}
        )
    assert (
        tool(catalog, "calc__add", execution="subprocess", interpreter=sys.executable).invoke({"a": 1}) == 3
    )


def _gone(pid: int) -> bool:
    """Whether ``pid`` is dead (or a zombie nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(os.name == "nt", reason="POSIX process groups")
def test_a_hanging_subprocess_is_killed_at_its_timeout_with_its_children(
    catalog: SkillCatalog, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(SkillToolError) as info:
        tool(catalog, "slow__hang").invoke({"pid_file": str(pid_file)})
    assert info.value.timed_out
    assert "timed out after 1.5 s" in str(info.value)
    assert "process tree was killed" in str(info.value)
    assert "hanging now" in str(info.value)
    grandchild = int(pid_file.read_text())
    try:
        for _ in range(100):  # the kill is synchronous; this only waits for the OS to reap the orphan
            if _gone(grandchild):
                break
            time.sleep(0.05)
        assert _gone(grandchild)
    finally:
        if not _gone(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_in_process_scripts_are_reimported_when_they_change(tmp_path: Path, discover) -> None:
    folder = write_skill(
        tmp_path, "live", scripts={"v.py": "def version() -> int:\n    '''V.'''\n    return 1\n"}
    )
    (version,) = discover().tools
    assert version.invoke({}) == 1
    assert version.invoke({}) == 1
    script = folder / "scripts" / "v.py"
    stat = script.stat()
    script.write_text("def version() -> int:\n    '''V.'''\n    return 2\n")  # same size, maybe same mtime
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert version.invoke({}) == 2
    script.write_text("def version() -> int:\n    '''V.'''\n    return 300\n")
    assert version.invoke({}) == 300
    assert not (folder / "scripts" / "__pycache__").exists()


def test_an_import_error_is_a_tool_error_and_a_fixed_script_recovers(tmp_path: Path, discover) -> None:
    folder = write_skill(
        tmp_path, "fragile", scripts={"f.py": "def f() -> int:\n    '''F.'''\n    return 1\n"}
    )
    (f,) = discover().tools
    (folder / "scripts" / "f.py").write_text(
        "import not_a_module_anywhere\n\ndef f() -> int:\n    return 1\n"
    )
    with pytest.raises(SkillToolError, match="ModuleNotFoundError"):
        f.invoke({})
    (folder / "scripts" / "f.py").write_text("def f() -> int:\n    '''F.'''\n    return 42\n")
    assert f.invoke({}) == 42


def test_dcc_mcp_core_style_skill_runs(discover) -> None:
    catalog = discover(FIXTURES / "dcc-mcp-core", app="maya")
    sphere = tool(catalog, "maya_scene_ops__create_sphere")
    assert sphere.invoke({"radius": 2.5})["context"] == {"object_name": "pSphere1", "radius": 2.5}
    sphere.execution = "subprocess"
    assert sphere.invoke({"name": "ball"})["message"] == "Created sphere 'ball' with radius=1.0"
    assert tool(catalog, "maya_scene_ops__rename").invoke({"old": "a", "new": "b"})["success"] is True
    report = tool(catalog, "maya_scene_ops__scene_report")
    assert report.invoke({}) == {"success": True, "objects": 3}
    assert report.invoke({"verbose": True})["names"][0] == "pSphere1"
    with pytest.raises(SkillArgumentError, match="'radius'"):
        sphere.invoke({"radius": "big"})


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script")
def test_a_shell_script_tool_runs_as_a_whole_script(tmp_path: Path, discover) -> None:
    write_skill(
        tmp_path,
        "shell",
        files={"scripts/count.sh": 'read args\necho "working" >&2\necho "{\\"got\\": $args}"\n'},
        tools_yaml="""
            tools:
              - name: count
                source_file: scripts/count.sh
                execution: in-process
                input_schema: {type: object, properties: {n: {type: integer}}}
        """,
    )
    catalog = discover()
    (count,) = catalog.tools
    assert (count.execution, count.function) == ("subprocess", None)
    assert [p.rule for p in catalog.problems] == ["tool-execution"]
    assert count.invoke({"n": 3}) == {"got": {"n": 3}}
