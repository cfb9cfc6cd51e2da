"""``continueSession`` on the Temporal engine: a worker's session is read from its runs, not kept on its record.

The local engine writes a step's session id onto its worker's record when the step ends. On the cluster that
would be a write to the worker's record workflow at every step end, racing a stop (see the registry); the
session is in the run's record anyway (``Step.session_id``). So a dispatch with ``continueSession`` looks it up
instead, and only then: the worker's newest runs of the deployment (visibility, any server's, with this
server's own store for a run visibility lists late), newest first, each read as ``get_run`` on another server
reads it; the first that holds a step of the worker with a session gives it. Runs from before the worker's
last spawn or stop (``updated_at``) do not count: a name spawned anew starts without a session, as locally.
"""

from __future__ import annotations

import logging

from temporalio.service import RPCError

from mcp_orchestrator.contracts import RunSummary, WorkerRecord
from mcp_orchestrator.engine.temporal.engine import TemporalEngine
from mcp_orchestrator.service.host import RunHost
from mcp_orchestrator.store import RunFilter

__all__ = ["with_sessions"]

log = logging.getLogger(__name__)

LOOK_BACK = 5  # runs of a worker read, at most, for its session


async def with_sessions(orch: RunHost, workers: list[WorkerRecord], run_id: str) -> list[WorkerRecord]:
    """``workers`` with each one's latest session (from runs other than ``run_id``), where it has one."""
    out = []
    for worker in workers:
        try:
            session = await _last_session(orch, worker, run_id)
        except RPCError as e:
            log.warning("worker %s: its session could not be read from the cluster (%s)", worker.name, e)
            session = None
        out.append(worker.model_copy(update={"session_id": session}) if session else worker)
    return out


async def _last_session(orch: RunHost, worker: WorkerRecord, run_id: str) -> str | None:
    engine = orch.engine
    assert isinstance(engine, TemporalEngine)
    flt = RunFilter(worker_name=worker.name)
    page = await engine.list_runs(flt, LOOK_BACK, None)
    runs: dict[str, RunSummary] = {r.run_id: r for r in (page[0] if page is not None else [])}
    mine, _ = await orch.io(orch.store.list_runs, flt, LOOK_BACK, None)
    runs.update({r.run_id: r for r in mine})
    since = worker.updated_at
    for found in sorted(runs.values(), key=lambda r: r.run_id, reverse=True)[:LOOK_BACK]:
        if found.run_id == run_id or (since is not None and found.created_at < since):
            continue
        record = await engine.read(found.run_id)
        steps = [s for s in (record.steps if record else []) if s.worker_name == worker.name and s.session_id]
        if steps:
            return max(steps, key=lambda s: s.index).session_id
    return None
