"""A started server lists itself and ``stop()`` unlists it, in both spawn modes; the config fields;
``mcp-embed instances`` in-process."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

import mcp_embed
from conftest import demo_server, wait_until
from edge_helpers import free_port
from mcp_embed import ConfigError, McpHttpConfig
from mcp_embed.cli import main
from mcp_embed.cli.instances import format_age, format_table
from mcp_embed.instances import FileRegistry, new_instance
from redis_helpers import PASSWORD


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This test's own registry folder (the session's is shared by every test server)."""
    monkeypatch.setenv("MCP_EMBED_REGISTRY_DIR", str(tmp_path / "instances"))
    monkeypatch.delenv("MCP_EMBED_REGISTRY_TTL", raising=False)
    return tmp_path / "instances"


def test_a_started_server_is_listed_until_stopped(folder: Path, spawn_mode: str) -> None:
    handle = demo_server(spawn_mode=spawn_mode, server_name="lister").start()
    try:
        (listed,) = FileRegistry(folder).list()  # written before start() returned
        assert listed.id == handle.instance_id
        assert listed.url == handle.mcp_url()
        assert (listed.app_name, listed.server_name) == ("tests", "lister")
        assert listed.pid == os.getpid()  # the host, in both modes: liveness follows who registered
        assert listed.version == mcp_embed.__version__
        handle.set_metadata(scene="shot_010.ma", frame=12)
        assert wait_until(
            lambda: FileRegistry(folder).list()[0].metadata == {"scene": "shot_010.ma", "frame": 12}, 15
        )
    finally:
        handle.stop()
    assert FileRegistry(folder).list() == []
    assert handle.instance_id is None


def test_register_false_lists_nothing_and_still_checks_metadata(folder: Path) -> None:
    handle = demo_server(register=False).start()
    try:
        assert handle.instance_id is None
        handle.set_metadata(scene="a.ma")  # checked, kept nowhere
        with pytest.raises(TypeError, match="is not a JSON value"):
            handle.set_metadata(scene=object())
        assert FileRegistry(folder).list() == []
        assert not folder.exists()
    finally:
        handle.stop()


def test_instance_host_names_the_machine(folder: Path) -> None:
    with demo_server(instance_host="render-07").start() as handle:
        (listed,) = FileRegistry(folder).list()
        assert listed.host == "render-07"
        assert handle.instance_id is not None and "-render-07-" in handle.instance_id


def test_start_without_waiting_lists_once_ready(folder: Path) -> None:
    handle = demo_server().start(wait=False)
    try:
        assert wait_until(lambda: [i.id for i in FileRegistry(folder).list()] == [handle.instance_id], 30)
        assert handle.is_ready
    finally:
        handle.stop()


def test_a_failing_registry_never_fails_a_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv("MCP_EMBED_REGISTRY_DIR", str(blocked))
    with caplog.at_level(logging.WARNING, logger="mcp_embed"), demo_server().start() as handle:
        assert handle.is_running
        assert "the instance registry FileRegistry(" in caplog.text
    monkeypatch.setenv("MCP_EMBED_REGISTRY_TTL", "soon")  # the registry cannot even be made
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mcp_embed"), demo_server().start() as handle:
        assert handle.is_running and handle.instance_id is None
        assert "not listed among the running instances: MCP_EMBED_REGISTRY_TTL" in caplog.text


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_crashed_child_is_unlisted_and_a_restart_lists_it_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_EMBED_REGISTRY_TTL", "0.6")
    handle = demo_server(spawn_mode="subprocess").start()
    try:
        assert len(FileRegistry(folder).list()) == 1
        assert handle.pid is not None and handle.pid != os.getpid()
        os.kill(handle.pid, signal.SIGKILL)  # the child serving HTTP dies; the host lives on
        assert wait_until(lambda: FileRegistry(folder).list() == [], 30)
        handle.restart()
        assert [i.url for i in FileRegistry(folder).list()] == [handle.mcp_url()]
    finally:
        handle.stop()


# -- config ------------------------------------------------------------------------------------------


def test_the_config_fields_and_their_environment() -> None:
    assert McpHttpConfig().register is True
    assert McpHttpConfig().instance_host is None
    env = {"MCP_EMBED_REGISTER": "false", "MCP_EMBED_INSTANCE_HOST": "render-07"}
    config = McpHttpConfig.from_env(env)
    assert (config.register, config.instance_host) == (False, "render-07")
    assert McpHttpConfig.from_env({"MCP_EMBED_INSTANCE_HOST": ""}).instance_host is None
    # read by the registry, not config fields, yet no "unknown setting"
    McpHttpConfig.from_env({"MCP_EMBED_REGISTRY_DIR": "/x", "MCP_EMBED_REGISTRY_TTL": "3"})


def test_a_bad_instance_host_is_named() -> None:
    with pytest.raises(
        ConfigError, match=r"invalid McpHttpConfig.instance_host='a b': .* allowed: a machine name"
    ):
        McpHttpConfig(instance_host="a b")
    with pytest.raises(ConfigError, match=r"instance_host \(from MCP_EMBED_INSTANCE_HOST\)"):
        McpHttpConfig.from_env({"MCP_EMBED_INSTANCE_HOST": " "})


# -- mcp-embed instances -----------------------------------------------------------------------------


def test_the_cli_lists_json_and_a_table(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with demo_server().start() as one, demo_server(instance_host="render-07").start() as two:
        one.set_metadata(scene="shot_010.ma")
        assert wait_until(lambda: FileRegistry(folder).list()[0].metadata == {"scene": "shot_010.ma"}, 15)
        assert main(["instances", "--json"]) == 0
        records = json.loads(capsys.readouterr().out)
        assert [r["id"] for r in records] == [one.instance_id, two.instance_id]
        assert records[0]["metadata"] == {"scene": "shot_010.ma"} and records[0]["url"] == one.mcp_url()
        assert main(["instances"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["ID", "APP", "HOST", "PID", "URL", "AGE", "METADATA"]
        assert table[1].split()[:5] == [
            str(one.instance_id),
            "tests",
            records[0]["host"],
            str(os.getpid()),
            one.mcp_url(),
        ]
        assert table[1].endswith("scene=shot_010.ma")
        assert "render-07" in table[2]
    assert main(["instances", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["instances"]) == 0
    assert "No running instances in FileRegistry(" in capsys.readouterr().out


def test_the_cli_names_an_unreachable_redis_without_its_password(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    assert main(["instances", "--redis-url", url]) == 1
    err = capsys.readouterr().err
    assert "cannot reach Redis at redis://***@127.0.0.1:" in err and PASSWORD not in err


def test_the_cli_refuses_a_bad_ttl(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MCP_EMBED_REGISTRY_TTL", "-3")
    assert main(["instances"]) == 2
    assert "MCP_EMBED_REGISTRY_TTL must be a positive number of seconds, not -3.0" in capsys.readouterr().err


def test_the_table_format() -> None:
    instance = new_instance(
        server_name="s", app_name="maya", url="http://127.0.0.1:9/mcp", version="1", host="ws-1",
        metadata={"scene": "a.ma", "frames": [1, 2], "blob": "x" * 100},
    )  # fmt: skip
    _, row = format_table([instance], instance.started_at + 125).splitlines()
    assert row.split()[:6] == [instance.id, "maya", "ws-1", str(instance.pid), "http://127.0.0.1:9/mcp", "2m"]
    assert "scene=a.ma, frames=[1, 2], blob=xxx" in row and row.endswith("...")
    assert [format_age(s) for s in (0, 59, 60, 7200, 90000, -5)] == ["0s", "59s", "1m", "2h", "1d", "0s"]
