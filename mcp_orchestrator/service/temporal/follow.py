"""The service's side of the Temporal engine: submit runs, and keep the store's copy of each current.

Temporal is the record of a run's progress. The server that accepted a run follows its workflow and
writes what it sees into its own store (steps redacted, as a local run's are), so that get_run,
list_worker_runs, wait_run and the resources read it as they read a local run. A server that restarts
follows its unfinished runs again; a run it accepted but never got to submit (it died in between) is
submitted then, at most once (the workflow id is the runId). A server on another data directory reads a
run it does not hold from the workflow itself (``lookup``).
"""

from __future__ import annotations

import logging

import anyio
from temporalio.service import RPCError

from mcp_orchestrator.contracts import RunError, RunRecord, Step, WorkerRecord
from mcp_orchestrator.engine.spec import RunPolicy, RunSpec
from mcp_orchestrator.engine.temporal.engine import TemporalEngine
from mcp_orchestrator.errors import NotFound, OrchestratorError
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.service.host import RunHost

__all__ = ["label", "lookup", "resume_following", "submit"]

log = logging.getLogger(__name__)


def label(orch: RunHost) -> str:
    """``executed_by`` of a run this deployment's cluster executes."""
    cfg = orch.settings.temporal
    return f"temporal {cfg.namespace}/{cfg.task_queue_prefix}.runs"


def _engine(orch: RunHost) -> TemporalEngine:
    engine = orch.engine
    assert isinstance(engine, TemporalEngine)
    return engine


def _policy(orch: RunHost) -> RunPolicy:
    s = orch.settings
    return RunPolicy(
        step_timeout_seconds=s.step_timeout_seconds,
        stall_seconds=s.stall_seconds,
        retry_attempts=s.retry_attempts,
        retry_base_seconds=s.retry_base_seconds,
        retry_cap_seconds=s.retry_cap_seconds,
        retry_total_seconds=s.retry_total_seconds,
        heartbeat_seconds=s.temporal.heartbeat_seconds,
        queue_seconds=s.temporal.queue_seconds,
        gateway=s.gateway.model_dump(mode="json", by_alias=True),
    )


async def submit(orch: RunHost, run: RunRecord, workers: list[WorkerRecord], task: str | None) -> None:
    """Start the run's workflow and follow it; a cluster that refuses fails the run with why."""
    if run.continue_session:  # the workers' sessions are in their runs on the cluster, not on their records
        from mcp_orchestrator.service.temporal.sessions import with_sessions

        workers = await with_sessions(orch, workers, run.run_id)
    spec = RunSpec.of(run, workers, task).model_copy(update={"policy": _policy(orch)})
    try:
        await _engine(orch).submit(spec)
    except OrchestratorError as e:
        error = RunError(failure_class="unavailable", message=str(e))
        await orch.finish_run(run.run_id, "failed", "never started: the Temporal cluster was unavailable", error)
        orch.events.publish(RunEvent(run.run_id, "run_ended", "run failed (Temporal unavailable)"))
        return
    orch.start_soon(_follow, orch, run.run_id, name=f"follow:{run.run_id}")


async def resume_following(orch: RunHost) -> None:
    """Follow every unfinished run of this data directory that the cluster executes (after a restart)."""
    mine = label(orch)
    for run_id in await orch.io(orch.store.active_run_ids):
        try:
            run = await orch.get_run(run_id)
        except NotFound:
            continue
        if run.executed_by != mine or run.terminal:
            continue
        if await _engine(orch).record(run_id) is None:  # accepted, never submitted: submit it now
            try:
                workers = [await orch.io(orch.store.get_worker, name) for name in run.workers]
            except NotFound as e:
                error = RunError(failure_class="internal", message=f"cannot submit: {e}")
                await orch.finish_run(run_id, "failed", "could not be submitted", error)
                continue
            await submit(orch, run, workers, None)
            continue
        orch.start_soon(_follow, orch, run_id, name=f"follow:{run_id}")


async def lookup(orch: RunHost, run_id: str) -> RunRecord | None:
    """The cluster's record of a run this data directory does not hold."""
    try:
        return await _engine(orch).read(run_id)
    except RPCError as e:
        log.warning("run %s: the cluster did not answer: %s", run_id, e)
        return None


async def _follow(orch: RunHost, run_id: str) -> None:
    """Mirror the workflow's record into the store until the run ends (retrying while the cluster is away)."""
    engine = _engine(orch)
    done = False

    async def seen(record: RunRecord) -> bool:
        nonlocal done
        done = await _mirror(orch, record)
        return done

    while not done:
        try:
            await engine.follow(run_id, seen)
        except RPCError as e:
            log.warning("run %s: lost the cluster (%s); following again in 1 s", run_id, e)
        if not done:
            await anyio.sleep(1.0)


async def _mirror(orch: RunHost, record: RunRecord) -> bool:
    """Write the workflow's view of the run; ``True`` once it is terminal here."""
    steps = [Step.model_validate(orch.redactor.data(s.model_dump())) for s in record.steps]

    def change(run: RunRecord) -> RunRecord:
        if run.terminal:
            return run
        return run.model_copy(update={"status": "running", "started_at": record.started_at, "steps": steps})

    before = await orch.io(orch.store.get_run, record.run_id)
    run = await orch.io(orch.store.update_run, record.run_id, change)
    if before.status == "accepted":
        orch.events.publish(RunEvent(run.run_id, "run_started", "run started"))
    for step in steps:
        if step.status != "running" and all(s.index != step.index or s.status != step.status for s in before.steps):
            orch.events.publish(
                RunEvent(run.run_id, "step_ended", f"step {step.index}: {step.worker_name} {step.status}")
            )
    if not record.terminal:
        return run.terminal
    await orch.finish_run(record.run_id, record.status, record.summary or "", record.error)
    orch.events.publish(RunEvent(record.run_id, "run_ended", f"run {record.status}"))
    return True
