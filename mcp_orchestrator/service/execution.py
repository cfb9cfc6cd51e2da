"""One run's execution: the ``StrategyContext`` a strategy drives (``RunExecution``), and the job around it
(``execute_run``: start the run once, drive its plan, record how it ended; ``run_outcome``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio

from mcp_orchestrator.contracts import (
    RunError,
    RunRecord,
    Step,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.service.attempts import StepAttempts
from mcp_orchestrator.service.host import Outcome, RunHost
from mcp_orchestrator.service.steps import NotStarted
from mcp_orchestrator.strategies import Strategy, StrategyResult

__all__ = ["RunExecution", "execute_run", "run_outcome"]

log = logging.getLogger(__name__)


class RunExecution(StepAttempts):
    """Executes one run: persists every step transition and publishes events."""

    async def run_step(self, worker: WorkerRecord, *, role: str, prompt: str, workdir: Path | None = None) -> Step:
        """Run one step of ``worker``; the returned step is completed, failed or canceled."""
        index = self._next_index
        self._next_index += 1
        step = Step(index=index, worker_name=worker.name, role=role, runtime_mode=worker.runtime_mode)
        handed_over = False  # from then on _run records a cancellation itself
        self.steps_in_flight += 1
        try:
            if self.orch.caps.worker_busy(worker.name):
                await self._save_step(step)  # visible as pending while it waits for its worker
            async with self.orch.caps.worker_slot(worker.name):
                scope = anyio.CancelScope()
                self.step_scopes[worker.name] = scope
                try:
                    await self.orch.marks.settled(worker.name)  # its last step's session and status are stored
                    current = self.orch.read_now(self.orch.store.get_worker, worker.name)
                    if current.status == "stopped":
                        return await self._end(step, "canceled", failure=("canceled", "the worker was stopped"))
                    handed_over = True
                    # The step's role sets its permissions; its workdir may be an isolated worktree.
                    update: dict[str, Any] = {"role": role}
                    if workdir is not None:
                        update["workdir"] = str(workdir)
                    return await self._run(step, current.model_copy(update=update), prompt, scope)
                finally:
                    self.step_scopes.pop(worker.name, None)
        except anyio.get_cancelled_exc_class():
            if not handed_over:  # canceled while pending: never leave a pending step in an ended run
                reason = self.cancel_reason or "the run was canceled"
                with anyio.CancelScope(shield=True):
                    await self._end(step, "canceled", failure=("canceled", reason))
            raise
        finally:
            self.steps_in_flight -= 1


def not_ours(run_id: str) -> None:
    """Log a run that this instance does not start: it was no longer queued for it."""
    log.warning("run %s: not started here (no longer queued for this instance)", run_id)


def run_outcome(steps: list[Step], result: StrategyResult, error: RunError | None) -> tuple[str, RunError | None]:
    """How a run ended, from its steps and its plan's result (``error``: the plan itself crashed).

    A failed step the plan recovered from (a parallel sibling survived, another model took over) does not
    fail the run; the plan's summary names it.
    """
    failed = [s for s in steps if s.status in ("failed", "canceled") and s.index not in result.recovered]
    if error is not None:
        return "failed", error
    canceled = [s for s in failed if s.status == "canceled"]
    if canceled:
        return "canceled", RunError(failure_class="canceled", message=canceled[0].output.split("\n", 1)[0])
    if failed:
        first = failed[0]
        return "failed", RunError(
            failure_class=first.failure_class or "internal", message=first.output.split("\n", 1)[0]
        )
    if result.failure is not None:
        return "failed", RunError(failure_class=result.failure[0], message=result.failure[1])
    return "completed", None


async def execute_run(orch: RunHost, execution: RunExecution, strategy: Strategy, workers: list[WorkerRecord]) -> None:
    """The job of one run: mark it running, drive the strategy, record how it ended."""
    run_id = execution.run_id
    owner = orch.process

    started = False

    def ours(run: RunRecord) -> bool:
        # Only a queued run still held by this instance starts (an heir may have taken its lease marker or
        # adopted it, or it already ended).
        if run.status != "accepted" or (run.owner is not None and run.owner.instance != owner.instance):
            return False
        return orch.store.owns(run_id, owner.instance)

    def start(run: RunRecord) -> RunRecord | None:
        nonlocal started
        if started:  # another step of the plan stored first and started it
            return run
        if not ours(run):  # at most once, decided under the run's lock
            return None
        started = True
        now = utcnow()
        wait_ms = int((now - run.created_at).total_seconds() * 1000)
        return run.model_copy(
            update={
                "status": "running",
                "started_at": now,
                "owner": owner,
                "queue_wait_ms": wait_ms,
                "executed_by": owner.label,
            }
        )

    # The start is written with the plan's first step (one write fewer per run): read first, so a run that is
    # not ours (canceled while queued, taken over) never begins its plan; the write decides under the lock. A
    # plan that stores no step starts the run on its own below, before its end is recorded.
    if not orch.read_now(lambda: ours(orch.store.get_run(run_id))):
        not_ours(run_id)
        return
    execution.pending_start = start
    result = StrategyResult("")
    error: RunError | None = None
    try:
        result = await strategy.run_plan(execution, workers)
    except NotStarted:
        pass
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            reason = execution.cancel_reason or "the run was canceled"
            error = RunError(failure_class="canceled", message=reason)
            async with execution.last_write() as steps:
                await orch.finish_run(run_id, "canceled", reason, error, steps=steps)
            await execution.marks_settled()
            execution._publish("run_ended", "run canceled")
        raise
    except Exception as e:
        log.exception("run %s: strategy crashed", run_id)
        error = RunError(failure_class="internal", message=f"{type(e).__name__}: {e}")
    if execution.pending_start is not None:  # no step was stored: start it now, if it is still ours
        await execution.start_alone(start)
    if not started:
        not_ours(run_id)
        return
    crashed = error
    status = "failed"

    def decide(run: RunRecord) -> Outcome:  # judged from the steps as stored, in the hop that ends the run
        nonlocal status
        status, judged = run_outcome(run.steps, result, crashed)
        return status, result.summary or (judged.message if judged else ""), judged

    with anyio.CancelScope(shield=True):
        async with execution.last_write() as steps:  # the last step's end is stored with the run's
            await orch.conclude_run(run_id, decide, steps=steps)
        await execution.marks_settled()  # the workers' idle marks went beside the run's end: stored before it is told
        execution._publish("run_ended", f"run {status}")
