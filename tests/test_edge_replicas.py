"""`mcp-embed edge nginx` over several replicas: the rendered upstream, and a real nginx in front of
three real servers on loopback (round-robin reaches all three, affinity keeps a session on one,
a stopped replica is skipped)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server
from edge_helpers import free_port, nginx_binary, nginx_test, running_nginx
from mcp_embed import McpHttpConfig, ServerHandle
from mcp_embed.auth.edge import NginxOptions, render_nginx
from mcp_embed.cli import main

THREE = ("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003")
HASH = "    hash $http_mcp_session_id consistent;"


def _upstream_block(site: str) -> list[str]:
    lines = site.splitlines()
    start = lines.index("upstream mcp_embed {")
    return lines[start : lines.index("}", start) + 1]


# -- the rendered text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stateless", "balance", "hashed"),
    [
        (False, None, True),  # stateful: affinity by default
        (True, None, False),  # stateless: round-robin by default
        (False, "round-robin", False),  # the replicas share sessions: no affinity needed
        (True, "affinity", True),
    ],
)
def test_three_upstreams_render_affinity_or_round_robin(stateless: bool, balance: Any, hashed: bool) -> None:
    config = McpHttpConfig(stateless=stateless)
    site = render_nginx(
        config, NginxOptions(upstream=list(THREE), balance=balance, listen=f"127.0.0.1:{free_port()}")
    )
    block = _upstream_block(site)
    assert [line for line in block if line.startswith("    server ")] == [
        f"    server {u} max_fails=2 fail_timeout=10s;" for u in THREE
    ]
    assert "    keepalive 32;" in block
    assert (HASH in block) is hashed
    if hashed:
        assert block.index(HASH) < block.index("    keepalive 32;")  # nginx wants the method first
        assert "# session affinity: requests carrying the same Mcp-Session-Id reach the same" in site
    else:
        assert "hash " not in site and "session affinity" not in site
        assert "# round-robin" in site
    # a replica that is down is skipped; a POST that reached one is never sent to another
    assert "    proxy_next_upstream error timeout;" in site
    assert "non_idempotent" not in site.replace("Without non_idempotent", "")


@pytest.mark.parametrize("balance", ["affinity", "round-robin"])
def test_three_upstreams_pass_nginx_t(tmp_path: Path, balance: Any) -> None:
    nginx_binary()
    options = NginxOptions(upstream=THREE, balance=balance, listen=f"127.0.0.1:{free_port()}")
    site = render_nginx(McpHttpConfig(), options)
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr + "\n" + site


def test_one_upstream_renders_as_before() -> None:
    for upstream in ("127.0.0.1:8765", ("127.0.0.1:8765",)):
        site = render_nginx(McpHttpConfig(), NginxOptions(upstream=upstream))
        assert _upstream_block(site) == [
            "upstream mcp_embed {",
            "    server 127.0.0.1:8765;",
            "    keepalive 32;",
            "}",
        ]
        assert "proxy_next_upstream" not in site and "replica" not in site


def test_upstream_options_are_checked() -> None:
    assert NginxOptions(upstream="a:1").upstreams == ("a:1",)
    assert NginxOptions(upstream="a:1").upstream == "a:1"  # a single string stays one
    listed = NginxOptions(upstream=["a:1", "b:2"])
    assert listed.upstream == ("a:1", "b:2") and listed.upstreams == ("a:1", "b:2")
    assert hash(listed)  # frozen and hashable, also when given a list
    stateful, stateless = McpHttpConfig(), McpHttpConfig(stateless=True)
    assert listed.balance_for(stateful) == "affinity"
    assert listed.balance_for(stateless) == "round-robin"
    assert NginxOptions(upstream="a:1").balance_for(stateful) == "round-robin"  # nothing to balance
    assert NginxOptions(upstream=THREE, balance="round-robin").balance_for(stateful) == "round-robin"
    for bad, message in (
        ((), "at least one|one host:port"),
        (("a:1", "b:2", "a:1"), "'a:1' is listed twice"),
        (("a:1", "b:2;"), "misread"),
        (("a:1", ""), "misread"),
    ):
        with pytest.raises(ValueError, match=message):
            NginxOptions(upstream=bad)
    with pytest.raises(ValueError, match="balance 'sticky' must be one of affinity, round-robin"):
        NginxOptions(upstream=THREE, balance="sticky")  # type: ignore[arg-type]


def test_cli_takes_several_upstreams_and_balance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [k for k in os.environ if k.startswith(("MCP_EMBED_", "MCP_"))]:
        monkeypatch.delenv(name)
    out = tmp_path / "mcp.conf"
    flags = [a for u in THREE for a in ("--upstream", u)]
    assert main(["edge", "nginx", *flags, "--out", str(out)]) == 0
    assert HASH in _upstream_block(out.read_text())  # stateful by default: affinity
    assert main(["edge", "nginx", *flags, "--balance", "round-robin", "--out", str(out)]) == 0
    block = _upstream_block(out.read_text())
    assert HASH not in block and len([x for x in block if x.startswith("    server ")]) == 3
    monkeypatch.setenv("MCP_EMBED_STATELESS", "true")
    assert main(["edge", "nginx", *flags, "--out", str(out)]) == 0
    assert HASH not in out.read_text()
    capsys.readouterr()
    assert main(["edge", "nginx", "--upstream", "a:1", "--upstream", "a:1"]) == 2
    assert "'a:1' is listed twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["edge", "nginx", "--balance", "sticky"])


# -- a real nginx in front of three real replicas ---------------------------------------------------


@contextlib.contextmanager
def _replicas(tmp: Path, base: str, **config: Any) -> Iterator[list[ServerHandle]]:
    handles: list[ServerHandle] = []
    try:
        for i in range(3):
            server = demo_server(
                server_name=f"replica-{i}",
                public_url=base,
                trusted_proxies=("127.0.0.1",),
                json_response=True,
                log_dir=str(tmp / f"logs-{i}"),
                **config,
            )
            handles.append(server.start())
        yield handles
    finally:
        for h in handles:
            h.stop()


def _health(base: str, **headers: str) -> str:
    r = httpx.get(f"{base}/health", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["name"])


def _initialize(base: str) -> str:
    """The name of the replica that answered an initialize POST."""
    r = httpx.post(f"{base}/mcp", json=INIT, headers=ACCEPT, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["result"]["serverInfo"]["name"])


def test_round_robin_reaches_every_replica_and_skips_a_stopped_one(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _replicas(tmp_path, base, stateless=True) as handles:
        config = McpHttpConfig(stateless=True, public_url=base)
        site = render_nginx(
            config,
            NginxOptions(
                upstream=tuple(f"127.0.0.1:{h.port}" for h in handles),
                listen=f"127.0.0.1:{port}",
                balance="round-robin",
            ),
        )
        assert "hash " not in site
        with running_nginx(tmp_path, site, port):
            names = {f"replica-{i}" for i in range(3)}
            assert {_health(base) for _ in range(6)} == names
            assert {_initialize(base) for _ in range(6)} == names  # POSTs too
            handles[1].stop()  # one replica goes away; new requests go to the others
            after = [_health(base) for _ in range(6)] + [_initialize(base) for _ in range(6)]
            assert set(after) == {"replica-0", "replica-2"}
            log = (tmp_path / "error.log").read_text()
            assert f"127.0.0.1:{handles[1].port}" in log  # nginx saw the refused connection


def test_affinity_sends_each_session_id_to_one_replica(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _replicas(tmp_path, base) as handles:  # stateful
        config = McpHttpConfig(public_url=base)
        site = render_nginx(
            config,
            NginxOptions(upstream=tuple(f"127.0.0.1:{h.port}" for h in handles), listen=f"127.0.0.1:{port}"),
        )
        assert HASH in site  # the default in stateful mode
        names = {f"replica-{i}" for i in range(3)}
        with running_nginx(tmp_path, site, port):
            # Without a session id (the initialize, /health) requests still go round-robin.
            assert {_initialize(base) for _ in range(6)} == names
            assert {_health(base) for _ in range(6)} == names
            # With one, the same id reaches the same replica every time.
            ids = [f"session-{n:02d}-{os.urandom(8).hex()}" for n in range(12)]
            home: dict[str, str] = {}
            for sid in ids:
                seen = {_health(base, **{"Mcp-Session-Id": sid}) for _ in range(4)}
                assert len(seen) == 1, (sid, seen)
                home[sid] = seen.pop()
            assert len(set(home.values())) >= 2  # 12 ids spread over the ring, not all on one
            # A replica stops: its ids move to the others, every other id stays where it was.
            gone = next(i for i in range(3) if f"replica-{i}" in home.values())
            handles[gone].stop()
            for sid in ids:
                now = {_health(base, **{"Mcp-Session-Id": sid}) for _ in range(3)}
                assert len(now) == 1 and f"replica-{gone}" not in now
                if home[sid] != f"replica-{gone}":
                    assert now == {home[sid]}  # consistent hashing: only the lost replica's ids move
            survivors = names - {f"replica-{gone}"}
            assert {_initialize(base) for _ in range(6)} == survivors  # new sessions still open
