"""ApiKeyConfig / OAuthConfig validation, env loading, secrets kept out of reprs, public_url rules."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import mcp_embed
from conftest import serving
from mcp_embed import ApiKey, ApiKeyConfig, ConfigError, McpHttpConfig, OAuthConfig

KEY = "k3y-0123456789abcdef"
INSECURE = "MCP_EMBED_DANGEROUSLY_ALLOW_INSECURE_ISSUER_URL"


@contextlib.contextmanager
def records() -> Iterator[list[logging.LogRecord]]:
    """The mcp_embed logger's records (the suite runs with -p no:logging, so no caplog)."""
    got: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = got.append  # type: ignore[method-assign]
    logger = logging.getLogger("mcp_embed")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield got
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_public_names_are_lazy_and_exported() -> None:
    assert {"ApiKeyConfig", "OAuthConfig", "ApiKey"} <= set(mcp_embed.__all__)
    assert mcp_embed.ApiKeyConfig is ApiKeyConfig


def test_secrets_never_show_in_repr_or_errors() -> None:
    c = McpHttpConfig(auth=ApiKeyConfig(key=KEY, keys=(ApiKey(id="b", key=KEY + "b"),)))
    assert KEY not in repr(c) and KEY not in str(c.auth)
    with pytest.raises(ConfigError) as info:
        ApiKeyConfig(key="short-secret")
    assert "short-secret" not in str(info.value)
    assert "ApiKeyConfig.key='<redacted>'" in str(info.value) and "at least 16" in str(info.value)
    with pytest.raises(ConfigError) as info:
        ApiKeyConfig(keys=({"id": "x", "key": "tiny-secret"},))
    assert "tiny-secret" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        McpHttpConfig(auth={"key": "small-secret"})
    assert "small-secret" not in str(info.value) and "at least 16" in str(info.value)


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: ApiKeyConfig(enforce="native"), ["no key", "enforce='native'"]),
        (lambda: ApiKeyConfig(key=KEY, key_env="X"), ["give one of"]),
        (lambda: ApiKeyConfig(key=KEY + " x"), ["may only hold"]),
        (lambda: ApiKeyConfig(key_env="1BAD"), ["ApiKeyConfig.key_env='1BAD'", "environment variable"]),
        (lambda: ApiKeyConfig(key=KEY, header="X API"), ["ApiKeyConfig.header='X API'", "header name"]),
        (lambda: ApiKeyConfig(key=KEY, scheme=""), ["needs a scheme"]),
        (lambda: ApiKeyConfig(key=KEY, enforce="proxy"), ["ApiKeyConfig.enforce='proxy'", "'edge'"]),
        (
            lambda: ApiKeyConfig(keys=(ApiKey(id="a", key=KEY), ApiKey(id="a", key=KEY + "2"))),
            ["duplicate key id 'a'"],
        ),
        (lambda: ApiKey(id="a", key=KEY, env="X"), ["exactly one of"]),
        (lambda: ApiKey(id="a b", key=KEY), ["ApiKey.id='a b'", "not a valid key id"]),
        (lambda: ApiKeyConfig(kee=KEY), ["no field 'kee'", "key_env"]),
        (lambda: OAuthConfig(issuer="ftp://x"), ["OAuthConfig.issuer='ftp://x'", "http(s) URL"]),
        (lambda: OAuthConfig(issuer="http://auth.example.com"), ["http:// on a non-loopback", INSECURE]),
        (lambda: OAuthConfig(issuer="https://a.example", jwks_uri="http://a.example/j"), ["jwks_uri"]),
        (lambda: OAuthConfig(issuer="https://a.example", algorithms=("HS256",)), ["only asymmetric"]),
        (lambda: OAuthConfig(issuer="https://a.example", algorithms=("none",)), ["never none"]),
        (lambda: OAuthConfig(issuer="https://a.example", required_scopes=("a b",)), ["not a scope"]),
        (lambda: OAuthConfig(issuer="https://a.example", leeway=3600), ["leeway=3600", "0 to 300"]),
        (lambda: OAuthConfig(), ["OAuthConfig.issuer", "Field required"]),
    ],
)
def test_invalid_settings_name_the_field_and_what_is_allowed(make: object, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    for fragment in fragments:
        assert fragment in str(info.value)


def test_oauth_refuses_a_plain_http_public_url_unless_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INSECURE, raising=False)
    oauth = OAuthConfig(issuer="https://auth.example.com")
    with pytest.raises(ConfigError) as info:
        McpHttpConfig(auth=oauth, public_url="http://mcp.example.com")
    assert "public_url 'http://mcp.example.com' (with OAuth)" in str(info.value)
    assert INSECURE in str(info.value)
    assert McpHttpConfig(auth=oauth, public_url="http://127.0.0.1:8080").public_url == "http://127.0.0.1:8080"
    assert McpHttpConfig(auth=oauth, public_url="http://localhost:8080").auth is oauth
    assert McpHttpConfig(auth=oauth, public_url="https://mcp.example.com").auth is oauth
    # API keys say nothing about the public URL's scheme (the proxy may terminate TLS elsewhere)
    assert McpHttpConfig(auth=ApiKeyConfig(key=KEY), public_url="http://mcp.example.com").auth is not None
    # the public URL keeps its own validation
    with pytest.raises(ConfigError, match="a path"):
        McpHttpConfig(auth=oauth, public_url="https://mcp.example.com/mcp")


def test_the_dangerous_override_allows_http_and_warns_on_every_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INSECURE, "1")
    oauth = OAuthConfig(issuer="http://auth.internal")
    config = {"auth": oauth, "public_url": "http://mcp.internal"}
    assert McpHttpConfig(**config).public_url == "http://mcp.internal"
    with records() as got:
        for _ in range(2):
            with serving(**config):
                pass
    warnings = [r for r in got if INSECURE in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 2


def test_edge_api_keys_may_leave_the_keys_to_the_proxy() -> None:
    c = McpHttpConfig.from_env({"MCP_EMBED_API_KEY_HEADER": "Authorization"})
    assert isinstance(c.auth, ApiKeyConfig) and c.auth.all_keys() == () and c.auth.enforce == "edge"


def test_dicts_are_accepted_for_auth() -> None:
    assert isinstance(McpHttpConfig(auth={"key": KEY}).auth, ApiKeyConfig)
    oauth = McpHttpConfig(public_url="https://mcp.example.com", auth={"issuer": "https://a.example"})
    assert isinstance(oauth.auth, OAuthConfig)


def test_keys_resolve_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(KEY + "\n")
    c = ApiKeyConfig(key_env="MY_KEY", keys=(ApiKey(id="f", file=str(tmp_path / "k")),))
    assert c.resolve({"MY_KEY": KEY + "e"}) == [("default", KEY + "e"), ("f", KEY)]
    with pytest.raises(ConfigError, match="environment variable MY_KEY is empty or unset"):
        c.resolve({})
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeyConfig(key_file=str(tmp_path / "missing")).resolve()


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    c = McpHttpConfig.from_env({"MCP_EMBED_API_KEY": KEY, "MCP_EMBED_AUTH_ENFORCE": "native"})
    assert isinstance(c.auth, ApiKeyConfig) and c.auth.key_env == "MCP_EMBED_API_KEY"
    assert c.auth.enforce == "native" and KEY not in repr(c)
    c = McpHttpConfig.from_env(
        {
            "MCP_EMBED_API_KEYS": f"a:{KEY},b:{KEY}b",
            "MCP_EMBED_API_KEY_HEADER": "X-API-Key",
            "MCP_EMBED_API_KEY_SCHEME": "",
        }
    )
    assert isinstance(c.auth, ApiKeyConfig) and [k.id for k in c.auth.keys] == ["a", "b"]
    assert c.auth.header == "X-API-Key" and c.auth.scheme == ""
    c = McpHttpConfig.from_env(
        {
            "MCP_EMBED_OAUTH_ISSUER": "https://auth.example.com",
            "MCP_EMBED_OAUTH_REQUIRED_SCOPES": "mcp:read, mcp:write",
            "MCP_PUBLIC_URL": "https://mcp.example.com",
        }
    )
    assert isinstance(c.auth, OAuthConfig) and c.auth.required_scopes == ("mcp:read", "mcp:write")
    assert c.auth.enforce == "edge"
    assert McpHttpConfig.from_env({}).auth is None
    with pytest.raises(ConfigError, match="choose API keys or OAuth"):
        McpHttpConfig.from_env({"MCP_EMBED_API_KEY": KEY, "MCP_EMBED_OAUTH_ISSUER": "https://a.example"})
    with pytest.raises(ConfigError, match="public_url"):
        McpHttpConfig.from_env(
            {"MCP_EMBED_OAUTH_ISSUER": "https://a.example", "MCP_PUBLIC_URL": "http://mcp.example.com"}
        )


def test_exposed_warning_knows_about_auth() -> None:
    with records() as got, serving(host="0.0.0.0", auth=ApiKeyConfig(key=KEY)):
        pass
    edge = [r.getMessage() for r in got if "enforced at the edge" in r.getMessage()]
    assert edge and "proxy in front MUST check" in edge[0]
    assert not any("no authentication is configured" in r.getMessage() for r in got)
    with records() as got, serving(host="0.0.0.0", auth=ApiKeyConfig(key=KEY, enforce="native")):
        pass
    assert any("checked by the server itself" in r.getMessage() for r in got)
    assert not any(r.levelno >= logging.WARNING and "0.0.0.0" in r.getMessage() for r in got)


@pytest.mark.parametrize("mode", ["native", "edge"])
def test_enforcement_asked_for_without_credentials_refuses_to_start(mode: str) -> None:
    """It used to start a server with no authentication, and say nothing on loopback."""
    with pytest.raises(ConfigError, match=f"MCP_EMBED_AUTH_ENFORCE={mode} is set but no credentials are"):
        McpHttpConfig.from_env({"MCP_EMBED_AUTH_ENFORCE": mode})


def test_an_unknown_enforcement_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="MCP_EMBED_AUTH_ENFORCE='bogus' is not a mode: use 'edge'"):
        McpHttpConfig.from_env({"MCP_EMBED_AUTH_ENFORCE": "bogus", "MCP_EMBED_API_KEY": KEY})
    with pytest.raises(ConfigError, match="'Native' is not a mode"):
        McpHttpConfig.from_env({"MCP_EMBED_AUTH_ENFORCE": "Native"})
    assert McpHttpConfig.from_env({}).auth is None  # nothing asked: nothing enforced, as before
