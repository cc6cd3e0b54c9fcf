"""max_sessions is one limit over every transport: Streamable HTTP sessions and legacy SSE streams
take slots from the same pool, and the sessions gauge counts both."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from conftest import ACCEPT, INIT, demo_server
from mcp_embed import ServerHandle


def _gauge(server: Any) -> float:
    metrics = server.operations.metrics
    assert metrics is not None
    return float(metrics.sessions_open())


def _gauge_scraped(handle: ServerHandle) -> float:
    text = httpx.get(handle.url + "/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("mcp_embed_sessions_open "))
    return float(line.split()[1])


async def _initialize(client: httpx.AsyncClient, handle: ServerHandle) -> httpx.Response:
    return await client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)


@contextlib.asynccontextmanager
async def _sse(client: httpx.AsyncClient, handle: ServerHandle) -> AsyncIterator[httpx.Response]:
    async with client.stream("GET", handle.sse_url(), headers={"Accept": "text/event-stream"}) as r:
        if r.status_code == 200:
            # Up to the endpoint event: the stream is open and its slot is held. The iterator is
            # kept, not abandoned with `break`, which would close the stream.
            lines = r.aiter_lines()
            while not (await lines.__anext__()).startswith("data:"):
                pass
        else:
            await r.aread()
        yield r


async def _until(predicate: Any) -> None:
    for _ in range(500):  # bounded: at most ~10 s
        if predicate():
            return
        await anyio.sleep(0.02)
    raise AssertionError("condition not reached within 10 s")


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 503, r.status_code
    body = r.json()
    assert body["error"]["message"] == "Too many open sessions: max_sessions is 3, shared by /mcp and /sse"
    assert "retry-after" not in r.headers  # as the Streamable HTTP refusal: no promise of when


def test_sse_streams_and_streamable_sessions_share_max_sessions(tmp_path: Path) -> None:
    server = demo_server(max_sessions=3, enable_metrics=True, log_dir=str(tmp_path))
    with server.start() as handle:

        async def main() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                sids = []
                for _ in range(3):
                    r = await _initialize(client, handle)
                    assert r.status_code == 200
                    sids.append(r.headers["mcp-session-id"])
                # Full with Streamable HTTP sessions: a legacy SSE stream is refused too.
                async with _sse(client, handle) as r:
                    _refused(r)
                assert _gauge(server) == 3
                # Free one Streamable HTTP slot; an SSE stream takes it.
                d = await client.delete(handle.mcp_url(), headers={**ACCEPT, "mcp-session-id": sids[0]})
                assert d.status_code == 200
                await _until(lambda: _gauge(server) == 2)
                async with _sse(client, handle) as r:
                    assert r.status_code == 200
                    assert _gauge(server) == 3
                    assert await anyio.to_thread.run_sync(_gauge_scraped, handle) == 3
                    # The SSE stream counts against a new Streamable HTTP session.
                    refused = await _initialize(client, handle)
                    _refused(refused)
                    async with _sse(client, handle) as r2:
                        _refused(r2)
                # Closing the SSE stream frees its slot.
                await _until(lambda: _gauge(server) == 2)
                r = await _initialize(client, handle)
                assert r.status_code == 200

        anyio.run(main)


def test_sse_streams_alone_are_limited(tmp_path: Path) -> None:
    server = demo_server(max_sessions=3, enable_metrics=True, log_dir=str(tmp_path))
    with server.start() as handle:

        async def main() -> None:
            async with httpx.AsyncClient(timeout=10) as client, contextlib.AsyncExitStack() as stack:
                for _ in range(3):
                    r = await stack.enter_async_context(_sse(client, handle))
                    assert r.status_code == 200
                assert _gauge(server) == 3
                async with _sse(client, handle) as r:
                    _refused(r)
                _refused(await _initialize(client, handle))

        anyio.run(main)
        # After the streams closed, every slot is free again.
        anyio.run(_wait_zero, server)


async def _wait_zero(server: Any) -> None:
    await _until(lambda: _gauge(server) == 0)
