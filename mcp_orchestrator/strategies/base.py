"""The strategy seam: a plan of steps over workers, executed through a ``StrategyContext``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Protocol

from mcp_orchestrator.contracts import Step, StrategyName, WorkerRecord

__all__ = ["Strategy", "StrategyContext"]


class StrategyContext(Protocol):
    """What a strategy may do: run a step and read the run's task."""

    @property
    def task(self) -> str:
        """The task as dispatched."""
        ...

    async def run_step(self, worker: WorkerRecord, *, role: str, prompt: str, workdir: Path | None = None) -> Step:
        """Run one step to its end and return the recorded step (completed, failed or canceled).

        The step runs with ``role``'s permissions (a reviewer is read-only) in ``workdir``
        (default: the worker's own). Steps may run concurrently for different workers.
        """
        ...

    async def save_step(self, step: Step) -> None:
        """Store a step again with more facts (its verdict, its workspace)."""
        ...


class Strategy(ABC):
    """A collaboration strategy."""

    name: ClassVar[StrategyName]

    @abstractmethod
    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """Pick the workers this strategy uses; raise ``UsageError`` naming what is missing."""

    @abstractmethod
    async def execute(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> str:
        """Run the plan; return the run's summary. Step failures are recorded in the steps."""
