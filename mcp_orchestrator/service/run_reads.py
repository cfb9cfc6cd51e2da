"""Reading and stopping runs: get a run (from this store, or from the cluster under Temporal), wait for it to
change, list runs with pagination, and cancel one wherever it executes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from mcp_orchestrator.contracts import (
    TERMINAL_RUN_STATUSES,
    RunList,
    RunRecord,
)
from mcp_orchestrator.errors import Forbidden, NotFound
from mcp_orchestrator.guards import check_agent_id, check_name, check_run_id
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.service.workers import WorkerRegistry
from mcp_orchestrator.store import RunFilter

__all__ = ["RunReads"]


class RunReads(WorkerRegistry):
    """Runs as callers read and stop them."""

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

    async def _read_run(self, run_id: str) -> RunRecord:
        """``get_run`` read on the event loop (a run document from the page cache: no thread hop)."""
        try:
            return self.read_now(self.store.get_run, run_id)
        except NotFound:  # not here: perhaps in the cluster (Temporal), else NotFound as get_run says it
            return await self.get_run(run_id)

    async def wait_run(
        self, run_id: str, wait_seconds: float, on_event: Callable[[RunEvent], Awaitable[None]] | None = None
    ) -> RunRecord:
        """Wait up to ``wait_seconds`` for the run to end; return it as it stands then."""
        check_run_id(run_id)
        if wait_seconds <= 0:
            return await self._read_run(run_id)
        with anyio.move_on_after(wait_seconds):
            async with self.events.subscribe(run_id) as stream, self._forwarding(run_id):
                run = await self._read_run(run_id)
                while run.status not in TERMINAL_RUN_STATUSES:
                    # Events give prompt progress for runs executing here; the store is the truth
                    # (a run of another process, or an event dropped by a full buffer).
                    with anyio.move_on_after(0.5 if run_id in self._executions else 0.2):
                        async for event in stream:
                            if on_event is not None:
                                await on_event(event)
                            if event.kind == "run_ended":
                                break
                    run = await self._read_run(run_id)
                return run
        return await self._read_run(run_id)

    @asynccontextmanager
    async def _forwarding(self, run_id: str) -> AsyncIterator[None]:
        """A front end hears the executor's events of ``run_id`` while the context is open."""
        if self.executor is None or self._tg is None or run_id in self._followed:
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
        if self._engine is not None:  # on Temporal: the cluster's runs, every server's
            found = await self._engine.list_runs(flt, limit, cursor)
            if found is not None:
                return RunList(runs=found[0], next_cursor=found[1])
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
