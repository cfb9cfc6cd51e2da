"""The execution engine seam: where run jobs execute.

The in-process engine runs jobs in the server's own task group; a distributed engine
can implement the same three methods later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

__all__ = ["ExecutionEngine", "Job"]

Job = Callable[[], Awaitable[None]]


class ExecutionEngine(ABC):
    """Accepts run jobs, runs them to completion, cancels them on request."""

    @abstractmethod
    async def submit(self, run_id: str, job: Job) -> None:
        """Start ``job`` for ``run_id``; returns once it is scheduled, not when it ends."""

    @abstractmethod
    def cancel(self, run_id: str) -> bool:
        """Cancel the job of ``run_id``; False when this engine is not running it."""

    @abstractmethod
    def running(self) -> frozenset[str]:
        """Ids of the runs whose jobs are executing here."""
