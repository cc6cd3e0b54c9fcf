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

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._model import ShadowedSkill, Skill, SkillCatalog, SkillProblem, SkillResourceError, SkillTool
    from .discovery import discover_skills, env_var_name, skill_roots, validate_skill
    from .errors import DEFAULT_SUBPROCESS_TIMEOUT, SkillArgumentError, SkillToolError
    from .naming import split_tool_name, tool_name
    from .report import format_problems, format_skills_table
    from .resources import SkillResource, SkillResourceContent, list_skill_resources, read_skill_resource
    from .roots import any_root_exists

# Names load on first use, so asking where skills live (``.roots``) does not load the parsers.
_LAZY: dict[str, str] = {
    "DEFAULT_SUBPROCESS_TIMEOUT": "errors",
    "ShadowedSkill": "_model",
    "Skill": "_model",
    "SkillArgumentError": "errors",
    "SkillCatalog": "_model",
    "SkillProblem": "_model",
    "SkillResource": "resources",
    "SkillResourceContent": "resources",
    "SkillResourceError": "_model",
    "SkillTool": "_model",
    "SkillToolError": "errors",
    "any_root_exists": "roots",
    "discover_skills": "discovery",
    "env_var_name": "roots",
    "format_problems": "report",
    "format_skills_table": "report",
    "list_skill_resources": "resources",
    "read_skill_resource": "resources",
    "skill_roots": "roots",
    "split_tool_name": "naming",
    "tool_name": "naming",
    "validate_skill": "discovery",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


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
    "any_root_exists",
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
