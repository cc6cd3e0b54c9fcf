"""The HTTP layer: the ASGI app and its routes, the SDK's transports, the fast path, the stateless
back-channel, the middleware (``middleware/``) and native authentication (``auth/``).

It serves what ``protocol/`` builds and records through ``ops/``; it never imports the server object.
"""
