"""The orchestrator service: workers, runs and guards, independent of any transport."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
from anyio.abc import TaskGroup

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import (
    TERMINAL_RUN_STATUSES,
    FallbackPolicy,
    ModelName,
    PanicState,
    Priority,
    Run,
    RunBudget,
    RunError,
    RunList,
    RunRecord,
    RuntimeMode,
    SchedulerView,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.engine import ExecutionEngine, LocalScheduler, RunSpec, SchedulerLimits, StepCaps
from mcp_orchestrator.errors import Forbidden, InvalidArgument, NotFound, OrchestratorError, PanicEngaged, RunFailure
from mcp_orchestrator.gateway import Gateway
from mcp_orchestrator.guards import check_agent_id, check_name, check_run_id, jail_workdir
from mcp_orchestrator.observability import Redactor, RunLog
from mcp_orchestrator.observability.otel import RunTracing
from mcp_orchestrator.observability.replay import record_dispatch, record_outcome
from mcp_orchestrator.runtimes import WorkerRuntime, load_runtime
from mcp_orchestrator.service.events import EventBus, RunEvent
from mcp_orchestrator.service.execution import RunExecution, execute_run
from mcp_orchestrator.service.policy import select_runtime
from mcp_orchestrator.service.recovery import reap, recover
from mcp_orchestrator.store import JsonRunStore, RunFilter
from mcp_orchestrator.store._files import is_alive, this_process
from mcp_orchestrator.strategies import discard_run_worktrees, get_strategy

if TYPE_CHECKING:
    from mcp_orchestrator.service.executor import ExecutorLink

__all__ = ["Orchestrator", "new_run_id"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MAX_TASK_CHARS = 200_000
CONTROL_INTERVAL = 0.25


def new_run_id() -> str:
    """A run id that sorts by creation time: ``run_`` + 12 hex digits of ms + 8 random hex digits."""
    return f"run_{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class Orchestrator:
    """Spawns workers, dispatches runs, follows and cancels them. Build once per process.

    With an ``executor`` link this instance is a front end: it accepts runs and hands them to the
    data directory's executor process instead of running them (``serve`` in its default mode)."""

    def __init__(self, settings: Settings, executor: ExecutorLink | None = None) -> None:
        self.settings = settings
        self.executor = executor
        self.shutdown_reason = "the server process shut down"
        self._claiming: set[str] = set()
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
        self._executions: dict[str, RunExecution] = {}
        self._limiter = anyio.CapacityLimiter(8)
        self.gateway = Gateway(settings.gateway)  # endpoint health, breakers and strategies of this process

    # ---- lifecycle ----------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self, *, take_over: bool = True) -> AsyncIterator[Orchestrator]:
        """Take over what dead processes left behind, then serve until the context closes.

        ``take_over=False`` (short-lived operator commands) never adopts another instance's runs: a
        process that exits in a moment would start them and cancel them on its way out."""
        s = self.settings
        limits = SchedulerLimits(
            queue_limits=s.queue_limits,
            max_running=s.max_running,
            batch_every=s.batch_every,
            aging_seconds=s.aging_seconds,
        )
        engine_cm: ExecutionEngine
        if s.engine == "temporal":
            from mcp_orchestrator.engine.temporal.engine import TemporalEngine  # only where it is configured

            engine_cm = TemporalEngine(s.temporal)
        else:
            engine_cm = LocalScheduler(self._execute, limits, self._expired)
        async with engine_cm as engine, anyio.create_task_group() as tg:
            self._engine = engine
            self._tg = tg
            await self._heartbeat()
            if s.engine == "temporal" and take_over:
                from mcp_orchestrator.service.temporal.follow import resume_following

                await resume_following(self)
            elif take_over:
                adopted, report = await self.io(recover, self.store, self.process)
                for line in report:
                    log.warning("recovery: %s", line)
                for run in adopted + await self.io(reap, self.store, self.process, s.lease_seconds):
                    await self._resume(run)
            if self.executor is not None:  # start the executor now, so the first dispatch need not wait
                tg.start_soon(partial(anyio.to_thread.run_sync, self.executor.spawn, abandon_on_cancel=True))
            tg.start_soon(self._control_loop)
            tg.start_soon(self._lease_loop, take_over)
            tg.start_soon(self._background_check)
            try:
                yield self
            finally:
                for execution in self._executions.values():  # say why running runs end
                    execution.cancel_reason = execution.cancel_reason or self.shutdown_reason
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    for runtime in self._runtimes.values():
                        await runtime.aclose()

    async def _background_check(self) -> None:
        moved = await self.io(self.store.check)
        for path, reason in moved:
            log.warning("store check: quarantined %s (%s)", path, reason)

    async def beat(self) -> None:
        """Write this instance's heartbeat (with its scheduler view) now."""
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        payload: dict[str, Any] = {"process": self.process.model_dump(mode="json")}
        if self.executor is None:  # a front end schedules nothing: the executor's view is the one that counts
            payload["scheduler"] = self.scheduler_view()
        await self.io(self.store.beat, self.process.instance, payload)

    async def _lease_loop(self, take_over: bool = True) -> None:
        """Prove this instance is alive; take over the queued runs of instances that are not."""
        while True:
            await anyio.sleep(self.settings.heartbeat_seconds)
            await self._heartbeat()
            if not take_over:
                continue
            for run in await self.io(reap, self.store, self.process, self.settings.lease_seconds):
                log.warning("took over %s (%s) from a dead instance", run.run_id, run.status)
                await self._resume(run)

    async def _control_loop(self) -> None:
        """Honour cancel requests and the panic switch set by other processes."""
        while True:
            await anyio.sleep(CONTROL_INTERVAL)
            held = self.engine.running() | self.engine.queued()
            if not held:
                continue
            panic = await self._get_panic()
            if panic.engaged:
                for run_id in held:
                    await self._cancel_here(run_id, f"panic engaged by {panic.engaged_by}: {panic.reason}")
                continue
            for run_id, reason in await self.io(self.store.cancel_requests, held):
                await self._cancel_here(run_id, reason or "canceled on request")

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

    async def mark_worker(self, name: str, status: str, run_id: str | None, session_id: str | None = None) -> None:
        """Set a worker busy or idle (a stopped worker stays stopped)."""

        def change(w: WorkerRecord) -> WorkerRecord:
            update: dict[str, Any] = {"current_run_id": run_id}
            if w.status != "stopped":
                update["status"] = status
            if session_id:
                update["session_id"] = session_id
            return w.model_copy(update=update)

        try:
            await self.io(self.store.update_worker, name, change)
        except NotFound:
            log.warning("worker %s vanished while running", name)

    async def finish_run(self, run_id: str, status: str, summary: str, error: RunError | None) -> RunRecord:
        """Record the end of a run, with its telemetry."""

        redact = self.redactor.text
        if error is not None:
            error = error.model_copy(update={"message": redact(error.message)})

        def change(run: RunRecord) -> RunRecord:
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

        run = await self.io(self.store.update_run, run_id, change)
        await self.io(record_outcome, self.settings.home, run, self.redactor)
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

    # ---- guards -------------------------------------------------------------------------------

    async def guard_write(self, agent_id: object) -> str:
        """Validate the caller and refuse while the panic switch is engaged."""
        agent = check_agent_id(agent_id)
        panic = await self._get_panic()
        if panic.engaged:
            raise PanicEngaged(panic.reason, panic.engaged_by)
        return agent

    # ---- workers ------------------------------------------------------------------------------

    async def spawn_worker(
        self,
        agent_id: str,
        name: str,
        model: ModelName,
        *,
        runtime_mode: RuntimeMode | None = None,
        fallback_policy: FallbackPolicy = "on_error",
        workdir: str | None = None,
        role: str | None = None,
        timeout_seconds: float | None = None,
        stall_seconds: float | None = None,
        model_name: str | None = None,
    ) -> WorkerRecord:
        """Create a worker owned by ``agent_id``."""
        agent = await self.guard_write(agent_id)
        check_name(name)
        mode = select_runtime(model, runtime_mode, self.settings.default_runtime)
        if fallback_policy not in ("on_error", "never"):
            raise InvalidArgument(
                "fallbackPolicy", f"unknown policy {fallback_policy!r}", hint="Use on_error or never."
            )
        path = jail_workdir(workdir, self.settings.roots)
        worker = WorkerRecord(
            name=name,
            model=model,
            runtime_mode=mode,
            fallback_policy=fallback_policy,
            workdir=str(path),
            role=role or "writer",
            owner_agent_id=agent,
            created_at=utcnow(),
            timeout_seconds=timeout_seconds,
            stall_seconds=stall_seconds,
            model_name=model_name,
        )
        return await self.io(self.store.put_worker, worker, create=True)

    async def list_workers(self, status: str | None = None) -> list[WorkerRecord]:
        """Workers, optionally with one status."""
        workers = await self.io(self.store.list_workers)
        return [w for w in workers if status is None or w.status == status]

    async def stop_worker(self, agent_id: str, name: str) -> WorkerRecord:
        """Stop a worker: it takes no new work and its running step is canceled."""
        agent = await self.guard_write(agent_id)
        check_name(name)
        worker = await self.io(self.store.get_worker, name)
        if worker.owner_agent_id != agent:
            raise Forbidden(
                f"Worker {name!r} belongs to agent {worker.owner_agent_id!r}.",
                hint="Only the agent that spawned a worker can stop it.",
            )
        worker = await self.io(self.store.update_worker, name, lambda w: w.model_copy(update={"status": "stopped"}))
        for execution in list(self._executions.values()):
            scope = execution.step_scopes.get(name)
            if scope is not None:
                execution.cancel_reason = f"worker {name} was stopped by {agent}"
                scope.cancel()
        if worker.current_run_id and worker.current_run_id not in self._executions:
            await self._request_cancel(worker.current_run_id, f"worker {name} was stopped by {agent}")
        return worker

    # ---- runs ---------------------------------------------------------------------------------

    async def dispatch(
        self,
        agent_id: str,
        task: str,
        *,
        strategy: str = "single_worker",
        workers: list[str] | None = None,
        idempotency_key: str | None = None,
        continue_session: bool = False,
        timeout_seconds: float | None = None,
        runtime_mode: RuntimeMode | None = None,
        priority: Priority = "interactive",
        deadline_seconds: float | None = None,
        apply_result: bool = False,
        keep_worktrees: bool = False,
        budget: RunBudget | None = None,
    ) -> RunRecord:
        """Record a run as ``accepted`` and queue it; returns at once."""
        agent = await self.guard_write(agent_id)
        if priority not in ("interactive", "batch"):
            raise InvalidArgument("priority", f"unknown class {priority!r}", hint="Use interactive or batch.")
        # Backpressure before anything is stored; the place is held until the run is queued.
        with self.engine.admit(priority):
            if not isinstance(task, str) or not task.strip():
                raise InvalidArgument("task", "is empty", hint="Describe the work for the worker.")
            if len(task) > MAX_TASK_CHARS:
                raise InvalidArgument("task", f"is longer than {MAX_TASK_CHARS} characters", hint="Shorten it.")
            if "\x00" in task:
                raise InvalidArgument("task", "contains a NUL byte", hint="Remove control characters from the task.")
            key = idempotency_key
            if key is not None and (not 1 <= len(key) <= 200 or "\x00" in key):
                raise InvalidArgument("idempotencyKey", "must be 1-200 characters without NUL", hint="Use e.g. a UUID.")
            plan = get_strategy(strategy)
            temporal = self.settings.engine == "temporal"  # the cluster holds the run: no lease here
            owner = None if temporal else self.process if self.executor is None else await self.executor.admit(priority)
            candidates = await self._candidates(agent, workers)
            chosen = plan.select_workers(candidates)
            if runtime_mode is not None:
                for w in chosen:  # refuses a mode that cannot run a chosen worker's model, listing the valid ones
                    select_runtime(w.model, runtime_mode, None)
            run = RunRecord(
                run_id=new_run_id(),
                status="accepted",
                strategy=plan.name,
                task=self.redactor.text(task),  # stored redacted; the worker gets the task as given (below)
                agent_id=agent,
                created_at=utcnow(),
                workers=[w.name for w in chosen],
                idempotency_key=idempotency_key,
                owner=owner,
                timeout_seconds=timeout_seconds,
                runtime_mode=runtime_mode,
                continue_session=continue_session,
                priority=priority,
                apply_result=apply_result,
                keep_worktrees=keep_worktrees,
                budget=budget,
            )
            if temporal:
                from mcp_orchestrator.service.temporal.follow import label

                run.executed_by = label(self)
            if deadline_seconds is not None:
                run.deadline_at = run.created_at + timedelta(seconds=deadline_seconds)
            stored = await self.io(self.store.create_run, run)
            if stored.run_id != run.run_id:
                return stored  # the same idempotency key: the first run stands
            await self.io(record_dispatch, self.settings, stored, chosen, self.redactor)
            self.emit("run_accepted", run.run_id, agent_id=agent, strategy=plan.name, priority=priority)
            if self.executor is None:
                await self._enqueue(stored, chosen, task=task)
            else:
                await self._hand_over(stored, task)
            return stored

    async def _hand_over(self, run: RunRecord, task: str) -> None:
        """Front end: tell the executor about a run stored as its own. Should it never answer, the run
        fails here (fenced: a terminal status is final, so a late executor cannot start it)."""
        try:
            if await self.executor.claim(run.run_id, task):  # type: ignore[union-attr]
                return
            message = "the executor refused the run"
        except OrchestratorError as e:
            message = str(e)
        error = RunError(failure_class="unavailable", message=message)
        await self.finish_run(run.run_id, "failed", "never started: the executor was unavailable", error)

    async def claim(self, run_id: str, task: str | None = None) -> bool:
        """Executor: start a run a front end stored as owned by this instance (at most once here)."""
        if run_id in self._executions or run_id in self._claiming:
            return True
        self._claiming.add(run_id)
        try:
            try:
                run = await self.get_run(run_id)
            except NotFound:
                return False
            mine = run.owner is not None and run.owner.instance == self.process.instance
            if run.terminal or not mine:
                if run.terminal:
                    await self.io(self.store.disown, run_id, self.process.instance)
                return False
            await self._resume(run, task=task)
            return True
        finally:
            self._claiming.discard(run_id)

    async def claim_owned(self) -> None:
        """Executor: start every run the store says is ours but that is not queued or running here
        (a hand-over whose message was lost)."""
        owned = await self.io(self.store.owners)
        for run_id in owned.get(self.process.instance, []):
            if run_id not in self._executions:
                await self.claim(run_id)

    async def _enqueue(self, run: RunRecord, workers: list[WorkerRecord], *, task: str | None = None) -> None:
        if self.settings.engine == "temporal":
            from mcp_orchestrator.service.temporal.follow import submit

            await submit(self, run, workers, task)
            return
        self._executions[run.run_id] = RunExecution(self, run, continue_session=run.continue_session, task=task)
        await self.engine.submit(RunSpec.of(run, workers, task), force=True)

    async def _execute(self, spec: RunSpec) -> None:
        """The local engine's runner: execute the run ``spec`` describes through its strategy, here."""
        execution = self._executions.get(spec.run_id)
        if execution is None:  # queued, then forgotten (its deadline passed): nothing to run
            return
        try:
            # At most once: execute_run starts the run only if this instance still holds its lease
            # (checked under the run's lock, in the same thread hop that marks it running).
            await execute_run(self, execution, get_strategy(spec.strategy), list(spec.workers))
        finally:
            self._executions.pop(spec.run_id, None)

    async def _expired(self, run_id: str) -> None:
        """A queued run's deadline passed: it never starts."""
        self._executions.pop(run_id, None)
        error = RunError(failure_class="deadline_exceeded", message="the deadline passed while the run was queued")
        await self.finish_run(run_id, "failed", "never started: deadline exceeded while queued", error)
        self.events.publish(RunEvent(run_id, "run_ended", "run failed (deadline exceeded while queued)"))

    async def _resume(self, run: RunRecord, *, task: str | None = None) -> None:
        """Queue a run taken over from a dead instance (its workers and strategy come from the store);
        a run that was interrupted instead gets its leftover git worktrees cleaned (work kept on branches)."""
        if run.terminal:
            await self._discard_worktrees(run)
            return
        try:
            get_strategy(run.strategy)  # still known to this release
            workers = [await self.io(self.store.get_worker, name) for name in run.workers]
        except (NotFound, InvalidArgument) as e:
            error = RunError(failure_class="internal", message=f"cannot resume: {e}")
            await self.finish_run(run.run_id, "failed", "could not be resumed", error)
            return
        await self._enqueue(run, workers, task=task)

    async def _discard_worktrees(self, run: RunRecord) -> None:
        for name in run.workers:
            try:
                worker = await self.io(self.store.get_worker, name)
                removed = await discard_run_worktrees(Path(worker.workdir), run.run_id)
            except (OrchestratorError, OSError) as e:  # NotFound, GitError
                log.warning("run %s: worktrees of %s not cleaned: %s", run.run_id, name, e)
                continue
            for path in removed:
                log.warning("run %s was interrupted: removed its worktree %s", run.run_id, path)

    async def _candidates(self, agent: str, names: list[str] | None) -> list[WorkerRecord]:
        if names is None:
            mine = [w for w in await self.list_workers() if w.owner_agent_id == agent and w.status != "stopped"]
            return mine
        if not isinstance(names, list) or len(names) > 32:
            raise InvalidArgument("workers", "must be a list of at most 32 worker names")
        out = []
        for name in names:
            check_name(name, "workers")
            w = await self.io(self.store.get_worker, name)
            if w.owner_agent_id != agent:
                raise Forbidden(f"Worker {name!r} belongs to agent {w.owner_agent_id!r}.", hint="Use your own workers.")
            if w.status == "stopped":
                raise InvalidArgument("workers", f"worker {name!r} is stopped", hint="Spawn a new worker.")
            out.append(w)
        return out

    async def get_run(self, run_id: str) -> RunRecord:
        """One run as stored (or, on the Temporal engine, as its cluster records it)."""
        try:
            return await self.io(self.store.get_run, check_run_id(run_id))
        except NotFound:
            if self.settings.engine != "temporal" or self._engine is None:
                raise
            from mcp_orchestrator.service.temporal.follow import lookup

            found = await lookup(self, run_id)
            if found is None:
                raise
            return found

    async def wait_run(
        self, run_id: str, wait_seconds: float, on_event: Callable[[RunEvent], Awaitable[None]] | None = None
    ) -> RunRecord:
        """Wait up to ``wait_seconds`` for the run to end; return it as it stands then."""
        check_run_id(run_id)
        if wait_seconds <= 0:
            return await self.get_run(run_id)
        with anyio.move_on_after(wait_seconds):
            async with self.events.subscribe(run_id) as stream, self._forwarding(run_id):
                run = await self.get_run(run_id)
                while run.status not in TERMINAL_RUN_STATUSES:
                    # Events give prompt progress for runs executing here; the store is the truth
                    # (a run of another process, or an event dropped by a full buffer).
                    with anyio.move_on_after(0.5 if run_id in self._executions else 0.2):
                        async for event in stream:
                            if on_event is not None:
                                await on_event(event)
                            if event.kind == "run_ended":
                                break
                    run = await self.get_run(run_id)
                return run
        return await self.get_run(run_id)

    @asynccontextmanager
    async def _forwarding(self, run_id: str) -> AsyncIterator[None]:
        """A front end hears the executor's events of ``run_id`` while the context is open."""
        if self.executor is None or self._tg is None:
            yield
            return
        scope = anyio.CancelScope()
        watch = self.executor.watch

        async def forward() -> None:
            with scope:
                await watch(run_id, self.events.publish)

        self._tg.start_soon(forward, name=f"watch:{run_id}")
        try:
            yield
        finally:
            scope.cancel()

    async def list_runs(
        self,
        *,
        worker_name: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        strategy: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> RunList:
        """A page of runs, newest first."""
        if worker_name is not None:
            check_name(worker_name, "workerName")
        if agent_id is not None:
            check_agent_id(agent_id)
        if cursor is not None:
            check_run_id(cursor, "cursor")
        flt = RunFilter(worker_name=worker_name, agent_id=agent_id, status=status, strategy=strategy)
        page, nxt = await self.io(self.store.list_runs, flt, limit, cursor)
        return RunList(runs=page, next_cursor=nxt)

    async def cancel_run(self, agent_id: str, run_id: str) -> RunRecord:
        """Cancel a run of the calling agent; a finished run is returned unchanged."""
        agent = await self.guard_write(agent_id)
        run = await self.get_run(run_id)
        if run.agent_id != agent:
            raise Forbidden(f"Run {run_id} belongs to agent {run.agent_id!r}.", hint="Only its owner can cancel it.")
        if run.terminal:
            return run
        if not await self._cancel_here(run_id, f"canceled by {agent}"):
            await self._request_cancel(run_id, f"canceled by {agent}")
        return await self.wait_run(run_id, 10.0)

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

        run = await self.io(self.store.update_run, run_id, change)
        if not run.terminal:
            await self.io(self.store.request_cancel, run_id, reason)

    def step_output_path(self, run_id: str, index: int) -> Path:
        """Where a step's full output is spooled."""
        return self.store.step_output_path(check_run_id(run_id), index)

    # ---- panic --------------------------------------------------------------------------------

    async def panic(self, agent_id: str, reason: str) -> PanicState:
        """Engage the write guard and cancel every running step here (others follow within a second)."""
        agent = check_agent_id(agent_id)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000 or "\x00" in reason:
            raise InvalidArgument("reason", "must be 1-1000 characters without NUL", hint="Say why work must stop.")
        current = await self._get_panic()
        if current.engaged:
            return current
        state = PanicState(engaged=True, reason=self.redactor.text(reason), engaged_by=agent, engaged_at=utcnow())
        await self._set_panic(state)
        for run_id in self.engine.running() | self.engine.queued():
            await self._cancel_here(run_id, f"panic engaged by {agent}: {reason}")
        if self.settings.engine == "temporal":  # and every run of the cluster, whichever server started it
            from mcp_orchestrator.engine.temporal.engine import TemporalEngine

            assert isinstance(self.engine, TemporalEngine)
            await self.engine.cancel_all()
        return state

    async def _get_panic(self) -> PanicState:
        """The panic switch: this data directory's, or on the Temporal engine the cluster's as well."""
        local = await self.io(self.store.get_panic)
        if local.engaged or self.settings.engine != "temporal" or self._engine is None:
            return local
        from mcp_orchestrator.engine.temporal.engine import TemporalEngine

        assert isinstance(self.engine, TemporalEngine)
        return await self.engine.get_panic()

    async def _set_panic(self, state: PanicState) -> PanicState:
        """Engage or release the switch here, and on the Temporal engine for the whole cluster."""
        stored = await self.io(self.store.set_panic, state)
        if self.settings.engine == "temporal" and self._engine is not None:
            from mcp_orchestrator.engine.temporal.engine import TemporalEngine

            assert isinstance(self.engine, TemporalEngine)
            await self.engine.set_panic(state)
        return stored

    async def release_panic(self) -> PanicState:
        """Release the write guard (operators only: not exposed as a tool)."""
        return await self._set_panic(PanicState(engaged=False))

    async def panic_state(self) -> PanicState:
        """The current panic state."""
        return await self._get_panic()

    def emit(self, event: str, run_id: str, **fields: Any) -> None:
        """Append one event to the run log (with this instance as its process)."""
        self.runlog.emit(event, run_id, process=self.process.label, **fields)
        self.tracing.on_event(event, run_id, fields)

    def scheduler_view(self) -> dict[str, Any]:
        """This instance's queues, running counts per cap, waits and throughput."""
        view = self.engine.snapshot() if self._engine is not None else {}
        view["backends"] = self.caps.snapshot()
        view["instance"] = self.process.label
        view["gateway"] = self.gateway.snapshot()
        return view

    async def scheduler_overview(self) -> SchedulerView:
        """Every live instance's scheduler view (from heartbeats), summed."""
        await self._heartbeat()
        if self.executor is not None:  # the executor's queues, as they are now
            await self.executor.call({"op": "beat"})
        beats = await self.io(self.store.heartbeats)
        lease = self.settings.lease_seconds
        views = [payload.get("scheduler") for age, payload in beats.values() if age <= lease]
        procs = [v for v in views if isinstance(v, dict)]
        depth = {c: sum(int(v.get("depth", {}).get(c, 0)) for v in procs) for c in ("interactive", "batch")}
        oldest = {c: max([int(v.get("oldestWaitMs", {}).get(c, 0)) for v in procs] or [0]) for c in depth}
        return SchedulerView(
            processes=procs,
            depth=depth,
            running=sum(int(v.get("running", 0)) for v in procs),
            oldest_wait_ms=oldest,
            throughput_per_minute=sum(int(v.get("throughputPerMinute", 0)) for v in procs),
            unfinished_runs=len(await self.io(self.store.active_run_ids)),
            cluster=await self._cluster_view(),
        )

    async def _cluster_view(self) -> dict[str, Any] | None:
        """On the Temporal engine: the cluster's queues for the backends of this data directory's workers."""
        if self.settings.engine != "temporal" or self._engine is None:
            return None
        from mcp_orchestrator.engine.temporal.engine import TemporalEngine

        assert isinstance(self.engine, TemporalEngine)
        workers = await self.list_workers()
        backends: list[tuple[str, str]] = sorted({(w.model, w.runtime_mode) for w in workers})
        return await self.engine.cluster_view(backends)

    def to_wire(self, run: RunRecord) -> Run:
        """The caller's view of a run."""
        return run.to_wire()
