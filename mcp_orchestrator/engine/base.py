"""The execution engine seam: where run jobs wait and execute.

The in-process scheduler queues jobs by priority class and runs them under caps; a
distributed engine can implement the same methods later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ExecutionEngine", "Job", "Ticket"]

Job = Callable[[], Awaitable[None]]


@dataclass
class Ticket:
    """A run waiting for the engine: its job, class and deadline (``anyio.current_time()`` based)."""

    run_id: str
    job: Job
    priority: Literal["interactive", "batch"] = "interactive"
    deadline: float | None = None
    on_expired: Callable[[str], Coroutine[Any, Any, None]] | None = None
    enqueued: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ExecutionEngine(ABC):
    """Accepts run jobs, runs them when capacity allows, cancels them on request."""

    @abstractmethod
    async def submit(self, ticket: Ticket, *, force: bool = False) -> None:
        """Queue ``ticket``; returns at once, not when the job ends. ``force`` skips the queue limit."""

    @abstractmethod
    def cancel(self, run_id: str) -> Literal["dequeued", "canceled"] | None:
        """Remove a queued run or cancel a running one; ``None`` when this engine does not hold it."""

    @abstractmethod
    def running(self) -> frozenset[str]:
        """Ids of the runs whose jobs are executing here."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Queue depths, running counts and waits, for the ``scheduler`` view."""
