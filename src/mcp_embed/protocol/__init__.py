"""The SDK adapter: the low-level ``Server`` fed from :class:`~mcp_embed.components.Components`.

``caller`` runs one ``tools/call`` end to end; ``lowlevel`` builds the SDK server and its tool
handlers; one module per other MCP area registers its handlers (resources, prompts, completion,
notifications and subscriptions, tasks, skills). Handlers return plain dicts: the SDK validates
and serialises results per protocol version.
"""
