"""examples/remote-server/compose.replicas.yml: three replicas on one Redis behind one nginx (issue 16).

Docker cannot run here, so the file is checked against what it promises: each replica's environment
is a valid ``McpHttpConfig`` with the same server name, the Redis service's URL and password, a
0.0.0.0 bind and the public URL nginx passes on as Host; the render command in its header reproduces
the committed ``nginx.replicas.conf`` (the same upstream names and ports as the replica services),
which ``nginx -t`` accepts. The cluster itself runs for real in ``tests/replicas/test_e2e_*.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from edge_helpers import free_port, nginx_binary, nginx_test
from mcp_embed import McpHttpConfig

EXAMPLE = Path(__file__).parent.parent / "examples" / "remote-server"
COMPOSE = EXAMPLE / "compose.replicas.yml"
CONF = EXAMPLE / "nginx.replicas.conf"
REPLICAS = ("mcp-1", "mcp-2", "mcp-3")
# What an operator exports before `docker compose up` (step 1 of the file's header).
SECRETS = {"MCP_EMBED_API_KEYS": "laptop:" + "k" * 40, "MCP_EMBED_REDIS_PASSWORD": "p" * 48}


def _interpolate(value: Any) -> str:
    """Compose's ``${VAR:?message}`` with the operator's exports; other text unchanged."""
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: SECRETS[m.group(1)], str(value))


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: _interpolate(v) for k, v in service["environment"].items()}


def _render_command() -> tuple[dict[str, str], list[str]]:
    """(environment, argv) of the render command the header shows."""
    lines = COMPOSE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#   MCP_PUBLIC_URL="))
    text = ""
    for line in lines[start:]:
        text += line[1:].strip().removesuffix("\\") + " "
        if not line.endswith("\\"):
            break
    words = shlex.split(text)
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    return env, [w for w in words if not re.match(r"^[A-Z_]+=", w)]


def test_the_services_and_what_is_published() -> None:
    services = _compose()["services"]
    assert set(services) == {"redis", "edge", *REPLICAS}
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published == ["127.0.0.1:8080:80"]  # nginx only, on loopback
    assert all("ports" not in services[name] for name in (*REPLICAS, "redis"))


def test_every_replica_is_one_service_on_the_shared_redis() -> None:
    compose = _compose()
    services = compose["services"]
    edge_ip = services["edge"]["networks"]["mcpnet"]["ipv4_address"]
    redis_cmd = [_interpolate(a) for a in services["redis"]["command"]]
    password = redis_cmd[redis_cmd.index("--requirepass") + 1]
    configs = []
    for name in REPLICAS:
        service = services[name]
        config = McpHttpConfig.from_env(_env(service))
        configs.append(config)
        assert config.host == "0.0.0.0" and f"{config.port}" in service["expose"]
        assert config.redis_url is not None
        redis = urlsplit(config.redis_url.get_secret_value())
        assert (redis.hostname, redis.port, redis.password) == ("redis", 6379, password)
        assert config.trusted_proxies == (edge_ip,)
        assert config.auth is not None and config.auth.enforce == "native"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["build"]["args"]["MCP_EMBED_EXTRAS"] == "redis"
    # One service: the same name (their Redis keys' prefix), URL and Host/Origin allow-list.
    assert len({c.server_name for c in configs}) == 1
    assert len({c.redis_url.get_secret_value() for c in configs if c.redis_url}) == 1
    assert len({(c.public_url, c.allowed_hosts, c.allowed_origins) for c in configs}) == 1
    # The Host nginx passes on ($http_host) is the public URL's: the published port, on loopback.
    public = urlsplit(configs[0].public_url or "")
    assert (public.hostname, public.port) == ("localhost", 8080)
    # The image installs the extra the build asks for.
    assert "ARG MCP_EMBED_EXTRAS" in (EXAMPLE / "Dockerfile").read_text()
    extras = tomllib.loads((EXAMPLE.parent.parent / "pyproject.toml").read_text())["project"]
    assert "redis" in extras["optional-dependencies"]


def test_the_header_command_renders_the_committed_nginx_config(tmp_path: Path) -> None:
    env, argv = _render_command()
    replica = _env(_compose()["services"]["mcp-1"])
    assert all(replica[k] == v for k, v in env.items())  # rendered from the replicas' own settings
    assert argv[:3] == ["mcp-embed", "edge", "nginx"] and argv[-2:] == ["--out", "nginx.replicas.conf"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--upstream"] == [f"{n}:8765" for n in REPLICAS]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "LOG_"))}
    run_env = {**base, **env, "MCP_EMBED_API_KEYS": SECRETS["MCP_EMBED_API_KEYS"]}
    out = tmp_path / "nginx.replicas.conf"
    subprocess.run(
        [sys.executable, "-m", "mcp_embed", *argv[1:-1], str(out)],
        env=run_env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    rendered = out.read_text()
    assert rendered == CONF.read_text(), "rerun the render command in compose.replicas.yml and commit"
    assert SECRETS["MCP_EMBED_API_KEYS"].split(":")[1] not in rendered
    assert re.findall(r"^    server (\S+) ", rendered, re.M) == [f"{n}:8765" for n in REPLICAS]
    assert "hash $http_mcp_session_id" not in rendered  # round-robin: the replicas share sessions
    assert "    listen 80;" in rendered and "    server_name localhost;" in rendered
    assert "proxy_set_header Host $http_host;" in rendered
    mounts = _compose()["services"]["edge"]["volumes"]
    assert "./nginx.replicas.conf:/etc/nginx/conf.d/default.conf:ro" in mounts
    assert "auth_basic_user_file /etc/nginx/mcp-embed/metrics.htpasswd;" in rendered
    assert "./nginx/metrics.htpasswd:/etc/nginx/mcp-embed/metrics.htpasswd:ro" in mounts


def test_nginx_accepts_the_committed_config(tmp_path: Path) -> None:
    nginx_binary()
    local = CONF.read_text().replace("    listen 80;", f"    listen 127.0.0.1:{free_port()};")
    for name in REPLICAS:  # no compose DNS here
        local = local.replace(f"server {name}:8765 ", f"server 127.0.0.1:{free_port()} ")
    result = nginx_test(tmp_path, local)
    assert result.returncode == 0, result.stderr
