"""Run stores: the seam and the JSON document implementation."""

from mcp_orchestrator.store.base import RunFilter, RunStore
from mcp_orchestrator.store.json_store import JsonRunStore

__all__ = ["JsonRunStore", "RunFilter", "RunStore"]
