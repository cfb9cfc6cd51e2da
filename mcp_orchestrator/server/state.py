"""Per-process application state reached from every request, and the middleware that starts it on demand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:  # annotations only: the modules load when a request needs them (issue 15: start-up)
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from mcp_orchestrator.server.auth.limits import DispatchLimiter
    from mcp_orchestrator.service import Orchestrator

__all__ = ["AppState", "StartOnDemand"]

# What is answered without the orchestrator: the handshake (``initialize``, or ``server/discover`` on the
# 2026-07-28 wire), ``ping`` and the tool list.
NEEDS_NO_SERVICE = frozenset({"initialize", "notifications/initialized", "server/discover", "ping", "tools/list"})


class AppState:
    """What the lifespan yields: the orchestrator service, and the per-principal dispatch limiter (auth on).

    Built with ``start`` instead of an orchestrator, the service starts on the first request that needs it
    (``StartOnDemand``): ``serve`` answers its client's first ``tools/list`` without importing it."""

    def __init__(
        self,
        orch: Orchestrator | None = None,
        limiter: DispatchLimiter | None = None,
        *,
        start: Callable[[], Awaitable[Orchestrator]] | None = None,
    ) -> None:
        if (orch is None) == (start is None):
            raise ValueError("an AppState takes an orchestrator or the way to start one")
        self._orch = orch
        self._start = start
        self._starting = anyio.Lock()
        self.limiter = limiter

    @property
    def orch(self) -> Orchestrator:
        """The running orchestrator (``StartOnDemand`` starts it before any request that reads this)."""
        if self._orch is None:
            raise RuntimeError("the orchestrator has not started: StartOnDemand starts it before a request needs it")
        return self._orch

    @property
    def pending(self) -> bool:
        """True until the orchestrator has started."""
        return self._orch is None

    async def started(self) -> Orchestrator:
        """The orchestrator, started first when it is not yet (once: concurrent callers wait for that start)."""
        async with self._starting:
            if self._orch is None:
                assert self._start is not None
                self._orch = await self._start()
        return self._orch


class StartOnDemand:
    """Server middleware: start the orchestrator before any message but the handshake and ``tools/list``."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Start the service when this message may need it, then pass it on."""
        state = ctx.lifespan_context
        if ctx.method not in NEEDS_NO_SERVICE and isinstance(state, AppState) and state.pending:
            await state.started()
        return await call_next(ctx)
