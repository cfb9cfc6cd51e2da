"""Backpressure, retries and queued deadlines through the real server object (in-memory MCP client).

Issue #5, points 3, 4 and 5 (queued part). Each test sets the scheduler knobs it needs on the
``Settings`` of a fresh data directory; the mock runtime scripts delays and failures.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import pytest
from mcp import Client
from sched_support import AGENT, call, eventually, refused

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def client_with(settings: Settings, **knobs: Any) -> AsyncIterator[Client]:
    async with Client(build_server(dataclasses.replace(settings, fsync=False, **knobs))) as c:
        yield c


async def wait_status(c: Client, run_id: str, status: str, seconds: float = 10) -> dict[str, Any]:
    run: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal run
        run = await call(c, "get_run", runId=run_id)
        return bool(run["status"] == status)

    await eventually(reached, seconds)
    return run


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---- 3: backpressure ----------------------------------------------------------------------------


async def test_full_queue_is_refused_deterministically_and_nothing_accepted_is_lost(settings: Settings) -> None:
    limit = 3
    async with client_with(settings, max_running=1, queue_limits={"interactive": limit, "batch": 10_000}) as c:
        await call(c, "spawn_worker", agentId=AGENT, name="w", model="mock")
        blocker = await call(c, "dispatch_task", agentId=AGENT, task="[[mock delay=1]]", waitSeconds=0)
        await wait_status(c, blocker["runId"], "running")
        accepted = [blocker["runId"]]
        for i in range(limit):
            run = await call(c, "dispatch_task", agentId=AGENT, task=f"queued {i}", waitSeconds=0)
            assert run["status"] == "accepted"
            accepted.append(run["runId"])

        texts = [await refused(c, "dispatch_task", agentId=AGENT, task="one too many", waitSeconds=0) for _ in range(3)]
        retry_after = 1 + math.ceil(limit / 1 / 10)  # the scheduler's rule: depth / max_running / 10, rounded up, + 1
        expected = (
            f"overloaded: the interactive queue is full ({limit} of {limit} runs waiting). Nothing was accepted. "
            f"Retry after {retry_after} s, or dispatch with priority 'batch'."
        )
        assert texts == [texts[0]] * 3  # the same depth gives the same text, word for word
        assert texts[0].endswith(expected), texts[0]  # (after the SDK's "Error executing tool ...: " prefix)

        # The other class has room; a refused dispatch stored nothing.
        batch = await call(c, "dispatch_task", agentId=AGENT, task="batch meanwhile", waitSeconds=0, priority="batch")
        accepted.append(batch["runId"])
        listed = await call(c, "list_worker_runs", limit=200)
        assert sorted(r["runId"] for r in listed["runs"]) == sorted(accepted)
        assert "one too many" not in {r["task"] for r in listed["runs"]}

        # Nothing accepted is lost: every run completes, each exactly once.
        for run_id in accepted:
            run = await call(c, "get_run", runId=run_id, waitSeconds=30)
            assert run["status"] == "completed", run
            assert len(run["steps"]) == 1
        # Once the queue drained, the class accepts again.
        again = await call(c, "dispatch_task", agentId=AGENT, task="after the drain", waitSeconds=10)
        assert again["status"] == "completed"


async def test_a_burst_of_concurrent_dispatches_never_overfills_the_queue(settings: Settings) -> None:
    limit = 5
    async with client_with(settings, max_running=1, queue_limits={"interactive": limit, "batch": 10_000}) as c:
        await call(c, "spawn_worker", agentId=AGENT, name="w", model="mock")
        blocker = await call(c, "dispatch_task", agentId=AGENT, task="[[mock delay=1]]", waitSeconds=0)
        await wait_status(c, blocker["runId"], "running")
        accepted: list[str] = []
        refusals: list[str] = []

        async def one(i: int) -> None:
            result = await c.call_tool("dispatch_task", {"agentId": AGENT, "task": f"burst {i}", "waitSeconds": 0})
            if result.is_error:
                refusals.append(result.content[0].text)  # type: ignore[union-attr]
            else:
                assert result.structured_content is not None
                accepted.append(result.structured_content["runId"])

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)
        assert len(accepted) + len(refusals) == 30
        assert len(accepted) == limit, f"{len(accepted)} accepted with a queue limit of {limit}"
        assert all(f"overloaded: the interactive queue is full ({limit} of {limit}" in t for t in refusals)
        for run_id in [blocker["runId"], *accepted]:
            run = await call(c, "get_run", runId=run_id, waitSeconds=30)
            assert run["status"] == "completed", run


# ---- 4: retries ---------------------------------------------------------------------------------

BASE, CAP = 0.2, 0.3


def check_backoff(attempts: list[dict[str, Any]]) -> None:
    """Attempt n+1 waited delay_n, uniform in [0, min(cap, base * 2**(n-1))] (full jitter), and really waited it."""
    assert attempts[0]["delayBeforeMs"] == 0
    for n, (before, after) in enumerate(itertools.pairwise(attempts), start=1):
        ceiling_ms = min(CAP, BASE * 2 ** (n - 1)) * 1000
        assert 0 <= after["delayBeforeMs"] <= ceiling_ms, (n, after)
        gap = (ts(after["startedAt"]) - ts(before["endedAt"])).total_seconds() * 1000
        assert gap >= after["delayBeforeMs"] - 1, (n, gap, after)  # the recorded delay was slept


async def test_transient_failure_recovers_by_retry_within_the_policy(settings: Settings) -> None:
    knobs = {"retry_attempts": 3, "retry_base_seconds": BASE, "retry_cap_seconds": CAP}
    async with client_with(settings, **knobs) as c:
        names = [f"w{i}" for i in range(6)]
        for name in names:
            await call(c, "spawn_worker", agentId=AGENT, name=name, model="mock")
        runs = [
            await call(c, "dispatch_task", agentId=AGENT, task=f"flaky {name} [[mock fail=unavailable fail_times=2]]",
                       workers=[name], waitSeconds=0)
            for name in names
        ]  # fmt: skip
        for run in runs:
            run = await call(c, "get_run", runId=run["runId"], waitSeconds=30)
            assert run["status"] == "completed", run
            (step,) = run["steps"]
            assert step["status"] == "completed"
            assert step["attempt"] == 3
            attempts = step["attempts"]
            assert [a["attempt"] for a in attempts] == [1, 2, 3]
            assert [a["failureClass"] for a in attempts] == ["unavailable", "unavailable", None]
            assert "scripted failure (unavailable)" in attempts[0]["message"]
            check_backoff(attempts)


async def test_permanent_failure_is_not_retried(settings: Settings) -> None:
    async with client_with(settings, retry_attempts=5, retry_base_seconds=BASE, retry_cap_seconds=CAP) as c:
        await call(c, "spawn_worker", agentId=AGENT, name="w", model="mock")
        for klass in ("auth", "bad_output"):
            run = await call(c, "dispatch_task", agentId=AGENT, task=f"[[mock fail={klass}]]", waitSeconds=30)
            assert run["status"] == "failed"
            assert run["error"]["class"] == klass
            (step,) = run["steps"]
            assert step["attempt"] == 1
            assert [a["failureClass"] for a in step["attempts"]] == [klass]


async def test_exhausted_retries_fail_with_every_attempt_recorded(settings: Settings) -> None:
    async with client_with(settings, retry_attempts=4, retry_base_seconds=BASE, retry_cap_seconds=CAP) as c:
        await call(c, "spawn_worker", agentId=AGENT, name="w", model="mock")
        run = await call(c, "dispatch_task", agentId=AGENT, task="[[mock fail=rate_limited]]", waitSeconds=30)
        assert run["status"] == "failed"
        assert run["error"]["class"] == "rate_limited"
        (step,) = run["steps"]
        assert step["status"] == "failed" and step["failureClass"] == "rate_limited"
        assert step["attempt"] == 4
        assert [a["failureClass"] for a in step["attempts"]] == ["rate_limited"] * 4
        check_backoff(step["attempts"])  # the 3rd retry's ceiling is the cap: min(0.3, 0.2 * 4)


async def test_the_total_retry_budget_stops_retries(settings: Settings) -> None:
    # A budget of 1 ms is spent by the first attempt itself: no retry fits.
    async with client_with(settings, retry_attempts=5, retry_base_seconds=BASE, retry_total_seconds=0.001) as c:
        await call(c, "spawn_worker", agentId=AGENT, name="w", model="mock")
        run = await call(c, "dispatch_task", agentId=AGENT, task="[[mock fail=unavailable]]", waitSeconds=30)
        assert run["status"] == "failed"
        assert run["steps"][0]["attempt"] == 1


# ---- 5: deadline while queued -------------------------------------------------------------------


async def test_deadline_expires_while_queued_and_the_run_never_starts(settings: Settings) -> None:
    async with client_with(settings, max_running=1) as c:
        await call(c, "spawn_worker", agentId=AGENT, name="w", model="mock")
        blocker = await call(c, "dispatch_task", agentId=AGENT, task="[[mock delay=2.5]]", waitSeconds=0)
        await wait_status(c, blocker["runId"], "running")
        late = await call(c, "dispatch_task", agentId=AGENT, task="too late", waitSeconds=0, deadlineSeconds=1)
        assert late["status"] == "accepted" and late["deadlineAt"] is not None
        after = await call(c, "get_run", runId=late["runId"], waitSeconds=10)
        assert after["status"] == "failed"
        assert after["error"]["class"] == "deadline_exceeded"
        assert after["steps"] == [] and after["startedAt"] is None  # no step started
        assert 900 <= after["queueWaitMs"] < 2400  # it ended at its deadline, not when the slot freed up
        blocked = await call(c, "get_run", runId=blocker["runId"], waitSeconds=10)
        assert blocked["status"] == "completed"
        # A deadline that leaves room is met as usual.
        ok = await call(c, "dispatch_task", agentId=AGENT, task="in time", waitSeconds=10, deadlineSeconds=30)
        assert ok["status"] == "completed"
