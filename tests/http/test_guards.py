"""CORS, the Host/Origin guard, the body limit, and malformed JSON-RPC, over real HTTP."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from conftest import ACCEPT, INIT, serving


def test_cors_preflight_allows_mcp_headers_for_a_listed_origin() -> None:
    with serving(enable_cors=True, cors_origins=("https://app.example.com",)) as h:
        r = httpx.options(
            h.mcp_url(),
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": (
                    "content-type, mcp-session-id, mcp-protocol-version, authorization, last-event-id"
                ),
            },
        )
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
        allowed = r.headers["access-control-allow-headers"].lower()
        for name in ("mcp-session-id", "mcp-protocol-version", "authorization", "last-event-id"):
            assert name in allowed
        assert "DELETE" in r.headers["access-control-allow-methods"]
        assert r.headers["vary"] == "Origin"

        post = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Origin": "https://app.example.com"})
        assert post.status_code == 200
        assert post.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "Mcp-Session-Id" in post.headers["access-control-expose-headers"]


def test_cors_preflight_refuses_an_unlisted_origin() -> None:
    with serving(enable_cors=True, cors_origins=("https://app.example.com",)) as h:
        r = httpx.options(
            h.mcp_url(), headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers


def test_cors_with_no_list_answers_for_the_origins_the_guard_admits() -> None:
    with serving(enable_cors=True) as h:
        local = f"http://localhost:{h.port}"
        r = httpx.options(h.mcp_url(), headers={"Origin": local, "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == local
        r = httpx.options(
            h.mcp_url(), headers={"Origin": "https://claude.ai", "Access-Control-Request-Method": "POST"}
        )
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        assert "cors_origins=(...)" in r.json()["error"]["message"]


# (config, origin): the preflight's answer and the request's answer must agree.
COHERENCE = [
    ({"enable_cors": True}, "https://claude.ai"),
    ({"enable_cors": True}, "http://localhost:5173"),
    ({"enable_cors": True, "cors_origins": ("https://claude.ai",)}, "https://claude.ai"),
    ({"enable_cors": True, "cors_origins": ("https://claude.ai",)}, "https://evil.example"),
    ({"enable_cors": True, "cors_origins": ("*",)}, "https://anything.example"),
    ({"enable_cors": True, "allowed_origins": ("https://app.example.com",)}, "https://app.example.com"),
    ({"enable_cors": True, "public_url": "https://mcp.example.com"}, "https://mcp.example.com"),
    ({"enable_cors": True, "dns_rebinding_protection": False}, "https://anything.example"),
]


@pytest.mark.parametrize(("config", "origin"), COHERENCE)
def test_cors_and_the_guard_give_one_answer_per_origin(config: dict[str, object], origin: str) -> None:
    with serving(**config) as h:
        url = h.local_url + "/mcp"
        pre = httpx.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        post = httpx.post(url, json=INIT, headers={**ACCEPT, "Origin": origin})
        assert pre.status_code in (204, 403) and post.status_code in (200, 403), (pre, post)
        assert (pre.status_code == 204) == (post.status_code == 200), (pre.status_code, post.status_code)
        if post.status_code == 200:
            assert pre.headers["access-control-allow-origin"] in (origin, "*")
            assert post.headers["access-control-allow-origin"] in (origin, "*")
        else:
            assert pre.json() == post.json()
            assert "cors_origins" in post.json()["error"]["message"]


def test_421_names_the_setting_that_admits_the_host() -> None:
    with serving() as h:
        r = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Host": "mcp.studio.lan:8765"})
        assert r.status_code == 421
        message = r.json()["error"]["message"]
        assert message.startswith("Misdirected request: Host 'mcp.studio.lan:8765' is not allowed; ")
        for fix in ("allowed_hosts=(...)", "MCP_EMBED_ALLOWED_HOSTS", "public_url"):
            assert fix in message


def test_an_ip_literal_host_is_admitted_only_as_the_address_the_request_arrived_on() -> None:
    # tests/http/test_remote_reach.py shows the other half: the machine's own address is admitted.
    with serving() as h:
        r = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Host": f"192.0.2.99:{h.port}"})
        assert r.status_code == 421


def test_no_cors_headers_unless_enabled() -> None:
    with serving() as h:
        r = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Origin": "http://localhost:3000"})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("host", ["evil.example.com", "attacker.test:80", "127.0.0.1.nip.io"])
def test_guard_gives_421_for_a_foreign_host(host: str) -> None:
    with serving() as h:
        r = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Host": host})
        assert r.status_code == 421
        assert r.json()["error"]["code"] == -32600


def test_guard_gives_403_for_a_foreign_origin_and_allows_loopback_origins() -> None:
    with serving() as h:
        bad = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Origin": "https://evil.example"})
        assert bad.status_code == 403
        ok = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Origin": f"http://localhost:{h.port}"})
        assert ok.status_code == 200


def test_guard_is_widened_by_public_url_and_allowed_hosts() -> None:
    with serving(public_url="https://mcp.example.com", allowed_hosts=("internal.lan:*",)) as h:
        for host in ("mcp.example.com", "mcp.example.com:443", "internal.lan:9000"):
            assert (
                httpx.post(
                    h.mcp_url().replace("https://mcp.example.com", h.local_url),
                    json=INIT,
                    headers={**ACCEPT, "Host": host},
                ).status_code
                == 200
            ), host
        r = httpx.post(
            h.local_url + "/mcp", json=INIT, headers={**ACCEPT, "Origin": "https://mcp.example.com"}
        )
        assert r.status_code == 200


def test_guard_can_be_turned_off() -> None:
    with serving(dns_rebinding_protection=False) as h:
        r = httpx.post(h.mcp_url(), json=INIT, headers={**ACCEPT, "Host": "anything.example"})
        assert r.status_code == 200


def test_body_over_the_limit_gets_413() -> None:
    with serving(max_body_bytes=1024) as h:
        big = {**INIT, "params": {**INIT["params"], "pad": "x" * 4096}}
        r = httpx.post(h.mcp_url(), json=big, headers=ACCEPT)
        assert r.status_code == 413
        assert "1024" in r.json()["error"]["message"]

        # chunked, with no Content-Length
        def chunks():
            for _ in range(10):
                yield b"x" * 512

        r = httpx.post(h.mcp_url(), content=chunks(), headers=ACCEPT)
        assert r.status_code == 413
        assert httpx.get(h.url + "/health").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"[]",
        b"{}",
        b'{"jsonrpc":"2.0"}',
        b'{"jsonrpc":"1.0","id":1,"method":"x"}',
        b"\xff\xfe",
        b'{"jsonrpc":"2.0","id":1,"method":42}',
        b"null",
        b'"str"',
    ],
)
def test_malformed_bodies_get_a_jsonrpc_error_never_a_500(body: bytes) -> None:
    with serving() as h:
        r = httpx.post(h.mcp_url(), content=body, headers=ACCEPT)
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["jsonrpc"] == "2.0" and "error" in r.json()
        assert httpx.get(h.url + "/health").status_code == 200


def test_unknown_route_and_wrong_method() -> None:
    with serving() as h:
        assert httpx.get(h.url + "/nope").status_code == 404
        assert httpx.post(h.url + "/sse").status_code == 405
        assert httpx.get(h.url + "/messages/").status_code == 405


def test_cors_preflight_with_a_foreign_host_gets_421() -> None:
    """The guard runs before CORS: a preflight is refused exactly as the real request would be."""
    with serving(enable_cors=True) as h:
        r = httpx.options(
            h.mcp_url(),
            headers={
                "Host": "evil.com",
                "Origin": f"http://localhost:{h.port}",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert r.status_code == 421, r.status_code
        assert "access-control-allow-origin" not in r.headers


def _trickle(port: int, path: str, chunked: bool, stop_after: float) -> bytes:
    """Headers and a few body bytes, then one byte every 0.2 s; what the server sent back."""
    framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: 100000"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\n{framing}\r\n\r\n"
    )
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + (b'2\r\n{"\r\n' if chunked else b'{"'))
        sock.settimeout(0.2)
        deadline = time.monotonic() + stop_after
        while time.monotonic() < deadline:
            try:
                if not got:
                    sock.sendall(b"1\r\n \r\n" if chunked else b" ")
            except OSError:  # the server closed its side
                break
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                return got
            got += data
        else:
            raise AssertionError(f"still connected after {stop_after} s; got {got[:200]!r}")
    return got


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/mcp", "/messages/?session_id=0123456789abcdef0123456789abcdef"])
def test_a_trickled_body_gets_408_and_the_connection_is_closed(chunked: bool, path: str) -> None:
    with serving(body_timeout=1.0) as h:
        got = _trickle(h.port, path, chunked, stop_after=15.0)  # generous: the timeout is 1 s
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b"connection: close" in got.lower(), got[:200]
        assert httpx.get(h.url + "/health").status_code == 200


def test_body_timeout_is_validated() -> None:
    from mcp_embed import ConfigError, McpHttpConfig

    assert McpHttpConfig().body_timeout == 30.0
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="body_timeout"):
            McpHttpConfig(body_timeout=bad)


def test_body_timeout_bounds_only_the_body_not_the_call_or_a_stream() -> None:
    """A call that runs past ``body_timeout`` after its body arrived, and an SSE stream open past
    it, are not cut off."""
    from conftest import demo_server

    server = demo_server(body_timeout=0.5)

    @server.tool()
    def nap() -> str:
        """Sleep past the body timeout."""
        time.sleep(1.2)
        return "rested"

    with server.start() as h, httpx.Client(timeout=10) as client:
        sid = {
            "Mcp-Session-Id": client.post(h.mcp_url(), json=INIT, headers=ACCEPT).headers["mcp-session-id"]
        }
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "nap", "arguments": {}}}
        r = client.post(h.mcp_url(), json=call, headers={**ACCEPT, **sid})
        assert r.status_code == 200 and "rested" in r.text, r.text
        with client.stream("GET", h.sse_url()) as stream:
            lines = stream.iter_lines()
            endpoint = next(line[5:].strip() for line in lines if line.startswith("data:"))
            time.sleep(1.0)
            assert client.post(h.url + endpoint, json=INIT).status_code == 202
            answer = next(line for line in lines if line.startswith("data:"))
            assert '"serverInfo"' in answer, answer


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (("192.0.2.2", 8765), "192.0.2.2:8765"),
        (("::ffff:192.0.2.2", 8765), "192.0.2.2:8765"),
        (("fd00::2", 8765), "[fd00::2]:8765"),
        (("/run/mcp.sock", None), None),
        (None, None),
    ],
)
def test_the_address_a_request_arrived_on_is_written_as_its_client_names_it(
    server: tuple[str, int | None] | None, expected: str | None
) -> None:
    from mcp_embed.http.middleware.guard import arrived_on

    assert arrived_on({"type": "http", "server": server}) == expected
