"""``McpHttpConfig``: every setting of an embedded server, checked on construction and on assignment."""

from __future__ import annotations

import ipaddress
import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from .auth.config import ENV_VARS as _AUTH_ENV_VARS
from .auth.config import ApiKeyConfig, OAuthConfig, PathText, is_loopback_host
from .errors import ConfigError

__all__ = ["McpHttpConfig"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# What each field accepts, said the way a user needs to read it in an error message.
_ALLOWED: dict[str, str] = {
    "host": "an IP address or host name to bind, e.g. 127.0.0.1, ::1 or 0.0.0.0",
    "port": "an integer from 0 to 65535 (0 lets the OS choose)",
    "endpoint_path": "an absolute path like /mcp, without a trailing slash",
    "public_url": "scheme://host[:port] with no path, e.g. https://mcp.example.com",
    "spawn_mode": "'dedicated' (a server thread in this process) or 'subprocess' (a child Python process)",
    "skills_list_limit": "a positive number of tools, or unset to always list every tool",
    "skills_watch_interval": "a positive number of seconds, or unset for no watcher",
    "python_executable": "the path of a Python interpreter (mayapy, hython), or unset for this one",
    "log_dir": "a folder path (str or pathlib.Path), or unset for the platform's log folder",
    "log_level": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "log_format": "'text' or 'json'",
    "max_body_bytes": "a positive number of bytes",
    "max_sessions": "a positive integer, or unset for no limit",
    "session_idle_timeout": "a positive number of seconds, or unset to never expire",
    "client_request_timeout": "a positive number of seconds, or unset to wait as long as the call runs",
    "task_handoff": "a number of seconds, 0 or more",
    "task_ttl": "a positive number of seconds, or unset to keep tasks until evicted",
    "task_poll_interval": "a positive number of seconds, or unset to send no hint",
    "cors_origins": "exact origins like https://app.example.com, or '*'",
    "allowed_hosts": "Host header values like example.com:443 or example.com:*",
    "allowed_origins": "origins like https://app.example.com or http://localhost:*",
    "retry_interval_ms": "a positive number of milliseconds",
    "event_store_max_events": "a positive integer",
    "dispatcher": (
        "'auto' (detect the host), 'qt', 'blender', 'maya', 'houdini', 'nuke', "
        "'manual' (the host calls handle.pump()) or 'inline' (batch/headless)"
    ),
    "main_queue_depth": "a positive integer: how many main-thread calls may wait",
    "main_thread_timeout": "a positive number of seconds, or unset to wait as long as it takes",
    "main_pump_budget_ms": "a positive number of milliseconds",
    "log_max_bytes": "a positive number of bytes",
    "log_backups": "a number of rotated files to keep, 0 or more",
    "trusted_proxies": "IP addresses or networks like 10.0.0.5 or 10.0.0.0/8",
    "metrics_basic_auth": "user:password",
    "allowed_tools": "tool names or glob patterns like scene.* (comma-separated in the environment)",
    "rate_limit_per_second": "a positive number of requests per second, or unset for no limit",
    "rate_limit_burst": "a positive integer",
    "auth_failures_per_second": "a positive number of failed attempts per second, or unset for no throttle",
    "auth_failures_burst": "a positive integer",
    "auth": "ApiKeyConfig(...) or OAuthConfig(...) from mcp_embed, or unset for none",
    "instance_host": "a machine name such as render-07, or unset for this machine's (socket.gethostname())",
}

_SECRET_FIELDS = frozenset({"metrics_basic_auth", "auth", "redis_url"})  # never echoed in an error message

# BaseModel's metaclass (ABCMeta) has a register() of its own; the field only shadows it on the class.
warnings.filterwarnings("ignore", 'Field name "register" in "McpHttpConfig" shadows', UserWarning)

_RESERVED_PATHS = ("/sse", "/messages", "/health", "/metrics", "/.well-known")


class McpHttpConfig(BaseModel):
    """Settings of one embedded MCP HTTP server.

    Fields can be assigned (``cfg.enable_cors = True``); every assignment is checked as the
    constructor checks, cross-field rules included, and an invalid one raises
    :class:`~mcp_embed.ConfigError` naming the field, the value and what is allowed, leaving the
    config as it was. A server takes its own copy when it is created and again when it starts, so
    an assignment never changes a server behind its back.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    """Address to bind. Loopback by default; binding a public address with no auth logs a warning."""
    port: int = Field(default=8765, ge=0, le=65535)
    """TCP port; 0 lets the OS choose (read it back from ``handle.port``)."""
    endpoint_path: str = "/mcp"
    """Path of the Streamable HTTP endpoint."""

    server_name: str = "mcp-embed"
    server_version: str | None = None
    """Reported in ``serverInfo``; defaults to mcp-embed's version."""
    instructions: str | None = None

    enable_cors: bool = False
    cors_origins: tuple[str, ...] = ()
    """Browser origins to admit, in CORS and the guard alike (``("*",)``: any). With ``enable_cors``
    and none listed, CORS answers for the origins the guard already admits (loopback, ...)."""

    dns_rebinding_protection: bool = True
    """The Host/Origin guard (421 for a bad Host, 403 for a bad Origin)."""
    allowed_hosts: tuple[str, ...] = ()
    """Extra Host values to accept, on top of those derived from ``host`` and ``public_url``."""
    allowed_origins: tuple[str, ...] = ()
    """Extra Origin values to accept, on top of loopback, ``public_url`` and ``cors_origins``."""

    public_url: str | None = None
    """The URL clients use (scheme://host[:port]), when a proxy fronts the server."""

    spawn_mode: Literal["dedicated", "subprocess"] = "dedicated"
    """Where the server runs: ``"dedicated"`` is a thread of its own in this process;
    ``"subprocess"`` is a child Python process that answers the protocol even while the host is
    busy, forwards tool calls to the host over a local authenticated pipe, and dies with the host."""
    skills_list_limit: int | None = Field(default=200, gt=0)
    """Above this many tools, ``tools/list`` shows the Python tools, the tools of activated skills
    and three meta-tools (``search_tools``, ``describe_tool``, ``activate_skill``) instead of every
    schema. Every tool stays callable by name. Unset: always list everything."""
    skills_watch_interval: float | None = Field(default=None, gt=0)
    """Poll the skill folders every this many seconds and reload what changed (adds, edits and
    removals of skills, scripts and references become ``list_changed``). Unset: no watcher;
    ``server.reload_skills()`` reloads on demand."""
    python_executable: PathText | None = None
    """The Python that runs the ``"subprocess"`` server. Unset: this interpreter (``sys.executable``).
    Inside a DCC ``sys.executable`` is the application (maya.exe, houdini), not Python: give its
    batch interpreter (``mayapy``, ``hython``) here."""

    dispatcher: Literal["auto", "qt", "blender", "maya", "houdini", "nuke", "manual", "inline"] = "auto"
    """Where ``affinity="main"`` tools run: ``auto`` detects the host from what it has imported and
    its executable's name (none found: ``inline``); ``manual`` waits for ``handle.pump()``."""
    main_queue_depth: int = Field(default=64, gt=0)
    """How many main-thread calls may wait; one more is refused at once with an ``isError`` result."""
    main_thread_timeout: float | None = Field(default=30.0, gt=0)
    """How long a main-thread call may wait to start before it is dropped ("main thread busy"),
    and after which a running one is reported as wedged in ``/health``. A tool's own ``timeout``
    bounds the whole call."""
    main_pump_budget_ms: float = Field(default=8.0, gt=0)
    """How long one pump of the host's main thread may run queued tools before yielding to the UI."""

    stateless: bool = False
    json_response: bool = False
    enable_sse: bool = True
    """Serve the legacy HTTP+SSE transport at ``/sse`` and ``/messages/``."""
    session_idle_timeout: float | None = Field(default=1800.0, gt=0)
    max_sessions: int | None = Field(default=10_000, gt=0)
    """Sessions open at once, over every transport: a Streamable HTTP session and an open ``/sse``
    stream each take one. One more is refused with 503 until one ends."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    body_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    """Seconds a client has to send a whole request body, from the end of its headers. Past it the
    answer is 408 and the connection is closed, so a client trickling a body holds no connection."""
    client_request_timeout: float | None = Field(default=300.0, gt=0)
    """How long a tool's ``ctx.elicit``/``ctx.sample`` (or a roots request) waits for the client's
    answer before it raises :class:`~mcp_embed.ToolError`. Unset: as long as the call runs."""

    # -- SEP-2663 tasks (tasks.py) --------------------------------------------------------------
    task_handoff: float = Field(default=1.0, ge=0)
    """Seconds a ``task=`` tool may run before the client is handed a task (sooner when it reports
    progress or asks the client something)."""
    task_ttl: float | None = Field(default=3600.0, gt=0)
    """Seconds a task stays readable after its creation (``ttlMs``). Unset: until evicted."""
    task_poll_interval: float | None = Field(default=1.0, gt=0)
    """The polling interval suggested to clients (``pollIntervalMs``), in seconds. Unset: no hint."""

    enable_event_store: bool = True
    """Keep recent stream events in memory so a client can resume with ``Last-Event-ID`` (stateful only)."""
    event_store_max_events: int = Field(default=1024, gt=0)
    retry_interval_ms: int | None = Field(default=None, gt=0)

    # -- several replicas (replicas/) ------------------------------------------------------------
    redis_url: SecretStr | None = None
    """``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``) shared by replicas: the
    event store, tasks, sessions, the stateless back-channel and the rate limit move there
    (``pip install "mcp-embed[redis]"``). Unset: all in this process's memory. A secret: it is
    never printed."""

    # -- the registry of running instances (instances/) ------------------------------------------
    register: bool = True
    """List this server among the running instances (``mcp-embed instances``, the gateway): a file
    in the user's runtime folder, or a Redis key with ``redis_url``. False: not listed."""
    instance_host: str | None = None
    """The machine name the instance is listed under. Unset: ``socket.gethostname()``."""

    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = "text"

    # -- operations: audit log, application log file, metrics, allow-list, rate limit ----------
    enable_file_logging: bool = True
    """Write the JSONL audit log and the application log to files (see ``log_dir``)."""
    log_dir: PathText | None = None
    """Folder of the audit and application logs. Unset: ``$MCP_EMBED_LOG_DIR``, else the platform's
    user log folder, under ``mcp-embed/<server_name>/``."""
    log_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    """Rotate a log file once it would grow past this many bytes."""
    log_backups: int = Field(default=5, ge=0)
    """Rotated files kept per log (``audit.jsonl.1`` ... ``.N``)."""
    audit_arguments: bool = False
    """Also write tool arguments to the audit log, with secret-looking fields redacted."""
    trusted_proxies: tuple[str, ...] = ()
    """Proxy addresses or networks (``10.0.0.5``, ``10.0.0.0/8``) whose ``X-Forwarded-For`` and
    ``X-User-Id`` headers are believed."""
    enable_metrics: bool = False
    """Serve Prometheus metrics at ``/metrics`` (needs ``pip install 'mcp-embed[metrics]'``)."""
    metrics_basic_auth: SecretStr | None = None
    """``user:password`` that ``/metrics`` requires (HTTP Basic), or unset for none."""
    allowed_tools: tuple[str, ...] | None = None
    """Tool names or glob patterns (``scene.*``) that clients may see and call; unset allows every
    tool. ``MCP_EMBED_ALLOWED_TOOLS`` narrows it further."""
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    """Requests per second each principal (or client address, when anonymous) may make; unset: no limit."""
    rate_limit_burst: int = Field(default=20, gt=0)
    """Requests a principal may make at once before ``rate_limit_per_second`` applies."""

    # -- authentication (auth/) ---------------------------------------------------------------
    auth_failures_per_second: float | None = Field(default=1.0, gt=0)
    """Under native auth: missing or refused credentials each client address may present per
    second, after a burst of ``auth_failures_burst``; beyond, 429 before any credential is checked.
    Unset: no throttle. Behind a trusted proxy the address is the client's (``X-Forwarded-For``)."""
    auth_failures_burst: int = Field(default=30, gt=0)
    auth: ApiKeyConfig | OAuthConfig | None = None
    """Who may call: :class:`~mcp_embed.ApiKeyConfig` or :class:`~mcp_embed.OAuthConfig`. Their
    ``enforce`` says whether the proxy in front (``"edge"``, the default) or the server itself
    (``"native"``) checks credentials. Environment: ``MCP_EMBED_API_KEY*``, ``MCP_EMBED_OAUTH_*``."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, data)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        # The whole config is validated again, so a rule between fields (OAuth needs public_url...)
        # holds after an assignment as after construction; the field takes the checked value.
        current = {field: getattr(self, field) for field in type(self).model_fields}
        checked = type(self)(**{**current, name: value})
        super().__setattr__(name, getattr(checked, name))

    @field_validator("host")
    @classmethod
    def _check_host(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("[") and v.endswith("]"):
            v = v[1:-1]
        if not v or any(c in v for c in "/ @?#"):
            raise ValueError("not a bindable address")
        return v

    @field_validator("endpoint_path")
    @classmethod
    def _check_path(cls, v: str) -> str:
        if not v.startswith("/") or v == "/" or v.endswith("/") or "?" in v or "#" in v:
            raise ValueError("must start with '/', not end with '/', and have no query")
        if any(v == p or v.startswith(p + "/") for p in _RESERVED_PATHS):
            raise ValueError(f"{v} is reserved by mcp-embed")
        return v

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        return _validate_public_url(v)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ValueError(f"{p!r} is not an IP address or network") from None
        return v

    @field_validator("metrics_basic_auth")
    @classmethod
    def _check_basic_auth(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and ":" not in v.get_secret_value():
            raise ValueError("must be user:password")
        return v

    @field_validator("auth", mode="before")
    @classmethod
    def _coerce_auth(cls, v: Any) -> Any:
        from .auth.config import coerce_auth

        return coerce_auth(v)

    @field_validator("auth")
    @classmethod
    def _check_auth_public_url(cls, v: Any, info: ValidationInfo) -> Any:
        public_url = info.data.get("public_url")
        if isinstance(v, OAuthConfig) and public_url:
            from .auth.config import check_secure_url

            check_secure_url(public_url, f"public_url {public_url!r} (with OAuth)")
        if isinstance(v, OAuthConfig) and not public_url and not v.audience:
            # A token's audience comes from configuration, never from the request. Without
            # public_url that is the bound socket, which is the URL clients use only when they
            # reach the server directly on this machine.
            host = info.data.get("host", "127.0.0.1")
            proxied = v.enforce == "edge" or bool(info.data.get("trusted_proxies"))
            if proxied or not is_loopback_host(host):
                where = "behind a proxy" if proxied else f"on host {host!r}"
                raise ValueError(
                    f"OAuth {where} needs public_url (or OAuthConfig.audience): the audience a "
                    "token must carry is taken from configuration, never from the request's Host"
                )
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and urlsplit(v.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("is not a Redis URL: it must start with redis://, rediss:// or unix://")
        return v

    @field_validator("instance_host")
    @classmethod
    def _check_instance_host(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or len(v) > 253 or not v.isprintable() or " " in v):
            raise ValueError("must be a non-empty name of at most 253 characters, without spaces")
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("cors_origins", "allowed_origins")
    @classmethod
    def _check_origins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for o in v:
            if o == "*":
                continue
            parts = urlsplit(o)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("",):
                raise ValueError(f"{o!r} is not an origin (scheme://host[:port], no path)")
        return v

    # -- derived values -------------------------------------------------------------------------

    @property
    def is_loopback(self) -> bool:
        """True when ``host`` only accepts connections from this machine."""
        return is_loopback_host(self.host)

    @property
    def effective_server_version(self) -> str:
        if self.server_version:
            return self.server_version
        from ._version import __version__

        return __version__

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "MCP_EMBED_", **overrides: Any
    ) -> McpHttpConfig:
        """Build a config from ``MCP_EMBED_<FIELD>`` variables, plus the seed names ``MCP_HOST``,
        ``MCP_PORT``, ``MCP_PUBLIC_URL``, ``LOG_LEVEL`` and ``LOG_FORMAT``.

        ``MCP_EMBED_*`` wins over a seed name; keyword ``overrides`` win over both. List fields
        take comma-separated values.
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for var, field in _SEED_NAMES.items():
            if var in env:
                data[field] = env[var]
                sources[field] = var
        for field, info in cls.model_fields.items():
            var = prefix + field.upper()
            if var not in env:
                continue
            raw = env[var]
            if _is_tuple_field(info.annotation):
                data[field] = tuple(p.strip() for p in raw.split(",") if p.strip())
            elif raw == "" and _is_optional(info.annotation):
                data[field] = None
            else:
                data[field] = raw
            sources[field] = var
        unknown = sorted(
            k
            for k in env
            if k.startswith(prefix)
            and k[len(prefix) :].lower() not in cls.model_fields
            and k not in _NOT_FIELDS
        )
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]}: McpHttpConfig has no field "
                f"{unknown[0][len(prefix) :].lower()!r}; known fields are {', '.join(cls.model_fields)}"
            )
        if "auth" not in data and "auth" not in overrides:
            from .auth.config import auth_from_env

            try:
                found = auth_from_env(env)
            except ConfigError as exc:
                raise ConfigError(f"{exc} (from MCP_EMBED_API_KEY* / MCP_EMBED_OAUTH_* variables)") from None
            if found is not None:
                data["auth"] = found
        data.update(overrides)
        for k in overrides:
            sources.pop(k, None)
        try:
            return cls(**data)
        except ConfigError as exc:
            # __init__ described the problem; add which variable the value came from.
            raise ConfigError(_with_sources(str(exc), sources)) from None


_SEED_NAMES = {
    "MCP_HOST": "host",
    "MCP_PORT": "port",
    "MCP_PUBLIC_URL": "public_url",
    "LOG_LEVEL": "log_level",
    "LOG_FORMAT": "log_format",
}
# MCP_EMBED_* variables that are read elsewhere, not config fields.
_NOT_FIELDS = (
    frozenset({"MCP_EMBED_DANGEROUSLY_ALLOW_INSECURE_ISSUER_URL", "MCP_EMBED_ALLOWED_TOOLS"})
    | frozenset({"MCP_EMBED_REGISTRY_DIR", "MCP_EMBED_REGISTRY_TTL"})  # read by instances/
    | frozenset({"MCP_EMBED_SKILL_CACHE_DIR"})  # read by skills/_cache.py
    | frozenset({"MCP_EMBED_AUTH_HEADER"})  # the header mcp-remote sends, named in printed configs
    | _AUTH_ENV_VARS
)


def _is_tuple_field(annotation: Any) -> bool:
    return "tuple" in str(annotation)


def _is_optional(annotation: Any) -> bool:
    return "None" in str(annotation)


def _validate_public_url(v: str) -> str:
    advice = (
        "set it to scheme://host[:port] only (for example https://mcp.example.com); "
        "mcp-embed appends the endpoint path itself"
    )
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"the scheme must be http or https; {advice}")
    if not parts.hostname:
        raise ValueError(f"it has no host; {advice}")
    if parts.username or parts.password:
        raise ValueError(f"it must not carry credentials; {advice}")
    if parts.query or parts.fragment:
        raise ValueError(f"it has a query or fragment; {advice}")
    if parts.path == "/":  # https://mcp.example.com/ names the same origin: keep it without the slash
        v, parts = v[: v.rindex("/")], parts._replace(path="")
    if parts.path:
        raise ValueError(f"it has a path ({parts.path}); {advice}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"its port is not a number from 0 to 65535; {advice}") from None
    return v


def _describe(exc: ValidationError, data: Mapping[str, Any]) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else "?"
        if err["type"] == "extra_forbidden":
            lines.append(
                f"McpHttpConfig has no field {field!r}; known fields are "
                f"{', '.join(McpHttpConfig.model_fields)}"
            )
            continue
        value = data.get(field, err.get("input"))
        if field in _SECRET_FIELDS:
            value = "<redacted>"
        msg = str(err["msg"]).removeprefix("Value error, ")
        allowed = _ALLOWED.get(field)
        line = f"invalid McpHttpConfig.{field}={value!r}: {msg}"
        if allowed:
            line += f"; allowed: {allowed}"
        lines.append(line)
    return "\n".join(lines)


def _with_sources(message: str, sources: Mapping[str, str]) -> str:
    for field, var in sources.items():
        message = message.replace(f"McpHttpConfig.{field}=", f"McpHttpConfig.{field} (from {var})=")
    return message
