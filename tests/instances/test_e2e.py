"""Must show (issue 17): three servers in three separate processes, two "maya" and one "blender",
each on port 0 with metadata; ``mcp-embed instances --json`` lists all three; after ``kill -9`` of
one it disappears within the TTL while the others stay listed. Once with the files of this machine,
once with a real redis-server and a different ``instance_host`` per process standing for machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until
from edge_helpers import stop_process
from redis_helpers import RedisServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kill -9")

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
TTL = 1.5  # seconds: short, so a killed instance goes soon; heartbeats every 0.5 s
BOUND = 60.0  # seconds: a hang guard on every wait, never an assertion on timing


def _env(folder: Path, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_EMBED_")}
    env.update(
        MCP_EMBED_REGISTRY_DIR=str(folder),
        MCP_EMBED_REGISTRY_TTL=str(TTL),
        MCP_EMBED_LOG_DIR=str(folder.parent / "logs"),
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
    )
    if redis_url:
        env["MCP_EMBED_REDIS_URL"] = redis_url
    return env


@contextlib.contextmanager
def hosts(tmp_path: Path, env: dict[str, str], specs: list[tuple[str, str, str, str]]) -> Iterator[list[Any]]:
    """Start one process per (app, scene, instance_host, spawn_mode); yield [(proc, ready info)]."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n, (app, scene, host, mode) in enumerate(specs):
            ready = tmp_path / f"ready-{n}.json"
            args = [sys.executable, str(HERE / "instance_process.py"), app, scene, str(ready), host, mode]
            procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL))
        started = []
        for n, proc in enumerate(procs):
            ready = tmp_path / f"ready-{n}.json"
            assert wait_until(lambda: ready.exists() or proc.poll() is not None, BOUND), (
                "a host never started"
            )
            assert proc.poll() is None, f"host {n} exited with {proc.returncode}"
            started.append((proc, json.loads(ready.read_text("utf-8"))))
        yield started
    finally:
        for proc in procs:
            stop_process(proc)


def instances(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    """What ``mcp-embed instances --json`` prints, run as a script would run it."""
    out = subprocess.run(
        [sys.executable, "-m", "mcp_embed", "instances", "--json", *args],
        env=env,
        capture_output=True,
        timeout=BOUND,
        check=True,
    )
    records: list[dict[str, Any]] = json.loads(out.stdout)
    return records


def _check_three_then_kill_one(env: dict[str, str], started: list[Any], *cli: str) -> None:
    ids = {info["id"] for _, info in started}
    scenes = {"shot_010.ma", "shot_020.ma", "forest.blend"}

    def all_three_with_metadata() -> bool:
        listed = instances(env, *cli)
        return {r["id"] for r in listed} == ids and {r["metadata"].get("scene") for r in listed} == scenes

    assert wait_until(all_three_with_metadata, BOUND)
    listed = {r["id"]: r for r in instances(env, *cli)}
    for _, info in started:
        record = listed[info["id"]]
        assert (record["url"], record["pid"]) == (info["url"], info["pid"])
        assert record["metadata"]["frames"] == [1, 24]
    assert sorted(r["app_name"] for r in listed.values()) == ["blender", "maya", "maya"]

    victim, victim_info = started[0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=BOUND)
    survivors = ids - {victim_info["id"]}
    assert wait_until(lambda: {r["id"] for r in instances(env, *cli)} == survivors, BOUND)
    # Longer than a TTL later, the others are still listed: their heartbeats keep them.
    first = {r["id"]: r["heartbeat_at"] for r in instances(env, *cli)}
    assert wait_until(
        lambda: all(r["heartbeat_at"] > first[r["id"]] + TTL for r in instances(env, *cli)), BOUND
    )
    assert {r["id"] for r in instances(env, *cli)} == survivors


SPECS = [
    ("maya", "shot_010.ma", "", "dedicated"),
    ("maya", "shot_020.ma", "", "dedicated"),
    ("blender", "forest.blend", "", "subprocess"),
]


def test_three_hosts_listed_by_the_files_and_a_killed_one_goes(tmp_path: Path) -> None:
    env = _env(tmp_path / "instances", None)
    with hosts(tmp_path, env, SPECS) as started:
        _check_three_then_kill_one(env, started)
    assert wait_until(lambda: instances(env) == [], BOUND)  # SIGTERM: each host unlisted itself


def test_three_machines_listed_by_redis_and_a_killed_one_expires(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = _env(tmp_path / "instances", redis_server.url)
    machines = ["machine-a", "machine-b", "machine-c"]
    specs = [
        (app, scene, machine, mode) for (app, scene, _, mode), machine in zip(SPECS, machines, strict=True)
    ]
    with hosts(tmp_path, env, specs) as started:
        cli = ("--redis-url", redis_server.url)
        _check_three_then_kill_one(env, started, *cli)
        assert sorted(r["host"] for r in instances(env, *cli)) == ["machine-b", "machine-c"]
        assert not (tmp_path / "instances").exists()  # nothing went to the files
    assert wait_until(lambda: instances(env, "--redis-url", redis_server.url) == [], BOUND)
