"""A step's first attempt, hedged: the gateway's ``hedge`` over the runtimes of its ``HedgePlan``.

Each runtime writes to its own sink (``output.hedge-<mode>.log`` beside the step's output). The winner's
output becomes the step's; a losing primary's partial output moves aside as ``output.<mode>.log``. Every
started runtime is recorded as a ``HedgeAttempt`` in the step's routing decision; a canceled loser's
process tree is killed by its runtime.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import HedgeAttempt, RuntimeMode, WorkerRecord
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway import HedgeFailed, HedgePlan, HedgeRecord, hedge
from mcp_orchestrator.runtimes import OutputSink, StepOutcome

__all__ = ["TryStep", "describe_hedges", "hedged_attempt"]

TryStep = Callable[[RuntimeMode, WorkerRecord, str, int, OutputSink, int], Awaitable[StepOutcome]]
"""One try of a step: ``(mode, worker, prompt, step index, sink, attempt number)`` (``RunExecution._attempt``)."""


async def hedged_attempt(
    attempt: TryStep,
    settings: Settings,
    plan: HedgePlan,
    worker: WorkerRecord,
    prompt: str,
    index: int,
    sink: OutputSink,
    hedges: list[HedgeAttempt],
) -> tuple[StepOutcome, RuntimeMode, OutputSink]:
    """Run the first attempt of step ``index`` on ``plan.runtimes`` (hedged); the winner's outcome, mode and sink.

    Appends every runtime's fate to ``hedges``. When all fail, raises the primary's failure.
    """
    primary = plan.runtimes[0]
    main = sink.spool_path
    sinks: dict[RuntimeMode, OutputSink] = {primary: sink}
    for mode in plan.runtimes[1:]:
        path = main.with_name(f"output.hedge-{mode}.log") if main is not None else None
        sinks[mode] = OutputSink(
            path, excerpt_bytes=settings.output_excerpt_bytes, spool_cap=settings.output_spool_bytes
        )

    async def start(mode: RuntimeMode) -> StepOutcome:
        return await attempt(mode, worker, prompt, index, sinks[mode], 1)

    begun = time.monotonic()
    try:
        outcome, records = await hedge(
            plan.runtimes, start, lambda m: sinks[m].total_bytes > 0, plan.delay, len(plan.runtimes) - 1
        )
    except HedgeFailed as e:
        hedges.extend(describe_hedges(e.records, begun))
        for mode in plan.runtimes[1:]:
            sinks[mode].close()
        error = e.primary_error
        if isinstance(error, RunFailure):
            raise error from None
        raise RunFailure("internal", f"every hedged runtime failed: {e}") from e
    hedges.extend(describe_hedges(records, begun))
    winner = next(r.candidate for r in records if r.outcome == "won")
    for mode in plan.runtimes[1:]:
        sinks[mode].close()
    if winner == primary or main is None:
        return outcome, winner, sinks[winner]
    sink.close()  # the primary lost: its partial output moves aside, the winner's takes the step's place
    for path in main.parent.glob(main.name + "*"):
        path.replace(path.with_name(path.name.replace(main.name, f"output.{primary}.log", 1)))
    won = sinks[winner]
    if won.spool_path is not None and won.spool_path.exists():
        won.spool_path.replace(main)
    won.spool_path = main
    return outcome, winner, won


def describe_hedges(records: list[HedgeRecord[RuntimeMode]], begun: float) -> list[HedgeAttempt]:
    """Each hedged runtime's fate, as the step records it (times relative to ``begun``, on the hedge's clock)."""
    out = []
    for r in records:
        error = r.error
        out.append(
            HedgeAttempt(
                runtime_mode=r.candidate,
                outcome="not_started" if r.outcome == "running" else r.outcome,
                started_after_ms=None if r.started_at is None else int((r.started_at - begun) * 1000),
                duration_ms=None if r.duration is None else int(r.duration * 1000),
                failure_class=error.failure_class if isinstance(error, RunFailure) else None,
            )
        )
    return out
