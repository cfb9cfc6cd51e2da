"""One run's execution: the ``StrategyContext`` a strategy drives, and the job around it."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from mcp_orchestrator.contracts import (
    Attempt,
    FailureClass,
    Fallback,
    HedgeAttempt,
    RoutingDecision,
    RunError,
    RunRecord,
    RuntimeMode,
    Step,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.engine import execute_step
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway import BudgetExceeded, CircuitOpen
from mcp_orchestrator.runtimes import OutputSink, StepContext, StepOutcome
from mcp_orchestrator.runtimes.base import bound_text
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.service.hedging import hedged_attempt
from mcp_orchestrator.service.host import RunHost
from mcp_orchestrator.service.retry import RetryPolicy
from mcp_orchestrator.strategies import Strategy, StrategyOptions, StrategyResult

__all__ = ["RunExecution", "execute_run", "run_outcome"]

log = logging.getLogger(__name__)


class RunExecution:
    """Executes one run: persists every step transition and publishes events."""

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

    @property
    def task(self) -> str:
        """The task as dispatched."""
        return self._task

    def _publish(self, kind: str, message: str) -> None:
        self.orch.events.publish(RunEvent(self.run_id, kind, self.orch.redactor.text(message)))  # type: ignore[arg-type]

    async def _save_step(self, step: Step) -> None:
        step = Step.model_validate(self.orch.redactor.data(step.model_dump()))  # what is stored is redacted

        def change(run: RunRecord) -> RunRecord:
            if run.terminal:  # fenced: an heir already ended it (this instance lost its lease); never flip it
                return run
            steps = [s for s in run.steps if s.index != step.index] + [step]
            return run.model_copy(update={"steps": sorted(steps, key=lambda s: s.index)})

        await self.orch.io(self.orch.store.update_run, self.run_id, change)

    async def save_step(self, step: Step) -> None:
        """Store a step again with more facts (verdict, workspace)."""
        await self._save_step(step)

    async def run_step(self, worker: WorkerRecord, *, role: str, prompt: str, workdir: Path | None = None) -> Step:
        """Run one step of ``worker``; the returned step is completed, failed or canceled."""
        index = self._next_index
        self._next_index += 1
        step = Step(index=index, worker_name=worker.name, role=role, runtime_mode=worker.runtime_mode)
        handed_over = False  # from then on _run records a cancellation itself
        try:
            if self.orch.caps.worker_busy(worker.name):
                await self._save_step(step)  # visible as pending while it waits for its worker
            async with self.orch.caps.worker_slot(worker.name):
                scope = anyio.CancelScope()
                self.step_scopes[worker.name] = scope
                try:
                    current = await self.orch.io(self.orch.store.get_worker, worker.name)
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

    def _sink(self, index: int) -> OutputSink:
        return OutputSink(
            self.orch.store.step_output_path(self.run_id, index),
            excerpt_bytes=self.orch.settings.output_excerpt_bytes,
            spool_cap=self.orch.settings.output_spool_bytes,
        )

    async def _attempt(
        self, mode: RuntimeMode, worker: WorkerRecord, prompt: str, index: int, sink: OutputSink, attempt: int
    ) -> StepOutcome:
        """One try of the step on one runtime, under the worker's and the dispatch's time limits."""
        orch = self.orch

        async def report(message: str) -> None:
            self._publish("step_progress", message[:200])

        ctx = StepContext(
            run_id=self.run_id,
            step_index=index,
            prompt=prompt,
            worker=worker,
            workdir=Path(worker.workdir),
            output=sink,
            report=report,
            continue_session=self._continue_session,
            extra_env=orch.settings.extra_env,
            attempt=attempt,
        )
        timeout = worker.timeout_seconds or orch.settings.step_timeout_seconds
        deadline_hit = False
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            deadline_hit = left <= timeout
            timeout = max(min(timeout, left), 0.0)
        stall = worker.stall_seconds or orch.settings.stall_seconds

        async def run() -> StepOutcome:
            runtime = await orch.runtime(mode)
            try:
                return await execute_step(runtime, ctx, total_seconds=timeout, stall=stall)
            except RunFailure as e:
                if e.failure_class == "timeout" and deadline_hit and self._deadline_class != "timeout":
                    raise RunFailure(self._deadline_class, "the run's deadline passed; the worker was stopped") from e
                raise

        async with orch.caps.backend_slot(f"{worker.model}/{mode}"):
            try:  # the run's budget and the endpoint's breaker admit the attempt; its outcome feeds both
                return await orch.gateway.call(orch.gateway.key(worker.model, mode), run, budget=self.budget)
            except BudgetExceeded as e:
                raise RunFailure("budget_exceeded", str(e)) from e

    async def _run(self, step: Step, worker: WorkerRecord, prompt: str, scope: anyio.CancelScope) -> Step:
        orch = self.orch
        policy = RetryPolicy.from_settings(orch.settings)
        started = time.monotonic()
        mode = self.runtime_override or worker.runtime_mode
        route = orch.gateway.route(
            model=worker.model,
            runtime=mode,
            role=worker.role,
            priority=self.priority,
            fallback_policy=worker.fallback_policy,
            pinned=self.runtime_override is not None,
        )
        mode = route.chosen or mode  # an open circuit sends the step to the next candidate
        routing = RoutingDecision.model_validate(route.as_dict())
        hedges: list[HedgeAttempt] = []
        step = step.model_copy(
            update={"status": "running", "started_at": utcnow(), "runtime_mode": mode, "routing": routing}
        )
        sink = self._sink(step.index)
        outcome: StepOutcome | None = None
        failure: tuple[FailureClass, str] | None = None
        exit_code: int | None = None
        attempts: list[Attempt] = []
        try:
            # Inside the try: a cancellation while marking the step running still ends it and frees the worker.
            async with anyio.create_task_group() as tg:  # two documents, written side by side
                tg.start_soon(self._save_step, step)
                tg.start_soon(orch.mark_worker, worker.name, "busy", self.run_id)
            self._publish("step_started", f"step {step.index}: {worker.name} ({mode}) started")
            orch.emit(
                "step_started",
                self.run_id,
                step_index=step.index,
                worker_name=worker.name,
                role=step.role,
                runtime_mode=mode,
            )
            orch.emit("routing", self.run_id, step_index=step.index, worker_name=worker.name, routing=routing)
            plan = orch.gateway.hedge_plan(route, role=worker.role, priority=self.priority)  # opt-in
            delay = 0.0
            with scope:
                while True:
                    record = Attempt(
                        attempt=len(attempts) + 1,
                        runtime_mode=mode,
                        delay_before_ms=int(delay * 1000),
                        started_at=utcnow(),
                    )
                    retryable = True
                    try:
                        if not attempts and plan is not None and plan.runtimes[0] == mode:
                            outcome, mode, sink = await hedged_attempt(
                                self._attempt, self.orch.settings, plan, worker, prompt, step.index, sink, hedges
                            )
                        else:
                            outcome = await self._attempt(mode, worker, prompt, step.index, sink, record.attempt)
                        attempts.append(record.model_copy(update={"ended_at": utcnow(), "runtime_mode": mode}))
                        failure = None
                        break
                    except RunFailure as e:
                        failure, exit_code = (e.failure_class, e.message), e.exit_code
                        retryable = not isinstance(e, CircuitOpen)  # an open circuit is not tried again here
                        orch.emit(
                            "attempt",
                            self.run_id,
                            step_index=step.index,
                            attempt=record.attempt,
                            runtime_mode=mode,
                            failure_class=e.failure_class,
                            message=e.message[:500],
                            delay_before_ms=record.delay_before_ms,
                        )
                        attempts.append(
                            record.model_copy(
                                update={
                                    "ended_at": utcnow(),
                                    "failure_class": e.failure_class,
                                    "message": e.message[:500],
                                }
                            )
                        )
                    step = step.model_copy(update={"attempt": len(attempts), "attempts": attempts})
                    remaining = None if self._deadline is None else self._deadline - time.monotonic()
                    delay = policy.delay(len(attempts))
                    spent = time.monotonic() - started
                    if (
                        retryable
                        and policy.transient(failure[0], sink.total_bytes)
                        and policy.allows(len(attempts), spent, delay, remaining)
                    ):
                        self._publish("step_progress", f"step {step.index}: {failure[0]}; retry in {delay:.1f} s")
                        sink = _restart_sink(sink, f"attempt-{len(attempts)}", self._sink(step.index))
                        await self._save_step(step)
                        await anyio.sleep(delay)
                        continue
                    hedged = tuple(h.runtime_mode for h in hedges if h.outcome != "not_started")
                    alt = None if step.fallback_from else route.next_after(mode, failure[0], exclude=hedged)
                    if alt is None:
                        break
                    self._publish("step_progress", f"step {step.index}: {mode} failed ({failure[0]}); trying {alt}")
                    sink = _restart_sink(sink, mode, self._sink(step.index))
                    fell = Fallback(runtime_mode=mode, failure_class=failure[0], message=failure[1][:500])
                    orch.emit(
                        "fallback",
                        self.run_id,
                        step_index=step.index,
                        runtime_mode=mode,
                        fallback_to=alt,
                        failure_class=failure[0],
                        message=failure[1][:500],
                    )
                    mode, delay = alt, 0.0
                    step = step.model_copy(update={"runtime_mode": mode, "fallback_from": fell})
                    await self._save_step(step)
            routing = routing.model_copy(update={"hedges": hedges}) if hedges else routing
            update = {"attempt": max(len(attempts), 1), "attempts": attempts, "runtime_mode": mode, "routing": routing}
            step = step.model_copy(update=update)
            if outcome is None and failure is None:
                failure = ("canceled", self.cancel_reason or "the step was canceled")
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                sink.close()
                await self._end(
                    step,
                    "canceled",
                    sink=sink,
                    started=started,
                    failure=("canceled", self.cancel_reason or "the run was canceled"),
                )
                await orch.mark_worker(worker.name, "idle", None)
            raise
        except Exception as e:  # the outermost boundary of a step: record it, never lose it
            log.exception("run %s step %s: runtime crashed", self.run_id, step.index)
            failure = ("internal", f"{type(e).__name__}: {e}")
        finally:
            sink.close()
        with anyio.CancelScope(shield=True):
            session = outcome.session_id if outcome else None
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(orch.mark_worker, worker.name, "idle", None, session_id=session))
                if outcome is not None:
                    ended = await self._end(step, "completed", sink=sink, started=started, outcome=outcome)
                else:
                    assert failure is not None
                    status = "canceled" if failure[0] == "canceled" else "failed"
                    ended = await self._end(
                        step, status, sink=sink, started=started, failure=failure, exit_code=exit_code
                    )
        return ended

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
    ) -> Step:
        cap = self.orch.settings.output_excerpt_bytes
        # The step's files (full output, earlier attempts, quarantined raw bytes) are redacted once it ends.
        await self.orch.io(self.orch.redactor.tree, self.orch.store.step_output_path(self.run_id, step.index).parent)
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
            "duration_ms": int((time.monotonic() - started) * 1000) if started is not None else 0,
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
        step = step.model_copy(update=update)
        await self._save_step(step)
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


def _restart_sink(old: OutputSink, mode: str, new: OutputSink) -> OutputSink:
    """Keep a failed attempt's output beside the step's as ``output.<mode>.log``; start a fresh one."""
    old.close()
    spool = old.spool_path
    if spool is not None:
        # The spool and anything kept beside it (quarantined raw output) move aside together.
        for path in spool.parent.glob(spool.name + "*"):
            path.replace(path.with_name(path.name.replace(spool.name, f"output.{mode}.log", 1)))
    return new


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

    def start(run: RunRecord) -> RunRecord:
        nonlocal started
        # At most once, decided under the run's lock: only a queued run still held by this instance
        # starts (an heir may have taken its lease marker or adopted it, or it already ended).
        if run.status != "accepted" or (run.owner is not None and run.owner.instance != owner.instance):
            return run
        if not orch.store.owns(run_id, owner.instance):
            return run
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

    await orch.io(orch.store.update_run, run_id, start)
    if not started:
        log.warning("run %s: not started here (no longer queued for this instance)", run_id)
        return
    execution._publish("run_started", "run started")
    orch.emit("run_started", run_id)
    result = StrategyResult("")
    error: RunError | None = None
    try:
        result = await strategy.run_plan(execution, workers)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            reason = execution.cancel_reason or "the run was canceled"
            await orch.finish_run(run_id, "canceled", reason, RunError(failure_class="canceled", message=reason))
            execution._publish("run_ended", "run canceled")
        raise
    except Exception as e:
        log.exception("run %s: strategy crashed", run_id)
        error = RunError(failure_class="internal", message=f"{type(e).__name__}: {e}")
    with anyio.CancelScope(shield=True):
        run = await orch.io(orch.store.get_run, run_id)
        status, error = run_outcome(run.steps, result, error)
        await orch.finish_run(run_id, status, result.summary or (error.message if error else ""), error)
        execution._publish("run_ended", f"run {status}")
