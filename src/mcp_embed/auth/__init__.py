"""Authentication: declarative API-key and OAuth settings, native enforcement, RFC 9728 metadata,
and renderers for an authenticating edge proxy (nginx).

Only the settings load with this package; the verifier, the middleware and the renderers load
when a server starts or the CLI renders a config.
"""

from __future__ import annotations

from .config import ApiKey, ApiKeyConfig, AuthConfig, OAuthConfig

__all__ = ["ApiKey", "ApiKeyConfig", "AuthConfig", "OAuthConfig"]
