"""Skills: folders with a ``SKILL.md`` whose scripts become MCP tools and whose docs become resources.

The seam to the server core::

    catalog = discover_skills("maya", paths, env=os.environ, interpreter="/path/to/mayapy")
    for tool in catalog.tools:          # SkillTool: name, description, input_schema, affinity, ...
        registry.add(tool.name, tool.invoke, ...)
    list_skill_resources(catalog)       # SkillResource: uri, name, mime_type, ...
    read_skill_resource(catalog, uri)   # SkillResourceContent: text or blob

Importing this package is cheap: YAML, jsonschema and platformdirs load when first needed.
"""

from __future__ import annotations

from ._model import (
    DEFAULT_SUBPROCESS_TIMEOUT,
    ShadowedSkill,
    Skill,
    SkillArgumentError,
    SkillCatalog,
    SkillProblem,
    SkillResourceError,
    SkillTool,
    SkillToolError,
)
from .discovery import discover_skills, env_var_name, skill_roots, validate_skill
from .naming import split_tool_name, tool_name
from .report import format_problems, format_skills_table
from .resources import SkillResource, SkillResourceContent, list_skill_resources, read_skill_resource

__all__ = [
    "DEFAULT_SUBPROCESS_TIMEOUT",
    "ShadowedSkill",
    "Skill",
    "SkillArgumentError",
    "SkillCatalog",
    "SkillProblem",
    "SkillResource",
    "SkillResourceContent",
    "SkillResourceError",
    "SkillTool",
    "SkillToolError",
    "discover_skills",
    "env_var_name",
    "format_problems",
    "format_skills_table",
    "list_skill_resources",
    "read_skill_resource",
    "skill_roots",
    "split_tool_name",
    "tool_name",
    "validate_skill",
]
