"""The rendered nginx edge, proven with a real nginx on loopback in front of a real server."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth_helpers import SigningKey, issuer
from conftest import ACCEPT, INIT, demo_server
from edge_helpers import free_port, nginx_binary, nginx_test, running_nginx, self_signed
from mcp_embed import ApiKey, ApiKeyConfig, McpHttpConfig, OAuthConfig, ServerHandle, ToolContext
from mcp_embed.auth.edge import NginxOptions, render_key_map, render_nginx
from mcp_embed.cli import main

KEY_A = "edge-key-a-0123456789abcdef"
KEY_B = "edge.key+b/0123456789ABCDEF=="
PRM = "/.well-known/oauth-protected-resource"


@pytest.fixture(autouse=True)
def _nginx_present() -> None:
    nginx_binary()


def _keys_auth(**kw: Any) -> ApiKeyConfig:
    return ApiKeyConfig(keys=(ApiKey(id="team-a", key=KEY_A), ApiKey(id="team-b", key=KEY_B)), **kw)


def _site(tmp: Path, config: McpHttpConfig, **options: Any) -> str:
    keys = tmp / "keys.map"
    if isinstance(config.auth, ApiKeyConfig):
        keys.write_text(render_key_map(config.auth))
    return render_nginx(
        config, NginxOptions(keys_file=str(keys), metrics_htpasswd=str(tmp / "htpasswd"), **options)
    )


# -- nginx -t on every variant ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["plain", "tls", "api-key", "api-key-tls-cors", "custom-header", "oauth", "oauth-native", "no-sse"],
)
def test_every_rendered_variant_passes_nginx_t(tmp_path: Path, variant: str) -> None:
    options: dict[str, Any] = {"upstream": "127.0.0.1:8765", "listen": f"127.0.0.1:{free_port()}"}
    config: dict[str, Any] = {}
    if "tls" in variant:
        cert, key = self_signed(tmp_path)
        options.update(tls_cert=str(cert), tls_key=str(key))
        config["public_url"] = "https://mcp.example.com"
    if variant.startswith("api-key"):
        config["auth"] = _keys_auth()
    if "cors" in variant:
        config.update(enable_cors=True, cors_origins=("https://app.example.com", "http://localhost:3000"))
    if variant == "custom-header":
        config["auth"] = ApiKeyConfig(key=KEY_A, header="X-API-Key", scheme="")
    if variant.startswith("oauth"):
        enforce = "native" if variant.endswith("native") else "edge"
        config["auth"] = OAuthConfig(
            issuer="https://auth.example.com", required_scopes=("mcp",), enforce=enforce
        )
        config["public_url"] = "https://mcp.example.com"  # the token audience comes from config
    if variant == "no-sse":
        config["enable_sse"] = False
    site = _site(tmp_path, McpHttpConfig(**config), **options)
    assert KEY_A not in site and KEY_B not in site
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr + "\n" + site
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


# -- API keys at the edge ------------------------------------------------------------------------------


class Slow:
    """A tool that reports progress, then waits until the test has seen that progress."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = False


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, str, Slow]]:
    tmp = tmp_path_factory.mktemp("edge")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = {"public_url": base, "trusted_proxies": ("127.0.0.1",), "log_dir": str(tmp / "logs")}
    server = demo_server(auth=_keys_auth(), **config)
    slow = Slow()

    @server.tool()
    def whoami(ctx: ToolContext) -> str:
        """The caller's principal."""
        return str(ctx.principal)

    @server.tool()
    def slow_job(ctx: ToolContext) -> str:
        """Report progress, then wait."""
        slow.running = True
        ctx.report_progress(1, 2, "started")
        slow.release.wait(30)
        slow.running = False
        return "done"

    h = server.start()
    site = _site(tmp, server.config, upstream=f"127.0.0.1:{h.port}", listen=f"127.0.0.1:{port}")
    try:
        with running_nginx(tmp, site, port):
            yield h, base, slow
    finally:
        slow.release.set()
        h.stop()


def _init(base: str, auth: str) -> str:
    r = httpx.post(f"{base}/mcp", json=INIT, headers={**ACCEPT, "Authorization": auth}, timeout=10)
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = {**ACCEPT, "Authorization": auth, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
    assert httpx.post(f"{base}/mcp", json=note, headers=headers, timeout=10).status_code == 202
    return sid


def _sse_messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line.startswith("data:") and line[5:].strip():
            yield json.loads(line[5:])


def test_no_key_gets_401_with_the_challenge(edge: tuple[ServerHandle, str, Slow]) -> None:
    _, base, _ = edge
    for auth in (None, "Bearer wrong-key-0123456789abcdef", f"Bearer {KEY_A.upper()}", f"Basic {KEY_A}"):
        headers = {**ACCEPT, **({"Authorization": auth} if auth else {})}
        r = httpx.post(f"{base}/mcp", json=INIT, headers=headers, timeout=10)
        assert r.status_code == 401, auth
        assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{base}{PRM}/mcp"'
        assert r.json()["error"]["message"] == "Unauthorized"
    assert httpx.get(f"{base}/sse", timeout=10).status_code == 401


def test_a_key_gets_through_and_names_the_caller(edge: tuple[ServerHandle, str, Slow]) -> None:
    _, base, _ = edge
    for key, kid in ((KEY_A, "team-a"), (KEY_B, "team-b")):
        auth = f"bearer {key}"  # the scheme is case-insensitive, the key is not
        sid = _init(base, auth)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}},
        }
        headers = {
            **ACCEPT,
            "Authorization": auth,
            "Mcp-Session-Id": sid,
            "Mcp-Protocol-Version": "2025-11-25",
        }
        r = httpx.post(f"{base}/mcp", json=call, headers=headers, timeout=10)
        assert r.status_code == 200
        result = (
            next(m for m in _sse_messages(r) if m.get("id") == 2)
            if "event-stream" in r.headers["content-type"]
            else r.json()
        )
        assert result["result"]["content"][0]["text"] == kid


def test_health_and_metadata_are_open(edge: tuple[ServerHandle, str, Slow]) -> None:
    _, base, _ = edge
    assert httpx.get(f"{base}/health", timeout=10).json()["status"] == "healthy"
    for path in (PRM, PRM + "/mcp"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200
        assert r.json()["resource"] == f"{base}/mcp"
    assert httpx.get(f"{base}/anything-else", timeout=10).status_code == 404
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401  # basic auth at the edge


def test_stream_is_not_buffered_first_event_arrives_while_the_tool_runs(
    edge: tuple[ServerHandle, str, Slow],
) -> None:
    _, base, slow = edge
    auth = f"Bearer {KEY_A}"
    sid = _init(base, auth)
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "slow_job", "arguments": {}, "_meta": {"progressToken": "p1"}},
    }
    headers = {**ACCEPT, "Authorization": auth, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
    seen: list[str] = []
    with httpx.stream("POST", f"{base}/mcp", json=call, headers=headers, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for message in _sse_messages(r):
            if message.get("method") == "notifications/progress":
                # Through nginx, before the tool has finished: it is still waiting for us.
                assert slow.running and not slow.release.is_set()
                seen.append("progress")
                slow.release.set()
            elif message.get("id") == 7:
                seen.append("result")
                assert message["result"]["content"][0]["text"] == "done"
                break
    assert seen == ["progress", "result"]


def test_rate_limit_triggers(tmp_path: Path) -> None:
    port = free_port()
    server = demo_server(auth=_keys_auth(), trusted_proxies=("127.0.0.1",), log_dir=str(tmp_path / "logs"))
    h = server.start()
    site = _site(
        tmp_path,
        server.config,
        upstream=f"127.0.0.1:{h.port}",
        listen=f"127.0.0.1:{port}",
        rate="1r/m",
        burst=2,
    )
    try:
        with running_nginx(tmp_path, site, port):
            statuses = [
                httpx.post(
                    f"http://127.0.0.1:{port}/mcp",
                    json=INIT,
                    headers={**ACCEPT, "Authorization": f"Bearer {KEY_A}"},
                    timeout=10,
                ).status_code
                for _ in range(5)
            ]
            # unauthenticated guesses count too (the limit runs before the key check)
            guess = httpx.post(
                f"http://127.0.0.1:{port}/mcp", json=INIT, headers=ACCEPT, timeout=10
            ).status_code
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code
    finally:
        h.stop()
    assert statuses[0] == 200 and 429 in statuses
    assert guess == 429 and health == 200


def test_tls_variant_serves_https(tmp_path: Path) -> None:
    port = free_port()
    cert, key = self_signed(tmp_path)
    server = demo_server(auth=_keys_auth(), trusted_proxies=("127.0.0.1",), log_dir=str(tmp_path / "logs"))
    h = server.start()
    site = _site(
        tmp_path,
        server.config,
        upstream=f"127.0.0.1:{h.port}",
        listen=f"127.0.0.1:{port}",
        tls_cert=str(cert),
        tls_key=str(key),
    )
    try:
        with running_nginx(tmp_path, site, port):
            base = f"https://127.0.0.1:{port}"
            assert httpx.get(f"{base}/health", verify=False, timeout=10).status_code == 200
            r = httpx.post(f"{base}/mcp", json=INIT, headers=ACCEPT, verify=False, timeout=10)
            assert r.status_code == 401
            # no public_url: the challenge is built from the request's scheme and Host
            assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{base}{PRM}/mcp"'
            ok = httpx.post(
                f"{base}/mcp",
                json=INIT,
                headers={**ACCEPT, "Authorization": f"Bearer {KEY_B}"},
                verify=False,
                timeout=10,
            )
            assert ok.status_code == 200
    finally:
        h.stop()


# -- OAuth at the edge: nginx auth_request -> the server's verifier ------------------------------------


def test_oauth_edge_through_auth_request(tmp_path: Path) -> None:
    key = SigningKey("edge-k1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with issuer(key) as stub:
        server = demo_server(
            auth=OAuthConfig(issuer=stub.url, required_scopes=("mcp",)),
            public_url=base,
            trusted_proxies=("127.0.0.1",),
            stateless=True,
            json_response=True,
            log_dir=str(tmp_path / "logs"),
        )

        @server.tool()
        def whoami(ctx: ToolContext) -> str:
            """The caller's principal."""
            return str(ctx.principal)

        h = server.start()
        site = _site(tmp_path, server.config, upstream=f"127.0.0.1:{h.port}", listen=f"127.0.0.1:{port}")
        try:
            with running_nginx(tmp_path, site, port):
                r = httpx.post(f"{base}/mcp", json=INIT, headers=ACCEPT, timeout=10)
                assert r.status_code == 401
                assert (
                    r.headers["www-authenticate"]
                    == f'Bearer scope="mcp", resource_metadata="{base}{PRM}/mcp"'
                )
                good = key.token(iss=stub.url, aud=f"{base}/mcp", sub="carol", scope="mcp")
                call = {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "whoami", "arguments": {}},
                }
                ok = httpx.post(
                    f"{base}/mcp",
                    json=call,
                    headers={**ACCEPT, "Authorization": f"Bearer {good}"},
                    timeout=10,
                )
                assert ok.status_code == 200 and ok.json()["result"]["content"][0]["text"] == "carol"
                narrow = key.token(iss=stub.url, aud=f"{base}/mcp", sub="carol", scope="read")
                r = httpx.post(
                    f"{base}/mcp",
                    json=INIT,
                    headers={**ACCEPT, "Authorization": f"Bearer {narrow}"},
                    timeout=10,
                )
                assert r.status_code == 403
                assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
                for malformed in ("Bearer", "Bearer a b", "Basic Zm9vOmJhcg=="):
                    r = httpx.post(
                        f"{base}/mcp", json=INIT, headers={**ACCEPT, "Authorization": malformed}, timeout=10
                    )
                    assert r.status_code == 401, malformed  # never a 500 from auth_request
                expired = key.token(iss=stub.url, aud=f"{base}/mcp", sub="carol", scope="mcp", exp=1, iat=0)
                r = httpx.post(
                    f"{base}/mcp",
                    json=INIT,
                    headers={**ACCEPT, "Authorization": f"Bearer {expired}"},
                    timeout=10,
                )
                assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
            # The server itself refuses whoever is not its trusted proxy: only loopback is trusted here,
            # so a request claiming to be forwarded still needs to come from 127.0.0.1.
        finally:
            h.stop()


# -- the CLI ---------------------------------------------------------------------------------------------


def test_cli_renders_config_and_a_private_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("MCP_EMBED_REQUIRE_")]:  # test switches
        monkeypatch.delenv(name)
    monkeypatch.setenv("MCP_EMBED_API_KEYS", f"a:{KEY_A},b:{KEY_B}")
    monkeypatch.setenv("MCP_PUBLIC_URL", "https://mcp.example.com")
    keys, conf = tmp_path / "keys.map", tmp_path / "mcp.conf"
    keys.write_text("old")
    keys.chmod(0o644)
    assert main(["edge", "nginx-keys", "--out", str(keys)]) == 0
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    text = keys.read_text()
    assert '"~^(?i:Bearer)[ ]+edge[.]key[+]b/0123456789ABCDEF==$" "b";' in text
    assert (
        main(
            [
                "edge",
                "nginx",
                "--keys-file",
                str(keys),
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--out",
                str(conf),
            ]
        )
        == 0
    )
    site = conf.read_text()
    assert KEY_A not in site and KEY_B not in site
    assert 'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"' in site
    assert "server_name mcp.example.com;" in site and "proxy_buffering off;" in site
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr
    monkeypatch.delenv("MCP_EMBED_API_KEYS")
    assert main(["edge", "nginx-keys", "--out", str(keys)]) == 2  # no keys configured
