"""``single_worker``: one worker does the whole task in one step."""

from __future__ import annotations

from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.errors import UsageError
from mcp_orchestrator.strategies.base import Strategy, StrategyContext, StrategyResult

__all__ = ["SingleWorker"]


class SingleWorker(Strategy):
    """The task goes to one worker as it is."""

    name = "single_worker"

    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """The first candidate that is idle, else the first one."""
        if not candidates:
            raise UsageError(
                "single_worker needs one worker and none is available.",
                hint="Spawn one with spawn_worker (model 'mock' needs no API key), then dispatch again.",
            )
        idle = [w for w in candidates if w.status == "idle"]
        return [(idle or candidates)[0]]

    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """One step with the task as the prompt."""
        worker = workers[0]
        step = await ctx.run_step(worker, role=worker.role, prompt=ctx.task)
        if step.status == "completed":
            return StrategyResult(f"{worker.name} completed the task in {step.duration_ms} ms.")
        return StrategyResult(f"{worker.name} {step.status} ({step.failure_class or step.status}).")
