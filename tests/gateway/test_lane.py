"""``JsonLane``: the gateway's direct JSON POSTs to an instance, against a real mcp-embed server."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.gateway.lane import JsonLane, LaneError
from mcp_embed.handle import ServerHandle


@pytest.fixture(params=[{}, {"stateless": True, "json_response": True}], ids=["stateful", "stateless-json"])
def instance(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    server = create_skill_server("maya", McpHttpConfig(port=0, **request.param))

    @server.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    with server.start() as handle:
        yield handle


def test_calls_survive_the_server_closing_kept_alive_connections(instance: ServerHandle) -> None:
    """hypercorn closes a connection after 1,000 requests (and after 30 s idle) without a word:
    the next call on it must go out again on a new connection, not fail."""
    lane = JsonLane(instance.mcp_url())

    async def main() -> None:
        for i in range(1010):
            result = await lane.call("echo", {"text": str(i)})
            assert result["content"][0]["text"] == str(i), result

    anyio.run(main)


def test_errors_are_the_instances_own_or_a_lane_error(instance: ServerHandle) -> None:
    lane = JsonLane(instance.mcp_url())

    async def main() -> None:
        bad = await lane.call("echo", {"text": 3})
        assert bad["isError"] is True and "Invalid arguments for tool 'echo'" in bad["content"][0]["text"]
        with pytest.raises(MCPError, match="Unknown tool: nope"):
            await lane.call("nope", {})

    anyio.run(main)
    url = instance.mcp_url()
    instance.stop()

    async def gone() -> None:
        with pytest.raises(LaneError, match="cannot connect"):
            await JsonLane(url).call("echo", {"text": "x"})

    anyio.run(gone)


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="plain http://"):
        JsonLane("https://127.0.0.1:1/mcp")


def test_a_connection_the_server_closed_without_a_word_is_not_an_instance_gone() -> None:
    """A server that ends every kept-alive connection after one answer, saying nothing (as one
    does at its idle timeout): each next call goes out on a new connection and succeeds."""
    import asyncio
    import json

    connections = 0

    async def one_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(v)
            for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
        message = json.loads(await reader.readexactly(length))
        if "id" in message:
            result = {
                "content": [{"type": "text", "text": "ok"}],
                "isError": False,
                "protocolVersion": "2025-11-25",
            }
            body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
        else:
            writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()  # no "connection: close": the client believes it may reuse the connection

    async def main() -> None:
        server = await asyncio.start_server(one_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        lane = JsonLane(f"http://127.0.0.1:{port}/mcp")
        try:
            for _ in range(3):
                assert (await lane.call("echo", {}))["content"][0]["text"] == "ok"
        finally:
            lane.close()
            server.close()
            await server.wait_closed()
        assert connections == 5  # initialize, initialized, then one per call

    asyncio.run(main())
