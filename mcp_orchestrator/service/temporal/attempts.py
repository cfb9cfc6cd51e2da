"""A step's attempts inside a run's workflow, as the local engine makes them (``service/attempts.py``).

The step is routed by the accepting server's gateway configuration (``RunPolicy.gateway``: candidates,
strategies, hedging, prices), through a ``Gateway`` of the run's own: its health and breakers learn from
this run's attempts only (a server's are its process's memory, and the steps do not run there). Each
attempt is an activity on its backend's queue, admitted by the run's budget and its breaker. A failure of a
fallback-safe class (after the retries its class allows) moves the step to the next candidate, once, and the
step records it (``fallbackFrom``, an attempt per runtime); it goes only to a candidate whose queue a worker
process polls (``probe.py``). A worker pinned to a machine has every attempt on that machine's queues
(``<queue>@<machine>``); one that no worker process of the machine polls fails ``unavailable`` at once.
A first candidate that no worker process polls fails ``unavailable`` at once and
falls back, when another candidate is polled; when none is, the step waits on its own queue (``queue_seconds``).
A hedged step races its candidates (``race.py``: ``gateway.hedge``'s rules, on workflow time): the next one
starts after the delay unless a running one has output (its activity's ``OUTPUT_SIGNAL``); the first success wins, the
others' activities are canceled (their process trees killed) and every candidate is recorded in
``routing.hedges``.

The budget (``dispatch_task.budget``) is the run's workflow state: reserved before each attempt, charged
with what a completed one reported, given back by a failed one; it is rebuilt from the run's history by any
worker process that takes the workflow up, so it never depends on one process's memory.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Protocol, get_args

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetry
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError, TimeoutType
from temporalio.workflow import ActivityCancellationType

from mcp_orchestrator.contracts import (
    Attempt,
    FailureClass,
    Fallback,
    HedgeAttempt,
    RoutingDecision,
    RuntimeMode,
    Step,
    WorkerRecord,
)
from mcp_orchestrator.engine.spec import RunSpec
from mcp_orchestrator.engine.temporal.client import step_queue, task_priority
from mcp_orchestrator.engine.temporal.probe import POLLED_ACTIVITY
from mcp_orchestrator.engine.temporal.steps import STEP_ACTIVITY, StepResult, StepSpec
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway import BudgetExceeded, CircuitOpen, Gateway, GatewayConfig, HedgeFailed
from mcp_orchestrator.gateway.router import HedgePlan, Route
from mcp_orchestrator.service.hedging import describe_hedges
from mcp_orchestrator.service.retry import RetryPolicy
from mcp_orchestrator.service.temporal.race import race

__all__ = ["Flow", "WorkflowAttempts"]

_ONCE = TemporalRetry(maximum_attempts=1)
PROBE_PATCH = "routing-probe"  # runs whose history predates the poller check replay without it
FAILURE_CLASSES = frozenset(get_args(FailureClass))
Failure = tuple[FailureClass, str]


class Flow(Protocol):
    """What the attempts see of the run's workflow."""

    stopped: dict[str, str]
    active: dict[str, workflow.ActivityHandle[StepResult]]
    outputs: set[tuple[int, str]]

    def put_step(self, step: Step) -> None: ...

    def mark(self, name: str, *, busy: bool) -> None: ...


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


class _Failed(RunFailure):
    """An attempt's failure inside the gateway's call, with its output size (for the retry rule)."""

    def __init__(self, failure: Failure, size: int) -> None:
        super().__init__(failure[0], failure[1])
        self.size = size


class WorkflowAttempts:
    """The attempt loop of a step in a run's workflow (``_run``), routed, budgeted and hedged."""

    def __init__(self, flow: Flow, spec: RunSpec, prefix: str) -> None:
        self.flow = flow
        self.spec = spec
        self.prefix = prefix
        policy = spec.policy
        self.retry = RetryPolicy(
            policy.retry_attempts, policy.retry_base_seconds, policy.retry_cap_seconds, policy.retry_total_seconds
        )
        self.priority = task_priority(spec.priority)
        self.deadline: float | None = None
        if spec.timeout_seconds:
            self.deadline = workflow.time() + spec.timeout_seconds
        config = GatewayConfig.parse(policy.gateway, source="the run's gateway configuration")
        self.gateway = Gateway(config, clock=workflow.time, environ={}, credentials=False)
        limits = spec.budget
        self.budget = self.gateway.budget(limits.max_tokens, limits.max_cost_usd) if limits is not None else None

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.spec.run_id

    async def _run(self, step: Step, worker: WorkerRecord, prompt: str, mode: RuntimeMode) -> Step:
        started = workflow.time()
        route = self.gateway.route(
            model=worker.model,
            runtime=mode,
            role=worker.role,
            priority=self.spec.priority,
            fallback_policy=worker.fallback_policy,
            pinned=self.spec.runtime_mode is not None,
        )
        mode = route.chosen or mode
        routing = RoutingDecision.model_validate(route.as_dict())
        update: dict[str, Any] = {"status": "running", "started_at": workflow.now(), "runtime_mode": mode}
        step = step.model_copy(update={**update, "routing": routing})
        self.flow.put_step(step)
        self.flow.mark(worker.name, busy=True)
        plan = self.gateway.hedge_plan(route, role=worker.role, priority=self.spec.priority)
        hedges: list[HedgeAttempt] = []
        attempts: list[Attempt] = []
        result: StepResult | None = None
        failure: Failure | None = None
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
                if not attempts and plan is not None and plan.runtimes[0] == mode:
                    hedged_try = await self._hedged(route, plan, worker, prompt, step, hedges)
                    result, mode, failure, size, retryable = hedged_try
                else:
                    tried = await self._try(route, worker, mode, prompt, step, record.attempt)
                    result, failure, size, retryable = tried
                done: dict[str, Any] = {"ended_at": workflow.now(), "runtime_mode": mode}
                if failure is not None:
                    done.update(failure_class=failure[0], message=failure[1][:500])
                attempts.append(record.model_copy(update=done))
                if failure is None:
                    break
                step = step.model_copy(update={"attempt": len(attempts), "attempts": attempts})
                delay = self.retry.delay(len(attempts), workflow.random())
                remaining = None if self.deadline is None else self.deadline - workflow.time()
                spent = workflow.time() - started
                if (
                    retryable
                    and self.retry.transient(failure[0], size)
                    and self.retry.allows(len(attempts), spent, delay, remaining)
                ):
                    self.flow.put_step(step)
                    await asyncio.sleep(delay)
                    continue
                hedged = tuple(h.runtime_mode for h in hedges if h.outcome != "not_started")
                alt = None
                if not step.fallback_from and route.next_after(mode, failure[0], exclude=hedged) is not None:
                    alt = await self._next_polled(route, worker, mode, hedged)  # none polled: the failure stands
                if alt is None:
                    break
                fell = Fallback(runtime_mode=mode, failure_class=failure[0], message=failure[1][:500])
                mode, delay = alt, 0.0
                step = step.model_copy(update={"runtime_mode": mode, "fallback_from": fell})
                self.flow.put_step(step)
        except asyncio.CancelledError:
            failure = ("canceled", "the run was canceled")
            self.flow.put_step(self._end(step, attempts, started, None, failure))  # no await: nothing to shield
            raise
        finally:
            self.flow.mark(worker.name, busy=False)
        routing = routing.model_copy(update={"hedges": hedges}) if hedges else routing
        step = step.model_copy(update={"runtime_mode": mode, "routing": routing})
        ended = self._end(step, attempts, started, result, failure)
        self.flow.put_step(ended)
        return ended

    async def _try(
        self, route: Route, worker: WorkerRecord, mode: RuntimeMode, prompt: str, step: Step, attempt: int
    ) -> tuple[StepResult | None, Failure | None, int, bool]:
        """One attempt through the gateway: result, failure, output size, and whether a retry may follow."""
        try:
            return await self._call(route, worker, mode, prompt, step, attempt), None, 0, True
        except BudgetExceeded as e:
            return None, ("budget_exceeded", str(e)), 0, False
        except CircuitOpen as e:  # an open circuit is not tried again here
            return None, (e.failure_class, e.message), 0, False
        except _Failed as e:
            return None, (e.failure_class, e.message), e.size, e.size >= 0

    async def _call(
        self, route: Route, worker: WorkerRecord, mode: RuntimeMode, prompt: str, step: Step, attempt: int, *,
        hedged: bool = False,
    ) -> StepResult:  # fmt: skip
        """One attempt admitted by the run's budget and breaker; raises ``_Failed`` (size -1: not to be retried)."""
        queue = self._queue(worker, mode)

        async def run() -> StepResult:
            if worker.machine and not await self._polled(queue):  # pinned: no wait for a machine nobody serves
                hint = f"start one there with `mcp-orchestrator worker --machine {worker.machine} --backend "
                hint += f"{worker.model}/{mode}`"
                raise _Failed(
                    ("unavailable", f"no worker process on machine {worker.machine} polls {queue} ({hint})"), -1
                )
            if not step.fallback_from and await self._unpolled(route, worker, mode):
                hint = f"start one with --backend {worker.model}/{mode}"
                raise _Failed(("unavailable", f"no worker process polls {queue} ({hint})"), -1)
            policy = self.spec.policy
            timeout = worker.timeout_seconds or policy.step_timeout_seconds
            if self.deadline is not None:
                timeout = max(min(timeout, self.deadline - workflow.time()), 0.0)
            spec = StepSpec(
                run_id=self.run_id,
                index=step.index,
                worker=worker,
                prompt=prompt,
                runtime_mode=mode,
                attempt=attempt,
                continue_session=self.spec.continue_session,
                timeout_seconds=timeout,
                stall_seconds=worker.stall_seconds or policy.stall_seconds,
                hedged=hedged,
            )
            result, failed, size = await self._attempt(worker, queue, spec)
            if failed is not None:
                raise _Failed(failed, size)
            assert result is not None
            return result

        return await self.gateway.call(self.gateway.key(worker.model, mode), run, budget=self.budget)

    async def _unpolled(self, route: Route, worker: WorkerRecord, mode: RuntimeMode) -> bool:
        """Whether the step leaves ``mode`` before trying it: no worker process polls its queue and another
        candidate's queue is polled (with none polled, the step waits on its own queue, up to ``queue_seconds``)."""
        if route.next_after(mode, "unavailable") is None or await self._polled(self._queue(worker, mode)):
            return False
        return await self._next_polled(route, worker, mode, ()) is not None

    async def _next_polled(
        self, route: Route, worker: WorkerRecord, mode: RuntimeMode, exclude: tuple[RuntimeMode, ...]
    ) -> RuntimeMode | None:
        """The next eligible candidate after ``mode`` whose queue a worker process polls."""
        for runtime in route.runtimes():
            if runtime != mode and runtime not in exclude and await self._polled(self._queue(worker, runtime)):
                return runtime
        return None

    def _queue(self, worker: WorkerRecord, mode: RuntimeMode) -> str:
        """The backend's queue; a pinned worker's is its machine's (every attempt, retry, fallback and hedge)."""
        return step_queue(self.prefix, worker.model, mode, worker.machine)

    async def _polled(self, queue: str) -> bool:
        if not workflow.patched(PROBE_PATCH):  # a run started before workers asked: replayed as it ran
            return True
        try:
            return bool(
                await workflow.execute_local_activity(
                    POLLED_ACTIVITY, queue, start_to_close_timeout=timedelta(seconds=5), retry_policy=_ONCE
                )
            )
        except ActivityError:
            return True  # the cluster did not say: the step's queue timeout decides

    async def _hedged(
        self, route: Route, plan: HedgePlan, worker: WorkerRecord, prompt: str, step: Step, hedges: list[HedgeAttempt]
    ) -> tuple[StepResult | None, RuntimeMode, Failure | None, int, bool]:  # fmt: skip
        """The first attempt raced over ``plan.runtimes``: result, winner (or primary), failure, size, retryable."""
        begun = workflow.time()

        async def start(mode: RuntimeMode) -> StepResult:
            return await self._call(route, worker, mode, prompt, step, 1, hedged=True)

        def answering(mode: RuntimeMode) -> bool:
            return (step.index, mode) in self.flow.outputs

        primary = plan.runtimes[0]
        try:
            hedges_max = len(plan.runtimes) - 1
            result, records = await race(plan.runtimes, start, answering, plan.delay, hedges_max, workflow.time)
        except HedgeFailed as e:
            hedges.extend(describe_hedges(e.records, begun))
            error = e.primary_error
            if isinstance(error, RunFailure):
                size = error.size if isinstance(error, _Failed) else -1
                return None, primary, (error.failure_class, error.message), size, size >= 0
            return None, primary, ("internal", f"every hedged runtime failed: {e}"), 0, False
        hedges.extend(describe_hedges(records, begun))
        return result, next(r.candidate for r in records if r.outcome == "won"), None, 0, True

    async def _attempt(
        self, worker: WorkerRecord, queue: str, spec: StepSpec
    ) -> tuple[StepResult | None, Failure | None, int]:
        """One attempt as an activity: its result, or its failure and output size. A stop of the worker cancels
        the activity (``RunWorkflow.stop_worker``): the attempt then ends ``canceled`` with the stop's reason."""
        policy = self.spec.policy
        handle = workflow.start_activity(
            STEP_ACTIVITY,
            spec,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=spec.timeout_seconds + 60),
            schedule_to_start_timeout=timedelta(seconds=policy.queue_seconds),
            heartbeat_timeout=timedelta(seconds=policy.heartbeat_seconds),
            retry_policy=_ONCE,
            priority=self.priority,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            result_type=StepResult,
        )
        key = worker.name if not spec.hedged else f"{worker.name}\0{spec.runtime_mode}"
        self.flow.active[key] = handle
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
            self.flow.active.pop(key, None)

    def _end(
        self, step: Step, attempts: list[Attempt], started: float, result: StepResult | None, failure: Failure | None
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
