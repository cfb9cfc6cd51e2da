"""The in-process scheduler: priority classes, backpressure, a global cap, fair picking, deadlines.

Interactive runs go first, but batch runs never wait without bound: after ``batch_every``
interactive starts in a row while batch work waits, or once the oldest batch run has waited
``aging_seconds`` (then every other start, so that aged batch work cannot starve interactive
work either), a batch run starts next. Deadlines of queued runs are checked while they
wait: an expired run is handed to its ``on_expired`` callback and never starts.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.engine.base import ExecutionEngine, Expired, Runner, RunSpec, Ticket
from mcp_orchestrator.errors import Overloaded

__all__ = ["LocalScheduler", "SchedulerLimits"]

log = logging.getLogger(__name__)

Priority = Literal["interactive", "batch"]
CLASSES: tuple[Priority, ...] = ("interactive", "batch")


class SchedulerLimits:
    """Queue limits per class, the global cap and the fairness knobs."""

    def __init__(
        self,
        *,
        queue_limits: dict[str, int] | None = None,
        max_running: int = 32,
        batch_every: int = 4,
        aging_seconds: float = 10.0,
    ) -> None:
        self.queue_limits = {"interactive": 1000, "batch": 10_000, **(queue_limits or {})}
        self.max_running = max_running
        self.batch_every = batch_every
        self.aging_seconds = aging_seconds


class LocalScheduler(ExecutionEngine):
    """Runs queued specs in one task group through ``runner``; use as an async context manager.

    ``on_expired`` gets the id of a queued run whose deadline passed (it never starts)."""

    def __init__(
        self, runner: Runner, limits: SchedulerLimits | None = None, on_expired: Expired | None = None
    ) -> None:
        self.limits = limits or SchedulerLimits()
        self._runner = runner
        self._on_expired = on_expired
        self._queues: dict[str, deque[Ticket]] = {c: deque() for c in CLASSES}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._tg: TaskGroup | None = None
        self._wake = anyio.Event()
        self._streak = 0
        self._reserved: dict[str, int] = dict.fromkeys(CLASSES, 0)  # admitted dispatches not yet queued
        self._started: deque[float] = deque(maxlen=10_000)  # start times, for throughput
        self._finished: deque[float] = deque(maxlen=10_000)
        self._waits: deque[float] = deque(maxlen=1000)

    async def _open(self) -> None:
        assert self._tg is not None
        self._tg.start_soon(self._dispatch_loop, name="scheduler")

    # ---- the seam ----------------------------------------------------------------------------

    def _depth(self, priority: Priority) -> int:
        """Runs of ``priority`` waiting, counting admitted dispatches not queued yet beyond the free slots."""
        queued = sum(len(q) for q in self._queues.values())
        free = max(self.limits.max_running - len(self._scopes) - queued, 0)
        return len(self._queues[priority]) + max(self._reserved[priority] - free, 0)

    def check_capacity(self, priority: Priority) -> None:
        """Raise ``Overloaded`` when ``priority``'s queue is full (before anything is stored)."""
        depth = self._depth(priority)
        limit = self.limits.queue_limits[priority]
        if depth >= limit:
            # Deterministic: the same depth and cap always give the same hint.
            retry_after = 1 + math.ceil(depth / max(self.limits.max_running, 1) / 10)
            raise Overloaded(priority, depth, limit, retry_after)

    @contextmanager
    def admit(self, priority: Priority) -> Iterator[None]:
        """``check_capacity``, then hold a place in the queue until the dispatch has queued its run (or
        failed): concurrent dispatches that store their runs meanwhile cannot overfill the queue."""
        self.check_capacity(priority)
        self._reserved[priority] += 1
        try:
            yield
        finally:
            self._reserved[priority] -= 1

    async def submit(self, spec: RunSpec, *, force: bool = False) -> None:
        """Queue a run; ``Overloaded`` if its class is full, unless ``force`` (a run already
        accepted, e.g. taken over from a dead process: nothing accepted is ever dropped)."""
        if self._tg is None:
            raise RuntimeError("the scheduler is not running")
        if not force:
            self.check_capacity(spec.priority)
        now = anyio.current_time()
        deadline = None
        if spec.deadline_at is not None:
            deadline = now + (spec.deadline_at - utcnow()).total_seconds()
        ticket = Ticket(spec, deadline=deadline, enqueued=now)
        self._queues[ticket.priority].append(ticket)
        self._wake.set()

    def cancel(self, run_id: str) -> Literal["dequeued", "canceled"] | None:
        """Drop a queued run at once, or cancel a running one's scope."""
        for queue in self._queues.values():
            for ticket in queue:
                if ticket.run_id == run_id:
                    queue.remove(ticket)
                    return "dequeued"
        scope = self._scopes.get(run_id)
        if scope is None:
            return None
        scope.cancel()
        return "canceled"

    def running(self) -> frozenset[str]:
        """Ids of runs executing in this process."""
        return frozenset(self._scopes)

    def queued(self) -> frozenset[str]:
        """Ids of runs waiting in this process."""
        return frozenset(t.run_id for q in self._queues.values() for t in q)

    def snapshot(self) -> dict[str, Any]:
        """Depth and oldest wait per class, running count, throughput and recent waits."""
        now = anyio.current_time()
        wall = time.monotonic()
        depth = {c: len(q) for c, q in self._queues.items()}
        oldest = {c: round((now - q[0].enqueued) * 1000) if q else 0 for c, q in self._queues.items()}
        recent = [t for t in self._finished if wall - t <= 60]
        waits = sorted(self._waits)
        return {
            "depth": depth,
            "queueLimits": dict(self.limits.queue_limits),
            "oldestWaitMs": oldest,
            "running": len(self._scopes),
            "maxRunning": self.limits.max_running,
            "throughputPerMinute": len(recent),
            "queueWaitP95Ms": round(waits[int(len(waits) * 0.95)] * 1000) if waits else 0,
        }

    # ---- dispatching -------------------------------------------------------------------------

    def _pick(self) -> Ticket | None:
        inter, batch = self._queues["interactive"], self._queues["batch"]
        if inter and batch:
            aged = anyio.current_time() - batch[0].enqueued >= self.limits.aging_seconds
            # An aged batch run goes next, but only after an interactive start: a backlog of aged batch
            # runs alternates with interactive work instead of starving it until the backlog drains.
            if self._streak >= self.limits.batch_every or (aged and self._streak >= 1):
                self._streak = 0
                return batch.popleft()
            self._streak += 1
            return inter.popleft()
        self._streak = 0
        if inter:
            return inter.popleft()
        return batch.popleft() if batch else None

    async def _expire(self) -> float | None:
        """Hand expired queued runs to their callbacks; return the next deadline, if any."""
        now = anyio.current_time()
        upcoming: float | None = None
        for queue in self._queues.values():
            for ticket in [t for t in queue if t.deadline is not None and t.deadline <= now]:
                queue.remove(ticket)
                if self._on_expired is not None:
                    assert self._tg is not None
                    self._tg.start_soon(self._on_expired, ticket.run_id)
            for ticket in queue:
                if ticket.deadline is not None and (upcoming is None or ticket.deadline < upcoming):
                    upcoming = ticket.deadline
        return upcoming

    async def _dispatch_loop(self) -> None:
        while True:
            upcoming = await self._expire()
            while len(self._scopes) < self.limits.max_running:
                ticket = self._pick()
                if ticket is None:
                    break
                self._start(ticket)
            self._wake = anyio.Event()
            timeout = math.inf if upcoming is None else max(upcoming - anyio.current_time(), 0.0)
            with anyio.move_on_after(timeout):
                await self._wake.wait()

    def _start(self, ticket: Ticket) -> None:
        assert self._tg is not None
        scope = anyio.CancelScope()
        self._scopes[ticket.run_id] = scope
        self._waits.append(anyio.current_time() - ticket.enqueued)
        self._started.append(time.monotonic())

        async def runner() -> None:
            try:
                with scope:
                    await self._runner(ticket.spec)
            except Exception:  # the job's own boundary records failures; this is the last net
                log.exception("run %s: job crashed", ticket.run_id)
            finally:
                self._scopes.pop(ticket.run_id, None)
                self._finished.append(time.monotonic())
                self._wake.set()

        self._tg.start_soon(runner, name=f"run:{ticket.run_id}")
