"""``spawn_mode="subprocess"``: the HTTP server in a child Python, tools still in the host.

``host`` runs in the host process (spawns and supervises the child, runs forwarded calls),
``child`` in the child (serves HTTP, forwards calls), ``wire`` is what they say to each other.
"""
