"""Pure ASGI middleware, one concept a module: CORS, the Origin/Host guard, body and session limits,
and the rate limit. Each wraps the next app and knows nothing of MCP."""
