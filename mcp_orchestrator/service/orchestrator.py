"""The orchestrator service: workers, runs and guards, independent of any transport."""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import (
    TERMINAL_RUN_STATUSES,
    FallbackPolicy,
    ModelName,
    PanicState,
    Run,
    RunError,
    RunList,
    RunRecord,
    RuntimeMode,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.engine import ExecutionEngine, LocalEngine
from mcp_orchestrator.errors import Forbidden, InvalidArgument, NotFound, PanicEngaged, RunFailure
from mcp_orchestrator.guards import check_agent_id, check_name, check_run_id, jail_workdir
from mcp_orchestrator.runtimes import WorkerRuntime, load_runtime
from mcp_orchestrator.service.events import EventBus, RunEvent
from mcp_orchestrator.service.execution import RunExecution, execute_run
from mcp_orchestrator.service.policy import select_runtime
from mcp_orchestrator.service.recovery import recover
from mcp_orchestrator.store import JsonRunStore, RunFilter
from mcp_orchestrator.store._files import is_alive, this_process
from mcp_orchestrator.strategies import get_strategy

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
    """Spawns workers, dispatches runs, follows and cancels them. Build once per process."""

    def __init__(self, settings: Settings, *, engine: ExecutionEngine | None = None) -> None:
        self.settings = settings
        self.store = JsonRunStore(settings.home)
        self.events = EventBus()
        self.process = this_process()
        self._engine = engine
        self._runtimes: dict[str, WorkerRuntime] = {}
        self._executions: dict[str, RunExecution] = {}
        self._worker_locks: dict[str, anyio.Lock] = defaultdict(anyio.Lock)
        self._limiter = anyio.CapacityLimiter(8)

    # ---- lifecycle ----------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Orchestrator]:
        """Recover what a dead process left behind, then serve until the context closes."""
        report = await self.io(recover, self.store)
        for line in report:
            log.warning("recovery: %s", line)
        async with LocalEngine() as engine, anyio.create_task_group() as tg:
            self._engine = self._engine or engine
            tg.start_soon(self._control_loop)
            tg.start_soon(self._background_check)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
                for runtime in self._runtimes.values():
                    with anyio.CancelScope(shield=True):
                        await runtime.aclose()

    async def _background_check(self) -> None:
        moved = await self.io(self.store.check)
        for path, reason in moved:
            log.warning("store check: quarantined %s (%s)", path, reason)

    async def _control_loop(self) -> None:
        """Honour cancel requests and the panic switch set by other processes."""
        while True:
            await anyio.sleep(CONTROL_INTERVAL)
            running = self.engine.running()
            if not running:
                continue
            panic = await self.io(self.store.get_panic)
            for run_id in running:
                if panic.engaged:
                    self._cancel_local(run_id, f"panic engaged by {panic.engaged_by}: {panic.reason}")
                    continue
                try:
                    run = await self.io(self.store.get_run, run_id)
                except NotFound:
                    continue
                if run.cancel_requested:
                    self._cancel_local(run_id, "canceled on request")

    @property
    def engine(self) -> ExecutionEngine:
        """The execution engine (available inside ``running()``)."""
        if self._engine is None:
            raise RuntimeError("the orchestrator is not running")
        return self._engine

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

    @asynccontextmanager
    async def worker_slot(self, name: str) -> AsyncIterator[None]:
        """One step at a time per worker in this process."""
        async with self._worker_locks[name]:
            yield

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
        """Record the end of a run."""

        def change(run: RunRecord) -> RunRecord:
            return run.model_copy(
                update={"status": status, "ended_at": utcnow(), "summary": summary, "error": error, "owner": None}
            )

        return await self.io(self.store.update_run, run_id, change)

    # ---- guards -------------------------------------------------------------------------------

    async def guard_write(self, agent_id: object) -> str:
        """Validate the caller and refuse while the panic switch is engaged."""
        agent = check_agent_id(agent_id)
        panic = await self.io(self.store.get_panic)
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
        if worker.current_run_id and worker.current_run_id not in self.engine.running():
            await self._request_cancel(worker.current_run_id)
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
    ) -> RunRecord:
        """Record a run as ``accepted`` and start it; returns at once."""
        agent = await self.guard_write(agent_id)
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
        candidates = await self._candidates(agent, workers)
        chosen = plan.select_workers(candidates)
        if runtime_mode is not None:
            for w in chosen:  # refuses a mode that cannot run a chosen worker's model, listing the valid ones
                select_runtime(w.model, runtime_mode, None)
        run = RunRecord(
            run_id=new_run_id(),
            status="accepted",
            strategy=plan.name,
            task=task,
            agent_id=agent,
            created_at=utcnow(),
            workers=[w.name for w in chosen],
            idempotency_key=idempotency_key,
            owner=self.process,
            timeout_seconds=timeout_seconds,
            runtime_mode=runtime_mode,
        )
        stored = await self.io(self.store.create_run, run)
        if stored.run_id != run.run_id:
            return stored  # the same idempotency key: the first run stands
        execution = RunExecution(self, stored, continue_session=continue_session)
        self._executions[run.run_id] = execution

        async def job() -> None:
            try:
                await execute_run(self, execution, plan, chosen)
            finally:
                self._executions.pop(run.run_id, None)

        await self.engine.submit(run.run_id, job)
        return stored

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
        """One run as stored."""
        return await self.io(self.store.get_run, check_run_id(run_id))

    async def wait_run(
        self, run_id: str, wait_seconds: float, on_event: Callable[[RunEvent], Awaitable[None]] | None = None
    ) -> RunRecord:
        """Wait up to ``wait_seconds`` for the run to end; return it as it stands then."""
        check_run_id(run_id)
        if wait_seconds <= 0:
            return await self.get_run(run_id)
        with anyio.move_on_after(wait_seconds):
            async with self.events.subscribe(run_id) as stream:
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
        if not self._cancel_local(run_id, f"canceled by {agent}"):
            await self._request_cancel(run_id)
        return await self.wait_run(run_id, 10.0)

    def _cancel_local(self, run_id: str, reason: str) -> bool:
        execution = self._executions.get(run_id)
        if execution is not None and execution.cancel_reason is None:
            execution.cancel_reason = reason
        return self.engine.cancel(run_id)

    async def _request_cancel(self, run_id: str) -> None:
        """Ask the owning process to cancel; a run nobody owns any more is ended here."""

        def change(run: RunRecord) -> RunRecord:
            if run.terminal:
                return run
            if run.owner is None or not is_alive(run.owner):
                reason = RunError(failure_class="canceled", message="canceled on request")
                return run.model_copy(update={"status": "canceled", "ended_at": utcnow(), "error": reason})
            return run.model_copy(update={"cancel_requested": True})

        await self.io(self.store.update_run, run_id, change)

    def step_output_path(self, run_id: str, index: int) -> Path:
        """Where a step's full output is spooled."""
        return self.store.step_output_path(check_run_id(run_id), index)

    # ---- panic --------------------------------------------------------------------------------

    async def panic(self, agent_id: str, reason: str) -> PanicState:
        """Engage the write guard and cancel every running step here (others follow within a second)."""
        agent = check_agent_id(agent_id)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000 or "\x00" in reason:
            raise InvalidArgument("reason", "must be 1-1000 characters without NUL", hint="Say why work must stop.")
        current = await self.io(self.store.get_panic)
        if current.engaged:
            return current
        state = PanicState(engaged=True, reason=reason, engaged_by=agent, engaged_at=utcnow())
        await self.io(self.store.set_panic, state)
        for run_id in self.engine.running():
            self._cancel_local(run_id, f"panic engaged by {agent}: {reason}")
        return state

    async def release_panic(self) -> PanicState:
        """Release the write guard (operators only: not exposed as a tool)."""
        return await self.io(self.store.set_panic, PanicState(engaged=False))

    async def panic_state(self) -> PanicState:
        """The current panic state."""
        return await self.io(self.store.get_panic)

    def to_wire(self, run: RunRecord) -> Run:
        """The caller's view of a run."""
        return run.to_wire()
