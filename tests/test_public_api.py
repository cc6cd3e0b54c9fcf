"""The public surface, pinned (as httpx pins its own): a name added, renamed or dropped fails here,
so a change to what users import is a decision, never a side effect of moving code."""

from __future__ import annotations

import dataclasses
import inspect

import mcp_embed
from mcp_embed import McpHttpConfig, ServerHandle, SkillServer, create_skill_server

PUBLIC = [
    "ApiKey",
    "ApiKeyConfig",
    "Audio",
    "ConfigError",
    "ElicitInput",
    "Elicited",
    "EmbeddedResource",
    "EventStore",
    "Gateway",
    "Image",
    "InMemoryEventStore",
    "InMemoryTaskStore",
    "InputRequired",
    "McpEmbedError",
    "McpError",
    "McpHttpConfig",
    "Message",
    "OAuthConfig",
    "PortInUseError",
    "RootsInput",
    "SampleInput",
    "Sampled",
    "ServerHandle",
    "ServerStartError",
    "SkillServer",
    "Task",
    "TaskStore",
    "TaskSupport",
    "Text",
    "ToolContext",
    "ToolError",
    "__version__",
    "create_gateway",
    "create_skill_server",
]

CONFIG_FIELDS = [
    "allowed_hosts", "allowed_origins", "allowed_tools", "audit_arguments", "auth", "auth_failures_burst",
    "auth_failures_per_second", "body_timeout", "client_request_timeout", "cors_origins", "dispatcher",
    "dns_rebinding_protection", "enable_cors", "enable_event_store", "enable_file_logging", "enable_metrics",
    "enable_sse", "endpoint_path", "event_store_max_events", "host", "instance_host", "instructions",
    "json_response",
    "log_backups", "log_dir", "log_format", "log_level", "log_max_bytes", "main_pump_budget_ms",
    "main_queue_depth", "main_thread_timeout", "max_body_bytes", "max_sessions", "metrics_basic_auth", "port",
    "public_url", "python_executable", "rate_limit_burst", "rate_limit_per_second", "redis_url", "register",
    "retry_interval_ms", "server_name", "server_version", "session_idle_timeout", "skills_list_limit",
    "skills_watch_interval", "spawn_mode", "stateless", "task_handoff", "task_poll_interval", "task_ttl",
    "trusted_proxies",
]  # fmt: skip

SERVER_METHODS = [
    "add_prompt", "add_resource", "add_tool", "add_tool_spec", "completion", "is_running",
    "notify_prompts_changed", "notify_resource_updated", "notify_resources_changed", "notify_tools_changed",
    "operations", "prompt", "reload_skills", "remove_prompt", "remove_resource", "remove_tool", "resource",
    "skills", "start", "tool", "tool_names",
]  # fmt: skip
SERVER_ATTRIBUTES = [
    "app_name", "components", "config", "dispatcher", "event_store", "fast_path", "prompts", "registry",
    "request_state_keys", "resources", "skill_interpreter", "skill_paths", "task_store",
]  # fmt: skip
HANDLE_MEMBERS = [
    "bind_addr", "dispatcher", "host", "instance_id", "is_ready", "is_running", "local_url",
    "main_thread_status", "mcp_url", "pid", "port", "pump", "reason", "restart", "set_metadata", "shutdown",
    "sse_url", "stop", "url", "wait", "wait_ready",
]  # fmt: skip
TOOL_OPTIONS = ["name", "description", "annotations", "affinity", "timeout", "title", "input_schema", "task"]


def _public(names: object) -> list[str]:
    return sorted(n for n in dir(names) if not n.startswith("_"))


def test_the_package_exports_exactly_these_names() -> None:
    assert sorted(mcp_embed.__all__) == PUBLIC
    assert dir(mcp_embed) == PUBLIC
    for name in PUBLIC:
        assert getattr(mcp_embed, name) is not None


def test_config_fields_are_pinned() -> None:
    assert sorted(McpHttpConfig.model_fields) == CONFIG_FIELDS


def test_the_server_and_handle_surface_is_pinned() -> None:
    assert _public(SkillServer) == SERVER_METHODS
    server = create_skill_server("pinned", McpHttpConfig(port=0))
    assert sorted(set(_public(server)) - set(SERVER_METHODS)) == SERVER_ATTRIBUTES
    assert _public(ServerHandle) == HANDLE_MEMBERS


def test_create_skill_server_keywords_are_pinned() -> None:
    params = inspect.signature(create_skill_server).parameters
    assert list(params) == [
        "app_name",
        "config",
        "skill_paths",
        "event_store",
        "request_state_keys",
        "task_store",
    ]


def test_the_gateway_surface_is_pinned() -> None:
    from mcp_embed import Gateway, create_gateway

    assert list(inspect.signature(create_gateway).parameters) == ["config", "registry", "poll_interval"]
    assert _public(Gateway) == ["instances", "registry", "start", "stop"]


def test_tool_keywords_are_one_list() -> None:
    """``tool()``/``add_tool()`` take the fields of ``ToolOptions``; their typed keywords say the same."""
    from mcp_embed.components.tools import ToolKwargs, ToolOptions

    assert [f.name for f in dataclasses.fields(ToolOptions)] == TOOL_OPTIONS
    assert list(ToolKwargs.__annotations__) == TOOL_OPTIONS
    server = create_skill_server("pinned", McpHttpConfig(port=0))

    @server.tool(name="renamed", title="T", timeout=2.0, affinity="main", task="optional")
    def f() -> None:
        """Doc."""

    server.add_tool(lambda: None, name="other", description="d")
    server.registry.build_pending()
    spec = server.registry.get("renamed")
    assert spec is not None
    assert (spec.title, spec.timeout, spec.affinity, spec.task) == ("T", 2.0, "main", "optional")
    assert server.registry.get("other") is not None
