"""The scheduler's pick order on its own (``LocalScheduler`` with instant jobs, one slot): the streak rule,
aging, and that an aged batch backlog does not starve interactive work in turn."""

from __future__ import annotations

import anyio
import pytest

from mcp_orchestrator.engine import LocalScheduler, RunSpec, SchedulerLimits

pytestmark = pytest.mark.anyio


async def pick_order(batch: int, interactive: int, *, batch_every: int, aging_seconds: float) -> str:
    """Queue ``batch`` batch tickets, then ``interactive`` interactive ones, all at once; the order they
    start in, as a string of ``b`` and ``i``."""
    order: list[str] = []
    done = anyio.Event()
    total = batch + interactive

    count = 0

    def job(kind: str) -> RunSpec:
        nonlocal count
        count += 1
        priority = "batch" if kind == "b" else "interactive"
        return RunSpec(run_id=f"run-{kind}-{count}", strategy="single_worker", task=kind, priority=priority)

    async def run(spec: RunSpec) -> None:
        order.append(spec.task)
        await anyio.lowlevel.checkpoint()
        if len(order) == total:
            done.set()

    limits = SchedulerLimits(max_running=1, batch_every=batch_every, aging_seconds=aging_seconds)
    async with LocalScheduler(run, limits) as engine:
        for _ in range(batch):
            await engine.submit(job("b"))
        for _ in range(interactive):
            await engine.submit(job("i"))  # no checkpoint in between: the loop sees both queues full
        with anyio.fail_after(10):
            await done.wait()
    return "".join(order)


async def test_streak_rule_lets_one_batch_run_through_after_batch_every_interactive_starts() -> None:
    assert await pick_order(3, 8, batch_every=2, aging_seconds=3600) == "iibiibiibii"


async def test_without_aging_or_streak_batch_waits_for_interactive_work() -> None:
    assert await pick_order(3, 4, batch_every=10**6, aging_seconds=3600) == "iiiibbb"


async def test_an_aged_batch_backlog_alternates_with_interactive_work() -> None:
    # Every batch run is aged at once: batch gets every other start, and interactive work is not starved
    # until the whole backlog has drained.
    assert await pick_order(6, 3, batch_every=10**6, aging_seconds=0) == "ibibibbbb"
