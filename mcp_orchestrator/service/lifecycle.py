"""A run's lifecycle: accept it (idempotent, recorded for replay), hand it to the executor or queue it on the
engine, start and execute it from its spec, resume it after a takeover, and clean up after it."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import anyio

from mcp_orchestrator.contracts import (
    Priority,
    RunBudget,
    RunError,
    RunRecord,
    RuntimeMode,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.engine import RunSpec
from mcp_orchestrator.errors import InvalidArgument, NotFound, OrchestratorError
from mcp_orchestrator.observability.replay import record_dispatch
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.service.execution import RunExecution, execute_run
from mcp_orchestrator.service.placement import check_placement
from mcp_orchestrator.service.policy import select_runtime
from mcp_orchestrator.service.run_reads import RunReads
from mcp_orchestrator.strategies import discard_run_worktrees, get_strategy

__all__ = ["MAX_TASK_CHARS", "RunLifecycle", "new_run_id"]

log = logging.getLogger(__name__)

MAX_TASK_CHARS = 200_000
MAX_FOLLOWED = 64  # a front end follows at most this many handed-over runs over their claim connections


def new_run_id() -> str:
    """A run id that sorts by creation time: ``run_`` + 12 hex digits of ms + 8 random hex digits."""
    return f"run_{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class RunLifecycle(RunReads):
    """Runs from acceptance to execution."""

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
        follow: bool = False,
    ) -> RunRecord:
        """Record a run as ``accepted`` and queue it; returns at once. ``follow``: the caller waits for the run
        next (``wait_run``), so a front end may hand it over in the background."""
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
            if temporal:  # one machine here: a local plan is always placed alike
                check_placement(plan.name, chosen)
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
            if temporal and key is not None:  # the cluster's key, shared by every server, decides
                from mcp_orchestrator.service.temporal.keys import claim

                claimed = await claim(self, agent, key, run.run_id)
                if isinstance(claimed, RunRecord):
                    return claimed
                run.run_id = claimed
            stored = await self.io(self._accept, run, chosen)
            if stored.run_id != run.run_id:
                return stored  # the same idempotency key: the first run stands
            self.emit("run_accepted", run.run_id, agent_id=agent, strategy=plan.name, priority=priority)
            if self.executor is None:
                await self._enqueue(stored, chosen, task=task)
            else:
                await self._hand_over(stored, chosen, task, follow=follow)
            return stored

    def _accept(self, run: RunRecord, workers: list[WorkerRecord]) -> RunRecord:
        """Store a new run, then its replay package (one thread hop); the earlier run of the same
        idempotency key instead, untouched."""
        stored = self.store.create_run(run, keyed=self.settings.engine != "temporal")  # else the cluster's key
        if stored.run_id == run.run_id:
            record_dispatch(self.settings, stored, workers, self.redactor)
        return stored

    async def _hand_over(self, run: RunRecord, workers: list[WorkerRecord], task: str, *, follow: bool) -> None:
        """Front end: tell the executor about a run stored as its own. Should it never answer, the run
        fails (fenced: a terminal status is final, so a late executor cannot start it).

        ``follow`` (the caller waits for the run next): the claim goes on in the background, shielded, and its
        connection then carries the run's events, so the wait starts at once and needs no connection of its own.
        Otherwise the claim is answered before this returns: the caller may go away right after, and a claim
        racing an executor that just died must not start another one behind the caller's back (the new one
        takes the run over from the dead one instead)."""
        if follow and self._tg is not None and len(self._followed) < MAX_FOLLOWED:
            self._followed.add(run.run_id)
            self._tg.start_soon(self._claim_following, run, workers, task, name=f"follow:{run.run_id}")
            return
        await self._claim_or_fail(run, workers, task, None)

    async def _claim_or_fail(
        self, run: RunRecord, workers: list[WorkerRecord], task: str, publish: Callable[[RunEvent], None] | None
    ) -> Callable[[], Awaitable[None]] | None:
        assert self.executor is not None
        run_id = run.run_id
        try:
            with anyio.CancelScope(shield=True):  # a claim half sent would leave the executor the redacted task
                ok, forward = await self.executor.claim(run, workers, task, publish)
            if ok:
                return forward
            message = "the executor refused the run"
        except OrchestratorError as e:
            message = str(e)
        error = RunError(failure_class="unavailable", message=message)
        await self.finish_run(run_id, "failed", "never started: the executor was unavailable", error)
        self.events.publish(RunEvent(run_id, "run_ended", "run failed (the executor was unavailable)"))
        return None

    async def _claim_following(self, run: RunRecord, workers: list[WorkerRecord], task: str) -> None:
        try:
            forward = await self._claim_or_fail(run, workers, task, self.events.publish)
            if forward is not None:
                await forward()
        finally:
            self._followed.discard(run.run_id)

    async def claim(
        self,
        run_id: str,
        task: str | None = None,
        *,
        run: RunRecord | None = None,
        workers: list[WorkerRecord] | None = None,
    ) -> bool:
        """Executor: start a run a front end stored as owned by this instance (at most once here).

        ``run`` and ``workers``: the records as the front end just stored them, which spares reading them back
        (the start itself still checks the lease in the store, under the run's lock)."""
        if run_id in self._executions or run_id in self._claiming:
            return True
        self._claiming.add(run_id)
        try:
            if run is None or run.run_id != run_id:
                try:
                    run = await self.get_run(run_id)
                except NotFound:
                    return False
            mine = run.owner is not None and run.owner.instance == self.process.instance
            if run.terminal or not mine:
                if run.terminal:
                    await self.io(self.store.disown, run_id, self.process.instance)
                return False
            if workers is not None and [w.name for w in workers] == run.workers and not run.terminal:
                await self._enqueue(run, workers, task=task)
            else:
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
            workers = await self.io(lambda: [self.store.get_worker(name) for name in run.workers])
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
