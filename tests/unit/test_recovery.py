"""Recovery and leases: a dead holder's running runs fail (interrupted), its queued runs are resumed once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_orchestrator.contracts import ProcessRef, RunRecord, Step, WorkerRecord, utcnow
from mcp_orchestrator.service.recovery import reap, recover
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


def test_orphaned_runs_are_failed_or_resumed_and_workers_are_freed(store: JsonRunStore) -> None:
    dead, me = dead_process(), this_process()
    running = store.create_run(run(1, "running", dead, [step(0, "completed"), step(1, "running"), step(2, "pending")]))
    accepted = store.create_run(run(2, "accepted", dead))
    mine = store.create_run(run(3, "running", me, [step(0, "running")]))
    done = store.create_run(run(4, "completed", None))
    store.put_worker(worker("w", running.run_id))
    store.put_worker(worker("mine", mine.run_id))
    store.put_worker(worker("stopped", accepted.run_id, status="stopped"))
    store.put_worker(worker("stale", done.run_id))

    heir = this_process()
    adopted, report = recover(store, heir)

    # A running run may have half-changed files: it fails as interrupted, never re-executes.
    after = store.get_run(running.run_id)
    assert after.status == "failed"
    assert after.error is not None
    assert after.error.failure_class == "interrupted"
    assert after.owner is None
    assert after.ended_at is not None
    assert [(s.status, s.failure_class) for s in after.steps] == [
        ("completed", None),
        ("failed", "interrupted"),
        ("failed", "interrupted"),
    ]
    # A queued run never started: the heir resumes it.
    assert [r.run_id for r in adopted] == [accepted.run_id]
    resumed = store.get_run(accepted.run_id)
    assert resumed.status == "accepted"
    assert resumed.owner == heir
    assert store.owns(accepted.run_id, heir.instance)
    assert store.get_run(mine.run_id) == mine  # its process is alive
    assert store.get_run(done.run_id) == done
    assert store.active_run_ids() == sorted([accepted.run_id, mine.run_id])
    workers = {w.name: (w.status, w.current_run_id) for w in store.list_workers()}
    assert workers == {
        "w": ("idle", None),
        "mine": ("busy", mine.run_id),
        "stopped": ("stopped", accepted.run_id),
        "stale": ("idle", None),
    }
    assert len(report) == 2
    assert recover(store, heir) == ([], [])  # a second start has nothing to do


def test_reap_takes_over_the_runs_of_a_dead_instance_exactly_once(store: JsonRunStore) -> None:
    dead = dead_process().model_copy(update={"instance": "deadbeef0001"})
    queued = [store.create_run(run(10 + i, "accepted", dead)) for i in range(5)]
    heirs = [this_process() for _ in range(3)]
    for h in heirs:  # live instances prove it before they reap, as the server does at start-up
        store.beat(h.instance, {"process": h.model_dump(mode="json")})
    claimed = [reap(store, h, lease_seconds=10.0) for h in heirs]
    winners = [r.run_id for c in claimed for r in c]
    assert sorted(winners) == sorted(r.run_id for r in queued)  # each run claimed once, by one heir
    assert store.owners().get("deadbeef0001") is None
    for c, h in zip(claimed, heirs, strict=True):
        for r in c:
            assert store.get_run(r.run_id).owner == h


def test_reap_leaves_a_live_instance_alone(store: JsonRunStore) -> None:
    live = this_process()
    store.beat(live.instance, {"process": live.model_dump(mode="json")})
    store.create_run(run(20, "accepted", live))
    assert reap(store, this_process(), lease_seconds=10.0) == []
    assert store.owners()[live.instance] == [f"run_{20:020x}"]


def test_old_marker_without_a_readable_document_is_removed(store: JsonRunStore) -> None:
    marker = store.home / "active" / "run_00000000000000000099"
    marker.touch()
    old = time.time() - 3600
    os.utime(marker, (old, old))
    _, report = recover(store, this_process())
    assert store.active_run_ids() == []
    assert "no readable document" in report[0]


def test_fresh_marker_without_a_document_is_kept(store: JsonRunStore) -> None:
    # Another process is between making the marker and writing the document: leave it alone.
    (store.home / "active" / "run_00000000000000000098").touch()
    assert recover(store, this_process()) == ([], [])
    assert store.active_run_ids() == ["run_00000000000000000098"]
