"""What an engine is handed: a run as data (its id, strategy, workers, task and policy), never a closure.

The in-process scheduler passes a spec to the service's runner in this process; the Temporal engine sends
it to a workflow on another machine. Both run it through the same strategy code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_orchestrator.contracts import Priority, RunBudget, RunRecord, RuntimeMode, StrategyName, WorkerRecord

__all__ = ["RunPolicy", "RunSpec"]


class RunPolicy(BaseModel):
    """The accepting server's limits for the run's steps, carried with it to wherever it executes."""

    model_config = ConfigDict(frozen=True)

    step_timeout_seconds: float = 30 * 60
    stall_seconds: float | None = None
    retry_attempts: int = 3
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 10.0
    retry_total_seconds: float = 120.0
    heartbeat_seconds: float = 10.0
    queue_seconds: float = 300.0  # a step no worker picks up in this time fails ``unavailable``
    # The accepting server's gateway configuration (``GatewayConfig``, camelCase JSON): candidates, strategies,
    # hedging and prices route the run's steps wherever the run executes, the same on every replay.
    gateway: dict[str, Any] = Field(default_factory=dict)


class RunSpec(BaseModel):
    """One accepted run, as an engine executes it.

    ``task`` is the task as dispatched (the store keeps it redacted). ``workers`` are the chosen workers'
    records at dispatch time, in the strategy's order.
    """

    model_config = ConfigDict(frozen=True)

    run_id: str
    strategy: StrategyName
    task: str
    agent_id: str = "default"
    workers: list[WorkerRecord] = Field(default_factory=list)
    priority: Priority = "interactive"
    timeout_seconds: float | None = None
    deadline_at: datetime | None = None
    runtime_mode: RuntimeMode | None = None
    continue_session: bool = False
    apply_result: bool = False
    keep_worktrees: bool = False
    budget: RunBudget | None = None
    idempotency_key: str | None = None
    task_record: str = ""  # the task as stored (redacted), for records kept outside this data dir
    policy: RunPolicy = Field(default_factory=RunPolicy)

    @classmethod
    def of(cls, run: RunRecord, workers: list[WorkerRecord], task: str | None = None) -> RunSpec:
        """The spec of a stored run; ``task`` overrides the stored (redacted) task."""
        return cls(
            run_id=run.run_id,
            strategy=run.strategy,
            task=run.task if task is None else task,
            agent_id=run.agent_id,
            workers=workers,
            priority=run.priority,
            timeout_seconds=run.timeout_seconds,
            deadline_at=run.deadline_at,
            runtime_mode=run.runtime_mode,
            continue_session=run.continue_session,
            apply_result=run.apply_result,
            keep_worktrees=run.keep_worktrees,
            budget=run.budget,
            idempotency_key=run.idempotency_key,
            task_record=run.task,
        )
