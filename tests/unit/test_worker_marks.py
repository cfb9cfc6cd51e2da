"""Issue #15: a step's worker marks (``service.marks``) are written in the background, in order, and only when
they change something a reader would see.

* A step shorter than ``BUSY_AFTER`` on a worker whose record would not change writes no worker document.
* A longer step shows its worker busy (with its run) while it runs and idle once the run's end is told.
* A stop that reached the store before the busy mark (another process stopped the worker) cancels the step
  when the mark finds it.
"""

from __future__ import annotations

import anyio
import pytest

from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.service import Orchestrator
from mcp_orchestrator.service import steps as steps_module

AGENT = "writes"  # the ``orch`` fixture's (conftest): an orchestrator with mock workers a and b


def worker_file(orch: Orchestrator) -> bytes:
    return (orch.settings.home / "workers" / "a.json").read_bytes()


@pytest.mark.anyio
async def test_a_short_step_that_changes_nothing_writes_no_worker_document(orch: Orchestrator) -> None:
    first = await orch.wait_run((await orch.dispatch(AGENT, "one", workers=["a"])).run_id, 10)
    assert first.status == "completed"
    worker = orch.store.get_worker("a")
    assert worker.status == "idle" and worker.session_id == "mock-a"  # the first step set the session
    before = worker_file(orch)
    for i in range(5):
        run = await orch.wait_run((await orch.dispatch(AGENT, f"again {i}", workers=["a"])).run_id, 10)
        assert run.status == "completed"
    assert worker_file(orch) == before  # not one byte rewritten


@pytest.mark.anyio
async def test_a_longer_step_shows_its_worker_busy_then_idle(orch: Orchestrator) -> None:
    run = await orch.dispatch(AGENT, "[[mock delay=1]] slow", workers=["a"])
    seen: list[WorkerRecord] = []
    with anyio.fail_after(5):
        while True:
            seen.append(orch.store.get_worker("a"))
            if seen[-1].status == "busy":
                break
            await anyio.sleep(0.01)
    assert seen[-1].current_run_id == run.run_id
    done = await orch.wait_run(run.run_id, 10)
    assert done.status == "completed"
    after = orch.store.get_worker("a")  # read as soon as the run's end was told
    assert after.status == "idle" and after.current_run_id is None and after.session_id == "mock-a"


@pytest.mark.anyio
async def test_a_stop_stored_before_the_busy_mark_cancels_the_step(
    orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps_module, "BUSY_AFTER", 0.5)
    run = await orch.dispatch(AGENT, "[[mock delay=20]] long", workers=["a"])
    for _ in range(500):  # the step stored running; its busy mark waits out its delay (and its start is not told)
        if any(s.status == "running" for s in orch.store.get_run(run.run_id).steps):
            break
        await anyio.sleep(0.01)
    assert orch.store.get_worker("a").status == "idle"
    # Another process stops the worker: only the store knows, this process is not told.
    orch.store.update_worker("a", lambda w: w.model_copy(update={"status": "stopped"}))
    with anyio.fail_after(5):
        done = await orch.wait_run(run.run_id, 5)
    assert done.status == "canceled", done
    assert done.steps[0].status == "canceled" and "stopped" in done.steps[0].output
    assert orch.store.get_worker("a").status == "stopped"
