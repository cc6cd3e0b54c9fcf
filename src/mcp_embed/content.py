"""Content a tool or prompt returns, and the input requests of the 2026-07-28 protocol.

Tools may return :class:`Image`, :class:`Audio`, :class:`EmbeddedResource` or :class:`Text`, alone
or in a list mixed with strings; prompts return :class:`Message` lists. A tool, prompt or resource
that needs more from the client returns :class:`InputRequired` (SEP-2322) and reads the answers
from ``ctx.input_responses`` on the retried call.

Nothing here imports the SDK until a value is turned into its wire form.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "Audio",
    "ElicitInput",
    "EmbeddedResource",
    "Image",
    "InputRequest",
    "InputRequired",
    "Message",
    "RootsInput",
    "SampleInput",
    "Text",
]

Role = Literal["user", "assistant"]


def _b64(data: bytes | str) -> str:
    return data if isinstance(data, str) else base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class Text:
    """A text content block."""

    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True, slots=True)
class Image:
    """An image content block. ``data`` is raw bytes, or a string already in base64."""

    data: bytes | str
    mime_type: str = "image/png"

    def to_wire(self) -> dict[str, Any]:
        return {"type": "image", "data": _b64(self.data), "mimeType": self.mime_type}


@dataclass(frozen=True, slots=True)
class Audio:
    """An audio content block. ``data`` is raw bytes, or a string already in base64."""

    data: bytes | str
    mime_type: str = "audio/wav"

    def to_wire(self) -> dict[str, Any]:
        return {"type": "audio", "data": _b64(self.data), "mimeType": self.mime_type}


@dataclass(frozen=True, slots=True)
class EmbeddedResource:
    """A resource's contents embedded in a result: give ``text`` or ``blob`` (bytes), not both."""

    uri: str
    text: str | None = None
    blob: bytes | None = None
    mime_type: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.blob is None):
            raise ValueError("EmbeddedResource needs exactly one of text= or blob=")

    def to_wire(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"uri": self.uri}
        if self.mime_type is not None:
            inner["mimeType"] = self.mime_type
        if self.text is not None:
            inner["text"] = self.text
        else:
            assert self.blob is not None
            inner["blob"] = _b64(self.blob)
        return {"type": "resource", "resource": inner}


Content: TypeAlias = Text | Image | Audio | EmbeddedResource
_CONTENT_CLASSES = (Text, Image, Audio, EmbeddedResource)
_WIRE_TYPES = frozenset({"text", "image", "audio", "resource", "resource_link"})


def content_block(item: Any) -> dict[str, Any] | None:
    """The wire form of one content item (str, helper, SDK model or wire dict), or None."""
    if isinstance(item, str):
        return {"type": "text", "text": item}
    if isinstance(item, _CONTENT_CLASSES):
        return item.to_wire()
    if hasattr(item, "model_dump") and getattr(item, "type", None) in _WIRE_TYPES:
        dumped: dict[str, Any] = item.model_dump(by_alias=True, mode="json", exclude_none=True)
        return dumped
    if isinstance(item, Mapping) and item.get("type") in _WIRE_TYPES:
        return dict(item)
    return None


def is_content(item: Any) -> bool:
    """True for a content helper or an SDK content model (not for a plain ``str``)."""
    return not isinstance(item, str) and content_block(item) is not None


@dataclass(frozen=True, slots=True)
class Message:
    """One prompt message: ``Message("user", "text")`` or ``Message("assistant", Image(...))``."""

    role: Role
    content: str | Content | Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        block = content_block(self.content)
        if block is None:
            raise TypeError(f"unsupported message content: {type(self.content).__name__}")
        return {"role": self.role, "content": block}


# -- SEP-2322 input requests (2026-07-28) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElicitInput:
    """Ask the user to fill a form. ``schema`` is a flat JSON Schema object of primitive fields."""

    message: str
    schema: Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        import mcp_types as t

        from ._jsonsafe import safe_str, scrub

        # scrub: pydantic's encoder refuses a lone surrogate, here or later on the wire
        schema = scrub(dict(self.schema))
        req = t.ElicitRequest(
            params=t.ElicitRequestFormParams(message=safe_str(self.message), requested_schema=schema)
        )
        return req.model_dump(by_alias=True, mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class SampleInput:
    """Ask the client's model for a completion: a prompt string or a list of :class:`Message`."""

    messages: str | Sequence[Message]
    max_tokens: int = 100
    system_prompt: str | None = None

    def to_wire(self) -> dict[str, Any]:
        import mcp_types as t

        from ._jsonsafe import scrub

        msgs = [Message("user", self.messages)] if isinstance(self.messages, str) else list(self.messages)
        params = t.CreateMessageRequestParams.model_validate(
            scrub(
                {
                    "messages": [m.to_wire() for m in msgs],
                    "maxTokens": self.max_tokens,
                    **({"systemPrompt": self.system_prompt} if self.system_prompt is not None else {}),
                }
            )
        )
        return t.CreateMessageRequest(params=params).model_dump(by_alias=True, mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class RootsInput:
    """Ask the client for its roots (``roots/list``)."""

    def to_wire(self) -> dict[str, Any]:
        import mcp_types as t

        return t.ListRootsRequest().model_dump(by_alias=True, mode="json", exclude_none=True)


InputRequest: TypeAlias = ElicitInput | SampleInput | RootsInput


@dataclass(frozen=True, slots=True)
class InputRequired:
    """Return this to ask the client for input before the call can complete (2026-07-28 only).

    The client answers each request and retries the same call; the answers arrive keyed like
    ``requests`` in ``ctx.input_responses`` (wire dicts, e.g. ``{"action": "accept", "content":
    {...}}`` for an elicitation), and ``state`` comes back as ``ctx.request_state``, sealed by
    the server in between so a client cannot forge it. A handshake-era (2025) session cannot
    carry it: a tool call then gets an ``isError`` result, and a prompt or resource read a
    JSON-RPC error. Use ``ctx.elicit()``/``ctx.sample()`` there.
    """

    requests: Mapping[str, InputRequest] = field(default_factory=dict)
    state: str | None = None

    def __post_init__(self) -> None:
        if not self.requests and self.state is None:
            raise ValueError("InputRequired needs at least one request or a state")

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"resultType": "input_required"}
        if self.requests:
            out["inputRequests"] = {k: r.to_wire() for k, r in self.requests.items()}
        if self.state is not None:
            out["requestState"] = self.state
        return out
