"""Prompts from Python callables: arguments from the signature, messages from the return value.

A prompt function returns ``str`` (one user text message), a :class:`~mcp_embed.Message`, a
content item such as :class:`~mcp_embed.Image` (one user message), or a list of those; or
:class:`~mcp_embed.InputRequired` on the 2026-07-28 protocol. Its parameters are the prompt's
arguments (strings; required unless they have a default), documented by the docstring's
``Args:`` section. A parameter annotated :class:`~mcp_embed.ToolContext` receives the context.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PromptArgument", "PromptRegistry", "PromptSpec"]


@dataclass(frozen=True)
class PromptArgument:
    name: str
    description: str | None = None
    required: bool = True

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "required": self.required}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class PromptSpec:
    name: str
    fn: Callable[..., Any] = field(repr=False)
    description: str | None = None
    title: str | None = None
    arguments: tuple[PromptArgument, ...] = ()
    is_async: bool = False
    wants_context: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "arguments": [a.wire() for a in self.arguments]}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        return out


def build_prompt(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    title: str | None = None,
) -> PromptSpec:
    from .schema import is_context, parse_docstring, type_hints
    from .tools import check_tool_name

    if not callable(fn):
        raise TypeError(f"a prompt must be callable, got {type(fn).__name__}")
    pname = check_tool_name(name or str(getattr(fn, "__name__", "")))
    try:
        hints = type_hints(fn)
    except Exception:
        hints = {}
    summary, docs = parse_docstring(inspect.getdoc(fn) or "")
    args: list[PromptArgument] = []
    ctx_param = None
    for pn, p in inspect.signature(fn).parameters.items():
        if is_context(hints.get(pn)):
            ctx_param = pn
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"prompt {pname!r}: *args and **kwargs parameters are not supported")
        args.append(PromptArgument(pn, docs.get(pn), p.default is inspect.Parameter.empty))
    return PromptSpec(
        name=pname,
        fn=fn,
        description=description if description is not None else (summary or None),
        title=title,
        arguments=tuple(args),
        is_async=inspect.iscoroutinefunction(fn),
        wants_context=ctx_param,
    )


class PromptRegistry:
    """Thread-safe: prompts may be added and removed while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prompts: dict[str, PromptSpec] = {}
        self.version = 0

    def add(self, spec: PromptSpec, *, replace: bool = False) -> None:
        with self._lock:
            if spec.name in self._prompts and not replace:
                raise ValueError(f"a prompt {spec.name!r} is already registered (pass replace=True)")
            self._prompts[spec.name] = spec
            self.version += 1

    def remove(self, name: str) -> bool:
        with self._lock:
            found = self._prompts.pop(name, None) is not None
            if found:
                self.version += 1
            return found

    def get(self, name: str) -> PromptSpec | None:
        return self._prompts.get(name)

    def __iter__(self) -> Iterator[PromptSpec]:
        with self._lock:
            return iter(list(self._prompts.values()))

    def __len__(self) -> int:
        return len(self._prompts)


def messages_to_wire(spec: PromptSpec, value: Any) -> dict[str, Any]:
    """A prompt function's return value as a ``prompts/get`` result (or an input request)."""
    from ..content import InputRequired, Message, content_block

    if isinstance(value, InputRequired):
        return value.to_wire()
    items = value if isinstance(value, (list, tuple)) else [value]
    messages: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Message):
            messages.append(item.to_wire())
        elif isinstance(item, dict) and "role" in item:
            messages.append(item)
        else:
            block = content_block(item)
            if block is None:
                raise TypeError(
                    f"prompt {spec.name!r} returned {type(item).__name__}; "
                    "return str, Message, Image/Audio/EmbeddedResource or a list of them"
                )
            messages.append({"role": "user", "content": block})
    out: dict[str, Any] = {"messages": messages}
    if spec.description:
        out["description"] = spec.description
    return out
