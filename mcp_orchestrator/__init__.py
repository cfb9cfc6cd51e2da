"""mcp-orchestrator: an MCP server that turns agent orchestration into tools."""

__version__ = "0.1.0"

__all__ = ["__version__"]
