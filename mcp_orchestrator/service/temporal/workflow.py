"""A run as a Temporal workflow: the same strategy code, with each step attempt an activity.

The workflow holds the run's record (queried by the servers that follow it, returned when it ends) and
drives the run's strategy through a ``StrategyContext`` whose ``run_step`` executes the step on the task
queue of its backend (``<prefix>.<model>.<runtime>``, ``...@<machine>`` for a pinned worker) and whose
workspace operations execute on the workspace queue (the machine's, when the plan's workers are pinned).
Everything the plan decides is replayed from the workflow's history; the plan code
itself does no I/O here. Step retries follow the orchestrator's policy (transient classes, attempts,
jittered back-off from the workflow's deterministic random), not Temporal's: a step whose worker died
(its heartbeat timed out) is ``interrupted`` and never run again, since a coding agent may have
half-changed its files.

A worker stopped while the run uses it (``STOP_SIGNAL``, from any server of the cluster) gets no further
step of the run, and its running step is canceled: the workflow cancels the step's activity, whose heartbeat
learns of it and kills the step's process tree; the step ends ``canceled``, and the run ends as a local one
does (``run_outcome``). While a step runs on a worker, the run's ``OrchBusy`` search attribute names it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetry

from mcp_orchestrator.contracts import RunRecord, Step, WorkerRecord
from mcp_orchestrator.engine.spec import RunSpec
from mcp_orchestrator.engine.temporal.client import RUN_QUERY, RUN_WORKFLOW, STOP_SIGNAL, workspace_queue
from mcp_orchestrator.engine.temporal.steps import OUTPUT_SIGNAL, StepResult
from mcp_orchestrator.engine.temporal.visibility import BUSY, STATUS
from mcp_orchestrator.service.execution import run_outcome
from mcp_orchestrator.service.placement import plan_machine
from mcp_orchestrator.service.temporal.attempts import WorkflowAttempts
from mcp_orchestrator.service.temporal.workspace import WORKSPACE_ACTIVITY, WorkspaceCall, raise_from
from mcp_orchestrator.strategies import StrategyOptions, StrategyResult, get_strategy
from mcp_orchestrator.strategies.remote import decode, delegate, encode

__all__ = ["RunWorkflow"]

_ONCE = TemporalRetry(maximum_attempts=1)


class _Context(WorkflowAttempts):
    """The ``StrategyContext`` of a run executing as a workflow."""

    def __init__(self, flow: RunWorkflow, spec: RunSpec, prefix: str) -> None:
        super().__init__(flow, spec, prefix)
        self.options = StrategyOptions(apply_result=spec.apply_result, keep_worktrees=spec.keep_worktrees)
        self._next = 0
        self._busy: dict[str, asyncio.Lock] = {}

    @property
    def task(self) -> str:
        """The task as dispatched."""
        return self.spec.task

    async def save_step(self, step: Step) -> None:
        """Keep a step with more facts (verdict, workspace) in the run's record."""
        self.flow.put_step(step)

    async def workspace(self, name: str, args: list[Any]) -> Any:
        """Run a git workspace operation on the workspace queue (the plan's machine's, when its workers are
        pinned); its errors come back by type."""
        answer = await workflow.execute_activity(
            WORKSPACE_ACTIVITY,
            WorkspaceCall(name=name, args=encode(args)),
            task_queue=workspace_queue(self.prefix, plan_machine(list(self.spec.workers))),
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_start_timeout=timedelta(seconds=self.spec.policy.queue_seconds),
            retry_policy=_ONCE,
            priority=self.priority,
            result_type=dict,
        )
        raise_from(answer)
        return decode(answer.get("ok"))

    async def run_step(self, worker: WorkerRecord, *, role: str, prompt: str, workdir: Path | None = None) -> Step:
        """Run one step to its end on a worker process; one step per worker at a time."""
        index = self._next
        self._next += 1
        mode = self.spec.runtime_mode or worker.runtime_mode
        step = Step(index=index, worker_name=worker.name, role=role, runtime_mode=mode)
        lock = self._busy.setdefault(worker.name, asyncio.Lock())
        if lock.locked():
            self.flow.put_step(step)
        async with lock:
            if worker.name in self.flow.stopped:  # as a local run: checked when the worker's turn comes
                ended = self._end(step, [], workflow.time(), None, ("canceled", "the worker was stopped"))
                self.flow.put_step(ended)
                return ended
            update: dict[str, Any] = {"role": role}
            if workdir is not None:
                update["workdir"] = str(workdir)
            return await self._run(step, worker.model_copy(update=update), prompt, mode)


def _upsert_status(status: str) -> None:
    """Listings see the run's status (when it started with the search attributes: a cluster has them)."""
    if workflow.info().typed_search_attributes.get(STATUS) is not None:
        workflow.upsert_search_attributes([STATUS.value_set(status)])


@workflow.defn(name=RUN_WORKFLOW, sandboxed=False)
class RunWorkflow:
    """One run, from start to its terminal status."""

    def __init__(self) -> None:
        self.record: RunRecord | None = None
        self.stopped: dict[str, str] = {}  # worker -> why: stopped while the run uses it
        # worker (a hedged attempt: worker NUL runtime) -> its running attempt
        self.active: dict[str, workflow.ActivityHandle[StepResult]] = {}
        self.busy: Counter[str] = Counter()  # worker -> steps of this run running on it
        self.outputs: set[tuple[int, str]] = set()  # (step, runtime): hedged attempts that have output

    @workflow.signal(name=STOP_SIGNAL)
    def stop_worker(self, name: str, reason: str) -> None:
        """Worker ``name`` was stopped: cancel its running step (if any) and give it no further one."""
        self.stopped.setdefault(name, reason)
        for key, handle in list(self.active.items()):
            if key.split("\0", 1)[0] == name and not handle.done():
                handle.cancel()

    @workflow.signal(name=OUTPUT_SIGNAL)
    def step_output(self, index: int, runtime: str) -> None:
        """A hedged attempt of step ``index`` on ``runtime`` has output: no further hedge starts while it runs."""
        self.outputs.add((index, runtime))

    def mark(self, name: str, *, busy: bool) -> None:
        """A step of this run started (``busy``) or ended on worker ``name``: listings see which workers are busy
        (the search attribute rides on the workflow task's commands: no call, no wait)."""
        self.busy[name] += 1 if busy else -1
        names = sorted(n for n, count in self.busy.items() if count > 0)
        if not workflow.memo_value("busy", False):  # its namespace lacks OrchBusy (or all the attributes)
            return
        workflow.upsert_search_attributes([BUSY.value_set(names) if names else BUSY.value_unset()])

    @workflow.query(name=RUN_QUERY)
    def current(self) -> RunRecord | None:
        """The run's record as it stands."""
        return self.record

    def put_step(self, step: Step) -> None:
        """Record a step (new, or again with more facts)."""
        assert self.record is not None
        steps = [s for s in self.record.steps if s.index != step.index] + [step]
        self.record = self.record.model_copy(update={"steps": sorted(steps, key=lambda s: s.index)})

    @workflow.run
    async def run(self, spec: RunSpec) -> RunRecord:
        """Execute the run's strategy; return its final record."""
        info = workflow.info()
        prefix = info.task_queue.removesuffix(".runs")
        now = workflow.now()
        self.record = RunRecord(
            run_id=spec.run_id,
            status="running",
            strategy=spec.strategy,
            task=spec.task_record or spec.task,
            agent_id=spec.agent_id,
            created_at=info.start_time,
            started_at=now,
            workers=[w.name for w in spec.workers],
            priority=spec.priority,
            idempotency_key=spec.idempotency_key,
            executed_by=f"temporal {info.namespace}/{info.task_queue}",
        )
        _upsert_status("running")
        ctx = _Context(self, spec, prefix)
        token = delegate.set(ctx.workspace)
        result = StrategyResult("")
        error = None
        try:
            result = await get_strategy(spec.strategy).run_plan(ctx, list(spec.workers))
        except asyncio.CancelledError:
            return self._finish("canceled", "the run was canceled", ("canceled", "canceled on request"))
        except Exception as e:  # the plan's own crash: recorded, never lost
            from mcp_orchestrator.contracts import RunError

            error = RunError(failure_class="internal", message=f"{type(e).__name__}: {e}")
        finally:
            delegate.reset(token)
        status, error = run_outcome(self.record.steps, result, error)
        summary = result.summary or (error.message if error else "")
        failure = (error.failure_class, error.message) if error else None
        return self._finish(status, summary, failure)

    def _finish(self, status: str, summary: str, failure: tuple[str, str] | None) -> RunRecord:
        from mcp_orchestrator.contracts import RunError

        assert self.record is not None
        _upsert_status(status)
        error = RunError(failure_class=failure[0], message=failure[1]) if failure else None
        self.record = self.record.model_copy(
            update={"status": status, "summary": summary, "error": error, "ended_at": workflow.now()}
        )
        return self.record
