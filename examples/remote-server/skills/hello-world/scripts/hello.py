"""The smallest skill script: one typed function becomes one tool."""


def say_hello(name: str = "world") -> str:
    """Return a friendly greeting.

    Args:
        name: Who to greet.
    """
    return f"Hello, {name}!"
