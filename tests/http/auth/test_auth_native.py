"""Native enforcement: JWTs through a JWKS served on loopback, API keys, RFC 6750/9728 answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth_helpers import SigningKey, StubServer, issuer
from conftest import ACCEPT, INIT, demo_server
from mcp_embed import ApiKey, ApiKeyConfig, OAuthConfig, ServerHandle, ToolContext

KEY1 = SigningKey("k1")
KEY2 = SigningKey("k2", "EC")
SCOPE = "mcp:tools"


def _start(auth: Any, tmp: Path, **config: Any) -> ServerHandle:
    # These tests refuse hundreds of credentials from one address on purpose: the failed-auth
    # throttle (tests/http/test_session_principal.py) would answer most of them 429.
    config.setdefault("auth_failures_per_second", None)
    server = demo_server(auth=auth, log_dir=str(tmp), stateless=True, json_response=True, **config)

    @server.tool()
    def whoami(ctx: ToolContext) -> str:
        """The caller's principal."""
        return str(ctx.principal)

    return server.start()


def _post(h: ServerHandle, body: dict[str, Any], auth: str | None = None, **headers: str) -> httpx.Response:
    hdrs = {**ACCEPT, **headers}
    if auth is not None:
        hdrs["Authorization"] = auth
    return httpx.post(h.mcp_url(), json=body, headers=hdrs, timeout=10)


def _call(tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": tool, "arguments": args or {}},
    }


@pytest.fixture(scope="module")
def oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, StubServer]]:
    with issuer(KEY1) as stub:
        auth = OAuthConfig(
            issuer=stub.url, required_scopes=(SCOPE,), enforce="native", jwks_min_refresh_seconds=0
        )
        h = _start(auth, tmp_path_factory.mktemp("oauth-logs"))
        try:
            yield h, stub
        finally:
            h.stop()


def _good(h: ServerHandle, stub: StubServer, key: SigningKey = KEY1, **claims: Any) -> str:
    base = {"iss": stub.url, "aud": h.mcp_url(), "sub": "alice", "scope": f"{SCOPE} other"}
    return key.token(**{**base, **claims})


def _prm(h: ServerHandle) -> str:
    return f"{h.url}/.well-known/oauth-protected-resource/mcp"


def test_no_token_gets_401_with_the_rfc9728_challenge(oauth: tuple[ServerHandle, StubServer]) -> None:
    h, _ = oauth
    r = _post(h, INIT)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == f'Bearer scope="{SCOPE}", resource_metadata="{_prm(h)}"'
    assert r.json()["error"]["code"] == -32001


def test_protected_resource_metadata_is_open_on_both_paths(oauth: tuple[ServerHandle, StubServer]) -> None:
    h, stub = oauth
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        r = httpx.get(h.url + path, timeout=10)
        assert r.status_code == 200
        assert r.json() == {
            "resource": h.mcp_url(),
            "authorization_servers": [stub.url],
            "scopes_supported": [SCOPE],
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-embed",
        }
    assert httpx.get(h.url + "/health", timeout=10).status_code == 200


def test_valid_token_reaches_the_tool_with_its_principal(oauth: tuple[ServerHandle, StubServer]) -> None:
    h, stub = oauth
    token = _good(h, stub)
    assert _post(h, INIT, f"Bearer {token}").status_code == 200
    r = _post(h, _call("whoami"), f"bearer {token}")  # the scheme is case-insensitive
    assert r.status_code == 200
    assert r.json()["result"]["content"][0]["text"] == "alice"


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "the token has expired"),
        ({"aud": "https://other.example.com/mcp"}, "the token's audience is not this server"),
        ({"iss": "https://evil.example.com"}, "the token's issuer is not trusted"),
        ({"nbf": int(time.time()) + 3600}, "the token is not valid yet"),
        ({"exp": None}, "invalid token (MissingRequiredClaimError)"),
    ],
)
def test_bad_tokens_get_401_invalid_token(
    oauth: tuple[ServerHandle, StubServer], claims: dict[str, Any], description: str
) -> None:
    h, stub = oauth
    r = _post(h, INIT, f"Bearer {_good(h, stub, **claims)}")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}", scope="{SCOPE}", '
        f'resource_metadata="{_prm(h)}"'
    )


def test_missing_scope_gets_403_insufficient_scope(oauth: tuple[ServerHandle, StubServer]) -> None:
    h, stub = oauth
    r = _post(h, INIT, f"Bearer {_good(h, stub, scope='read')}")
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", error_description="the token lacks scope {SCOPE}", '
        f'scope="{SCOPE}", resource_metadata="{_prm(h)}"'
    )
    # scp as a list (Azure, Okta) counts too
    assert _post(h, INIT, f"Bearer {_good(h, stub, scope=None, scp=[SCOPE])}").status_code == 200


@pytest.mark.parametrize(
    ("value", "status", "error"),
    [
        ("Bearer", 400, "invalid_request"),
        ("Bearer a b", 400, "invalid_request"),
        ("Bearer ä€", 400, "invalid_request"),
        ("Basic dXNlcjpwYXNz", 401, None),
        ("Token abc", 401, None),
        ("", 401, None),
        ("Bearer not-a-jwt", 401, "invalid_token"),
        ("Bearer a.b.c", 401, "invalid_token"),
    ],
)
def test_malformed_headers(
    oauth: tuple[ServerHandle, StubServer], value: str, status: int, error: str
) -> None:
    h, _ = oauth
    r = httpx.post(
        h.mcp_url(), content=json.dumps(INIT), headers={**ACCEPT, "Authorization": value.encode()}, timeout=10
    )
    assert r.status_code == status
    www = r.headers["www-authenticate"]
    assert www.startswith("Bearer ") and f'resource_metadata="{_prm(h)}"' in www
    assert (f'error="{error}"' in www) if error else ("error=" not in www)


def test_two_authorization_headers_are_refused(oauth: tuple[ServerHandle, StubServer]) -> None:
    h, stub = oauth
    token = _good(h, stub)
    headers = [*ACCEPT.items(), ("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    r = httpx.post(h.mcp_url(), content=json.dumps(INIT), headers=headers, timeout=10)
    assert r.status_code == 400


def test_unknown_kid_is_refused_then_accepted_once_the_jwks_rotates(
    oauth: tuple[ServerHandle, StubServer],
) -> None:
    h, stub = oauth
    token = _good(h, stub, key=KEY2)
    r = _post(h, INIT, f"Bearer {token}")
    assert r.status_code == 401
    assert 'error_description="unknown signing key"' in r.headers["www-authenticate"]
    stub.routes["/jwks.json"] = {"keys": [KEY1.jwk, KEY2.jwk]}  # the issuer rotates in a new key
    try:
        assert _post(h, INIT, f"Bearer {token}").status_code == 200
        assert _post(h, INIT, f"Bearer {_good(h, stub)}").status_code == 200  # the old one still works
    finally:
        stub.routes["/jwks.json"] = {"keys": [KEY1.jwk]}


def _hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The RS256/HS256 confusion attack: the issuer's public key used as an HMAC secret."""
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    pem = KEY1.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def test_forged_tokens_are_refused(oauth: tuple[ServerHandle, StubServer]) -> None:
    h, stub = oauth
    claims = {
        "iss": stub.url,
        "aud": h.mcp_url(),
        "sub": "mallory",
        "scope": SCOPE,
        "exp": int(time.time()) + 60,
    }
    forged = SigningKey("k1")  # an attacker's key claiming the issuer's kid
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    for token in (forged.token(**claims), unsigned, _hs256_with_public_key(claims)):
        r = _post(h, INIT, f"Bearer {token}")
        assert r.status_code == 401, token
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_every_denial_is_audited_without_the_token(
    tmp_path: Path,
) -> None:
    with issuer(KEY1) as stub:
        h = _start(OAuthConfig(issuer=stub.url, enforce="native"), tmp_path)
        try:
            token = _good(h, stub, aud="https://other.example/mcp")
            assert _post(h, INIT, f"Bearer {token}").status_code == 401
            good = _good(h, stub, sub="bob")
            assert _post(h, _call("echo", {"text": "hi"}), f"Bearer {good}").status_code == 200
        finally:
            h.stop()
    text = next(tmp_path.rglob("audit.jsonl")).read_text()
    assert token not in text and good not in text
    records = [json.loads(line) for line in text.splitlines()]
    denied = [r for r in records if r["event"] == "auth_denied"]
    assert denied and denied[0]["http_status"] == 401 and "audience" in denied[0]["error"]
    calls = [r for r in records if r["event"] == "tool_call"]
    assert calls and calls[0]["principal"] == "bob"


def test_fast_path_and_sessions_are_guarded(tmp_path: Path) -> None:
    with issuer(KEY1) as stub:
        server = demo_server(
            auth=OAuthConfig(issuer=stub.url, enforce="native"), log_dir=str(tmp_path), json_response=True
        )
        h = server.start()
        try:
            token = _good(h, stub)
            r = _post(h, INIT, f"Bearer {token}")
            assert r.status_code == 200
            sid = r.headers["mcp-session-id"]
            extra = {"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert _post(h, note, f"Bearer {token}", **extra).status_code == 202
            assert _post(h, _call("echo", {"text": "x"}), None, **extra).status_code == 401
            ok = _post(h, _call("echo", {"text": "x"}), f"Bearer {token}", **extra)
            assert ok.status_code == 200 and ok.json()["result"]["content"][0]["text"] == "x"
            assert httpx.get(h.url + "/sse", timeout=10).status_code == 401
        finally:
            h.stop()


def test_jwks_uri_given_explicitly_needs_no_discovery(tmp_path: Path) -> None:
    with issuer(KEY2, discover=False) as stub:
        auth = OAuthConfig(issuer=stub.url, jwks_uri=f"{stub.url}/jwks.json", enforce="native")
        h = _start(auth, tmp_path)
        try:
            assert _post(h, INIT, f"Bearer {_good(h, stub, key=KEY2)}").status_code == 200
            assert not any("well-known" in line for line in stub.log)
        finally:
            h.stop()


def test_explicit_audience_replaces_the_resource_url(tmp_path: Path) -> None:
    with issuer(KEY1) as stub:
        h = _start(OAuthConfig(issuer=stub.url, audience="api://mcp", enforce="native"), tmp_path)
        try:
            assert _post(h, INIT, f"Bearer {_good(h, stub, aud='api://mcp')}").status_code == 200
            assert _post(h, INIT, f"Bearer {_good(h, stub)}").status_code == 401
        finally:
            h.stop()


# -- API keys ----------------------------------------------------------------------------------------

K_OLD = "old-key-0123456789abcdef"
K_NEW = "new-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    tmp = tmp_path_factory.mktemp("keys")
    (tmp / "new.key").write_text(K_NEW + "\n")
    auth = ApiKeyConfig(
        keys=(ApiKey(id="ci-2026-10", key=K_OLD), ApiKey(id="ci-2026-11", file=str(tmp / "new.key"))),
        enforce="native",
    )
    h = _start(auth, tmp)
    try:
        yield h
    finally:
        h.stop()


def test_api_keys_both_work_during_rotation_and_name_the_principal(keyed: ServerHandle) -> None:
    assert (
        _post(keyed, _call("whoami"), f"Bearer {K_OLD}").json()["result"]["content"][0]["text"]
        == "ci-2026-10"
    )
    assert (
        _post(keyed, _call("whoami"), f"Bearer {K_NEW}").json()["result"]["content"][0]["text"]
        == "ci-2026-11"
    )


@pytest.mark.parametrize(
    "value", [None, "Bearer wrong-key-0123456789abcdef", f"Bearer {K_OLD}x", f"Basic {K_OLD}"]
)
def test_wrong_or_missing_api_keys_get_401(keyed: ServerHandle, value: str | None) -> None:
    r = _post(keyed, INIT, value)
    assert r.status_code == 401
    assert f'resource_metadata="{_prm(keyed)}"' in r.headers["www-authenticate"]


def test_custom_header_without_scheme(tmp_path: Path) -> None:
    h = _start(ApiKeyConfig(key=K_NEW, header="X-API-Key", scheme="", enforce="native"), tmp_path)
    try:
        assert _post(h, INIT, **{"X-API-Key": K_NEW}).status_code == 200
        assert _post(h, INIT, f"Bearer {K_NEW}").status_code == 401
    finally:
        h.stop()


# -- no request gets through without a valid token -------------------------------------------------

header_values = st.one_of(  # h11 refuses values with surrounding whitespace: strip them
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=200),
    st.builds(
        lambda s: "Bearer " + s, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300)
    ),
    st.builds(
        lambda s: "Bearer " + K_OLD + s,
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=5),
    ),
    st.builds(
        lambda s: "Bearer " + K_OLD[:-1] + s,
        st.sampled_from([c for c in "0123456789abcdefABCDEF-_.~+/=" if c != K_OLD[-1]]),
    ),
)


header_values = header_values.map(lambda v: v.strip(" \t")).filter(
    lambda v: v.partition(" ")[2].strip() not in (K_OLD, K_NEW)  # the one thing that must pass
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=header_values)
def test_no_request_gets_through_without_a_valid_credential(
    keyed: ServerHandle, oauth: tuple[ServerHandle, StubServer], value: str
) -> None:
    for h in (keyed, oauth[0]):
        r = httpx.post(
            h.mcp_url(),
            content=json.dumps(INIT),
            headers={**ACCEPT, "Authorization": value.encode("latin-1")},
            timeout=10,
        )
        assert r.status_code in (400, 401), (value, r.status_code)
        assert "www-authenticate" in r.headers


# -- trusted proxies -------------------------------------------------------------------------------


def test_forwarded_headers_never_name_the_resource_or_the_caller(tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-Host": "mcp.example.com", "X-Forwarded-Proto": "https", "X-User-Id": "root"}
    for trusted in (("10.9.9.9",), ("127.0.0.1",)):
        h = _start(ApiKeyConfig(key=K_NEW, enforce="native"), tmp_path, trusted_proxies=trusted)
        try:  # the resource is configuration: public_url, else the bound socket, even via a proxy
            prm = httpx.get(h.url + "/.well-known/oauth-protected-resource", headers=forwarded, timeout=10)
            assert prm.json()["resource"] == h.mcp_url()
            # an authenticated caller is named by its key, never by a forwarded X-User-Id
            r = _post(h, _call("whoami"), f"Bearer {K_NEW}", **forwarded)
            assert r.json()["result"]["content"][0]["text"] == "default"
        finally:
            h.stop()


def test_edge_enforcement_refuses_whoever_is_not_the_proxy(tmp_path: Path) -> None:
    h = _start(ApiKeyConfig(), tmp_path, trusted_proxies=("10.9.9.9",))  # edge: the proxy holds the keys
    try:
        r = _post(h, INIT, f"Bearer {K_NEW}")
        assert r.status_code == 403 and "through its proxy" in r.json()["error"]["message"]
        assert httpx.get(h.url + "/health", timeout=10).status_code == 200
        assert httpx.get(h.url + "/.well-known/oauth-protected-resource", timeout=10).status_code == 200
    finally:
        h.stop()
    h = _start(ApiKeyConfig(), tmp_path, trusted_proxies=("127.0.0.1",))
    try:  # from the proxy: through, and its X-User-Id names the caller
        r = _post(h, _call("whoami"), None, **{"X-User-Id": "key-7"})
        assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "key-7"
    finally:
        h.stop()
