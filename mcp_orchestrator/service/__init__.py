"""The orchestrator service layer."""

from mcp_orchestrator.service.orchestrator import Orchestrator

__all__ = ["Orchestrator"]
