"""``ApiKeyConfig`` and ``OAuthConfig``: who may call the server, declared once.

Both are frozen pydantic models. They say *what* is required; ``enforce`` says *who* checks it:

- ``"edge"`` (the default): an authenticating proxy in front of the server checks every request
  (``mcp-embed edge nginx`` renders one). The server still serves the RFC 9728 metadata and a
  token-check endpoint for nginx's ``auth_request``, and trusts the proxy's ``X-User-Id``.
- ``"native"``: the server checks every request itself (bearer keys in constant time, JWTs
  through the issuer's JWKS).

Secrets are :class:`~pydantic.SecretStr`: they never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError

__all__ = [
    "INSECURE_ENV",
    "PRM_PATH",
    "VERIFY_PATH",
    "ApiKey",
    "ApiKeyConfig",
    "AuthConfig",
    "OAuthConfig",
    "PathText",
    "auth_from_env",
    "insecure_override",
]

Enforce = Literal["edge", "native"]

INSECURE_ENV = "MCP_EMBED_DANGEROUSLY_ALLOW_INSECURE_ISSUER_URL"
"""Set to 1 to accept http:// (non-loopback) issuer, JWKS and public URLs. Logged on every start."""

# Where the server answers for the edge: the server's routes and the edge config both use them.
PRM_PATH = "/.well-known/oauth-protected-resource"
VERIFY_PATH = "/_mcp_embed/verify"
"""Answers nginx's ``auth_request``: 204 (with ``X-Mcp-Principal``), 401, 400 or 403."""

# RFC 6750 b64token (token68): what a bearer credential may contain.
TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
# RFC 9110 token: header names and auth schemes.
_TCHAR = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_KEY_LENGTH = 16

_ALLOWED: dict[str, str] = {
    "id": "1 to 64 characters from A-Z a-z 0-9 . _ : @ -",
    "key": f"at least {MIN_KEY_LENGTH} characters from A-Z a-z 0-9 - . _ ~ + / (then '=' padding)",
    "env": "the name of an environment variable holding the key",
    "file": "the path of a file holding the key",
    "key_env": "the name of an environment variable holding the key",
    "key_file": "the path of a file holding the key",
    "header": "an HTTP header name such as Authorization or X-API-Key",
    "scheme": "an auth scheme such as Bearer, or '' for a header that holds the bare key",
    "enforce": "'edge' (the proxy in front checks) or 'native' (the server checks)",
    "issuer": "the authorization server's issuer URL, https://... (http only for loopback)",
    "audience": "the audience tokens must carry; unset: the resource URL (public_url + endpoint_path)",
    "jwks_uri": "https://... JWKS URL; unset: discovered from the issuer's metadata",
    "required_scopes": "scope names every token must carry",
    "authorization_servers": "issuer URLs clients may get tokens from; unset: (issuer,)",
    "algorithms": "asymmetric JWS algorithms such as RS256, ES256, PS256, EdDSA",
    "leeway": "seconds of clock skew allowed for exp/nbf, 0 to 300",
    "jwks_cache_seconds": "a positive number of seconds",
    "jwks_min_refresh_seconds": "a number of seconds, 0 or more",
}
_SECRET = frozenset({"key", "keys"})
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA"}
)


def insecure_override(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``MCP_EMBED_DANGEROUSLY_ALLOW_INSECURE_ISSUER_URL`` is set to a true value."""
    env = os.environ if environ is None else environ
    return env.get(INSECURE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


PathText = Annotated[str, BeforeValidator(_fspath)]
"""A path field: a ``str`` or any ``os.PathLike`` (``pathlib.Path``), kept as ``str``."""


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal) is this machine's loopback."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure_url(url: str, what: str) -> str:
    """Refuse ``http://`` for ``url`` unless its host is loopback or the dangerous override is set."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError(f"{what} must not carry credentials")
    if parts.fragment:
        raise ValueError(f"{what} must not have a fragment")
    if parts.scheme == "http" and not is_loopback_url(url) and not insecure_override():
        raise ValueError(
            f"{what} uses http:// on a non-loopback host: tokens and keys would cross the network in "
            f"clear text. Use https://, or set {INSECURE_ENV}=1 for a test network only"
        )
    return url


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, hide_input_in_errors=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_describe(type(self).__name__, exc, data, type(self).model_fields)) from None


def _key_text(v: SecretStr) -> SecretStr:
    _check_key_text(v.get_secret_value())
    return v


def _env_name(v: str) -> str:
    if not _ENV_NAME.match(v):
        raise ValueError("not an environment variable name")
    return v


# Field types shared by ApiKey and ApiKeyConfig: one rule each, wherever a key or a variable is named.
_KeyText = Annotated[SecretStr, AfterValidator(_key_text)]
_EnvName = Annotated[str, AfterValidator(_env_name)]


class ApiKey(_Strict):
    """One API key with an id. Give exactly one of ``key``, ``env`` or ``file``.

    The id names the caller in the audit log and ``ctx.principal``; several keys let you rotate
    without downtime (add the new one, move clients over, remove the old one).
    """

    id: str = "default"
    key: _KeyText | None = None
    """The key itself (kept as a secret; never printed)."""
    env: _EnvName | None = None
    """Name of an environment variable holding the key, read when the server starts."""
    file: PathText | None = None
    """Path of a file holding the key (surrounding whitespace ignored), read when the server starts."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _KEY_ID.match(v):
            raise ValueError("not a valid key id")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> ApiKey:
        given = [n for n in ("key", "env", "file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"key {self.id!r}: give exactly one of key=, env= or file= (got {', '.join(given) or 'none'})"
            )
        return self

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The key's value. Raises :class:`ConfigError` (never showing the key) if it is missing or bad."""
        if self.key is not None:
            return self.key.get_secret_value()
        if self.env is not None:
            env = os.environ if environ is None else environ
            value = env.get(self.env, "").strip()
            where = f"environment variable {self.env}"
        else:
            assert self.file is not None
            try:
                value = Path(self.file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"API key {self.id!r}: cannot read {self.file}: {exc.strerror}") from None
            where = f"file {self.file}"
        if not value:
            raise ConfigError(f"API key {self.id!r}: {where} is empty or unset")
        try:
            _check_key_text(value)
        except ValueError as exc:
            raise ConfigError(f"API key {self.id!r} from {where}: {exc}") from None
        return value


def _check_key_text(value: str) -> None:
    if len(value) < MIN_KEY_LENGTH:
        raise ValueError(
            f"an API key must be at least {MIN_KEY_LENGTH} characters (try `openssl rand -hex 32`)"
        )
    if not TOKEN68.match(value):
        raise ValueError("an API key may only hold A-Z a-z 0-9 - . _ ~ + / and trailing '='")


class ApiKeyConfig(_Strict):
    """Static API keys: ``ApiKeyConfig(key_env="MCP_API_KEY")``, or several with ids for rotation.

    Clients send ``<header>: <scheme> <key>`` (by default ``Authorization: Bearer <key>``).
    With ``enforce="edge"`` the keys may be left out: the proxy holds them (``mcp-embed edge
    nginx-keys`` renders its include from wherever they are given), and the server never sees them.
    """

    key: _KeyText | None = None
    """A single key (id ``default``)."""
    key_env: _EnvName | None = None
    """Name of an environment variable holding a single key (id ``default``)."""
    key_file: PathText | None = None
    """Path of a file holding a single key (id ``default``)."""
    keys: tuple[ApiKey, ...] = ()
    """Several keys, each with an id: all are accepted, so rotation needs no downtime."""
    header: str = "Authorization"
    scheme: str = "Bearer"
    """Auth scheme before the key; ``""`` when ``header`` holds the bare key (e.g. ``X-API-Key``)."""
    enforce: Enforce = "edge"

    @field_validator("header")
    @classmethod
    def _check_header(cls, v: str) -> str:
        if not _TCHAR.match(v):
            raise ValueError("not an HTTP header name")
        return v

    @field_validator("scheme")
    @classmethod
    def _check_scheme(cls, v: str) -> str:
        if v and not _TCHAR.match(v):
            raise ValueError("not an auth scheme")
        return v

    @model_validator(mode="after")
    def _sources(self) -> ApiKeyConfig:
        single = [n for n in ("key", "key_env", "key_file") if getattr(self, n) is not None]
        if len(single) > 1:
            raise ValueError(f"give one of key=, key_env= or key_file= (got {', '.join(single)})")
        if not single and not self.keys and self.enforce == "native":
            raise ValueError(
                "no key: enforce='native' needs key=, key_env=, key_file= or keys=(ApiKey(...), ...)"
            )
        ids = [k.id for k in self.all_keys()]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate key id {dupes[0]!r}: every key needs its own id")
        if self.header.lower() == "authorization" and not self.scheme:
            raise ValueError("the Authorization header needs a scheme (Bearer)")
        return self

    def all_keys(self) -> tuple[ApiKey, ...]:
        """Every key, the single one first (id ``default``)."""
        single: list[ApiKey] = []
        if self.key is not None:
            single.append(ApiKey(key=self.key))
        elif self.key_env is not None:
            single.append(ApiKey(env=self.key_env))
        elif self.key_file is not None:
            single.append(ApiKey(file=self.key_file))
        return (*single, *self.keys)

    def resolve(self, environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """``[(id, key), ...]``, reading env vars and files now. Raises :class:`ConfigError`."""
        return [(k.id, k.resolve(environ)) for k in self.all_keys()]


class OAuthConfig(_Strict):
    """OAuth 2.1 bearer tokens (JWT) from an authorization server, as the MCP spec describes.

    ``issuer`` is required; ``jwks_uri`` is discovered from the issuer's RFC 8414 or OpenID
    metadata when unset. ``audience`` defaults to the resource URL (``public_url`` + endpoint path;
    without ``public_url``, the bound loopback socket), so a token minted for another server is
    refused. It never comes from the request's ``Host``."""

    issuer: str
    audience: str | None = None
    jwks_uri: str | None = None
    required_scopes: tuple[str, ...] = ()
    authorization_servers: tuple[str, ...] = ()
    """Advertised in the protected-resource metadata; unset means ``(issuer,)``."""
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    leeway: float = Field(default=30.0, ge=0, le=300)
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    """How long a fetched JWKS is used before it is fetched again."""
    jwks_min_refresh_seconds: float = Field(default=10.0, ge=0)
    """At most one refetch per this many seconds for a token whose key id is unknown, so a flood
    of made-up key ids cannot hammer the issuer; a rotated key is picked up after at most this."""
    enforce: Enforce = "edge"

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, v: str) -> str:
        v = check_secure_url(v, "the issuer")
        if urlsplit(v).query:
            raise ValueError("the issuer must not have a query")
        return v

    @field_validator("jwks_uri")
    @classmethod
    def _check_jwks(cls, v: str | None) -> str | None:
        return None if v is None else check_secure_url(v, "jwks_uri")

    @field_validator("authorization_servers")
    @classmethod
    def _check_servers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            check_secure_url(s, f"authorization server {s!r}")
        return v

    @field_validator("required_scopes")
    @classmethod
    def _check_scopes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            if not s or any(c in s for c in ' "\\') or not s.isprintable():
                raise ValueError(f"{s!r} is not a scope token")
        return v

    @field_validator("algorithms")
    @classmethod
    def _check_algorithms(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one algorithm is needed")
        for a in v:
            if a not in _ASYMMETRIC:
                raise ValueError(f"{a!r} is not allowed: only asymmetric algorithms (never none or HS*)")
        return v

    @property
    def advertised_servers(self) -> tuple[str, ...]:
        return self.authorization_servers or (self.issuer,)


AuthConfig = ApiKeyConfig | OAuthConfig


def coerce_auth(value: Any) -> Any:
    """Accept a model, ``None``, or a dict (``issuer`` in it means OAuth, otherwise API keys)."""
    if isinstance(value, Mapping):
        return OAuthConfig(**value) if "issuer" in value else ApiKeyConfig(**value)
    return value


# -- the environment -------------------------------------------------------------------------------

ENV_VARS = frozenset(
    {
        "MCP_EMBED_AUTH_ENFORCE",
        "MCP_EMBED_API_KEY",
        "MCP_EMBED_API_KEY_FILE",
        "MCP_EMBED_API_KEYS",
        "MCP_EMBED_API_KEY_HEADER",
        "MCP_EMBED_API_KEY_SCHEME",
        "MCP_EMBED_OAUTH_ISSUER",
        "MCP_EMBED_OAUTH_AUDIENCE",
        "MCP_EMBED_OAUTH_JWKS_URI",
        "MCP_EMBED_OAUTH_REQUIRED_SCOPES",
        "MCP_EMBED_OAUTH_AUTHORIZATION_SERVERS",
    }
)


def auth_from_env(env: Mapping[str, str]) -> AuthConfig | None:
    """The auth settings named by ``MCP_EMBED_API_KEY*`` / ``MCP_EMBED_OAUTH_*`` variables, or None.

    ``MCP_EMBED_API_KEY`` names the variable itself as the key's source, so the key is re-read
    from the environment at start and never copied into the config. ``MCP_EMBED_API_KEYS`` holds
    ``id:key`` pairs separated by commas (rotation).
    """

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def split(name: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in (get(name) or "").split(",") if p.strip())

    enforce: Any = get("MCP_EMBED_AUTH_ENFORCE") or "edge"
    if enforce not in ("edge", "native"):
        raise ConfigError(
            f"MCP_EMBED_AUTH_ENFORCE={enforce!r} is not a mode: use 'edge' (a proxy checks) or 'native' "
            "(this server checks)"
        )
    issuer = get("MCP_EMBED_OAUTH_ISSUER")
    api = [
        n
        for n in (
            "MCP_EMBED_API_KEY",
            "MCP_EMBED_API_KEY_FILE",
            "MCP_EMBED_API_KEYS",
            "MCP_EMBED_API_KEY_HEADER",
            "MCP_EMBED_API_KEY_SCHEME",
        )
        if n in env
    ]
    if issuer and api:
        raise ConfigError(f"both MCP_EMBED_OAUTH_ISSUER and {api[0]} are set: choose API keys or OAuth")
    if issuer:
        return OAuthConfig(
            issuer=issuer,
            audience=get("MCP_EMBED_OAUTH_AUDIENCE"),
            jwks_uri=get("MCP_EMBED_OAUTH_JWKS_URI"),
            required_scopes=split("MCP_EMBED_OAUTH_REQUIRED_SCOPES"),
            authorization_servers=split("MCP_EMBED_OAUTH_AUTHORIZATION_SERVERS"),
            enforce=enforce,
        )
    if not api:
        if get("MCP_EMBED_AUTH_ENFORCE") is not None:
            # Asking for enforcement with nothing to enforce must not start an open server.
            raise ConfigError(
                f"MCP_EMBED_AUTH_ENFORCE={enforce} is set but no credentials are: set MCP_EMBED_API_KEY "
                "(or MCP_EMBED_API_KEY_FILE / MCP_EMBED_API_KEYS) or MCP_EMBED_OAUTH_ISSUER, or unset it"
            )
        return None
    data: dict[str, Any] = {"enforce": enforce}
    if get("MCP_EMBED_API_KEY"):
        data["key_env"] = "MCP_EMBED_API_KEY"
    elif get("MCP_EMBED_API_KEY_FILE"):
        data["key_file"] = get("MCP_EMBED_API_KEY_FILE")
    pairs = []
    for item in split("MCP_EMBED_API_KEYS"):
        kid, sep, key = item.partition(":")
        if not sep:
            raise ConfigError("MCP_EMBED_API_KEYS must be id:key pairs separated by commas")
        pairs.append(ApiKey(id=kid.strip(), key=SecretStr(key.strip())))
    data["keys"] = tuple(pairs)
    if get("MCP_EMBED_API_KEY_HEADER"):
        data["header"] = get("MCP_EMBED_API_KEY_HEADER")
    if "MCP_EMBED_API_KEY_SCHEME" in env:
        data["scheme"] = env["MCP_EMBED_API_KEY_SCHEME"].strip()
    return ApiKeyConfig(**data)


def _describe(model: str, exc: ValidationError, data: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"{model} has no field {field!r}; known fields are {', '.join(fields)}")
            continue
        if not field:
            lines.append(f"invalid {model}: {msg}")
            continue
        value = "<redacted>" if field in _SECRET else data.get(field)
        line = f"invalid {model}.{field}={value!r}: {msg}"
        allowed = _ALLOWED.get(field)
        if allowed:
            line += f"; allowed: {allowed}"
        lines.append(line)
    return "\n".join(lines)
