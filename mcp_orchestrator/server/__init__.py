"""The MCP tool surface."""

from mcp_orchestrator.server.app import build_server
from mcp_orchestrator.server.state import AppState

__all__ = ["AppState", "build_server"]
