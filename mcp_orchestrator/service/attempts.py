"""A step's attempts: route it, try it on a runtime under its limits, retry what is transient, fall back to
the next runtime, hedge the first attempt when the gateway asks for it; every attempt is recorded."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio

from mcp_orchestrator.contracts import (
    Attempt,
    FailureClass,
    Fallback,
    HedgeAttempt,
    RoutingDecision,
    RuntimeMode,
    Step,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.engine import execute_step
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway import BudgetExceeded, CircuitOpen
from mcp_orchestrator.runtimes import OutputSink, StepContext, StepOutcome
from mcp_orchestrator.service.hedging import hedged_attempt
from mcp_orchestrator.service.retry import RetryPolicy
from mcp_orchestrator.service.steps import StepRecorder, restart_sink

__all__ = ["StepAttempts"]

log = logging.getLogger(__name__)


class StepAttempts(StepRecorder):
    """The attempt loop of one step (``_run``) and one attempt (``_attempt``)."""

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
            await self._save_step(step)
            told = f"step {step.index}: {worker.name} ({mode}) started"
            # Stored beside the step's process if it runs long enough; its start is told once the worker is busy.
            await self._mark_busy(worker, lambda: self._publish("step_started", told))
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
                        sink = restart_sink(sink, f"attempt-{len(attempts)}", self._sink(step.index))
                        await self._save_step(step)
                        await anyio.sleep(delay)
                        continue
                    hedged = tuple(h.runtime_mode for h in hedges if h.outcome != "not_started")
                    alt = None if step.fallback_from else route.next_after(mode, failure[0], exclude=hedged)
                    if alt is None:
                        break
                    self._publish("step_progress", f"step {step.index}: {mode} failed ({failure[0]}); trying {alt}")
                    sink = restart_sink(sink, mode, self._sink(step.index))
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
                    worker=(worker.name, "idle", None),
                )
            raise
        except Exception as e:  # the outermost boundary of a step: record it, never lose it
            log.exception("run %s step %s: runtime crashed", self.run_id, step.index)
            failure = ("internal", f"{type(e).__name__}: {e}")
        finally:
            sink.close()
        with anyio.CancelScope(shield=True):
            idle = (worker.name, "idle", outcome.session_id if outcome else None)
            if outcome is not None:
                ended = await self._end(step, "completed", sink=sink, started=started, outcome=outcome, worker=idle)
            else:
                assert failure is not None
                status = "canceled" if failure[0] == "canceled" else "failed"
                ended = await self._end(
                    step, status, sink=sink, started=started, failure=failure, exit_code=exit_code, worker=idle
                )
        return ended
