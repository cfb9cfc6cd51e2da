"""Fairness under load (issue #5, point 6): a steady interactive load never keeps batch work waiting
without bound, while the global cap and the per-backend caps hold.

Set-up (service API in-process): ``max_running`` M = 3, every ``*/mock`` backend capped at 2
(``backend_caps={"mock": 2}``), ``batch_every`` B = 2, aging off (60 s, longer than the test), so
the streak rule alone is what lets batch through. A producer keeps at least three interactive runs
queued the whole time; twelve batch runs (single steps and two-step ``codex_writes_gemini_reviews``
hand-offs) are queued at t0.

The bound, from the scheduler's rules:

* Pick order. Before t0 the batch queue is empty, so every pick resets the streak; from t0 on, while
  both classes wait, a batch run is picked after at most B interactive picks. Batch runs are FIFO,
  so the k-th batch run (k = 1..N) is among the first k * (B + 1) picks after t0. This is checked
  exactly on the recorded pick order.
* Time. A pick happens whenever a slot frees and something waits. Let H be the longest time any run
  held a slot (its ``runMs``, plus a small margin for the lease check before and the store write
  after). In any window of length H every slot occupied at the window's start frees at least once,
  so each window brings at least M picks. Hence batch run k starts within
      ceil(k * (B + 1) / M) * H + slack      after t0,
  and an interactive run with j - 1 interactive runs ahead of it (j <= 4 here) within
      ceil((j + ceil(j / B)) / M) * H + slack.
  Both are checked on run telemetry (``queueWaitMs`` = startedAt - createdAt).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any

import anyio
import pytest
from sched_support import eventually

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import RunRecord
from mcp_orchestrator.engine.base import Ticket
from mcp_orchestrator.service import Orchestrator

pytestmark = pytest.mark.anyio

M, B = 3, 2
MOCK_CAP = 2
BATCH_RUNS = 12
INTERACTIVE_DEPTH = 3
HOLD_MARGIN = 0.1  # seconds a slot is held around a run's own runMs (lease check, store writes)
SLACK = 0.5  # dispatch latency on a loaded two-core machine
REVIEW = '[[mock@reviewer delay=0.04 say={"decision":"approve","rationale":"fine"}]] [[mock@writer delay=0.04]]'


async def test_steady_interactive_load_lets_batch_through_within_the_bound(settings: Settings) -> None:
    tuned = dataclasses.replace(
        settings, max_running=M, batch_every=B, aging_seconds=60.0, backend_caps={"mock": MOCK_CAP}, fsync=False
    )
    orch = Orchestrator(tuned)
    workdir = str(settings.roots[0] / "work")
    picks: list[Ticket] = []
    samples: list[tuple[int, dict[str, Any]]] = []
    async with orch.running():
        engine = orch.engine
        start = engine._start

        def record(ticket: Ticket) -> None:  # the pick order, as the scheduler decides it
            picks.append(ticket)
            start(ticket)

        engine._start = record  # type: ignore[method-assign]
        submit = engine.submit
        t0_index: int | None = None  # picks made before the first batch run was queued

        async def submit_and_mark(ticket: Ticket, *, force: bool = False) -> None:
            nonlocal t0_index
            if ticket.priority == "batch" and t0_index is None:
                t0_index = len(picks)
            await submit(ticket, force=force)

        engine.submit = submit_and_mark  # type: ignore[method-assign]

        inter = [f"i{n}" for n in range(6)]
        for name in inter:
            await orch.spawn_worker("ia", name, "mock", workdir=workdir)
        for name in ("b0", "b1", "b2"):
            await orch.spawn_worker("ba", name, "mock", workdir=workdir)
        await orch.spawn_worker("ba", "bcx", "codex_cli", runtime_mode="mock", workdir=workdir)
        await orch.spawn_worker("ba", "bgm", "gemini_cli", runtime_mode="mock", role="reviewer", workdir=workdir)

        interactive: list[RunRecord] = []
        done_producing = anyio.Event()

        async def produce() -> None:
            n = 0
            while not done_producing.is_set():
                samples.append((engine.snapshot()["running"], orch.caps.snapshot()))
                if engine.snapshot()["depth"]["interactive"] < INTERACTIVE_DEPTH:
                    task = f"interactive {n} [[mock delay=0.05]]"
                    interactive.append(await orch.dispatch("ia", task, workers=[inter[n % len(inter)]]))
                    n += 1
                else:
                    await anyio.sleep(0.005)  # load shaping, not synchronisation

        batch: list[RunRecord] = []
        with anyio.fail_after(60):  # starvation would hit this: the producer never stops on its own
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)

                async def loaded() -> bool:
                    return bool(engine.snapshot()["depth"]["interactive"] >= INTERACTIVE_DEPTH)

                await eventually(loaded, 10, interval=0.005)
                for k in range(BATCH_RUNS):
                    if k % 3 == 2:  # a two-step hand-off: steps on codex_cli/mock then gemini_cli/mock
                        run = await orch.dispatch(
                            "ba", f"batch {k} {REVIEW}", strategy="codex_writes_gemini_reviews",
                            workers=["bcx", "bgm"], priority="batch",
                        )  # fmt: skip
                    else:
                        run = await orch.dispatch(
                            "ba", f"batch {k} [[mock delay=0.1]]", workers=[f"b{k % 3}"], priority="batch"
                        )
                    batch.append(run)

                async def every_batch_run_started() -> bool:
                    return {r.run_id for r in batch} <= {t.run_id for t in picks}

                await eventually(every_batch_run_started, 50, interval=0.01)
                assert engine.snapshot()["depth"]["interactive"] > 0  # the interactive load was still on
                done_producing.set()
            every = [r.run_id for r in interactive + batch]
            for run_id in every:
                ended = await orch.wait_run(run_id, 30)
                assert ended.status == "completed", (ended.status, ended.summary, ended.error)
        runs = {run_id: await orch.get_run(run_id) for run_id in every}

    # ---- caps ----------------------------------------------------------------------------------------
    assert max(running for running, _ in samples) <= M
    for _, backends in samples:
        for name, b in backends.items():
            assert b["running"] <= MOCK_CAP, (name, b)
    assert max(b["running"] for _, bs in samples for b in bs.values()) == MOCK_CAP  # the caps did bind
    assert {s.runtime_mode for r in runs.values() for s in r.steps} == {"mock"}
    assert sum(len(runs[r.run_id].steps) == 2 for r in batch) == BATCH_RUNS // 3  # the hand-offs ran both steps

    # ---- pick order: at most B interactive picks before each batch pick, from t0 on ------------------
    batch_ids = [r.run_id for r in batch]
    order = [t.run_id for t in picks]
    assert t0_index is not None
    for k, run_id in enumerate(batch_ids, start=1):
        position = order.index(run_id) - t0_index + 1
        assert position <= k * (B + 1), f"batch run {k} was pick {position} after t0 (bound {k * (B + 1)})"
    streak = 0
    for t in picks[t0_index : order.index(batch_ids[-1])]:
        streak = 0 if t.priority == "batch" else streak + 1
        assert streak <= B

    # ---- time: the computed bound, on run telemetry --------------------------------------------------
    hold = max(r.run_ms or 0 for r in runs.values()) / 1000 + HOLD_MARGIN
    t0 = min(r.created_at for r in batch)
    waits = []
    for k, run in enumerate((runs[i] for i in batch_ids), start=1):
        assert run.queue_wait_ms is not None and run.started_at is not None
        assert abs(run.queue_wait_ms - _ms(run.started_at, run.created_at)) <= 1
        bound = math.ceil(k * (B + 1) / M) * hold + SLACK
        since_t0 = _ms(run.started_at, t0) / 1000
        assert since_t0 <= bound, f"batch run {k} started {since_t0:.2f} s after t0; bound {bound:.2f} s"
        waits.append(run.queue_wait_ms)
    j = INTERACTIVE_DEPTH + 1
    inter_bound = math.ceil((j + math.ceil(j / B)) / M) * hold + SLACK
    inter_waits = sorted(runs[r.run_id].queue_wait_ms or 0 for r in interactive)
    assert inter_waits[-1] / 1000 <= inter_bound, (inter_waits[-5:], inter_bound)
    print(
        f"\nfairness: {len(interactive)} interactive, {len(batch)} batch; H={hold:.3f}s; "
        f"batch waits ms={waits}; interactive p95={inter_waits[int(len(inter_waits) * 0.95)]} ms"
    )


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000
