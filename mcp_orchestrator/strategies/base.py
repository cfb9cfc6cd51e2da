"""The strategy seam: a plan of steps over workers, executed through a ``StrategyContext``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from mcp_orchestrator.contracts import FailureClass, Step, StrategyName, WorkerRecord

__all__ = ["Strategy", "StrategyContext", "StrategyOptions", "StrategyResult", "run_options"]


@dataclass(frozen=True)
class StrategyOptions:
    """What the caller asked of a multi-writer plan beyond the task.

    ``apply_result``: apply the chosen writer's change to its main workdir (as an uncommitted change).
    ``keep_worktrees``: leave each isolated writer's git worktree in place after the run.
    """

    apply_result: bool = False
    keep_worktrees: bool = False


@dataclass(frozen=True)
class StrategyResult:
    """How a plan ended.

    ``recovered`` holds the indexes of failed or canceled steps the plan worked around (a parallel
    branch whose sibling survived, a writer whose role another model took over): they do not fail
    the run. ``failure`` is the plan's own failure (class and message) even when no step failed,
    e.g. a result the caller asked to apply could not be applied.
    """

    summary: str
    recovered: frozenset[int] = frozenset()
    failure: tuple[FailureClass, str] | None = None


class StrategyContext(Protocol):
    """What a strategy may do: run a step and read the run's task."""

    @property
    def run_id(self) -> str:
        """The run's id (names its branches and worktrees)."""
        ...

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


def run_options(ctx: StrategyContext) -> StrategyOptions:
    """The caller's options for this run: ``ctx.options`` when the context carries them, else the defaults."""
    options = getattr(ctx, "options", None)
    return options if isinstance(options, StrategyOptions) else StrategyOptions()


class Strategy(ABC):
    """A collaboration strategy."""

    name: ClassVar[StrategyName]

    @abstractmethod
    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """Pick the workers this strategy uses; raise ``UsageError`` naming what is missing."""

    @abstractmethod
    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """Run the plan; step failures are recorded in the steps, the result says which ones it recovered from."""

    async def execute(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> str:
        """Run the plan and return only its summary (for callers that do not read ``StrategyResult`` yet)."""
        return (await self.run_plan(ctx, workers)).summary
