"""Operations, beside every request: the audit log and its writer, Prometheus metrics, the tool
allow-list, and who is calling (``peer``). Nothing here serves MCP; the layers above report to it."""
