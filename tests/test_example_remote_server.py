"""examples/remote-server: the Dockerfile's own CMD and HEALTHCHECK run here (Docker itself cannot run
on these machines), the compose file publishes loopback only, and the committed nginx config is what
render-edge.sh renders today and passes ``nginx -t``."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from edge_helpers import free_port, nginx_binary, nginx_test

EXAMPLE = Path(__file__).parent.parent / "examples" / "remote-server"
BIN = Path(sys.executable).parent


def _dockerfile() -> tuple[list[str], dict[str, str], str]:
    """(CMD argv, ENV, HEALTHCHECK command) parsed from the Dockerfile."""
    text = (EXAMPLE / "Dockerfile").read_text().replace("\\\n", " ")
    cmd: list[str] = []
    env: dict[str, str] = {}
    health = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CMD "):
            cmd = json.loads(line[4:])
        elif line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
        elif line.startswith("HEALTHCHECK "):
            health = line.split(" CMD ", 1)[1]
    return cmd, env, health


def test_dockerfile_basics() -> None:
    text = (EXAMPLE / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.12-slim" in text
    assert "USER 10001" in text and "useradd --system --uid 10001" in text
    # mcp-embed is not on PyPI: the image installs the wheel built from this checkout.
    assert "COPY dist/ /tmp/wheels/" in text and "pip install /tmp/wheels/mcp_embed-*.whl" in text
    assert 'pip install "mcp-embed' not in text
    cmd, env, health = _dockerfile()
    assert cmd == ["mcp-embed", "serve", "--skills", "/app/skills"]
    assert env["MCP_HOST"] == "0.0.0.0" and health


def test_the_dockerfile_command_serves_and_passes_its_healthcheck(tmp_path: Path) -> None:
    cmd, env, health = _dockerfile()
    port = free_port()
    # The image's environment, but on loopback (tests never bind a public address) and a free port;
    # /app/skills is where the Dockerfile copies ./skills.
    # (MCP_EMBED_REQUIRE_* are the test sessions' own switches, not server settings.)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCP_EMBED_REQUIRE_")}
    run_env = {**base, **env, "MCP_HOST": "127.0.0.1", "MCP_PORT": str(port)}
    run_env["MCP_EMBED_LOG_DIR"] = str(tmp_path / "logs")
    run_env["PATH"] = f"{BIN}{os.pathsep}{run_env.get('PATH', '')}"
    argv = [str(EXAMPLE / "skills") if a == "/app/skills" else a for a in cmd]
    out = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(argv, env=run_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        healthy = None
        for _ in range(300):  # readiness, bounded: the healthcheck passes once the server answers
            if proc.poll() is not None:
                break
            check = subprocess.run(
                ["sh", "-c", health.replace("python ", f"{sys.executable} ", 1)],
                env=run_env,
                capture_output=True,
                timeout=30,
            )
            if check.returncode == 0:
                healthy = check
                break
            time.sleep(0.1)
        log = (tmp_path / "serve.log").read_text(errors="replace")
        assert healthy is not None, log
        body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
        assert body["status"] == "healthy" and body["tools"] >= 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # what `docker stop` sends
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        out.close()
    assert proc.returncode == 0  # SIGTERM stops it cleanly


def test_compose_publishes_loopback_only_and_keeps_keys_out_of_the_server() -> None:
    compose = yaml.safe_load((EXAMPLE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"mcp", "edge"}
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published)
    env = services["mcp"]["environment"]
    assert not any(k in env for k in ("MCP_EMBED_API_KEY", "MCP_EMBED_API_KEYS", "MCP_EMBED_API_KEY_FILE"))
    assert env["MCP_EMBED_TRUSTED_PROXIES"] == services["edge"]["networks"]["mcpnet"]["ipv4_address"]
    mounts = services["edge"]["volumes"]
    assert "./edge/mcp-embed.conf:/etc/nginx/conf.d/default.conf:ro" in mounts
    # The rendered config asks /metrics for the htpasswd file: compose must mount it where it looks.
    conf = (EXAMPLE / "edge" / "mcp-embed.conf").read_text()
    assert "auth_basic_user_file /etc/nginx/mcp-embed/metrics.htpasswd;" in conf
    assert "./edge/metrics.htpasswd:/etc/nginx/mcp-embed/metrics.htpasswd:ro" in mounts


def test_render_edge_script_reproduces_the_committed_config(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is needed")
    work = tmp_path / "remote-server"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("keys.map", "certs"))
    key = "k" * 40
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "LOG_"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MCP_EMBED_API_KEYS": f"laptop:{key}",
    }
    subprocess.run(
        ["bash", str(work / "render-edge.sh")], env=env, check=True, timeout=60, capture_output=True
    )
    rendered = (work / "edge" / "mcp-embed.conf").read_text()
    assert rendered == (EXAMPLE / "edge" / "mcp-embed.conf").read_text(), "rerun render-edge.sh and commit"
    keys = work / "edge" / "keys.map"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and key in keys.read_text()
    assert key not in rendered
    # nginx -t: the same config with the container's paths pointed at local files
    nginx_binary()
    from edge_helpers import self_signed

    cert, pkey = self_signed(tmp_path)
    local = (
        rendered.replace("/etc/nginx/certs/fullchain.pem", str(cert))
        .replace("/etc/nginx/certs/privkey.pem", str(pkey))
        .replace("/etc/nginx/mcp-embed/keys.map", str(keys))
        .replace("server mcp:8765;", "server 127.0.0.1:8765;")  # no compose DNS here
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{free_port()} ssl;")
    )
    result = nginx_test(tmp_path, local)
    assert result.returncode == 0, result.stderr
