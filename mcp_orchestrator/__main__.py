"""``python -m mcp_orchestrator`` is the operator CLI."""

from mcp_orchestrator.cli import entry

entry()
