"""Hedging: the next candidate starts after the delay; the first success wins and the others are canceled.

The first test runs real child processes (``fixtures/gateway/sleeper.py``, each with a grandchild) started
with ``anyio.open_process`` in their own session; a canceled candidate kills its process group, and /proc
shows nothing is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from gateway_support import FIXTURES, wait_until
from support.procs import alive

from mcp_orchestrator.gateway import HedgeFailed, hedge

pytestmark = pytest.mark.anyio


async def run_sleeper(pidfile: Path, seconds: float, answer: str, output: dict[str, bool], name: str) -> str:
    """Run ``sleeper.py`` to its end and return what it printed; on cancellation kill its whole tree."""
    argv = [sys.executable, str(FIXTURES / "sleeper.py"), str(pidfile), str(seconds), answer]
    proc = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proc.stdout is not None
        chunks = []
        async for chunk in proc.stdout:
            output[name] = True
            chunks.append(chunk)
        await proc.wait()
        return b"".join(chunks).decode().strip()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await proc.aclose()


def pids(pidfile: Path) -> set[int]:
    return {int(p) for p in pidfile.read_text().split()}


async def test_the_slow_candidate_is_hedged_after_the_delay_and_killed_after_the_winner(tmp_path: Path) -> None:
    output = {"slow": False, "fast": False}
    pidfiles = {name: tmp_path / f"{name}.pid" for name in output}
    plan = {"slow": (3600.0, "never printed"), "fast": (0.4, "answer from fast")}

    async def start(name: str) -> str:
        seconds, text = plan[name]
        if name == "fast":  # the slow one must be known to be running before it can be checked for leftovers
            await wait_until(pidfiles["slow"].exists, "the slow candidate's pid file")
        return await run_sleeper(pidfiles[name], seconds, text, output, name)

    with anyio.fail_after(20):
        result, records = await hedge(["slow", "fast"], start, output.__getitem__, delay=0.3, max_hedges=1)

    assert result == "answer from fast"
    assert [(r.candidate, r.outcome) for r in records] == [("slow", "canceled"), ("fast", "won")]
    slow, fast = records
    assert slow.started_at is not None and fast.started_at is not None
    assert fast.started_at - slow.started_at >= 0.3, "the hedge waited for the delay"
    assert slow.ended_at is not None and fast.ended_at is not None and slow.ended_at >= fast.ended_at
    leftovers = pids(pidfiles["slow"]) | pids(pidfiles["fast"])
    await wait_until(lambda: not alive(leftovers), f"no process of either candidate left ({leftovers})")


async def test_no_hedge_when_the_primary_answers_in_time() -> None:
    started: list[str] = []
    output: dict[str, bool] = {}

    async def start(name: str) -> str:
        started.append(name)
        output[name] = True  # streams at once, then takes a while to finish
        await anyio.sleep(0.2)
        return name

    with anyio.fail_after(10):
        result, records = await hedge(["a", "b", "c"], start, lambda n: output.get(n, False), 0.05, 2)
    assert (result, started) == ("a", ["a"])
    assert [r.outcome for r in records] == ["won", "not_started", "not_started"]


async def test_a_failed_primary_starts_the_next_at_once() -> None:
    async def start(name: str) -> str:
        if name == "a":
            raise RuntimeError("a is down")
        return name

    with anyio.fail_after(5):  # far less than the 60 s delay
        result, records = await hedge(["a", "b"], start, lambda n: False, 60.0, 1)
    assert result == "b"
    assert [(r.outcome, str(r.error)) for r in records] == [("failed", "a is down"), ("won", "None")]


async def test_every_candidate_failing_raises_with_the_primary_first() -> None:
    async def start(name: str) -> str:
        raise ValueError(f"{name} failed")

    with anyio.fail_after(5), pytest.raises(HedgeFailed) as caught:
        await hedge(["a", "b", "c"], start, lambda n: False, 0.0, 1)
    assert str(caught.value.primary_error) == "a failed"
    assert [r.outcome for r in caught.value.records] == ["failed", "failed"]


async def test_a_hedge_canceled_from_outside_cancels_every_candidate() -> None:
    running: set[str] = set()
    canceled: set[str] = set()
    both = anyio.Event()

    async def start(name: str) -> str:
        running.add(name)
        if len(running) == 2:
            both.set()
        try:
            await anyio.Event().wait()  # never answers
        except anyio.get_cancelled_exc_class():
            canceled.add(name)
            raise
        return name

    records_seen: list[object] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def hedged() -> None:
                records_seen.append(await hedge(["a", "b"], start, lambda n: False, 0.0, 1))

            tg.start_soon(hedged)
            await both.wait()
            tg.cancel_scope.cancel()
    assert records_seen == []
    assert canceled == {"a", "b"}
