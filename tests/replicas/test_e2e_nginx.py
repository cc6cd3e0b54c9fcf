"""End to end: a real redis-server, three real ``mcp-embed serve`` processes wired to it with
``MCP_EMBED_REDIS_URL``, and a real nginx rendered round-robin in front (issue 16); the scaffolding
is ``e2e_helpers``. Which replica answered is told by its audit log and nginx's ``X-Upstream``.

One stateless cluster serves the module's tests in order (the request ids of each test are its
own); the kill -9 test comes last, since it leaves two replicas.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import HEADERS, TOOL, UPSTREAM, Cluster, Replica, call, cluster, settle

CUT = -1  # a kill -9 outcome: the answer's headers came, its body never did (not an HTTP status)
# A generous shared rate limit: every call takes a token from Redis, so each replica also notices
# a Redis outage through its calls.
GENEROUS = {"MCP_EMBED_RATE_LIMIT_PER_SECOND": "1000", "MCP_EMBED_RATE_LIMIT_BURST": "1000"}


@pytest.fixture(scope="module")
def stateless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("stateless"), "--stateless", "--json-response", env=GENEROUS) as c:
        yield c


def _ids(replica: Replica, ids: range) -> list[int]:
    """The request ids of ``replica``'s audit records of TOOL that fall in ``ids``."""
    out = []
    for record in replica.tool_calls():
        rid = record.get("request_id")
        if isinstance(rid, int) and rid in ids:
            out.append(rid)
    return out


def test_stateless_calls_spread_over_the_three_replicas(stateless: Cluster) -> None:
    base, replicas = stateless.base, stateless.replicas
    with httpx.Client() as c:
        listed = c.post(
            f"{base}/mcp",
            json={"jsonrpc": "2.0", "id": 0, "method": "tools/list"},
            headers=HEADERS,
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        assert TOOL in {t["name"] for t in listed.json()["result"]["tools"]}
        for i in range(1, 13):
            r = call(c, base, i)
            assert r.status_code == 200, r.text
            assert r.json()["result"]["content"][0]["text"] == f"Hello, n{i}!"
    settle(lambda: sum(len(_ids(r, range(1, 13))) for r in replicas) >= 12)
    counts = [len(_ids(r, range(1, 13))) for r in replicas]
    assert sum(counts) == 12 and all(n > 0 for n in counts), counts


def test_the_rate_limit_is_shared_by_the_replicas(tmp_path: Path) -> None:
    env = {"MCP_EMBED_RATE_LIMIT_PER_SECOND": "0.1", "MCP_EMBED_RATE_LIMIT_BURST": "5"}
    with cluster(tmp_path, "--stateless", "--json-response", env=env) as cl, httpx.Client() as c:
        codes = [call(c, cl.base, i).status_code for i in range(30)]
    ok = codes.count(200)
    assert 1 <= ok <= 5 + 1, codes  # one token of refill slack over the run
    assert 429 in codes, codes


def calls_until(
    c: httpx.Client, base: str, replicas: list[Replica], state: str, *, first_id: int, tries: int
) -> list[str]:
    """Call through nginx until every replica's /health says ``state`` (at most ``tries`` calls);
    returns what they say at the end."""
    for i in range(tries):
        with contextlib.suppress(httpx.HTTPError):
            call(c, base, first_id + i, timeout=15)
        if all(r.health() == state for r in replicas):
            break
        time.sleep(0.1)
    return [r.health() for r in replicas]


def test_redis_outage_degrades_health_and_recovers(stateless: Cluster) -> None:
    base, redis, replicas = stateless.base, stateless.redis, stateless.replicas
    with httpx.Client() as c:
        assert [r.health() for r in replicas] == ["healthy"] * 3
        redis.stop()
        # Bounded: about 10 s; a store operation notices the outage.
        assert calls_until(c, base, replicas, "degraded", first_id=1000, tries=100) == ["degraded"] * 3
        for i in range(6):  # calls still answer, none hangs past its timeout
            t0 = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                call(c, base, 3000 + i, timeout=15)
            assert time.monotonic() - t0 < 15
        redis.start()
        # Bounded: about 20 s; a store operation that succeeds clears it.
        assert calls_until(c, base, replicas, "healthy", first_id=2000, tries=200) == ["healthy"] * 3
        assert all(r.proc is not None and r.proc.poll() is None for r in replicas)
        assert call(c, base, 3999).status_code == 200


def test_a_stateful_session_is_served_by_every_replica_round_robin(tmp_path: Path) -> None:
    with cluster(tmp_path, "--json-response") as cl, httpx.Client() as c:
        base, replicas = cl.base, cl.replicas
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        r = c.post(f"{base}/mcp", json=init, headers=HEADERS, timeout=10)
        assert r.status_code == 200, r.text
        sid = r.headers["mcp-session-id"]
        h = {**HEADERS, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
        n = c.post(
            f"{base}/mcp",
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=h,
            timeout=10,
        )
        assert n.status_code == 202, n.text
        for i in range(1, 7):  # round-robin: each request may land on another replica
            listed = c.post(
                f"{base}/mcp", json={"jsonrpc": "2.0", "id": i, "method": "tools/list"}, headers=h, timeout=10
            )
            assert listed.status_code == 200, listed.text
            body = {
                "jsonrpc": "2.0",
                "id": 100 + i,
                "method": "tools/call",
                "params": {"name": TOOL, "arguments": {}},
            }
            called = c.post(f"{base}/mcp", json=body, headers=h, timeout=10)
            assert called.status_code == 200, called.text
        time.sleep(0.5)
        assert all(len(rep.tool_calls()) > 0 for rep in replicas), [len(rep.tool_calls()) for rep in replicas]
        gone = c.delete(f"{base}/mcp", headers=h, timeout=10)
        assert gone.status_code in (200, 204), gone.text
        time.sleep(1.0)  # any propagation between replicas has had its time
        tools_list = {"jsonrpc": "2.0", "id": 99, "method": "tools/list"}
        # round-robin: one request per replica
        codes = [c.post(f"{base}/mcp", json=tools_list, headers=h, timeout=10).status_code for _ in range(3)]
        assert codes == [404, 404, 404], codes  # deleted everywhere


def test_kill_9_of_one_replica_only_fails_calls_in_flight_on_it(stateless: Cluster) -> None:
    """Four clients call at once; replica 1 is killed mid-run. A call fails only if nginx had sent
    it to replica 1 (its ``X-Upstream``); every call a survivor answered has exactly one audit
    record there, and the survivors have no record of any other call."""
    base, replicas = stateless.base, stateless.replicas
    victim, survivors = replicas[1], (replicas[0], replicas[2])
    clients, per_client = 4, 30
    ids = range(5000, 5000 + clients * per_client)
    killed = threading.Event()
    done = threading.Semaphore(0)
    outcome: dict[int, tuple[int, str, bool]] = {}  # id -> (status, X-Upstream, started after the kill)

    def run(first: int) -> None:
        with httpx.Client() as c:
            for i in range(first, first + per_client):
                after = killed.is_set()
                body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                        "params": {"name": TOOL, "arguments": {"name": f"n{i}"}}}  # fmt: skip
                with c.stream("POST", f"{base}/mcp", json=body, headers=HEADERS, timeout=15) as r:
                    try:
                        r.read()
                        status = r.status_code
                    except httpx.RemoteProtocolError:
                        status = CUT  # the replica died between its answer's headers and its body
                outcome[i] = (status, r.headers.get(UPSTREAM, ""), after)
                done.release()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(run, ids.start + k * per_client) for k in range(clients)]
        for _ in range(len(ids) // 3):  # a third of the calls answered, then the kill
            assert done.acquire(timeout=30)
        victim.kill9()
        killed.set()
        for f in futures:
            f.result(timeout=120)  # a call that raised (a hang, a dropped connection) fails here

    assert len(outcome) == len(ids)
    failed = {i: o for i, o in outcome.items() if o[0] != 200}
    assert len(failed) <= clients, failed  # at most one in flight per client when it died
    for status, upstream, _after in failed.values():
        assert status in (502, 504, CUT) and stateless.replica_at(upstream) is victim, (status, upstream)
    # The others carry on: every call sent after the kill was answered (nginx passes a refused
    # connection on to the next replica; a POST already sent is never sent twice).
    assert all(o[0] == 200 for o in outcome.values() if o[2])
    assert any(o[2] for o in outcome.values())  # and there were such calls
    assert any(stateless.replica_at(up) is victim for s, up, _ in outcome.values() if s == 200)
    assert victim.proc is not None and victim.proc.returncode == -9
    by_survivor = {
        r.name: sorted(i for i, (s, up, _) in outcome.items() if s == 200 and stateless.replica_at(up) is r)
        for r in survivors
    }
    expected = sum(len(v) for v in by_survivor.values())
    settle(lambda: sum(len(_ids(r, ids)) for r in survivors) >= expected)
    for r in survivors:
        records = collections.Counter(_ids(r, ids))
        assert sorted(records) == by_survivor[r.name], r.name  # a record for each call it answered, no other
        assert set(records.values()) == {1}, records  # exactly one each
        assert r.alive()
