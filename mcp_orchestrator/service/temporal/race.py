"""``gateway.hedge``'s rules in plain asyncio, for a run's workflow.

The gateway's ``hedge`` cancels its losers through an anyio cancel scope, which re-delivers the cancellation
on every turn of the event loop until the task ends. In a workflow a canceled step activity ends only once
the Temporal server has heard of the cancellation (``WAIT_CANCELLATION_COMPLETED``: its process tree is
killed first), which needs the workflow to yield: the scope's loop never lets it (the SDK reports a
deadlock). ``race`` cancels each loser once and waits for it. The rules are the same: start the first
candidate; when ``delay`` passes after the last start with no output from any running candidate, or a
candidate fails and none is left running, start the next (up to ``max_hedges`` more); once a running one has
output, start no more; the first success wins and the others are canceled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from mcp_orchestrator.gateway import HedgeFailed, HedgeRecord

__all__ = ["race"]

C = TypeVar("C")
R = TypeVar("R")


async def race(
    candidates: Sequence[C],
    start_fn: Callable[[C], Awaitable[R]],
    has_output_fn: Callable[[C], bool],
    delay: float,
    max_hedges: int,
    clock: Callable[[], float],
) -> tuple[R, list[HedgeRecord[C]]]:
    """The winner's result and every candidate's record; ``HedgeFailed`` when every started one failed."""
    records = [HedgeRecord(c, i) for i, c in enumerate(candidates[: 1 + max(max_hedges, 0)])]
    tasks: dict[asyncio.Task[R], HedgeRecord[C]] = {}
    won: list[R] = []

    async def run(candidate: C) -> R:
        return await start_fn(candidate)

    def launch(record: HedgeRecord[C]) -> None:
        record.outcome, record.started_at = "running", clock()
        tasks[asyncio.ensure_future(run(record.candidate))] = record

    launch(records[0])
    started, next_at, more = 1, clock() + delay, True
    try:
        while not won:
            live = [t for t in tasks if not t.done()]
            hedging = more and started < len(records)
            if not live and not hedging:
                break
            timeout = max(next_at - clock(), 0.0) if hedging else None
            done, _ = await asyncio.wait(live, timeout=timeout, return_when=asyncio.FIRST_COMPLETED) if live else (
                set(), set())  # fmt: skip
            failed = False
            for task in sorted(done, key=lambda t: tasks[t].index):
                record = tasks[task]
                record.ended_at = clock()
                error = task.exception()
                if error is not None:
                    record.outcome, record.error, failed = "failed", error, True  # type: ignore[assignment]
                elif won:
                    record.outcome = "lost"  # finished in the same instant as the winner
                else:
                    record.outcome = "won"
                    won.append(task.result())
            if won or not hedging:
                continue
            running = [tasks[t] for t in tasks if not t.done()]
            if any(has_output_fn(r.candidate) for r in running):
                more = False  # a candidate is answering: let it finish
            elif (failed and not running) or (not failed and clock() >= next_at):
                launch(records[started])
                started, next_at = started + 1, clock() + delay
    finally:
        losers = [t for t in tasks if not t.done()]
        for task in losers:
            task.cancel()
        if losers:
            await asyncio.gather(*losers, return_exceptions=True)
        for task in losers:
            tasks[task].outcome, tasks[task].ended_at = "canceled", clock()
    if not won:
        raise HedgeFailed(records)
    return won[0], records
