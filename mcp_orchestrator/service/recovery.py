"""Start-up recovery: runs left running by a process that died become ``failed: interrupted``."""

from __future__ import annotations

import contextlib
import time

from mcp_orchestrator.contracts import RunError, RunRecord, utcnow
from mcp_orchestrator.errors import NotFound
from mcp_orchestrator.store import JsonRunStore
from mcp_orchestrator.store._files import is_alive

__all__ = ["recover"]

STALE_MARKER_SECONDS = 300.0


def _interrupt(run: RunRecord) -> RunRecord:
    if run.terminal or (run.owner is not None and is_alive(run.owner)):
        return run
    now = utcnow()
    steps = [
        s.model_copy(update={"status": "failed", "failure_class": "interrupted", "ended_at": now})
        if s.status in ("pending", "running")
        else s
        for s in run.steps
    ]
    error = RunError(failure_class="interrupted", message="the server process running it died")
    return run.model_copy(update={"status": "failed", "ended_at": now, "steps": steps, "error": error, "owner": None})


def recover(store: JsonRunStore) -> list[str]:
    """Mark orphaned runs interrupted and free their workers; returns what it did."""
    report: list[str] = []
    orphaned: set[str] = set()
    for run_id in store.active_run_ids():
        try:
            before = store.get_run(run_id)
            after = store.update_run(run_id, _interrupt)
        except NotFound:
            marker = store.home / "active" / run_id
            # A marker is made just before its document: only an old one without a document is stale.
            with contextlib.suppress(FileNotFoundError):
                if time.time() - marker.stat().st_mtime > STALE_MARKER_SECONDS:
                    marker.unlink(missing_ok=True)
                    report.append(f"{run_id}: no readable document; marker removed")
            continue
        if after is not before and after.status == "failed" and not before.terminal:
            orphaned.add(run_id)
            report.append(f"{run_id}: was {before.status} in a dead process; now failed (interrupted)")
    for worker in store.list_workers():
        if worker.current_run_id and (worker.current_run_id in orphaned or _ended(store, worker.current_run_id)):
            store.update_worker(
                worker.name,
                lambda w: w.model_copy(
                    update={"current_run_id": None, "status": "stopped" if w.status == "stopped" else "idle"}
                ),
            )
            report.append(f"worker {worker.name}: freed from {worker.current_run_id}")
    return report


def _ended(store: JsonRunStore, run_id: str) -> bool:
    try:
        return store.get_run(run_id).terminal
    except NotFound:
        return True
