"""Leases and recovery: who holds a queued or running run, and what happens when its holder dies.

Every orchestrator holds its runs through ``owned/<instance>/<runId>`` markers and proves it is
alive by rewriting ``processes/<instance>.json`` every heartbeat. An instance whose heartbeat is
older than the lease, or whose process is gone (same host), is dead: a live one moves each of
its markers to itself with an atomic rename (exactly one claimant wins), then

* resumes a run that was still ``accepted`` (queued): it runs once, here;
* fails a run that was ``running`` with class ``interrupted``: a half-done step of a coding
  agent may have changed files, so it is never silently re-executed.
"""

from __future__ import annotations

import contextlib
import time
from functools import partial

from mcp_orchestrator.contracts import ProcessRef, RunError, RunRecord, WorkerRecord, utcnow
from mcp_orchestrator.errors import NotFound
from mcp_orchestrator.store import JsonRunStore
from mcp_orchestrator.store._files import is_alive

__all__ = ["adopt", "reap", "recover"]

STALE_MARKER_SECONDS = 300.0


def _interrupted(run: RunRecord) -> RunRecord:
    now = utcnow()
    steps = [
        s.model_copy(update={"status": "failed", "failure_class": "interrupted", "ended_at": now})
        if s.status in ("pending", "running")
        else s
        for s in run.steps
    ]
    error = RunError(failure_class="interrupted", message="the server process running it died")
    return run.model_copy(update={"status": "failed", "ended_at": now, "steps": steps, "error": error, "owner": None})


def adopt(store: JsonRunStore, run_id: str, heir: ProcessRef) -> RunRecord | None:
    """Take over a run whose holder died: resume it if queued, fail it if it was running."""

    def change(run: RunRecord) -> RunRecord:
        if run.terminal:
            return run
        if run.status == "running":
            return _interrupted(run)
        return run.model_copy(update={"owner": heir})

    try:
        run = store.update_run(run_id, change)
    except NotFound:
        store.disown(run_id, heir.instance)
        return None
    if run.terminal:
        store.disown(run_id, heir.instance)
    return run


def _alive(beat: tuple[float, dict[str, object]] | None, lease_seconds: float) -> bool:
    if beat is None:
        return False
    age, payload = beat
    if age > lease_seconds:
        return False
    try:
        ref = ProcessRef.model_validate(payload.get("process"))
    except ValueError:
        return True  # an unreadable but fresh heartbeat: give it the benefit of the doubt
    return is_alive(ref)


def reap(store: JsonRunStore, me: ProcessRef, lease_seconds: float) -> list[RunRecord]:
    """Claim the runs of dead instances; returns the claimed runs (after adoption)."""
    beats = store.heartbeats()
    claimed: list[RunRecord] = []
    for instance, run_ids in store.owners().items():
        if instance == me.instance or _alive(beats.get(instance), lease_seconds):
            continue
        for run_id in run_ids:
            if store.transfer(run_id, instance, me.instance):
                run = adopt(store, run_id, me)
                if run is not None:
                    claimed.append(run)
        store.bury(instance)
    if claimed:
        _free_workers(store)  # the workers of runs just failed as interrupted are idle again
    return claimed


def recover(store: JsonRunStore, me: ProcessRef) -> tuple[list[RunRecord], list[str]]:
    """Start-up pass over unfinished runs that no live instance holds (older layouts, crashes
    between writing a marker and its document). Returns (runs adopted, report lines)."""
    held = {run_id for runs in store.owners().values() for run_id in runs}
    adopted: list[RunRecord] = []
    report: list[str] = []
    for run_id in store.active_run_ids():
        if run_id in held:
            continue
        try:
            run = store.get_run(run_id)
        except NotFound:
            marker = store.home / "active" / run_id
            # A marker is made just before its document: only an old one without a document is stale.
            with contextlib.suppress(FileNotFoundError):
                if time.time() - marker.stat().st_mtime > STALE_MARKER_SECONDS:
                    marker.unlink(missing_ok=True)
                    report.append(f"{run_id}: no readable document; marker removed")
            continue
        if run.terminal:
            (store.home / "active" / run_id).unlink(missing_ok=True)
            continue
        if run.owner is not None and is_alive(run.owner):
            continue
        store.own(run_id, me.instance)
        after = adopt(store, run_id, me)
        if after is None:
            continue
        if after.terminal:
            report.append(f"{run_id}: was {run.status} in a dead process; now failed (interrupted)")
        else:
            adopted.append(after)
            report.append(f"{run_id}: was queued in a dead process; resumed here")
    _free_workers(store)
    return adopted, report


def _free_workers(store: JsonRunStore) -> None:
    for worker in store.list_workers():
        run_id = worker.current_run_id
        if run_id is None:
            continue
        try:
            ended = store.get_run(run_id).terminal
        except NotFound:
            ended = True
        if ended:
            store.update_worker(worker.name, partial(_freed, run_id))


def _freed(run_id: str, w: WorkerRecord) -> WorkerRecord:
    if w.current_run_id != run_id:  # it took other work meanwhile (a live process reaps while it runs steps)
        return w
    return w.model_copy(update={"current_run_id": None, "status": "stopped" if w.status == "stopped" else "idle"})
