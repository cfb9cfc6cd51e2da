"""Start-up recovery: runs of a dead process become failed (interrupted); live owners are left alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_orchestrator.contracts import ProcessRef, RunRecord, Step, WorkerRecord, utcnow
from mcp_orchestrator.service.recovery import recover
from mcp_orchestrator.store import JsonRunStore
from mcp_orchestrator.store._files import is_alive, this_process


@pytest.fixture
def store(data_home: Path) -> JsonRunStore:
    return JsonRunStore(data_home, fsync=False)


def dead_process() -> ProcessRef:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return ProcessRef(pid=proc.pid, start_ticks=12345, host=socket.gethostname())


def run(n: int, status: str, owner: ProcessRef | None, steps: list[Step] | None = None) -> RunRecord:
    return RunRecord(
        run_id=f"run_{n:020x}",
        status=status,  # type: ignore[arg-type]
        strategy="single_worker",
        task=f"t{n}",
        agent_id="a",
        created_at=utcnow(),
        workers=["w"],
        owner=owner,
        steps=steps or [],
    )


def worker(name: str, current: str | None, status: str = "busy") -> WorkerRecord:
    return WorkerRecord(
        name=name,
        model="mock",
        runtime_mode="mock",
        workdir="/",
        owner_agent_id="a",
        created_at=utcnow(),
        status=status,  # type: ignore[arg-type]
        current_run_id=current,
    )


def step(i: int, status: str) -> Step:
    return Step(index=i, worker_name="w", role="writer", runtime_mode="mock", status=status)  # type: ignore[arg-type]


def test_is_alive_tells_this_process_from_a_dead_or_reused_pid() -> None:
    me = this_process()
    assert is_alive(me)
    assert not is_alive(dead_process())
    assert not is_alive(me.model_copy(update={"start_ticks": me.start_ticks + 1}))  # same pid, another process
    assert is_alive(me.model_copy(update={"host": "another-host"}))  # cannot tell: assume alive


def test_orphaned_runs_fail_as_interrupted_and_workers_are_freed(store: JsonRunStore) -> None:
    dead, me = dead_process(), this_process()
    running = store.create_run(run(1, "running", dead, [step(0, "completed"), step(1, "running"), step(2, "pending")]))
    accepted = store.create_run(run(2, "accepted", dead))
    mine = store.create_run(run(3, "running", me, [step(0, "running")]))
    done = store.create_run(run(4, "completed", None))
    store.put_worker(worker("w", running.run_id))
    store.put_worker(worker("mine", mine.run_id))
    store.put_worker(worker("stopped", accepted.run_id, status="stopped"))
    store.put_worker(worker("stale", done.run_id))

    report = recover(store)

    for orphan in (running, accepted):
        after = store.get_run(orphan.run_id)
        assert after.status == "failed"
        assert after.error is not None
        assert after.error.failure_class == "interrupted"
        assert after.owner is None
        assert after.ended_at is not None
    steps = store.get_run(running.run_id).steps
    assert [(s.status, s.failure_class) for s in steps] == [
        ("completed", None),
        ("failed", "interrupted"),
        ("failed", "interrupted"),
    ]
    assert store.get_run(mine.run_id) == mine  # its process is alive
    assert store.get_run(done.run_id) == done
    assert store.active_run_ids() == [mine.run_id]
    workers = {w.name: (w.status, w.current_run_id) for w in store.list_workers()}
    assert workers == {
        "w": ("idle", None),
        "mine": ("busy", mine.run_id),
        "stopped": ("stopped", None),
        "stale": ("idle", None),
    }
    assert len(report) == 5
    assert recover(store) == []  # a second start has nothing to do


def test_old_marker_without_a_readable_document_is_removed(store: JsonRunStore) -> None:
    marker = store.home / "active" / "run_00000000000000000099"
    marker.touch()
    old = time.time() - 3600
    os.utime(marker, (old, old))
    report = recover(store)
    assert store.active_run_ids() == []
    assert "no readable document" in report[0]


def test_fresh_marker_without_a_document_is_kept(store: JsonRunStore) -> None:
    # Another process is between making the marker and writing the document: leave it alone.
    (store.home / "active" / "run_00000000000000000098").touch()
    assert recover(store) == []
    assert store.active_run_ids() == ["run_00000000000000000098"]
