"""The orchestrator service: workers, runs and guards, independent of any transport.

``Orchestrator`` is assembled from one class per idea, each in its own module and each building on the one
before: ``core`` (what a run's execution uses), ``panic_guard``, ``workers``, ``run_reads`` (get, wait,
list, cancel), ``lifecycle`` (accept, queue, execute, resume); this module adds the process's lifetime:
taking over what dead processes left, heartbeats, leases, the control loop and the scheduler view."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio

from mcp_orchestrator.contracts import (
    SchedulerView,
)
from mcp_orchestrator.engine import ExecutionEngine, LocalScheduler, SchedulerLimits
from mcp_orchestrator.service.lifecycle import MAX_TASK_CHARS, RunLifecycle, new_run_id
from mcp_orchestrator.service.recovery import reap, recover

__all__ = ["MAX_TASK_CHARS", "Orchestrator", "new_run_id"]

log = logging.getLogger(__name__)

CONTROL_INTERVAL = 0.25


class Orchestrator(RunLifecycle):
    """Spawns workers, dispatches runs, follows and cancels them. Build once per process.

    With an ``executor`` link this instance is a front end: it accepts runs and hands them to the
    data directory's executor process instead of running them (``serve`` in its default mode)."""

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
            cluster=await self.cluster_overview(),
        )

    async def cluster_overview(self) -> dict[str, Any] | None:
        """On the Temporal engine: the cluster's queues for the backends of this data directory's workers."""
        if self.settings.engine != "temporal" or self._engine is None:
            return None
        from mcp_orchestrator.engine.temporal.engine import TemporalEngine
        from mcp_orchestrator.service.temporal.cluster import backends_of

        assert isinstance(self.engine, TemporalEngine)
        return await self.engine.cluster_view(backends_of(await self.list_workers()))
