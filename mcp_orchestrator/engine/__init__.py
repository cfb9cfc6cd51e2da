"""Execution engines: where run jobs and their steps execute."""

from mcp_orchestrator.engine.base import ExecutionEngine, Job
from mcp_orchestrator.engine.local import LocalEngine
from mcp_orchestrator.engine.steps import execute_step

__all__ = ["ExecutionEngine", "Job", "LocalEngine", "execute_step"]
