"""A run's step records: the state one run's execution keeps, and how each step is stored as it changes.

``StepRecorder`` holds the run's limits (timeout, deadline, budget), persists a step (redacted; fenced once
the run is terminal), publishes progress, opens a step's output sink and records how a step ended (its
excerpt, telemetry and event). ``service.attempts`` builds the attempt loop on it; ``service.execution``
the strategy's view of a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from mcp_orchestrator.contracts import (
    FailureClass,
    RunRecord,
    RuntimeMode,
    Step,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.errors import OrchestratorError
from mcp_orchestrator.runtimes import OutputSink, StepOutcome
from mcp_orchestrator.runtimes.base import bound_text
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.service.host import RunHost
from mcp_orchestrator.service.marks import BUSY_AFTER, Mark
from mcp_orchestrator.strategies import StrategyOptions

__all__ = ["FLUSH_AFTER", "NotStarted", "StepRecorder", "WorkerMark", "ended_step", "restart_sink", "with_steps"]

WorkerMark = tuple[str, str, str | None]  # a worker to mark with a step's write: name, "busy" or "idle", session

log = logging.getLogger(__name__)

FLUSH_AFTER = 0.2  # seconds a step's end may wait for the run's next write before it is stored on its own


def with_steps(run: RunRecord, steps: list[Step]) -> RunRecord:
    """``run`` with ``steps`` stored in it (each replacing the step of its index; later ones win)."""
    if not steps:
        return run
    by_index = {s.index: s for s in run.steps}
    for step in steps:
        by_index[step.index] = step
    return run.model_copy(update={"steps": [by_index[i] for i in sorted(by_index)]})


class NotStarted(OrchestratorError):
    """The run was no longer queued for this instance when its first step was to be stored: nothing ran."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is no longer queued for this instance")


class StepRecorder:
    """One run's execution state and its step records."""

    def __init__(
        self, orch: RunHost, run: RunRecord, *, continue_session: bool = False, task: str | None = None
    ) -> None:
        self.orch = orch
        self.run_id = run.run_id
        self._task = run.task if task is None else task  # the store keeps it redacted; a fresh dispatch has it all
        self._continue_session = continue_session
        self._next_index = len(run.steps)
        self._deadline = time.monotonic() + run.timeout_seconds if run.timeout_seconds else None
        self._deadline_class: FailureClass = "timeout"
        if run.deadline_at is not None:
            left = (run.deadline_at - utcnow()).total_seconds()
            if self._deadline is None or time.monotonic() + left < self._deadline:
                self._deadline, self._deadline_class = time.monotonic() + left, "deadline_exceeded"
        self.step_scopes: dict[str, anyio.CancelScope] = {}
        self.runtime_override: RuntimeMode | None = run.runtime_mode
        self.cancel_reason: str | None = None
        self.options = StrategyOptions(apply_result=run.apply_result, keep_worktrees=run.keep_worktrees)
        self.priority: str = run.priority
        limits = run.budget
        self.budget = orch.gateway.budget(limits.max_tokens, limits.max_cost_usd) if limits is not None else None
        # The run's start (queued -> running, judged under its lock), made in the same write as its first step:
        # one document write fewer per run. ``execute_run`` sets it; the first stored step applies it.
        self.pending_start: Callable[[RunRecord], RunRecord | None] | None = None
        self._announce_start = False
        # Steps that ended but are not stored yet (redacted): the run's next write stores them, its end above all
        # (one document write fewer per run), or, while other steps of the run go on, a flush FLUSH_AFTER later.
        self._unsaved: dict[int, Step] = {}
        self._flushing = False
        self._writes = anyio.Lock()  # a flush in flight and the run's end never race
        self.steps_in_flight = 0  # the run's steps between their start and their end (``RunExecution.run_step``)
        self._marks: list[Mark] = []  # its steps' worker marks in flight (``_keep``)
        # worker -> its busy mark, whether it was idle before, its session before, the step's start announcement
        self._busy: dict[str, tuple[Mark, bool, str | None, Callable[[], None]]] = {}

    @property
    def task(self) -> str:
        """The task as dispatched."""
        return self._task

    def _publish(self, kind: str, message: str) -> None:
        self.orch.events.publish(RunEvent(self.run_id, kind, self.orch.redactor.text(message)))  # type: ignore[arg-type]

    async def _save_step(self, step: Step | None) -> None:
        """Store ``step`` (and the steps that ended unstored)."""
        async with self._writes:
            unsaved = self._take_unsaved()
            try:
                await self.orch.io(self._store_step, step, unsaved)
            except BaseException:
                for ended in unsaved:  # not stored: the next write (or the run's end) stores them
                    self._unsaved.setdefault(ended.index, ended)
                raise
        self.announce_start()

    @asynccontextmanager
    async def last_write(self) -> AsyncIterator[list[Step]]:
        """For the write that ends the run: once no step write is in flight, the steps not stored yet."""
        async with self._writes:
            yield self._take_unsaved()

    def _take_unsaved(self) -> list[Step]:
        """The steps that ended but are not stored yet (redacted), for a write that stores them now."""
        unsaved = list(self._unsaved.values())
        self._unsaved.clear()
        return unsaved

    async def _flush_soon(self) -> None:
        try:
            await anyio.sleep(FLUSH_AFTER)
        finally:
            self._flushing = False
        if self._unsaved:
            with anyio.CancelScope(shield=True):
                await self._save_step(None)

    async def start_alone(self, start: Callable[[RunRecord], RunRecord | None]) -> None:
        """A run whose plan stored no step: start it now (one write), if ``start`` finds it still ours."""
        self.pending_start = None
        began = False

        def change(run: RunRecord) -> RunRecord:
            nonlocal began
            started = start(run)
            began = started is not None
            return started or run

        await self.orch.io(self.orch.store.update_run, self.run_id, change)
        self._announce_start = began
        self.announce_start()

    def announce_start(self) -> None:
        """Publish and log the run's start once the write that made it is done."""
        if self._announce_start:
            self._announce_start = False
            self._publish("run_started", "run started")
            self.orch.emit("run_started", self.run_id)

    def _redacted(self, step: Step) -> Step:
        return Step.model_validate(self.orch.redactor.data(step.model_dump()))  # what is stored is redacted

    def _store_step(self, step: Step | None, unsaved: list[Step] | None = None) -> None:
        stored = [*(unsaved or ()), *([self._redacted(step)] if step is not None else [])]
        applied = False

        def change(run: RunRecord) -> RunRecord:
            nonlocal applied
            start = self.pending_start
            if start is not None:  # the plan's first stored step also starts the run, or nothing runs
                started = None if run.terminal else start(run)
                if started is None:
                    raise NotStarted(self.run_id)
                run, applied = started, True
            if run.terminal:  # fenced: an heir already ended it (this instance lost its lease); never flip it
                return run
            return with_steps(run, stored)

        self.orch.store.update_run(self.run_id, change)
        if applied and self.pending_start is not None:
            self.pending_start = None
            self._announce_start = True

    async def _mark_busy(self, worker: WorkerRecord, announce: Callable[[], None]) -> None:
        """Mark the step's worker busy once the step has run ``BUSY_AFTER`` (``service.marks``), then ``announce``
        its start; a stop that came first cancels the step when the mark finds the worker stopped."""
        name = worker.name

        def stopped() -> None:
            scope = self.step_scopes.get(name)
            if scope is not None:
                self.cancel_reason = self.cancel_reason or f"worker {name} was stopped"
                scope.cancel()

        marks = self.orch.marks
        mark = await marks.behind(name, "busy", self.run_id, delay=BUSY_AFTER, then=announce, stopped=stopped)
        clean = worker.status == "idle" and worker.current_run_id is None
        self._busy[name] = (mark, clean, worker.session_id, announce)
        self._keep(mark)

    async def _mark_idle(self, worker: WorkerMark) -> None:
        """Mark the step's worker idle in the background, unless its busy mark was never written and its record
        would not change (the same session, idle before): a short step then writes no worker document."""
        name, status, session = worker
        busy = self._busy.pop(name, None)
        if busy is not None:
            mark, clean, before, announce = busy
            if mark.call_off():
                announce()  # its start is told with its end: the worker was never marked busy
                if clean and session in (None, before):
                    return
            else:
                await mark.done.wait()  # its start was told (or is about to be) before its end
        self._keep(await self.orch.marks.behind(name, status, None, session))

    def _keep(self, mark: Mark) -> None:
        self._marks = [m for m in self._marks if not m.done.is_set()]
        self._marks.append(mark)

    async def marks_settled(self) -> None:
        """Wait until the worker marks of this run's steps are stored (before its end is announced)."""
        for mark in self._marks:
            await mark.done.wait()
        self._marks.clear()

    async def save_step(self, step: Step) -> None:
        """Store a step again with more facts (verdict, workspace)."""
        await self._save_step(step)

    def _sink(self, index: int) -> OutputSink:
        return OutputSink(
            self.orch.store.step_output_path(self.run_id, index),
            excerpt_bytes=self.orch.settings.output_excerpt_bytes,
            spool_cap=self.orch.settings.output_spool_bytes,
        )

    async def _end(
        self,
        step: Step,
        status: str,
        *,
        sink: OutputSink | None = None,
        started: float | None = None,
        outcome: StepOutcome | None = None,
        failure: tuple[FailureClass, str] | None = None,
        exit_code: int | None = None,
        worker: WorkerMark | None = None,
    ) -> Step:
        """Record how ``step`` ended (its files redacted and the step stored: one thread hop; then ``worker``
        marked in the background, whether or not the step could be stored), publish and log it."""

        # Once the run has started, the end is stored by the run's next write (its end, or its next step's
        # start) or by a flush soon after; a kill before then finds the step running and fails it as interrupted,
        # as a kill a moment earlier would have.
        later = self.pending_start is None

        def write() -> tuple[Step, Step]:
            # The step's files (full output, earlier attempts, quarantined raw bytes) are redacted once it ends.
            self.orch.redactor.tree(self.orch.store.step_output_path(self.run_id, step.index).parent)
            cap = self.orch.settings.output_excerpt_bytes
            ended = ended_step(step, status, cap, sink=sink, outcome=outcome, failure=failure, exit_code=exit_code)
            if started is not None:
                ended.duration_ms = int((time.monotonic() - started) * 1000)
            redacted = self._redacted(ended)
            if not later:
                self._store_step(None, [redacted])
            return ended, redacted

        try:
            step, redacted = await self.orch.io(write)
        finally:
            if worker is not None:
                await self._mark_idle(worker)
        if later:
            self._unsaved[step.index] = redacted
            # While other steps of the run go on, a flush stores the end soon; otherwise the plan's next move (a
            # step, a verdict, its end) follows at once and stores it.
            if self.steps_in_flight > 1 and not self._flushing:
                try:
                    self.orch.start_soon(self._flush_soon, name=f"flush:{self.run_id}")
                    self._flushing = True
                except RuntimeError:  # the host is shutting down: no flush can be left behind, so store it now
                    await self._save_step(None)
        self.announce_start()  # a step that ended before it ran (its worker stopped) may have started the run
        self._publish("step_ended", f"step {step.index}: {step.worker_name} {status}")
        self.orch.emit(
            "step_ended",
            self.run_id,
            step_index=step.index,
            worker_name=step.worker_name,
            role=step.role,
            runtime_mode=step.runtime_mode,
            status=status,
            failure_class=step.failure_class,
            duration_ms=step.duration_ms,
            output_bytes=step.output_bytes,
            usage=step.usage,
            attempt=step.attempt,
        )
        return step


def ended_step(
    step: Step,
    status: str,
    cap: int,
    *,
    sink: OutputSink | None,
    outcome: StepOutcome | None,
    failure: tuple[FailureClass, str] | None,
    exit_code: int | None,
) -> Step:
    """``step`` as it ended: its excerpt (``cap`` bytes), output size, failure and what the outcome reports."""
    if outcome is not None:
        # The excerpt is the answer, truncated only when the answer itself was cut; the resource holds
        # everything the worker printed (its JSONL is always longer than the answer: that is no truncation).
        text, truncated = bound_text(outcome.text, cap)
    elif sink is not None and sink.total_bytes:
        text, truncated = sink.excerpt()
    else:
        text, truncated = "", False
    if failure is not None:
        text = f"{failure[0]}: {failure[1]}" + (f"\n{text}" if text else "")
    update: dict[str, Any] = {
        "status": status,
        "ended_at": utcnow(),
        "duration_ms": 0,
        "output": text,
        "output_truncated": truncated,
        "output_bytes": sink.total_bytes if sink is not None else 0,
        "failure_class": failure[0] if failure else None,
        "exit_code": outcome.exit_code if outcome is not None else exit_code,
        "usage": outcome.usage if outcome is not None else None,
    }
    if outcome is not None:
        details = outcome.details
        update["session_id"] = outcome.session_id
        update["flags"] = [str(f) for f in details.get("flags", [])][:50]
        if details.get("home"):
            update["home"] = str(details["home"])
        update["commands"] = [str(c)[:500] for c in details.get("commands", [])][:100]
        update["files_changed"] = [str(f)[:500] for f in details.get("files_changed", [])][:200]
    return step.model_copy(update=update)


def restart_sink(old: OutputSink, mode: str, new: OutputSink) -> OutputSink:
    """Keep a failed attempt's output beside the step's as ``output.<mode>.log``; start a fresh one."""
    old.close()
    spool = old.spool_path
    if spool is not None:
        # The spool and anything kept beside it (quarantined raw output) move aside together.
        for path in spool.parent.glob(spool.name + "*"):
            path.replace(path.with_name(path.name.replace(spool.name, f"output.{mode}.log", 1)))
    return new
