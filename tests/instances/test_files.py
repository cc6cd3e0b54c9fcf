"""``FileRegistry`` beyond the contract: the folder, torn and foreign files, dead pids, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_embed.instances import FileRegistry, Instance, default_folder, new_instance, pid_alive


def _instance(**changes: Any) -> Instance:
    instance = new_instance(server_name="tests", app_name="maya", url="http://127.0.0.1:1/mcp", version="1")
    return Instance.from_json({**instance.to_json(), **changes})


def _dead_pid() -> int:
    """The pid of a process that ran and was reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_one_file_per_instance_named_by_its_id(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "new" / "folder")  # made on the first write
    instance = _instance()
    registry.register(instance)
    files = sorted(p.name for p in (tmp_path / "new" / "folder").iterdir())
    assert files == [f"{instance.id}.json"]
    assert json.loads((tmp_path / "new" / "folder" / files[0]).read_text("utf-8")) == instance.to_json()


def test_a_missing_folder_lists_nothing(tmp_path: Path) -> None:
    assert FileRegistry(tmp_path / "never-made").list() == []


def test_torn_and_foreign_files_are_skipped_and_left_alone(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    good = _instance()
    registry.register(good)
    whole = json.dumps(_instance().to_json())
    junk = {
        "torn.json": whole[: len(whole) // 2],  # half a record
        "empty.json": "",
        "list.json": "[1, 2]",
        "foreign.json": json.dumps({"name": "something else"}),
        "badpid.json": json.dumps({**_instance().to_json(), "pid": "twelve"}),
        "other-id.json": whole,  # a record under a name that is not its id
    }
    for name, text in junk.items():
        (tmp_path / name).write_text(text, "utf-8")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "notes.txt").write_text("not a record")
    assert registry.list() == [good]
    for name in [*junk, "binary.json", "folder.json", "notes.txt"]:
        assert (tmp_path / name).exists(), f"{name} is not ours to delete"


def test_a_stale_record_is_not_listed_and_its_file_is_removed(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path, ttl=5.0)
    stale = _instance(heartbeat_at=time.time() - 60)
    fresh = _instance()
    registry.register(stale)
    registry.register(fresh)
    assert registry.list() == [fresh]
    assert not (tmp_path / f"{stale.id}.json").exists()


def test_a_record_whose_process_is_gone_is_not_listed_and_removed(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    dead = _instance(pid=_dead_pid())
    registry.register(dead)
    assert registry.list() == []
    assert not (tmp_path / f"{dead.id}.json").exists()


def test_another_machines_pid_is_not_checked_here(tmp_path: Path) -> None:
    """A shared folder may hold records of other machines: only the heartbeat judges those."""
    registry = FileRegistry(tmp_path, host="this-machine")
    elsewhere = _instance(pid=_dead_pid(), host="render-07")
    registry.register(elsewhere)
    assert registry.list() == [elsewhere]


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(proc.pid)
        proc.kill()
        proc.wait(timeout=30)
        assert not pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc tells a zombie apart")
def test_a_zombie_counts_as_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat")
        deadline = time.monotonic() + 30  # exited, not yet reaped by us
        while stat.exists() and stat.read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.02)
        assert not pid_alive(proc.pid)
    finally:
        proc.wait(timeout=30)


def test_an_id_that_cannot_be_a_file_name_is_refused(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    with pytest.raises(ValueError, match="cannot name a file"):
        registry.register(_instance(id="../escape"))
    with pytest.raises(ValueError, match="cannot name a file"):
        registry.unregister("a/b")
    assert list(tmp_path.iterdir()) == []


def test_writes_are_atomic_a_reader_never_sees_half_a_record(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    instance = _instance(metadata={"blob": "x" * 200_000})  # big enough to take several writes
    registry.register(instance)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(200):
                record = {**instance.to_json(), "metadata": {"blob": str(i % 10) * 200_000}}
                registry.register(Instance.from_json(record))
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = 0
    try:
        for _ in range(100_000):  # bounded: the writer ends after 200 writes
            if stop.is_set():
                break
            raw = (tmp_path / f"{instance.id}.json").read_bytes()
            json.loads(raw)  # the whole old record or the whole new one
            seen += 1
    finally:
        thread.join(60)
    assert not errors
    assert seen > 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{instance.id}.json"]  # no temp file left


def test_a_write_in_progress_is_not_listed(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    (tmp_path / ".tmp-abc.json").write_text(json.dumps(_instance().to_json()))
    assert registry.list() == []


def test_the_folder_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCP_EMBED_REGISTRY_DIR", str(tmp_path / "mine"))
    assert default_folder() == tmp_path / "mine"
    assert FileRegistry().folder == tmp_path / "mine"


def test_the_default_folder_is_in_the_runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MCP_EMBED_REGISTRY_DIR")
    monkeypatch.setattr("platformdirs.user_runtime_dir", lambda *a, **k: str(tmp_path / "run"))
    monkeypatch.setattr("platformdirs.user_state_dir", lambda *a, **k: str(tmp_path / "state"))
    assert default_folder() == tmp_path / "run" / "instances"
    assert (tmp_path / "run" / "instances").is_dir()


def test_without_a_usable_runtime_dir_the_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MCP_EMBED_REGISTRY_DIR")
    (tmp_path / "run").write_text("a file where the runtime folder should be")
    monkeypatch.setattr("platformdirs.user_runtime_dir", lambda *a, **k: str(tmp_path / "run"))
    monkeypatch.setattr("platformdirs.user_state_dir", lambda *a, **k: str(tmp_path / "state"))
    assert default_folder() == tmp_path / "state" / "instances"


def test_a_bad_ttl_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        FileRegistry(tmp_path, ttl=0)
