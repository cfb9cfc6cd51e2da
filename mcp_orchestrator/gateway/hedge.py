"""Hedged requests: when the first candidate is silent for a while, start the next one too.

``hedge`` starts ``candidates[0]``. When ``delay`` seconds pass after the last start with no output from
any candidate still running (``has_output_fn``), or a candidate fails and none is left running, it starts
the next candidate, up to ``max_hedges`` extra ones. Once a running candidate has produced output, no more are
started. The first candidate to succeed wins; the others are canceled (a runtime kills its process tree
on cancellation) and every candidate's fate is returned as a ``HedgeRecord``. When every started candidate
fails, ``HedgeFailed`` carries the records (the primary's error first).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import anyio

__all__ = ["HedgeFailed", "HedgeOutcome", "HedgeRecord", "hedge"]

C = TypeVar("C")
R = TypeVar("R")

HedgeOutcome = Literal["not_started", "running", "won", "lost", "failed", "canceled"]


@dataclass
class HedgeRecord(Generic[C]):
    """One candidate of a hedge: when it started and ended (clock seconds) and how."""

    candidate: C
    index: int
    outcome: HedgeOutcome = "not_started"
    started_at: float | None = None
    ended_at: float | None = None
    error: Exception | None = None

    @property
    def duration(self) -> float | None:
        """Seconds it ran, once it ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


class HedgeFailed(Exception, Generic[C]):
    """Every candidate that was started failed."""

    def __init__(self, records: list[HedgeRecord[C]]) -> None:
        failed = [r for r in records if r.error is not None]
        super().__init__("; ".join(f"{r.candidate}: {r.error}" for r in failed) or "no candidate succeeded")
        self.records = records

    @property
    def primary_error(self) -> Exception | None:
        """The first candidate's error."""
        return self.records[0].error if self.records else None


async def hedge(
    candidates: Sequence[C],
    start_fn: Callable[[C], Awaitable[R]],
    has_output_fn: Callable[[C], bool],
    delay: float,
    max_hedges: int,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[R, list[HedgeRecord[C]]]:
    """Run ``start_fn`` on the first candidate, hedged by the next ones; the first success wins.

    Returns the winner's result and one record per candidate considered (``candidates[: 1 + max_hedges]``).
    Cancellation from outside cancels every started candidate and propagates.
    """
    if not candidates:
        raise ValueError("hedge needs at least one candidate")
    records = [HedgeRecord(c, i) for i, c in enumerate(candidates[: 1 + max(max_hedges, 0)])]
    won: list[R] = []
    send, receive = anyio.create_memory_object_stream[int](len(records))

    async with send, receive, anyio.create_task_group() as tg:

        async def run(record: HedgeRecord[C]) -> None:
            record.outcome, record.started_at = "running", clock()
            try:
                result = await start_fn(record.candidate)
            except anyio.get_cancelled_exc_class():
                record.outcome, record.ended_at = "canceled", clock()
                raise
            except Exception as e:  # the candidate's own failure: recorded, the others go on
                record.outcome, record.error, record.ended_at = "failed", e, clock()
                send.send_nowait(record.index)
                return
            record.ended_at = clock()
            if won:  # finished in the same instant as the winner
                record.outcome = "lost"
                return
            record.outcome = "won"
            won.append(result)
            tg.cancel_scope.cancel()

        tg.start_soon(run, records[0])
        started, next_at = 1, anyio.current_time() + delay
        while started < len(records):
            failed = False
            with anyio.move_on_at(next_at):
                await receive.receive()
                failed = True
            live = [r for r in records[:started] if r.outcome in ("running", "not_started")]
            if any(has_output_fn(r.candidate) for r in live):
                break  # a candidate is answering: let it finish
            if failed and live:
                continue  # one failed, another is still working: its delay still runs
            tg.start_soon(run, records[started])
            started, next_at = started + 1, anyio.current_time() + delay
    if not won:
        raise HedgeFailed(records)
    return won[0], records
