"""Native enforcement of ``ApiKeyConfig`` / ``OAuthConfig`` (the declarations live in ``mcp_embed.auth``):
credential checks (``native``) and the ASGI layer in front of routing (``middleware``)."""
