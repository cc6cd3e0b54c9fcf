"""Native OAuth under attack: a Host that lies about the audience, keys that do not fit the
algorithm, and hostile JWTs of every shape. Every refusal is a 4xx with a challenge, and audited."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from auth_helpers import SigningKey, issuer
from conftest import ACCEPT, INIT, demo_server
from mcp_embed import ConfigError, McpHttpConfig, OAuthConfig, ServerHandle

RSA = SigningKey("rsa")
EC = SigningKey("ec", "EC")
RSA_NO_ALG = SigningKey("rsa-no-alg")  # a JWKS entry without "alg": only its kty says what it fits
RSA_NO_ALG.jwk.pop("alg")
EC_NO_ALG = SigningKey("ec-no-alg", "EC")
EC_NO_ALG.jwk.pop("alg")
KEYS = (RSA, EC, RSA_NO_ALG, EC_NO_ALG)


def _start(tmp: Path, stub_url: str) -> ServerHandle:
    auth = OAuthConfig(issuer=stub_url, enforce="native", jwks_min_refresh_seconds=3600)
    return demo_server(  # no failed-auth throttle: every hostile token must reach the verifier
        auth=auth, log_dir=str(tmp), stateless=True, json_response=True, auth_failures_per_second=None
    ).start()


def _post(h: ServerHandle, token: str, **headers: str) -> httpx.Response:
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "ran"}},
    }
    hdrs = {**ACCEPT, "Authorization": f"Bearer {token}", **headers}
    return httpx.post(h.mcp_url(), json=call, headers=hdrs, timeout=10)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jws(header: Any, claims: Any, key: SigningKey | None, signing_alg: str | None) -> str:
    """A compact JWS with exactly this header (which pyjwt's encode would rewrite), signed with
    ``key`` under ``signing_alg`` when both are given, else with a garbage signature."""
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    if key is not None and signing_alg is not None:
        signature = get_default_algorithms()[signing_alg].sign(signing_input, key.private)
    else:
        signature = b"\x00" * 64
    return f"{head}.{body}.{_b64(signature)}"


def _denials(tmp: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in next(tmp.rglob("audit.jsonl")).read_text().splitlines()]
    return [r for r in records if r["event"] == "auth_denied"]


# -- the audience is configuration, never the request's Host (defect 3) ---------------------------------


def test_a_token_for_another_local_server_is_refused_whatever_the_host_header_says(tmp_path: Path) -> None:
    with issuer(*KEYS) as stub:
        h = _start(tmp_path, stub.url)
        try:
            claims = {"iss": stub.url, "sub": "alice", "exp": int(time.time()) + 300}
            other = RSA.token(**claims, aud="http://127.0.0.1:9/mcp")
            assert _post(h, other).status_code == 401
            # before: the audience was read from Host, so this ran the tool
            r = _post(h, other, Host="127.0.0.1:9")
            assert r.status_code == 401, r.text
            assert (
                'error_description="the token\'s audience is not this server"'
                in r.headers["www-authenticate"]
            )
            # the metadata names this server however the request names it
            prm = httpx.get(
                h.url + "/.well-known/oauth-protected-resource/mcp",
                headers={"Host": "127.0.0.1:9"},
                timeout=10,
            )
            assert prm.json()["resource"] == h.mcp_url()
            # this socket, under either name a local client uses for it, is this server
            for aud in (h.mcp_url(), f"http://localhost:{h.port}/mcp"):
                ok = _post(h, RSA.token(**claims, aud=aud))
                assert ok.status_code == 200 and ok.json()["result"]["content"][0]["text"] == "ran"
            named = httpx.get(
                h.url + "/.well-known/oauth-protected-resource/mcp",
                headers={"Host": f"localhost:{h.port}"},
                timeout=10,
            )
            assert named.json()["resource"] == f"http://localhost:{h.port}/mcp"
        finally:
            h.stop()
    assert sum("audience" in d["error"] for d in _denials(tmp_path)) == 2


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"host": "0.0.0.0"}, "on host '0.0.0.0'"),
        ({"trusted_proxies": ("127.0.0.1",)}, "behind a proxy"),
        ({"auth_enforce": "edge"}, "behind a proxy"),
    ],
)
def test_oauth_that_cannot_know_its_own_url_needs_public_url(config: dict[str, Any], where: str) -> None:
    enforce = config.pop("auth_enforce", "native")
    with pytest.raises(ConfigError) as info:
        McpHttpConfig(auth=OAuthConfig(issuer="https://a.example", enforce=enforce), **config)
    assert f"OAuth {where} needs public_url (or OAuthConfig.audience)" in str(info.value)
    # either setting names the audience, and then the config is fine
    McpHttpConfig(
        public_url="https://mcp.example.com",
        auth=OAuthConfig(issuer="https://a.example", enforce=enforce),
        **config,
    )
    McpHttpConfig(
        auth=OAuthConfig(issuer="https://a.example", audience="api://mcp", enforce=enforce), **config
    )


# -- a key must fit the token's algorithm (defect 5) ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "header_alg", "description"),
    [
        (RSA_NO_ALG, "ES256", "the key does not fit the algorithm"),  # before: TypeError -> 500
        (EC_NO_ALG, "RS256", "the key does not fit the algorithm"),
        (EC_NO_ALG, "PS256", "the key does not fit the algorithm"),
        (RSA_NO_ALG, "EdDSA", "the key does not fit the algorithm"),
        (RSA, "PS256", "the algorithm does not match the key"),
        (EC, "RS256", "the algorithm does not match the key"),
    ],
)
def test_a_key_that_does_not_fit_the_algorithm_gets_401(
    tmp_path: Path, key: SigningKey, header_alg: str, description: str
) -> None:
    signer = EC if header_alg == "ES256" else RSA if header_alg in ("RS256", "PS256") else None
    with issuer(*KEYS) as stub:
        h = _start(tmp_path, stub.url)
        try:
            claims = {"iss": stub.url, "aud": h.mcp_url(), "sub": "mallory", "exp": int(time.time()) + 300}
            signing_alg = header_alg if signer is not None else None
            token = _jws({"alg": header_alg, "kid": key.kid, "typ": "JWT"}, claims, signer, signing_alg)
            r = _post(h, token)
            assert r.status_code == 401, r.text
            assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
            assert f'error_description="{description}"' in r.headers["www-authenticate"]
            assert _post(h, key.token(**claims)).status_code == 200  # the key itself still works
        finally:
            h.stop()
    assert [d["error"] for d in _denials(tmp_path)] == [description]


# -- hostile JWTs of every shape ------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_ALLOWED = ["RS256", "PS256", "ES256", "EdDSA"]  # OAuthConfig's default algorithms
_ALGS = (
    st.sampled_from(_ALLOWED)
    | st.sampled_from(_ALLOWED)
    | st.sampled_from(["HS256", "none", "RS1", ""])
    | _JSON
)
_KIDS = (
    st.sampled_from([k.kid for k in KEYS])
    | st.sampled_from([k.kid for k in KEYS])
    | st.just("unknown")
    | _JSON
)


@st.composite
def _hostile(draw: st.DrawFn, stub_url: str, audience: str) -> str:
    """A JWT with a hostile header, claims, signature or bytes (sometimes, by chance, a good one)."""
    signer = draw(st.sampled_from(KEYS))
    header: Any = draw(
        st.fixed_dictionaries(
            {"alg": _ALGS, "kid": _KIDS},
            optional={
                "typ": _JSON,
                "crit": _JSON,
                "jku": st.just("http://127.0.0.1:9/jwks"),
                "b64": st.booleans(),
            },
        )
        | _JSON
    )
    now = int(time.time())
    claims: Any = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "iss": st.sampled_from([stub_url, "https://evil.example"]) | _JSON,
                "aud": st.sampled_from([audience, [audience, "x"], "http://127.0.0.1:9/mcp"]) | _JSON,
                "exp": st.sampled_from([now + 300, now - 300, 10**30, "tomorrow"]) | _JSON,
                "nbf": st.sampled_from([now - 10, now + 3600]) | _JSON,
                "sub": _JSON,
                "scope": _JSON,
                "scp": _JSON,
            },
        )
        | _JSON
    )
    alg = header.get("alg") if isinstance(header, dict) else None
    sign = draw(st.booleans()) and alg == signer.alg
    token = _jws(header, claims, signer if sign else None, alg if sign else None)
    if draw(st.booleans()):  # and sometimes the raw bytes are broken too
        cut = draw(st.integers(0, len(token)))
        token = token[:cut] + draw(st.sampled_from(["", ".", "..", "=", "a"])) + token[cut + 1 :]
    return token


def test_no_hostile_token_gets_a_5xx_and_every_refusal_is_audited(tmp_path: Path) -> None:
    with issuer(*KEYS) as stub:
        h = _start(tmp_path, stub.url)
        seen = {"refused": 0, "ran": 0}

        @settings(
            max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
        )
        @given(token=_hostile(stub.url, h.mcp_url()))
        def attack(token: str) -> None:
            value = token.encode("ascii", "replace")
            r = httpx.post(
                h.mcp_url(),
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "ran"}},
                },
                headers={**ACCEPT, "Authorization": b"Bearer " + value},
                timeout=10,
            )
            assert r.status_code in (200, 400, 401, 403), (token, r.status_code, r.text)
            if r.status_code == 200:
                # only a genuine token gets through: signed by the key it names, for this server
                claims = jwt.decode(token, options={"verify_signature": False})
                assert claims["iss"] == stub.url
                seen["ran"] += 1
            else:
                assert r.headers["www-authenticate"].startswith("Bearer")
                seen["refused"] += 1

        try:
            attack()
            assert (
                httpx.post(h.mcp_url(), json=INIT, headers=ACCEPT, timeout=10).status_code == 401
            )  # still serving
            seen["refused"] += 1
        finally:
            h.stop()
    assert len(_denials(tmp_path)) == seen["refused"]
