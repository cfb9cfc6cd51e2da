"""The execution engine seam: where accepted runs wait and execute.

The service submits a run as data (a ``RunSpec``); the engine decides when and where it executes.
The in-process scheduler queues specs by priority class and hands each to the service's runner under
caps; the Temporal engine starts a workflow per run whose steps execute on worker processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup

from mcp_orchestrator.contracts import RunSummary
from mcp_orchestrator.engine.spec import RunSpec
from mcp_orchestrator.store import RunFilter

__all__ = ["ExecutionEngine", "Expired", "RunSpec", "Runner", "Ticket"]

Runner = Callable[[RunSpec], Awaitable[None]]
Expired = Callable[[str], Coroutine[Any, Any, None]]


@dataclass
class Ticket:
    """A run waiting in the local scheduler: its spec, class and deadline (``anyio.current_time()`` based)."""

    spec: RunSpec
    deadline: float | None = None
    enqueued: float = 0.0

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.spec.run_id

    @property
    def priority(self) -> Literal["interactive", "batch"]:
        """The run's priority class."""
        return self.spec.priority


class ExecutionEngine(ABC):
    """Accepts runs, executes them when capacity allows, cancels them on request.

    Use as an async context manager: the engine's own tasks run in ``self._tg`` until it closes."""

    _tg: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._open()
        return self

    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Start the engine's own tasks (called once its task group runs)."""

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None

    @abstractmethod
    async def submit(self, spec: RunSpec, *, force: bool = False) -> None:
        """Queue the run ``spec`` describes; returns at once, not when it ends. ``force`` skips the queue limit."""

    @abstractmethod
    def cancel(self, run_id: str) -> Literal["dequeued", "canceled"] | None:
        """Remove a queued run or cancel a running one; ``None`` when this engine does not hold it."""

    @abstractmethod
    def running(self) -> frozenset[str]:
        """Ids of the runs executing for this process."""

    def queued(self) -> frozenset[str]:
        """Ids of the runs waiting in this process (none where the engine queues elsewhere)."""
        return frozenset()

    def check_capacity(self, priority: Literal["interactive", "batch"]) -> None:  # noqa: B027 - optional
        """Raise ``Overloaded`` when ``priority``'s queue here is full (engines that queue elsewhere never do)."""

    @contextmanager
    def admit(self, priority: Literal["interactive", "batch"]) -> Iterator[None]:
        """Hold a place for a dispatch of ``priority`` until its run is submitted; raise ``Overloaded`` if full."""
        yield

    async def list_runs(
        self, flt: RunFilter, limit: int, cursor: str | None
    ) -> tuple[list[RunSummary], str | None] | None:
        """A page of every server's runs where the engine keeps them (``None``: read this data dir's store)."""
        return None

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Queue depths, running counts and waits, for the ``scheduler`` view."""
