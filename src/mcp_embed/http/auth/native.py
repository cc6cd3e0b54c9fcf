"""Credential checks: bearer API keys (constant time) and JWTs through the issuer's JWKS.

Nothing here does cryptography by hand: signatures are pyjwt's (``pyjwt[crypto]``), key
comparison is :func:`hmac.compare_digest`. The JWKS is fetched on a worker thread (never on the
event loop), cached for ``jwks_cache_seconds``, and refetched when a token names an unknown key id
(at most once per ``jwks_min_refresh_seconds``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..._json import loads
from ...auth.config import ApiKeyConfig, OAuthConfig, check_secure_url
from ...logs import get_logger

if TYPE_CHECKING:
    from ..._asgi import Scope

log = get_logger("auth")

_MAX_DOCUMENT = 1024 * 1024
_FETCH_TIMEOUT = 5.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's ``sub`` (or ``client_id``), or the API key's id."""

    id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    claims: Mapping[str, Any] = field(default_factory=dict)


class Denied(Exception):
    """A refused request: ``status`` 400/401/403 and the RFC 6750 ``error`` code (None: no credential)."""

    def __init__(self, status: int, error: str | None, description: str, *, scope: str | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope


def missing() -> Denied:
    return Denied(401, None, "authentication required")


def bearer_token(value: str | None, scheme: str = "Bearer") -> str:
    """The credential of an ``Authorization``-style header value.

    Raises :class:`Denied`: 401 with no error code when there is no credential of this scheme
    (RFC 6750 §3.1), 400 ``invalid_request`` when the scheme is right but the rest is malformed.
    """
    if value is None:
        raise missing()
    if not scheme:
        token = value.strip(" \t")
        if not token:
            raise missing()
        if not _is_token68(token):
            raise Denied(400, "invalid_request", "malformed credential")
        return token
    name, _, rest = value.strip(" \t").partition(" ")
    if name.lower() != scheme.lower():
        raise missing()
    token = rest.strip(" \t")
    if not token or not _is_token68(token):
        raise Denied(400, "invalid_request", f"malformed {scheme} credential")
    return token


def _is_token68(token: str) -> bool:
    from ...auth.config import TOKEN68

    return bool(TOKEN68.match(token))


# -- API keys --------------------------------------------------------------------------------------


class ApiKeyVerifier:
    """Compares a presented key with every configured key in constant time."""

    def __init__(self, config: ApiKeyConfig, keys: Sequence[tuple[str, str]] | None = None) -> None:
        self.config = config
        resolved = config.resolve() if keys is None else keys
        self._keys = [(kid, key.encode("utf-8")) for kid, key in resolved]

    def credential(self, scope: Scope) -> str:
        values = _header_values(scope, self.config.header.lower().encode("latin-1"))
        if len(values) > 1:
            raise Denied(400, "invalid_request", f"more than one {self.config.header} header")
        return bearer_token(values[0] if values else None, self.config.scheme)

    async def verify(self, token: str) -> Principal:
        presented = token.encode("utf-8")
        found: str | None = None
        for kid, key in self._keys:  # every key, always: the time does not say which one matched
            if hmac.compare_digest(presented, key) and found is None:
                found = kid
        if found is None:
            raise Denied(401, "invalid_token", "unknown API key")
        return Principal(found)


# -- JWTs ------------------------------------------------------------------------------------------


def _fetch_json(url: str) -> Any:
    """GET ``url`` and parse JSON (on a worker thread). Raises OSError or ValueError."""
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - http(s) checked
    with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT) as response:  # noqa: S310
        body = response.read(_MAX_DOCUMENT + 1)
    if len(body) > _MAX_DOCUMENT:
        raise ValueError(f"{url} answered more than {_MAX_DOCUMENT} bytes")
    return loads(body)


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may live: RFC 8414 (path inserted), then OpenID Connect."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")

    def at(p: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, p, "", ""))

    urls = [at(f"/.well-known/oauth-authorization-server{path}")]
    urls.append(at(f"{path}/.well-known/openid-configuration"))
    if path:
        urls.append(at(f"/.well-known/openid-configuration{path}"))
    return urls


# What each JWS algorithm verifies with: the JWK's kty and, where it is fixed, its curve. pyjwt
# takes any key object for any algorithm and fails inside with TypeError or AttributeError, so
# the fit is checked here, before a signature is looked at.
_KEY_FOR_ALGORITHM: dict[str, tuple[str, str | None]] = {
    **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "ES256K": ("EC", "secp256k1"),
    "EdDSA": ("OKP", None),
    "Ed25519": ("OKP", "Ed25519"),
    "Ed448": ("OKP", "Ed448"),
}


@dataclass(frozen=True)
class SigningKey:
    """One JWKS entry: pyjwt's key, and the JWK fields that say which algorithms it can verify."""

    jwk: Any  # jwt.PyJWK
    kty: Any
    crv: Any
    alg: Any

    def fits(self, alg: str) -> str | None:
        """Why this key cannot verify a token signed with ``alg``, or None when it can."""
        if self.alg and self.alg != alg:
            return "the algorithm does not match the key"
        kty, crv = _KEY_FOR_ALGORITHM.get(alg, (None, None))
        if kty is None or self.kty != kty or (crv is not None and self.crv not in (None, crv)):
            return "the key does not fit the algorithm"
        return None


class JwksCache:
    """Signing keys by ``kid``, fetched from ``jwks_uri`` (discovered from the issuer if unset)."""

    def __init__(self, config: OAuthConfig) -> None:
        self.config = config
        self.jwks_uri = config.jwks_uri
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._lock: Any = None
        self.fetches = 0

    async def _discover(self) -> str:
        import anyio

        want = self.config.issuer.rstrip("/")
        errors = []
        for url in metadata_urls(self.config.issuer):
            try:
                meta = await anyio.to_thread.run_sync(_fetch_json, url)
            except (OSError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            if not isinstance(meta, dict) or str(meta.get("issuer", "")).rstrip("/") != want:
                errors.append(f"{url}: its issuer is not {self.config.issuer}")
                continue
            jwks_uri = meta.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                errors.append(f"{url}: no jwks_uri")
                continue
            return check_secure_url(jwks_uri, "the discovered jwks_uri")
        raise OSError("could not discover the JWKS: " + "; ".join(errors))

    async def _refresh(self) -> None:
        import anyio
        from jwt import PyJWK, PyJWTError

        if self.jwks_uri is None:
            self.jwks_uri = await self._discover()
        uri = self.jwks_uri
        self.fetches += 1
        self._fetched_at = time.monotonic()
        data = await anyio.to_thread.run_sync(_fetch_json, uri)
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError(f"{uri} is not a JWKS (no keys list)")
        keys: dict[str, SigningKey] = {}
        for entry in entries:  # one unusable entry costs only itself, as in PyJWKSet
            if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
                continue
            try:
                jwk = PyJWK(entry)
            except PyJWTError:
                continue
            kid = entry.get("kid")
            keys[kid if isinstance(kid, str) else ""] = SigningKey(
                jwk, entry.get("kty"), entry.get("crv"), entry.get("alg")
            )
        self._keys = keys

    async def key(self, kid: str | None) -> SigningKey:
        import anyio

        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at >= self.config.jwks_cache_seconds
            known = self._pick(kid) is not None
            may_refetch = (
                self._fetched_at is None or now - self._fetched_at >= self.config.jwks_min_refresh_seconds
            )
            if stale or (not known and may_refetch):
                try:
                    await self._refresh()
                except Exception as exc:  # keep serving with the keys we have
                    log.warning("JWKS fetch from %s failed: %s", self.jwks_uri or self.config.issuer, exc)
            jwk = self._pick(kid)
        if jwk is None:
            raise Denied(401, "invalid_token", "unknown signing key")
        return jwk

    def _pick(self, kid: str | None) -> SigningKey | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None


class JwtVerifier:
    """Validates signature, ``iss``, ``aud``, ``exp``/``nbf`` (with leeway) and required scopes."""

    def __init__(self, config: OAuthConfig) -> None:
        try:
            import jwt  # noqa: F401
            from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from ...errors import ServerStartError

            raise ServerStartError(
                f"OAuth needs pyjwt with cryptography: pip install 'mcp-embed[auth]' ({exc})"
            ) from None
        self.config = config
        self.jwks = JwksCache(config)

    async def verify(self, token: str, audiences: Sequence[str]) -> Principal:
        """The principal of ``token``, whose ``aud`` must hold one of ``audiences``; or :class:`Denied`."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):  # RecursionError: deep JSON
            raise Denied(401, "invalid_token", "malformed token") from None
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise Denied(401, "invalid_token", "algorithm not allowed")
        kid = header.get("kid")
        key = await self.jwks.key(kid if isinstance(kid, str) else None)
        unfit = key.fits(alg)
        if unfit is not None:
            raise Denied(401, "invalid_token", unfit)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=self.config.issuer,
                leeway=self.config.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Denied(401, "invalid_token", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Denied(401, "invalid_token", "the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Denied(401, "invalid_token", "the token's audience is not this server") from None
        except jwt.InvalidIssuerError:
            raise Denied(401, "invalid_token", "the token's issuer is not trusted") from None
        except jwt.InvalidSignatureError:
            raise Denied(401, "invalid_token", "bad signature") from None
        except jwt.PyJWTError as exc:
            raise Denied(401, "invalid_token", f"invalid token ({type(exc).__name__})") from None
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
            # a shape pyjwt did not expect (it raises these from inside, not PyJWTError): still
            # the token's fault, never a 500
            log.info("token refused by pyjwt with %s", type(exc).__name__)
            raise Denied(401, "invalid_token", f"invalid token ({type(exc).__name__})") from None
        scopes = token_scopes(claims)
        needed = [s for s in self.config.required_scopes if s not in scopes]
        if needed:
            raise Denied(
                403,
                "insufficient_scope",
                f"the token lacks scope {' '.join(needed)}",
                scope=" ".join(self.config.required_scopes),
            )
        subject = claims.get("sub") or claims.get("client_id") or claims.get("azp") or "unknown"
        return Principal(str(subject)[:256], frozenset(scopes), claims)


def token_scopes(claims: Mapping[str, Any]) -> set[str]:
    """Scopes from ``scope`` (space-separated, RFC 8693/9068) or ``scp`` (list or string)."""
    out: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            out.update(value.split())
        elif isinstance(value, list):
            out.update(str(v) for v in value)
    return out


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name]
