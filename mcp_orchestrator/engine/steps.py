"""Executing one step on a runtime under a total timeout and a stall watchdog."""

from __future__ import annotations

import time

import anyio

from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepContext, StepOutcome, WorkerRuntime

__all__ = ["execute_step"]


async def execute_step(
    runtime: WorkerRuntime, ctx: StepContext, *, total_seconds: float, stall: float | None
) -> StepOutcome:
    """Run ``ctx`` on ``runtime``.

    Raises ``RunFailure("timeout")`` after ``total_seconds`` and ``RunFailure("stalled")``
    when no output arrives for ``stall`` seconds; in both cases the runtime sees a
    cancellation first and cleans up (kills its process tree) before this returns.
    Cancellation from outside propagates unchanged.
    """
    outcome: StepOutcome | None = None
    error: Exception | None = None
    stalled = False
    with anyio.move_on_after(total_seconds) as deadline:
        async with anyio.create_task_group() as tg:

            async def watchdog() -> None:
                nonlocal stalled
                assert stall is not None
                while True:
                    idle = time.monotonic() - ctx.output.last_activity
                    if idle >= stall:
                        stalled = True
                        tg.cancel_scope.cancel()
                        return
                    await anyio.sleep(min(stall - idle, 1.0) + 0.01)

            async def work() -> None:
                nonlocal outcome, error
                try:
                    outcome = await runtime.run_step(ctx)
                except Exception as e:  # re-raised below, outside the task group, with its own type
                    error = e
                tg.cancel_scope.cancel()

            if stall:
                ctx.output.last_activity = time.monotonic()
                tg.start_soon(watchdog)
            tg.start_soon(work)
    if error is not None:
        raise error
    if stalled:
        raise RunFailure("stalled", f"no output for {stall:g} s; the worker was stopped")
    if deadline.cancelled_caught and outcome is None:
        raise RunFailure("timeout", f"the step took longer than {total_seconds:g} s; the worker was stopped")
    if outcome is None:  # pragma: no cover - work() either sets it or raises
        raise RunFailure("internal", "the runtime returned nothing")
    return outcome
