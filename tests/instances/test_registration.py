"""``Registration``: the running server's side. It lists the instance while it serves, refreshes the
heartbeat, carries metadata, survives a failing registry, and removes the record on close."""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until
from mcp_embed.errors import ConfigError
from mcp_embed.instances import (
    FileRegistry,
    Instance,
    Registration,
    check_metadata,
    new_instance,
    registry_ttl,
    start_registration,
)

LOGGER = "mcp_embed.instances"


def _instance(app: str = "maya") -> Instance:
    return new_instance(server_name="tests", app_name=app, url="http://127.0.0.1:1/mcp", version="1")


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mcp-embed-registry:")]


def test_new_instance_describes_this_process() -> None:
    instance = new_instance(
        server_name="srv", app_name="maya", url="http://127.0.0.1:5/mcp", version="2.0", metadata={"a": 1}
    )
    host = socket.gethostname()
    assert (instance.server_name, instance.app_name, instance.pid, instance.host) == (
        "srv",
        "maya",
        os.getpid(),
        host,
    )
    assert instance.id.startswith(f"maya-{host}-{os.getpid()}-")
    assert instance.heartbeat_at == instance.started_at
    assert instance.metadata == {"a": 1}
    assert new_instance(server_name="s", app_name="maya", url="u", version="1").id != instance.id


def test_an_id_is_a_safe_file_name_whatever_the_app_and_host(tmp_path: Path) -> None:
    odd = new_instance(server_name="s", app_name="..My App/..\\x", url="u", version="1", host="h:ost/one")
    FileRegistry(tmp_path).register(odd)  # refused if the id could not name a file
    assert [p.name for p in tmp_path.iterdir()] == [f"{odd.id}.json"]
    assert odd.host == "h:ost/one"  # the record keeps the real names


def test_start_lists_and_close_unlists(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    registration = Registration(FileRegistry(tmp_path), _instance(), ttl=30).start()
    try:
        assert registration.listed
        assert [i.id for i in registry.list()] == [registration.id]
        assert len(_threads()) == 1
    finally:
        registration.close()
    assert registry.list() == []
    assert _threads() == []
    registration.close()  # idempotent


def test_the_heartbeat_refreshes_the_record(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path, ttl=30)
    registration = Registration(FileRegistry(tmp_path), _instance(), ttl=0.3).start()
    try:
        first = registry.list()[0].heartbeat_at
        assert wait_until(lambda: registry.list()[0].heartbeat_at > first, 15.0)
    finally:
        registration.close()


def test_not_listed_until_alive_and_unlisted_while_not(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    serving = threading.Event()
    registration = Registration(FileRegistry(tmp_path), _instance(), ttl=0.6, alive=serving.is_set).start()
    try:
        assert not registration.listed and registry.list() == []
        serving.set()  # the server is ready: the heartbeat thread notices
        assert wait_until(lambda: [i.id for i in registry.list()] == [registration.id], 15.0)
        serving.clear()  # it stopped serving (a crashed child): unlisted
        assert wait_until(lambda: registry.list() == [], 15.0)
        serving.set()  # restarted
        assert wait_until(lambda: len(registry.list()) == 1, 15.0)
    finally:
        registration.close()


def test_set_metadata_merges_and_is_written_without_waiting_for_a_beat(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    registration = Registration(FileRegistry(tmp_path), _instance(), ttl=3600).start()  # no beat in the test
    try:
        registration.set_metadata(scene="shot_010.ma", frames=[1, 24])
        assert wait_until(
            lambda: registry.list()[0].metadata == {"scene": "shot_010.ma", "frames": [1, 24]}, 15.0
        )
        registration.set_metadata(scene="shot_020.ma", user=None)
        want = {"scene": "shot_020.ma", "frames": [1, 24], "user": None}
        assert wait_until(lambda: registry.list()[0].metadata == want, 15.0)
        assert registration.instance.metadata == want
    finally:
        registration.close()


def test_metadata_is_a_snapshot() -> None:
    frames = [1, 2]
    checked = check_metadata({"frames": frames})
    frames.append(3)
    assert checked == {"frames": [1, 2]}


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (object(), TypeError, r"metadata bad=<object object at .*> is not a JSON value"),
        ({1, 2}, TypeError, r"metadata bad=\{1, 2\} is not a JSON value"),
        (math.nan, ValueError, r"metadata bad=nan is not a JSON value"),
        ({"deep": [math.inf]}, ValueError, "is not a JSON value"),
        (b"bytes", TypeError, "is not a JSON value"),
    ],
)
def test_set_metadata_refuses_what_is_not_json(tmp_path: Path, value: Any, error: type, match: str) -> None:
    registration = Registration(FileRegistry(tmp_path), _instance(), ttl=30).start()
    try:
        with pytest.raises(error, match=match):
            registration.set_metadata(good=1, bad=value)
        assert registration.instance.metadata == {}  # nothing of a refused call is kept
    finally:
        registration.close()


def test_set_metadata_refuses_too_much(tmp_path: Path) -> None:
    registration = Registration(FileRegistry(tmp_path), _instance(), ttl=30).start()
    try:
        with pytest.raises(ValueError, match="at most 65536 are kept"):
            registration.set_metadata(blob="x" * 70_000)
    finally:
        registration.close()


def test_a_failing_registry_is_a_warning_once_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "registry"
    blocked.write_text("a file where the folder should be")  # every write fails with an OSError
    registration = Registration(FileRegistry(blocked), _instance(), ttl=0.15)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        registration.start()  # does not raise
        try:
            assert not registration.listed
            assert wait_until(lambda: sum("still fails" in r.getMessage() for r in caplog.records) >= 3, 15.0)
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, caplog.text
            assert "the instance registry FileRegistry(" in warnings[0].getMessage()
            assert "trying again every" in warnings[0].getMessage()
            blocked.unlink()  # the registry works again: the next beat lists the instance
            assert wait_until(lambda: registration.listed, 15.0)
            assert [i.id for i in FileRegistry(blocked).list()] == [registration.id]
            assert any("answers again" in r.getMessage() for r in caplog.records)
        finally:
            registration.close()


def test_a_record_that_cannot_be_removed_at_close_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = FileRegistry(tmp_path)
    registration = Registration(registry, _instance(), ttl=30).start()
    (tmp_path / f"{registration.id}.json").unlink()
    (tmp_path / f"{registration.id}.json").mkdir()  # a folder cannot be unlinked like a record
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        registration.close()  # does not raise
    assert "could not remove instance" in caplog.text and "expires on its own" in caplog.text


def test_registry_ttl_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_EMBED_REGISTRY_TTL", raising=False)
    assert registry_ttl() == 15.0
    assert registry_ttl(4) == 4.0
    monkeypatch.setenv("MCP_EMBED_REGISTRY_TTL", "2.5")
    assert registry_ttl() == 2.5
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv("MCP_EMBED_REGISTRY_TTL", bad)
        with pytest.raises(ConfigError, match="MCP_EMBED_REGISTRY_TTL must be a positive number of seconds"):
            registry_ttl()


def test_start_registration_uses_the_folder_and_ttl_of_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MCP_EMBED_REGISTRY_DIR", str(tmp_path))
    monkeypatch.setenv("MCP_EMBED_REGISTRY_TTL", "3")
    registration = start_registration(
        server_name="s", app_name="blender", url="http://127.0.0.1:2/mcp", version="1", host="render-07"
    )
    try:
        assert registration.interval == 1.0
        (listed,) = FileRegistry(tmp_path).list()
        assert (listed.app_name, listed.host, listed.url) == (
            "blender",
            "render-07",
            "http://127.0.0.1:2/mcp",
        )
    finally:
        registration.close()
