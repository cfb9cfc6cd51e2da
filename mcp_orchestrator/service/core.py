"""The orchestrator's core: what every part of the service and a run's execution use (``host.RunHost``).

The settings, the store, the event bus, the step caps, the redactor, the run log and the gateway of one
process; blocking store work off the event loop (``io``), runtimes loaded once, a worker marked busy or
idle, the end of a run recorded with its telemetry, and run events logged."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
from anyio.abc import TaskGroup

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import (
    Run,
    RunError,
    RunRecord,
    RuntimeMode,
    Step,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.engine import ExecutionEngine, StepCaps
from mcp_orchestrator.errors import NotFound, RunFailure
from mcp_orchestrator.gateway import Gateway
from mcp_orchestrator.guards import check_run_id
from mcp_orchestrator.observability import Redactor, RunLog
from mcp_orchestrator.observability.otel import RunTracing
from mcp_orchestrator.observability.replay import record_outcome
from mcp_orchestrator.runtimes import WorkerRuntime, load_runtime
from mcp_orchestrator.service.events import EventBus, RunEvent
from mcp_orchestrator.service.execution import RunExecution
from mcp_orchestrator.service.host import Outcome
from mcp_orchestrator.service.marks import WorkerMarks
from mcp_orchestrator.service.steps import with_steps
from mcp_orchestrator.store import JsonRunStore
from mcp_orchestrator.store._files import is_alive, this_process

if TYPE_CHECKING:
    from mcp_orchestrator.service.executor import ExecutorLink

__all__ = ["OrchestratorCore"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class OrchestratorCore:
    """The parts of the orchestrator everything else builds on."""

    def __init__(self, settings: Settings, executor: ExecutorLink | None = None) -> None:
        self.settings = settings
        self.executor = executor
        self.shutdown_reason = "the server process shut down"
        self._claiming: set[str] = set()
        self._followed: set[str] = set()  # front end: runs whose events come over their claim connection
        self.store = JsonRunStore(settings.home, fsync=settings.fsync)
        self.events = EventBus()
        self.process = this_process()
        self.caps = StepCaps(settings.backend_caps)
        self.redactor = Redactor()
        self.runlog = RunLog(settings.home, self.redactor)
        self.tracing = RunTracing()
        self._engine: ExecutionEngine | None = None
        self._tg: TaskGroup | None = None  # this instance's background tasks (inside ``running()``)
        self._runtimes: dict[str, WorkerRuntime] = {}
        self.marks = WorkerMarks(self.mark_worker, self.start_soon)
        self._executions: dict[str, RunExecution] = {}
        self._limiter = anyio.CapacityLimiter(8)
        self.gateway = Gateway(settings.gateway)  # endpoint health, breakers and strategies of this process

    @property
    def engine(self) -> ExecutionEngine:
        """The engine (available inside ``running()``)."""
        if self._engine is None:
            raise RuntimeError("the orchestrator is not running")
        return self._engine

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None) -> None:
        """Start a background task in this instance's task group (inside ``running()``)."""
        if self._tg is None:
            raise RuntimeError("the orchestrator is not running")
        self._tg.start_soon(fn, *args, name=name)

    async def io(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking store work off the event loop."""
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._limiter)

    def read_now(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Read one small document on the event loop: a read from the page cache costs microseconds, where a
        thread hop cost ~0.1 ms and GIL hand-offs with the store's threads (bench/scheduler.py ``costs``). Only
        for reads that write nothing on their usual path (a corrupt document is still quarantined)."""
        return fn(*args, **kwargs)

    async def runtime(self, mode: RuntimeMode) -> WorkerRuntime:
        """The runtime for ``mode``, created on first use (its imports run off the event loop)."""
        rt = self._runtimes.get(mode)
        if rt is None:
            try:
                rt = await anyio.to_thread.run_sync(load_runtime, mode)
            except (LookupError, ImportError) as e:
                raise RunFailure("unavailable", f"runtime {mode!r} cannot be loaded: {e}") from e
            self._runtimes[mode] = rt
        return rt

    async def mark_worker(
        self, name: str, status: str, run_id: str | None, session_id: str | None = None
    ) -> WorkerRecord | None:
        """Set a worker busy or idle (a stopped worker stays stopped); the worker as stored, None when gone."""
        return await self.io(self.mark_worker_now, name, status, run_id, session_id)

    def mark_worker_now(
        self, name: str, status: str, run_id: str | None, session_id: str | None = None
    ) -> WorkerRecord | None:
        """``mark_worker``, blocking (in a thread hop); the worker as stored, None when it is gone."""

        def change(w: WorkerRecord) -> WorkerRecord:
            update: dict[str, Any] = {"current_run_id": run_id}
            if w.status != "stopped":
                update["status"] = status
            if session_id:
                update["session_id"] = session_id
            return w.model_copy(update=update)

        try:
            return self.store.update_worker(name, change)
        except NotFound:
            log.warning("worker %s vanished while running", name)
            return None

    async def finish_run(
        self, run_id: str, status: str, summary: str, error: RunError | None, *, steps: Sequence[Step] = ()
    ) -> RunRecord:
        """Record the end of a run, with its telemetry (and ``steps``, ended but not stored yet)."""
        return await self.conclude_run(run_id, lambda _run: (status, summary, error), steps=steps)

    async def conclude_run(
        self, run_id: str, decide: Callable[[RunRecord], Outcome], *, steps: Sequence[Step] = ()
    ) -> RunRecord:
        """Record the end of a run as ``decide`` judges it (status, summary, error) from the run as stored
        with ``steps`` (redacted steps that ended but are not stored yet), under the run's lock; the terminal
        document and its replay outcome are written in one thread hop."""
        redact = self.redactor.text
        decided: list[RunError | None] = [None]

        def change(run: RunRecord) -> RunRecord:
            if not run.terminal:
                run = with_steps(run, list(steps))
            status, summary, error = decide(run)
            if error is not None:
                error = error.model_copy(update={"message": redact(error.message)})
            decided[0] = error
            if run.terminal:  # fenced: a terminal status is final, whoever tries to write after it
                return run
            now = utcnow()
            update: dict[str, Any] = {
                "status": status,
                "ended_at": now,
                "summary": redact(summary),
                "error": error,
                "owner": None,
            }
            if run.started_at is not None:
                update["run_ms"] = int((now - run.started_at).total_seconds() * 1000)
            else:  # never started: all of its life was queue wait
                update["queue_wait_ms"] = int((now - run.created_at).total_seconds() * 1000)
            return run.model_copy(update=update)

        def write() -> RunRecord:
            ended = self.store.update_run(run_id, change)
            record_outcome(self.settings.home, ended, self.redactor)
            return ended

        run = await self.io(write)
        error = decided[0]
        self.emit(
            "run_ended",
            run_id,
            status=run.status,
            failure_class=error.failure_class if error else None,
            message=error.message if error else None,
            run_ms=run.run_ms,
            queue_wait_ms=run.queue_wait_ms,
        )
        return run

    def emit(self, event: str, run_id: str, **fields: Any) -> None:
        """Append one event to the run log (with this instance as its process)."""
        self.runlog.emit(event, run_id, process=self.process.label, **fields)
        self.tracing.on_event(event, run_id, fields)

    def step_output_path(self, run_id: str, index: int) -> Path:
        """Where a step's full output is spooled."""
        return self.store.step_output_path(check_run_id(run_id), index)

    def to_wire(self, run: RunRecord) -> Run:
        """The caller's view of a run."""
        return run.to_wire()

    async def _cancel_here(self, run_id: str, reason: str) -> bool:
        """Cancel a run this instance holds: a queued one ends at once, a running one is stopped."""
        execution = self._executions.get(run_id)
        if execution is not None and execution.cancel_reason is None:
            execution.cancel_reason = reason
        outcome = self.engine.cancel(run_id)
        if outcome == "dequeued":
            self._executions.pop(run_id, None)
            error = RunError(failure_class="canceled", message=reason)
            await self.finish_run(run_id, "canceled", "canceled while queued", error)
            self.events.publish(RunEvent(run_id, "run_ended", "run canceled"))
        return outcome is not None

    async def _request_cancel(self, run_id: str, reason: str = "canceled on request") -> None:
        """Ask the owning process to cancel; a run nobody owns any more is ended here."""

        def change(run: RunRecord) -> RunRecord:
            if run.terminal:
                return run
            if run.owner is None or not is_alive(run.owner):
                error = RunError(failure_class="canceled", message=reason)
                return run.model_copy(update={"status": "canceled", "ended_at": utcnow(), "error": error})
            return run.model_copy(update={"cancel_requested": True})

        def write() -> None:
            if not self.store.update_run(run_id, change).terminal:
                self.store.request_cancel(run_id, reason)

        await self.io(write)  # one thread hop: the flag on the run, then the request its owner polls
