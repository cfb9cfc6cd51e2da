"""The in-process engine: jobs run in a task group owned by the server's lifespan."""

from __future__ import annotations

import logging
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from mcp_orchestrator.engine.base import ExecutionEngine, Job

__all__ = ["LocalEngine"]

log = logging.getLogger(__name__)


class LocalEngine(ExecutionEngine):
    """Runs each job in its own cancel scope inside one task group.

    Use as an async context manager; leaving it cancels whatever still runs.
    """

    def __init__(self) -> None:
        self._tg: TaskGroup | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}

    async def __aenter__(self) -> LocalEngine:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None

    async def submit(self, run_id: str, job: Job) -> None:
        """Schedule ``job``; it runs until it returns or is cancelled."""
        if self._tg is None:
            raise RuntimeError("the engine is not running")
        scope = anyio.CancelScope()
        self._scopes[run_id] = scope

        async def runner() -> None:
            try:
                with scope:
                    await job()
            except Exception:  # the job's own boundary records failures; this is the last net
                log.exception("run %s: job crashed", run_id)
            finally:
                self._scopes.pop(run_id, None)

        self._tg.start_soon(runner, name=f"run:{run_id}")

    def cancel(self, run_id: str) -> bool:
        """Cancel the job's scope; the job records the cancellation itself."""
        scope = self._scopes.get(run_id)
        if scope is None:
            return False
        scope.cancel()
        return True

    def running(self) -> frozenset[str]:
        """Ids of runs executing in this process."""
        return frozenset(self._scopes)
