"""Storage contracts: the documents the store keeps (run and worker records with their bookkeeping, the
panic switch, the process that holds a run), each carrying ``schemaVersion``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from mcp_orchestrator.contracts.base import STORE_SCHEMA_VERSION, Contract, RuntimeMode
from mcp_orchestrator.contracts.wire import Run, RunSummary, Worker

__all__ = ["PanicState", "ProcessRef", "RunRecord", "WorkerRecord", "task_excerpt"]


class PanicState(Contract):
    """The panic write-guard."""

    schema_version: int = STORE_SCHEMA_VERSION
    engaged: bool
    reason: str = ""
    engaged_by: str = ""
    engaged_at: datetime | None = None


class ProcessRef(Contract):
    """The server process that executes a run; used to detect runs orphaned by a crash."""

    pid: int
    start_ticks: int
    host: str
    instance: str = ""

    @property
    def label(self) -> str:
        """``pid@host/instance``, as shown in run telemetry."""
        return f"{self.pid}@{self.host}/{self.instance}"


class RunRecord(Run):
    """A run as stored on disk: the wire run plus bookkeeping."""

    schema_version: int = STORE_SCHEMA_VERSION
    workers: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None
    owner: ProcessRef | None = None
    cancel_requested: bool = False
    timeout_seconds: float | None = None
    runtime_mode: RuntimeMode | None = None
    continue_session: bool = False
    apply_result: bool = False
    keep_worktrees: bool = False

    def to_wire(self) -> Run:
        """The caller-facing view of this record."""
        return Run.model_validate(self.model_dump(include=set(Run.model_fields)))

    def summarize(self) -> RunSummary:
        """The listing view of this record."""
        task = task_excerpt(self.task)
        return RunSummary(
            run_id=self.run_id,
            status=self.status,
            strategy=self.strategy,
            agent_id=self.agent_id,
            workers=self.workers,
            created_at=self.created_at,
            ended_at=self.ended_at,
            task=task,
            priority=self.priority,
        )


class WorkerRecord(Worker):
    """A worker as stored on disk."""

    schema_version: int = STORE_SCHEMA_VERSION
    current_run_id: str | None = None
    updated_at: datetime | None = None  # the last spawn or stop (the Temporal engine's newer copy wins)

    def to_wire(self) -> Worker:
        """The caller-facing view of this record."""
        return Worker.model_validate(self.model_dump(include=set(Worker.model_fields)))


def task_excerpt(task: str) -> str:
    """A task as a listing shows it: at most 200 characters."""
    return task if len(task) <= 200 else task[:199] + "…"
