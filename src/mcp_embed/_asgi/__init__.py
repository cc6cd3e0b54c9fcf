"""Pure-ASGI building blocks: responses, the Host/Origin guard, CORS and the body limit."""
