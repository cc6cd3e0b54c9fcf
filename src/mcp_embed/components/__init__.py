"""What one server serves: its tools, resources, prompts, completion handler and skills.

A :class:`Components` value is built by the facade (``SkillServer``), which registers into it, and
handed down to the layers that serve it: the protocol handlers read it, the subprocess runtime
mirrors it into its child. It knows nothing of HTTP or the SDK. When what it holds changes, it
tells whoever is serving it through one seam, :attr:`Components.sink`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .prompts import PromptRegistry
from .registry import ToolRegistry
from .resources import ResourceRegistry

if TYPE_CHECKING:
    from ..skills import SkillCatalog

__all__ = ["CompletionFn", "Components", "SkillsForward", "SkillsSource"]

#: ``fn(ref, argument_name, value, context)``: suggestions, best first; may be ``async``.
CompletionFn = Callable[..., Any]
#: Answers a skills-extension method (``skills/list``, ...) somewhere else: the subprocess host.
SkillsForward = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class SkillsSource(Protocol):
    """Where a server's skills come from (``skills.serve.SkillLoader``)."""

    @property
    def catalog(self) -> SkillCatalog | None: ...


def _no_sink() -> None:
    return None


class Components:
    """The registries one server serves, and the seam that tells its clients they changed."""

    def __init__(self, sink: Callable[[], Callable[[Any], None] | None] = _no_sink) -> None:
        self.tools = ToolRegistry()
        self.resources = ResourceRegistry()
        self.prompts = PromptRegistry()
        self.completion: CompletionFn | None = None
        #: This process's skills, once discovered; None when it has none (or serves another's).
        self.skills: SkillsSource | None = None
        #: Set in a ``spawn_mode="subprocess"`` child: the host answers the skills extension.
        self.skills_forward: SkillsForward | None = None
        #: Returns where change notifications go now (an SDK subscription event each), or None
        #: while nothing serves these components: then a change costs nothing, not even an import.
        self.sink = sink
        self.tools.subscribe(self.notify_tools_changed)

    @property
    def serves_skills(self) -> bool:
        """Whether the skills extension is declared: skills found under an existing root, or the
        host of a subprocess child answers for them."""
        if self.skills_forward is not None:
            return True
        catalog = self.skills.catalog if self.skills is not None else None
        return catalog is not None and bool(catalog.roots or catalog.skills)

    # -- change notifications (thread-safe; no-ops while nothing serves) --------------------------

    def notify_tools_changed(self) -> None:
        if (sink := self.sink()) is not None:
            from mcp.shared.subscriptions import ToolsListChanged

            sink(ToolsListChanged())

    def notify_resources_changed(self) -> None:
        if (sink := self.sink()) is not None:
            from mcp.shared.subscriptions import ResourcesListChanged

            sink(ResourcesListChanged())

    def notify_prompts_changed(self) -> None:
        if (sink := self.sink()) is not None:
            from mcp.shared.subscriptions import PromptsListChanged

            sink(PromptsListChanged())

    def notify_resource_updated(self, uri: str) -> None:
        if (sink := self.sink()) is not None:
            from mcp.shared.subscriptions import ResourceUpdated

            sink(ResourceUpdated(uri=str(uri)))
