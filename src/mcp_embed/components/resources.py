"""Resources: static URIs and ``{param}`` templates whose contents come from Python callables.

A read function returns ``str`` (text) or ``bytes`` (a blob), or an
:class:`~mcp_embed.EmbeddedResource`, or a ``resources/read`` contents entry as a dict (``uri``
and ``text`` or ``blob``: a proxy's, passed on as it is), or a list of those; it may be
``async``, and plain functions run on a worker thread. Template placeholders arrive as keyword
arguments; a parameter annotated :class:`~mcp_embed.ToolContext` receives the request's context.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fallback", "ResourceRegistry", "ResourceSpec"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ReadFn = Callable[..., Any]
#: Asked for a URI no registered resource serves: a resource to answer it, or None.
Fallback = Callable[[str], "tuple[ResourceSpec, dict[str, str]] | None"]


@dataclass
class ResourceSpec:
    """One resource or resource template in the registry."""

    uri: str
    name: str
    read: ReadFn = field(repr=False)
    description: str | None = None
    mime_type: str | None = None
    title: str | None = None
    params: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = field(default=None, repr=False)
    is_async: bool = False
    wants_context: str | None = None

    @property
    def is_template(self) -> bool:
        return self.pattern is not None

    def wire(self) -> dict[str, Any]:
        """The entry of ``resources/list`` (or ``resources/templates/list`` for a template)."""
        out: dict[str, Any] = {"uriTemplate" if self.is_template else "uri": self.uri, "name": self.name}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        if self.mime_type:
            out["mimeType"] = self.mime_type
        return out

    def match(self, uri: str) -> dict[str, str] | None:
        if self.pattern is None:
            return {} if uri == self.uri else None
        m = self.pattern.fullmatch(uri)
        return m.groupdict() if m else None


def build_resource(
    uri: str,
    read: ReadFn,
    *,
    name: str | None = None,
    description: str | None = None,
    mime_type: str | None = None,
    title: str | None = None,
) -> ResourceSpec:
    """Check ``read`` against ``uri`` and describe it. A ``{param}`` in ``uri`` makes a template."""
    from .schema import is_context, parse_docstring, type_hints

    if not isinstance(uri, str) or "://" not in uri:
        raise ValueError(f"resource uri must look like scheme://path, got {uri!r}")
    if not callable(read):
        raise TypeError(f"a resource reader must be callable, got {type(read).__name__}")
    params = tuple(_PLACEHOLDER.findall(uri))
    pattern = None
    if params:
        if len(set(params)) != len(params):
            raise ValueError(f"resource template {uri!r} repeats a placeholder")
        parts = _PLACEHOLDER.split(uri)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        pattern = re.compile(regex)
    try:
        hints = type_hints(read)
    except Exception:
        hints = {}
    sig = inspect.signature(read)
    ctx_param = next((n for n in sig.parameters if is_context(hints.get(n))), None)
    accepted = set(sig.parameters) - {ctx_param}
    has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    missing = [p for p in params if p not in accepted and not has_kwargs]
    if missing:
        raise TypeError(f"resource {uri!r}: the reader has no parameter for {missing}")
    required = [
        n
        for n, p in sig.parameters.items()
        if n != ctx_param
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        and n not in params
    ]
    if required:
        raise TypeError(f"resource {uri!r}: reader parameters {required} are not placeholders of the uri")
    summary, _ = parse_docstring(inspect.getdoc(read) or "")
    fn_name = str(getattr(read, "__name__", ""))
    return ResourceSpec(
        uri=uri,
        name=name or (fn_name if fn_name and not fn_name.startswith("<") else uri),
        read=read,
        description=description if description is not None else (summary or None),
        mime_type=mime_type,
        title=title,
        params=params,
        pattern=pattern,
        is_async=inspect.iscoroutinefunction(read),
        wants_context=ctx_param,
    )


class ResourceRegistry:
    """Thread-safe: the host may add and remove resources while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._static: dict[str, ResourceSpec] = {}
        self._templates: dict[str, ResourceSpec] = {}
        self.version = 0
        #: Resolves what nothing registered serves (a gateway: a URI of an instance it no longer
        #: lists answers with an error naming it); never listed. Called outside the lock.
        self.fallback: Fallback | None = None

    def add(self, spec: ResourceSpec, *, replace: bool = False) -> None:
        table = self._templates if spec.is_template else self._static
        with self._lock:
            if spec.uri in table and not replace:
                raise ValueError(f"a resource {spec.uri!r} is already registered (pass replace=True)")
            table[spec.uri] = spec
            self.version += 1

    def remove(self, uri: str) -> bool:
        with self._lock:
            found = self._static.pop(uri, None) or self._templates.pop(uri, None)
            if found is not None:
                self.version += 1
            return found is not None

    def resources(self) -> list[ResourceSpec]:
        with self._lock:
            return list(self._static.values())

    def templates(self) -> list[ResourceSpec]:
        with self._lock:
            return list(self._templates.values())

    def resolve(self, uri: str) -> tuple[ResourceSpec, dict[str, str]] | None:
        """The resource serving ``uri`` and its template arguments; static URIs win over templates,
        and :attr:`fallback` is asked last."""
        with self._lock:
            spec = self._static.get(uri)
            if spec is not None:
                return spec, {}
            for tpl in self._templates.values():
                args = tpl.match(uri)
                if args is not None:
                    return tpl, args
        fallback = self.fallback
        return fallback(uri) if fallback is not None else None

    def __len__(self) -> int:
        return len(self._static) + len(self._templates)

    def __iter__(self) -> Iterator[ResourceSpec]:
        return iter(self.resources() + self.templates())


def contents_to_wire(uri: str, spec: ResourceSpec, value: Any) -> dict[str, Any]:
    """A read function's return value as a ``resources/read`` result (or an input request)."""
    from ..content import EmbeddedResource, InputRequired

    if isinstance(value, InputRequired):
        return value.to_wire()
    items = value if isinstance(value, (list, tuple)) else [value]
    contents: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, EmbeddedResource):
            contents.append(item.to_wire()["resource"])
            continue
        if (
            isinstance(item, Mapping)
            and isinstance(item.get("uri"), str)
            and ("text" in item or "blob" in item)
        ):
            contents.append(dict(item))
            continue
        entry: dict[str, Any] = {"uri": uri}
        if isinstance(item, str):
            entry["mimeType"] = spec.mime_type or "text/plain"
            entry["text"] = item
        elif isinstance(item, (bytes, bytearray, memoryview)):
            import base64

            entry["mimeType"] = spec.mime_type or "application/octet-stream"
            entry["blob"] = base64.b64encode(bytes(item)).decode("ascii")
        else:
            raise TypeError(
                f"resource {spec.uri!r} returned {type(item).__name__}; return str, bytes or EmbeddedResource"
            )
        contents.append(entry)
    return {"contents": contents}
