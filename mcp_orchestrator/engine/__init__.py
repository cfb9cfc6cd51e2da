"""Execution engines: where accepted runs (``RunSpec``) queue and execute, and the caps their steps share.

``base.ExecutionEngine`` is the seam; ``scheduler.LocalScheduler`` the embedded default (in-process
queues, priorities, caps); ``temporal/`` the scale-out engine; ``steps.execute_step`` runs one step
attempt on a runtime under its watchdog. Below the strategies: may import ``runtimes``, ``store``,
``contracts``, ``errors``, ``config`` and ``guards``, never the service or the server."""

from mcp_orchestrator.engine.base import ExecutionEngine, Runner, Ticket
from mcp_orchestrator.engine.caps import StepCaps
from mcp_orchestrator.engine.scheduler import LocalScheduler, SchedulerLimits
from mcp_orchestrator.engine.spec import RunSpec
from mcp_orchestrator.engine.steps import execute_step

__all__ = [
    "ExecutionEngine",
    "LocalScheduler",
    "RunSpec",
    "Runner",
    "SchedulerLimits",
    "StepCaps",
    "Ticket",
    "execute_step",
]
