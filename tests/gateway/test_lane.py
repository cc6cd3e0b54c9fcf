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
