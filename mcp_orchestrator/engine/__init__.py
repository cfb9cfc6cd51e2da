"""Execution engines: where run jobs queue and execute, and the caps their steps share."""

from mcp_orchestrator.engine.base import ExecutionEngine, Job, Ticket
from mcp_orchestrator.engine.caps import StepCaps
from mcp_orchestrator.engine.scheduler import LocalScheduler, SchedulerLimits
from mcp_orchestrator.engine.steps import execute_step

__all__ = ["ExecutionEngine", "Job", "LocalScheduler", "SchedulerLimits", "StepCaps", "Ticket", "execute_step"]
