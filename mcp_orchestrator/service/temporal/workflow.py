"""A run as a Temporal workflow: the same strategy code, with each step attempt an activity.

The workflow holds the run's record (queried by the servers that follow it, returned when it ends) and
drives the run's strategy through a ``StrategyContext`` whose ``run_step`` executes the step on the task
queue of its backend (``<prefix>.<model>.<runtime>``) and whose workspace operations execute on the
workspace queue. Everything the plan decides is replayed from the workflow's history; the plan code
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
from typing import Any, get_args

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetry
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError, TimeoutType
from temporalio.workflow import ActivityCancellationType

from mcp_orchestrator.contracts import Attempt, FailureClass, RunRecord, Step, WorkerRecord
from mcp_orchestrator.engine.spec import RunPolicy, RunSpec
from mcp_orchestrator.engine.temporal.client import RUN_QUERY, RUN_WORKFLOW, STOP_SIGNAL, task_priority
from mcp_orchestrator.engine.temporal.steps import STEP_ACTIVITY, StepResult, StepSpec
from mcp_orchestrator.engine.temporal.visibility import BUSY, STATUS
from mcp_orchestrator.service.execution import run_outcome
from mcp_orchestrator.service.retry import RetryPolicy
from mcp_orchestrator.service.temporal.workspace import WORKSPACE_ACTIVITY, WorkspaceCall, raise_from
from mcp_orchestrator.strategies import StrategyOptions, StrategyResult, get_strategy
from mcp_orchestrator.strategies.remote import decode, delegate, encode

__all__ = ["RunWorkflow"]

_ONCE = TemporalRetry(maximum_attempts=1)
FAILURE_CLASSES = frozenset(get_args(FailureClass))


def _failure(error: ActivityError) -> tuple[FailureClass, str, int]:
    """The failure class, message and output size of an attempt that raised."""
    cause = error.cause
    if isinstance(cause, CancelledError):
        return "canceled", "the run was canceled", 0
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else {}
        size = int(details.get("outputBytes", 0)) if isinstance(details, dict) else 0
        if cause.type in FAILURE_CLASSES:
            return cause.type, cause.message, size  # type: ignore[return-value]
        return "internal", f"{cause.type}: {cause.message}", size  # the worker crashed, not the step
    if isinstance(cause, TimeoutError):
        if cause.type == TimeoutType.SCHEDULE_TO_START:
            return "unavailable", "no worker process serves this step's backend (nothing picked it up)", 0
        return (
            "interrupted",
            "the worker process running the step stopped heartbeating (killed or cut off); "
            "the step is not run again: it may have half-changed files",
            0,
        )
    return "internal", str(cause or error), 0


class _Context:
    """The ``StrategyContext`` of a run executing as a workflow."""

    def __init__(self, flow: RunWorkflow, spec: RunSpec, prefix: str) -> None:
        self.flow = flow
        self.spec = spec
        self.prefix = prefix
        self.options = StrategyOptions(apply_result=spec.apply_result, keep_worktrees=spec.keep_worktrees)
        self._next = 0
        self._busy: dict[str, asyncio.Lock] = {}
        policy = spec.policy
        self.retry = RetryPolicy(
            policy.retry_attempts, policy.retry_base_seconds, policy.retry_cap_seconds, policy.retry_total_seconds
        )
        self.priority = task_priority(spec.priority)
        self.deadline: float | None = None
        if spec.timeout_seconds:
            self.deadline = workflow.time() + spec.timeout_seconds

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.spec.run_id

    @property
    def task(self) -> str:
        """The task as dispatched."""
        return self.spec.task

    async def save_step(self, step: Step) -> None:
        """Keep a step with more facts (verdict, workspace) in the run's record."""
        self.flow.put_step(step)

    async def workspace(self, name: str, args: list[Any]) -> Any:
        """Run a git workspace operation on the workspace queue; its errors come back by type."""
        answer = await workflow.execute_activity(
            WORKSPACE_ACTIVITY,
            WorkspaceCall(name=name, args=encode(args)),
            task_queue=f"{self.prefix}.workspace",
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

    async def _run(self, step: Step, worker: WorkerRecord, prompt: str, mode: str) -> Step:
        policy: RunPolicy = self.spec.policy
        started = workflow.time()
        step = step.model_copy(update={"status": "running", "started_at": workflow.now()})
        self.flow.put_step(step)
        self.flow.mark(worker.name, busy=True)
        attempts: list[Attempt] = []
        result: StepResult | None = None
        failure: tuple[FailureClass, str] | None = None
        delay = 0.0
        try:
            while True:
                if worker.name in self.flow.stopped:  # stopped while the step waited for a retry
                    failure = ("canceled", self.flow.stopped[worker.name])
                    break
                record = Attempt(
                    attempt=len(attempts) + 1,
                    runtime_mode=mode,
                    delay_before_ms=int(delay * 1000),
                    started_at=workflow.now(),
                )
                timeout = worker.timeout_seconds or policy.step_timeout_seconds
                if self.deadline is not None:
                    timeout = max(min(timeout, self.deadline - workflow.time()), 0.0)
                spec = StepSpec(
                    run_id=self.run_id,
                    index=step.index,
                    worker=worker,
                    prompt=prompt,
                    runtime_mode=mode,
                    attempt=record.attempt,
                    continue_session=self.spec.continue_session,
                    timeout_seconds=timeout,
                    stall_seconds=worker.stall_seconds or policy.stall_seconds,
                )
                result, failure, size = await self._attempt(worker, mode, spec)
                update: dict[str, Any] = {"ended_at": workflow.now()}
                if failure is not None:
                    update.update(failure_class=failure[0], message=failure[1][:500])
                attempts.append(record.model_copy(update=update))
                if failure is None:
                    break
                delay = self.retry.delay(len(attempts), workflow.random())
                remaining = None if self.deadline is None else self.deadline - workflow.time()
                spent = workflow.time() - started
                if not (
                    self.retry.transient(failure[0], size) and self.retry.allows(len(attempts), spent, delay, remaining)
                ):
                    break
                step = step.model_copy(update={"attempt": len(attempts), "attempts": attempts})
                self.flow.put_step(step)
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            failure = ("canceled", "the run was canceled")
            self.flow.put_step(self._end(step, attempts, started, None, failure))  # no await: nothing to shield
            raise
        finally:
            self.flow.mark(worker.name, busy=False)
        ended = self._end(step, attempts, started, result, failure)
        self.flow.put_step(ended)
        return ended

    async def _attempt(
        self, worker: WorkerRecord, mode: str, spec: StepSpec
    ) -> tuple[StepResult | None, tuple[FailureClass, str] | None, int]:
        """One attempt as an activity: its result, or its failure and output size. A stop of the worker cancels
        the activity (``RunWorkflow.stop_worker``): the attempt then ends ``canceled`` with the stop's reason."""
        policy = self.spec.policy
        handle = workflow.start_activity(
            STEP_ACTIVITY,
            spec,
            task_queue=f"{self.prefix}.{worker.model}.{mode}",
            start_to_close_timeout=timedelta(seconds=spec.timeout_seconds + 60),
            schedule_to_start_timeout=timedelta(seconds=policy.queue_seconds),
            heartbeat_timeout=timedelta(seconds=policy.heartbeat_seconds),
            retry_policy=_ONCE,
            priority=self.priority,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            result_type=StepResult,
        )
        self.flow.active[worker.name] = handle
        try:
            return await handle, None, 0
        except ActivityError as e:
            cls, message, size = _failure(e)
            if cls == "canceled" and worker.name in self.flow.stopped:
                message = self.flow.stopped[worker.name]
            return None, (cls, message), size
        except asyncio.CancelledError:  # the handle was canceled before its activity was scheduled
            task = asyncio.current_task()
            if worker.name in self.flow.stopped and task is not None and not task.cancelling():
                return None, ("canceled", self.flow.stopped[worker.name]), 0
            raise
        finally:
            self.flow.active.pop(worker.name, None)

    def _end(
        self,
        step: Step,
        attempts: list[Attempt],
        started: float,
        result: StepResult | None,
        failure: tuple[FailureClass, str] | None,
    ) -> Step:
        update: dict[str, Any] = {
            "attempt": max(len(attempts), 1),
            "attempts": attempts,
            "ended_at": workflow.now(),
            "duration_ms": int((workflow.time() - started) * 1000),
        }
        if result is not None:
            details = result.details
            update.update(
                status="completed",
                output=result.text,
                output_truncated=result.truncated,
                output_bytes=result.output_bytes,
                started_at=result.started_at if len(attempts) == 1 and result.started_at else step.started_at,
                exit_code=result.exit_code,
                usage=result.usage,
                session_id=result.session_id,
                executed_by=result.executed_by or None,
                flags=list(details.get("flags", []))[:50],
                commands=list(details.get("commands", []))[:100],
                files_changed=list(details.get("files_changed", []))[:200],
            )
            if details.get("home"):
                update["home"] = details["home"]
        else:
            assert failure is not None
            status = "canceled" if failure[0] == "canceled" else "failed"
            update.update(status=status, output=f"{failure[0]}: {failure[1]}", failure_class=failure[0])
        return step.model_copy(update=update)


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
        self.active: dict[str, workflow.ActivityHandle[StepResult]] = {}  # worker -> its running attempt
        self.busy: Counter[str] = Counter()  # worker -> steps of this run running on it

    @workflow.signal(name=STOP_SIGNAL)
    def stop_worker(self, name: str, reason: str) -> None:
        """Worker ``name`` was stopped: cancel its running step (if any) and give it no further one."""
        self.stopped.setdefault(name, reason)
        handle = self.active.get(name)
        if handle is not None and not handle.done():
            handle.cancel()

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
