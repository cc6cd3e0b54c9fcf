"""McpHttpConfig: defaults, immutability, validation messages, and from_env."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mcp_embed import ConfigError, McpHttpConfig, OAuthConfig


def test_safe_defaults() -> None:
    c = McpHttpConfig()
    assert (c.host, c.port, c.endpoint_path) == ("127.0.0.1", 8765, "/mcp")
    assert c.dns_rebinding_protection and not c.enable_cors
    assert c.max_body_bytes == 4 * 1024 * 1024
    assert c.is_loopback


def test_assignment_is_checked_as_construction_is() -> None:
    """dcc-mcp-core's guide sets fields one by one (``cfg.enable_cors = True``)."""
    c = McpHttpConfig()
    c.enable_cors = True
    c.spawn_mode = "subprocess"
    c.log_level = "debug"  # normalised as the constructor normalises it
    assert (c.enable_cors, c.spawn_mode, c.log_level) == (True, "subprocess", "DEBUG")
    with pytest.raises(ConfigError, match=r"McpHttpConfig\.port=70000") as info:
        c.port = 70000
    assert "0 to 65535" in str(info.value) and c.port == 8765  # the config is left as it was
    with pytest.raises(ConfigError, match="no field 'prot'"):
        c.prot = 1  # type: ignore[attr-defined]
    # A rule between fields holds after an assignment too: OAuth off loopback needs public_url.
    c.host = "0.0.0.0"
    with pytest.raises(ConfigError, match="needs public_url"):
        c.auth = OAuthConfig(issuer="https://issuer.example.com")
    assert c.auth is None
    assert c.model_copy(update={"port": 1}).port == 1


def test_a_server_keeps_its_own_copy() -> None:
    from mcp_embed import create_skill_server

    cfg = McpHttpConfig(port=0, server_name="first")
    server = create_skill_server("generic", cfg)
    cfg.server_name = "second"  # the caller's config, after the server was made
    assert server.config.server_name == "first"
    with server.start() as handle:
        server.config.server_name = "third"  # the server's, while it runs: for the next start()
        assert handle.mcp_url().startswith("http://127.0.0.1:")
        import httpx

        assert httpx.get(handle.local_url + "/health").json()["name"] == "first"


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"port": 70000}, ["McpHttpConfig.port=70000", "0 to 65535"]),
        ({"port": "x"}, ["McpHttpConfig.port='x'", "integer"]),
        ({"endpoint_path": "mcp"}, ["endpoint_path='mcp'", "start with '/'"]),
        ({"endpoint_path": "/health"}, ["reserved"]),
        ({"public_url": "https://mcp.example.com//"}, ["a path (//)", "scheme://host[:port]"]),
        ({"public_url": "https://mcp.example.com/mcp"}, ["a path (/mcp)"]),
        ({"public_url": "ftp://x"}, ["http or https"]),
        ({"public_url": "https://u:p@x.com"}, ["credentials"]),
        ({"log_level": "loud"}, ["log_level='loud'", "DEBUG"]),
        ({"spawn_mode": "fork"}, ["spawn_mode='fork'", "dedicated"]),
        ({"max_body_bytes": 0}, ["max_body_bytes=0", "positive"]),
        ({"cors_origins": ("https://a.com/path",)}, ["not an origin"]),
        ({"task_handoff": -1}, ["task_handoff=-1", "0 or more"]),
        ({"task_ttl": 0}, ["task_ttl=0", "unset to keep tasks"]),
        ({"prot": 1}, ["no field 'prot'", "port"]),
    ],
)
def test_invalid_values_name_field_value_and_what_is_allowed(kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        McpHttpConfig(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_public_url_accepts_host_and_port() -> None:
    assert (
        McpHttpConfig(public_url="https://mcp.example.com:8443").public_url == "https://mcp.example.com:8443"
    )
    assert McpHttpConfig(public_url="").public_url is None
    # The form a browser's address bar gives: the same origin, kept without the slash.
    assert McpHttpConfig(public_url="https://mcp.example.com/").public_url == "https://mcp.example.com"
    assert McpHttpConfig(public_url="https://h:8443/").public_url == "https://h:8443"


def test_from_env_reads_prefixed_and_seed_names() -> None:
    env = {
        "MCP_HOST": "0.0.0.0",
        "MCP_PORT": "9000",
        "MCP_PUBLIC_URL": "https://mcp.example.com",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "MCP_EMBED_CORS_ORIGINS": "https://a.example, https://b.example",
        "MCP_EMBED_ENABLE_CORS": "true",
        "MCP_EMBED_STATELESS": "1",
        "MCP_EMBED_MAX_SESSIONS": "",
    }
    c = McpHttpConfig.from_env(env)
    assert (c.host, c.port, c.public_url) == ("0.0.0.0", 9000, "https://mcp.example.com")
    assert (c.log_level, c.log_format) == ("DEBUG", "json")
    assert c.cors_origins == ("https://a.example", "https://b.example")
    assert c.enable_cors and c.stateless and c.max_sessions is None


def test_from_env_prefixed_wins_over_seed_and_overrides_win_over_both() -> None:
    env = {"MCP_PORT": "1", "MCP_EMBED_PORT": "2"}
    assert McpHttpConfig.from_env(env).port == 2
    assert McpHttpConfig.from_env(env, port=3).port == 3


def test_from_env_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"McpHttpConfig.port \(from MCP_PORT\)='abc'"):
        McpHttpConfig.from_env({"MCP_PORT": "abc"})
    with pytest.raises(ConfigError, match="unknown setting MCP_EMBED_PROT"):
        McpHttpConfig.from_env({"MCP_EMBED_PROT": "1"})


def test_every_path_field_accepts_a_pathlib_path(tmp_path: Path) -> None:
    from mcp_embed import ApiKey, ApiKeyConfig
    from mcp_embed.auth.edge import NginxOptions

    key = tmp_path / "key.txt"
    key.write_text("k" * 32)
    cfg = McpHttpConfig(log_dir=tmp_path, python_executable=Path(sys.executable))
    assert cfg.log_dir == str(tmp_path)
    assert cfg.python_executable == sys.executable
    assert ApiKeyConfig(key_file=key).key_file == str(key)
    assert ApiKey(id="a", file=key).file == str(key)
    cert, pem, keys = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "keys.map"
    opts = NginxOptions(tls_cert=cert, tls_key=pem, keys_file=keys)  # type: ignore[arg-type]
    assert (opts.tls_cert, opts.tls_key, opts.keys_file) == (str(cert), str(pem), str(keys))


def test_a_path_field_refuses_a_non_path_with_a_precise_message() -> None:
    with pytest.raises(ConfigError, match=r"log_dir"):
        McpHttpConfig(log_dir=3)


def test_every_mcp_embed_variable_the_package_reads_is_a_field_or_known_to_from_env() -> None:
    """A variable read elsewhere (the skill cache, the registry) must not make ``from_env`` refuse
    to start with "unknown setting": each one named in the source is a field or listed."""
    import re
    from pathlib import Path

    import mcp_embed.config as config_module

    src = Path(config_module.__file__).parent
    named = {m for p in src.rglob("*.py") for m in re.findall(r'"(MCP_EMBED_[A-Z0-9_]+)"', p.read_text())}
    assert "MCP_EMBED_SKILL_CACHE_DIR" in named
    for var in sorted(named):
        try:
            McpHttpConfig.from_env({var: "x"})
        except ConfigError as exc:  # "x" may be a bad value for it; it must not be an unknown name
            assert "unknown setting" not in str(exc), var
