"""OpenTelemetry for every request, by the MCP semantic conventions, on every path.

The SDK's low-level server wraps each request in its own OpenTelemetry middleware
(``tools/call {name}``, ``mcp.method.name``, ``jsonrpc.request.id``, ``gen_ai.tool.name``, parent
from ``params._meta``). The fast path runs *that same middleware* around its answer, so names,
attributes, status and errors are the SDK's by construction, and an SDK upgrade changes both paths
alike. Around it, on both paths, this module adds:

- the HTTP ``traceparent``/``tracestate`` headers as the parent when ``params._meta`` has none;
- ``mcp.session.id`` on the span;
- the metrics ``mcp.server.operation.duration`` and ``mcp.server.session.duration`` (seconds);
- in ``spawn_mode="subprocess"``, the trace context across the pipe (``ContextMeta.trace``): the
  host runs the tool in an ``execute_tool {name}`` span, child of the child process's span;
- the context carried to the thread that runs the tool (main-thread dispatchers too), so a
  tool's own spans (an upstream REST call) are children of the request's span.

Cost: :func:`start` looks once per run whether a tracer or meter provider is installed; when
none is, :func:`on` is False and every hook is skipped by that one bool. Export through the
``OTEL_*`` environment variables: see :func:`start` for the rule.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, NamedTuple

from ..logs import get_logger

__all__ = [
    "OTEL_EXTRA_HINT",
    "Observe",
    "SessionNote",
    "bind",
    "carrier",
    "install",
    "observe",
    "on",
    "shutdown",
    "start",
    "tool_span",
]

log = get_logger("tracing")

OTEL_EXTRA_HINT = "exporting OpenTelemetry needs the SDK: pip install 'mcp-embed[otel]'"

CallNext = Callable[[Any], Awaitable[Any]]


class _State:
    traces = False  # a real tracer provider is installed
    metrics = False  # a real meter provider is installed
    configured = False  # start() already looked at the environment in this process
    owned: list[Any] = []  # providers this module made (flushed by shutdown())
    operation: Any = None  # the mcp.server.operation.duration histogram
    session: Any = None  # the mcp.server.session.duration histogram


def on() -> bool:
    """Whether requests are observed in this run (a tracer or meter provider is installed)."""
    return _State.traces or _State.metrics


def start(service_name: str | None = None) -> bool:
    """Look once per run whether to observe requests; returns :func:`on`.

    The rule: a tracer (meter) provider the host installed is used as it is. Otherwise, once per
    process, the OpenTelemetry SDK is configured from the environment when asked:
    ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` other than ``none``, or
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its ``_TRACES_``/``_METRICS_`` form) set, and
    ``OTEL_SDK_DISABLED`` not ``true``. Without the ``otel`` extra that logs what to install.
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError:  # opentelemetry-api is the SDK's dependency; a stripped install may lack it
        return False
    if not _State.configured:
        _State.configured = True
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
            _configure_from_env(service_name, trace, metrics)
    _State.traces = not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )
    provider = metrics.get_meter_provider()
    _State.metrics = not (
        isinstance(provider, metrics.NoOpMeterProvider) or type(provider).__name__.startswith("_Proxy")
    )
    if _State.metrics and _State.operation is None:
        meter = metrics.get_meter("mcp-embed")
        _State.operation = _histogram(
            meter, "mcp.server.operation.duration", "MCP request or notification duration"
        )
        _State.session = _histogram(
            meter,
            "mcp.server.session.duration",
            "The duration of the MCP session as observed on the MCP server",
        )
    return on()


# The semantic conventions' advisory bucket boundaries for both histograms (seconds).
_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]


def _histogram(meter: Any, name: str, description: str) -> Any:
    try:
        return meter.create_histogram(
            name, unit="s", description=description, explicit_bucket_boundaries_advisory=_BUCKETS
        )
    except TypeError:  # an opentelemetry-api before 1.23 takes no advisory
        return meter.create_histogram(name, unit="s", description=description)


def _asked(signal: str) -> bool:
    env = os.environ
    exporter = env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


def _configure_from_env(service_name: str | None, trace: Any, metrics: Any) -> None:
    want_traces = _asked("TRACES") and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    want_metrics = _asked("METRICS") and type(metrics.get_meter_provider()).__name__.startswith("_Proxy")
    if not (want_traces or want_metrics):
        return
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    except ImportError:
        log.warning("OTEL_* asks for export; %s", OTEL_EXTRA_HINT)
        return
    given = {} if os.environ.get("OTEL_SERVICE_NAME") or not service_name else {SERVICE_NAME: service_name}
    resource = Resource.create(given)
    try:
        if want_traces:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(BatchSpanProcessor(_exporter("TRACES")))
            trace.set_tracer_provider(tracer_provider)
            _State.owned.append(tracer_provider)
        if want_metrics:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(_exporter("METRICS"))
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
            metrics.set_meter_provider(meter_provider)
            _State.owned.append(meter_provider)
    except (ImportError, ValueError) as exc:  # a missing exporter package, an exporter we lack
        log.warning("OpenTelemetry export is off: %s", exc)


def _exporter(signal: str) -> Any:
    """The exporter ``OTEL_{signal}_EXPORTER`` names: ``otlp`` (http/protobuf, the default) or
    ``console``."""
    name = os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower().split(",")[0]
    console = name == "console"
    if name not in ("otlp", "console"):
        raise ValueError(f"OTEL_{signal}_EXPORTER={name!r} is not supported here (use otlp or console)")
    if signal == "TRACES":
        if console:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return ConsoleSpanExporter()
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ImportError(OTEL_EXTRA_HINT) from exc
        return OTLPSpanExporter()
    if console:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    except ImportError as exc:
        raise ImportError(OTEL_EXTRA_HINT) from exc
    return OTLPMetricExporter()


def shutdown() -> None:
    """Flush what the providers this module configured still hold (a child process before it
    exits with ``os._exit``, which runs no ``atexit``)."""
    for provider in _State.owned:
        with contextlib.suppress(Exception):
            provider.force_flush()


# -- the request: the same middleware chain on the SDK path and the fast path --------------------


def _error_type(result: Any, exc: BaseException | None, method: str) -> str | None:
    """``error.type`` as the SDK's span records it."""
    if exc is not None:
        from mcp.shared.exceptions import MCPError
        from pydantic import ValidationError

        if isinstance(exc, MCPError):
            return str(exc.error.code)
        if isinstance(exc, ValidationError):
            return "-32602"
        return type(exc).__qualname__
    if method == "tools/call":
        failed = getattr(result, "is_error", None) if not isinstance(result, dict) else result.get("isError")
        if failed is True:
            return "tool_error"
    return None


def _header_context(ctx: Any) -> Any:
    """The parent from the HTTP ``traceparent`` header, when ``params._meta`` names none."""
    meta = ctx.meta
    if isinstance(meta, Mapping) and "traceparent" in meta:
        return None
    headers = getattr(getattr(ctx, "request", None), "headers", None)
    if headers is None or not headers.get("traceparent"):
        return None
    from opentelemetry.propagate import extract

    carrier = {k: v for k in ("traceparent", "tracestate") if (v := headers.get(k))}
    try:
        return extract(carrier)
    except (ValueError, TypeError):
        return None


class Observe:
    """SDK middleware, outermost: the header parent, and ``mcp.server.operation.duration``."""

    async def __call__(self, ctx: Any, call_next: CallNext) -> Any:
        parent = _header_context(ctx) if _State.traces else None
        token = None
        if parent is not None:
            from opentelemetry import context as otel_context

            token = otel_context.attach(parent)
        started = time.perf_counter()
        result: Any = None
        failure: BaseException | None = None
        try:
            result = await call_next(ctx)
            return result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if token is not None:
                from opentelemetry import context as otel_context

                otel_context.detach(token)
            if _State.operation is not None:
                _State.operation.record(
                    time.perf_counter() - started, _operation_attributes(ctx, result, failure)
                )


def _operation_attributes(ctx: Any, result: Any, failure: BaseException | None) -> dict[str, str]:
    method = ctx.method
    attributes = {"mcp.method.name": method}
    if ctx.protocol_version:
        attributes["mcp.protocol.version"] = ctx.protocol_version
    params = ctx.params
    name = params.get("name") if isinstance(params, Mapping) else None
    if method == "tools/call":
        attributes["gen_ai.operation.name"] = "execute_tool"
        if isinstance(name, str):
            attributes["gen_ai.tool.name"] = name
    elif method == "prompts/get" and isinstance(name, str):
        attributes["gen_ai.prompt.name"] = name
    error = _error_type(result, failure, method)
    if error is not None:
        attributes["error.type"] = error
    return attributes


class SessionNote:
    """SDK middleware, inside the SDK's span: ``mcp.session.id`` on it, and on a successful
    ``initialize`` the session's duration, recorded when its connection ends."""

    def __init__(self, session_of: Callable[[Any], str | None]) -> None:
        self.session_of = session_of

    async def __call__(self, ctx: Any, call_next: CallNext) -> Any:
        sid = self.session_of(ctx)
        if sid is not None and _State.traces:
            from opentelemetry import trace

            trace.get_current_span().set_attribute("mcp.session.id", sid)
        result = await call_next(ctx)
        histogram = _State.session
        if ctx.method == "initialize" and histogram is not None and sid is not None:
            stack = getattr(getattr(ctx.session, "_connection", None), "exit_stack", None)
            if stack is not None:
                version = result.get("protocolVersion") if isinstance(result, dict) else None
                attributes = {"mcp.protocol.version": version} if isinstance(version, str) else {}
                started = time.perf_counter()
                stack.callback(lambda: histogram.record(time.perf_counter() - started, attributes))
        return result


def install(middleware: list[Any], session_of: Callable[[Any], str | None]) -> None:
    """Put :class:`Observe` outermost and :class:`SessionNote` just inside the SDK's own span."""
    sdk = [i for i, m in enumerate(middleware) if type(m).__name__ == "OpenTelemetryMiddleware"]
    middleware.insert(sdk[0] + 1 if sdk else 0, SessionNote(session_of))
    middleware.insert(0, Observe())


class _Headers(NamedTuple):
    headers: dict[str, str]


class _FastRequest(NamedTuple):
    """What the middlewares read of a request the fast path answers."""

    method: str
    params: dict[str, Any]
    request_id: Any
    meta: Any
    protocol_version: str
    request: _Headers
    session_id: str | None


class _Chain:
    """Observe -> the SDK's own span middleware -> SessionNote, as ``install`` orders them on the
    SDK path. The SDK's middleware is a private module of ``mcp``: should it move, the fast path
    keeps its metrics, logs why its spans are gone, and tests/ops/test_tracing.py fails."""

    def __init__(self) -> None:
        self.outer = Observe()
        self.note = SessionNote(lambda ctx: ctx.session_id)
        try:
            from mcp.server._otel import OpenTelemetryMiddleware
        except ImportError as exc:  # pragma: no cover - depends on the SDK's version
            log.warning(
                "the fast path makes no spans: this mcp SDK moved its OpenTelemetry middleware (%s)", exc
            )
            self.sdk: Any = None
        else:
            self.sdk = OpenTelemetryMiddleware()

    async def __call__(self, ctx: Any, call_next: CallNext) -> Any:
        sdk, note = self.sdk, self.note
        if sdk is None or not _State.traces:
            return await self.outer(ctx, call_next)

        async def in_span(c: Any) -> Any:
            return await note(c, call_next)

        return await self.outer(ctx, lambda c: sdk(c, in_span))


_CHAIN: list[_Chain] = []  # made on first use: importing the SDK's middleware is not free


async def observe(
    method: str,
    params: dict[str, Any],
    request_id: Any,
    session_id: str | None,
    scope: Mapping[str, Any] | None,
    answer: Callable[[], Awaitable[Any]],
) -> Any:
    """Run the fast path's ``answer()`` inside the span and metrics the SDK path gives the same
    request (the SDK's own middleware, between :class:`Observe` and :class:`SessionNote`)."""
    from mcp_types import DEFAULT_NEGOTIATED_VERSION

    headers = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in (scope or {}).get("headers", ())
        if k in (b"traceparent", b"tracestate", b"mcp-protocol-version")
    }
    ctx = _FastRequest(
        method,
        params,
        request_id,
        params.get("_meta"),
        # The SDK's rule for a request without the header (a stateful session's span would carry
        # the version it negotiated, which only the SDK's connection knows).
        headers.get("mcp-protocol-version") or DEFAULT_NEGOTIATED_VERSION,
        _Headers(headers),
        session_id,
    )
    if not _CHAIN:
        _CHAIN.append(_Chain())
    return await _CHAIN[0](ctx, lambda _: answer())


# -- across threads and the subprocess pipe -------------------------------------------------------


def bind(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` to run in the calling context on another thread (the host's main thread), so a span
    the tool starts is a child of the request's; ``fn`` itself when nothing is observed."""
    if not _State.traces:
        return fn
    return _run_in(contextvars.copy_context(), fn)


def _run_in(context: contextvars.Context, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        return context.run(fn)

    return run


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers, to cross to the host process; None when off."""
    if not _State.traces:
        return None
    from opentelemetry.propagate import inject

    out: dict[str, str] = {}
    inject(out)
    return out or None


def _nothing(result: Any) -> None:
    return None


_OFF = contextlib.nullcontext(_nothing)


def tool_span(
    trace_context: Mapping[str, str] | None, name: str
) -> contextlib.AbstractContextManager[Callable[[Any], None]]:
    """The host side of a subprocess call: ``execute_tool {name}``, child of the child's span.
    Yields ``done(result)``, which marks a result with ``isError`` as the SDK marks its span."""
    if trace_context is None or not _State.traces:
        return _OFF
    return _tool_span(trace_context, name)


@contextlib.contextmanager
def _tool_span(trace_context: Mapping[str, str], name: str) -> Iterator[Callable[[Any], None]]:
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    tracer = trace.get_tracer("mcp-embed")
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    with tracer.start_as_current_span(
        f"execute_tool {name}", context=extract(dict(trace_context)), attributes=attributes
    ) as span:

        def done(result: Any) -> None:
            if _error_type(result, None, "tools/call") is not None:
                span.set_attribute("error.type", "tool_error")
                span.set_status(trace.StatusCode.ERROR)

        yield done
