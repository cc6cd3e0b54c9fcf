"""mcp-remote (npm) against a natively protected server: OAuth discovery through 401 -> RFC 9728
metadata -> the authorization server's RFC 8414 metadata (a stub on loopback) -> registration.

It cannot finish a browser login, so the bar is what the stub saw it fetch.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from auth_helpers import SigningKey, issuer
from conftest import demo_server
from edge_helpers import free_port
from mcp_embed import OAuthConfig

MCP_REMOTE = "mcp-remote@0.15.1"

pytestmark = pytest.mark.node


def _npx() -> str:
    exe = shutil.which("npx")
    if exe is None:
        if os.environ.get("MCP_EMBED_REQUIRE_NODE"):
            pytest.fail("npx is required (MCP_EMBED_REQUIRE_NODE=1) and was not found")
        pytest.skip("npx (Node.js) is not installed")
    return exe


def test_mcp_remote_walks_discovery_to_the_authorization_server(tmp_path: Path) -> None:
    npx = _npx()
    key = SigningKey("remote-k1")
    with issuer(key) as stub:
        stub.routes["/register"] = lambda s: {
            "client_id": "stub-client",
            "client_id_issued_at": int(time.time()),
            "redirect_uris": [f"http://localhost:{callback}/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        server = demo_server(
            auth=OAuthConfig(issuer=stub.url, required_scopes=("mcp",), enforce="native"),
            log_dir=str(tmp_path / "logs"),
        )
        h = server.start()
        callback = free_port()
        home = tmp_path / "home"
        home.mkdir()
        out = (tmp_path / "mcp-remote.log").open("wb")
        env = {
            **os.environ,
            "HOME": str(home),  # mcp-remote keeps its tokens and debug log under ~/.mcp-auth
            "MCP_REMOTE_CONFIG_DIR": str(home / ".mcp-auth"),
            "BROWSER": "true",  # no browser: the authorization URL is only printed
            "DISPLAY": "",
        }
        proc = subprocess.Popen(
            [npx, "-y", MCP_REMOTE, h.mcp_url(), str(callback), "--debug"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120  # a bound for npx's first download, not an assertion
            while time.monotonic() < deadline and proc.poll() is None:
                if "/authorize?" in (tmp_path / "mcp-remote.log").read_text(errors="replace"):
                    break  # as far as it goes without a browser: the sign-in URL
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            out.close()
            h.stop()
        output = (tmp_path / "mcp-remote.log").read_text(errors="replace")
        (tmp_path / "stub-access.log").write_text("\n".join(stub.log))
    # The stub's URL appears only in our protected-resource metadata, so fetching its metadata
    # proves mcp-remote followed the 401's resource_metadata to the PRM and on to the AS.
    assert "GET /.well-known/oauth-authorization-server" in stub.log, output[-3000:]
    assert "POST /register" in stub.log, output[-3000:]
    assert "Successfully fetched Protected Resource Metadata" in output
    assert "/.well-known/oauth-protected-resource/mcp" in output
    # The sign-in URL it would open: PKCE, and the resource indicator bound to our endpoint.
    url = next(w for w in output.split() if "/authorize?" in w)
    assert url.startswith(f"{stub.url}/authorize?") and "code_challenge_method=S256" in url
    assert "resource=http%3A%2F%2F127.0.0.1" in url and "scope=mcp" in url
