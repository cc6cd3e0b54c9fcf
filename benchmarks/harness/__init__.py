"""The benchmark harness: server launch, MCP client checks, load generation, /proc sampling, reporting."""
