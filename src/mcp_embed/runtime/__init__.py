"""Where the server runs: a dedicated thread (``runtime.thread``)."""
