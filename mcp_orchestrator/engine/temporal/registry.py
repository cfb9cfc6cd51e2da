"""The workers registry shared by the cluster: one record workflow per worker of a deployment.

Worker ``name`` of the deployment ``prefix`` is the workflow ``<prefix>.worker.<name>``, whose memo holds its
record. The workflow sits on ``<prefix>.registry``, a task queue no process polls: it never executes, it only
exists, so every read and write is answered by the Temporal server itself and none waits on a worker process
(which may be killed at any time). A write starts the workflow anew with the record in its memo: a new name with
the conflict policy ``FAIL`` (of two servers spawning one name at once, one wins), a change with
``TERMINATE_EXISTING`` (the old record closes as the new one starts, in one step). ``read`` is ``describe``
(consistent at once); ``listing`` is visibility, eventually consistent (a change shows within a second on the
dev server).

Busy or idle is not in the record: it would take a write to the record workflow at every step start and end.
The run workflow that runs a step says it instead, in its own ``OrchBusy`` search attribute (the workers a
step of it runs on now), upserted with the commands of the workflow task that schedules the step and of the
one that takes its result: no call of its own, no wait. ``busy`` reads them from visibility. ``stop_runs``
signals every running run of a stopped worker, whose workflow cancels that worker's step (``STOP_SIGNAL``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.engine.temporal.client import RUN_WORKFLOW, STOP_SIGNAL
from mcp_orchestrator.engine.temporal.visibility import BUSY, literal

__all__ = [
    "WORKER_WORKFLOW",
    "busy",
    "listing",
    "read",
    "record_id",
    "registry_queue",
    "stop_runs",
    "stopped",
    "write",
]

WORKER_WORKFLOW = "mcp-orchestrator.worker"
_TIMEOUT = timedelta(seconds=5)


def registry_queue(prefix: str) -> str:
    """The task queue the record workflows sit on (never polled)."""
    return f"{prefix}.registry"


def record_id(prefix: str, name: str) -> str:
    """The record workflow's id of worker ``name``."""
    return f"{prefix}.worker.{name}"


async def _record(found: WorkflowExecution) -> WorkerRecord | None:
    raw = (await found.memo()).get("worker")
    return WorkerRecord.model_validate(raw) if isinstance(raw, dict) else None


async def read(client: Client, prefix: str, name: str) -> WorkerRecord | None:
    """Worker ``name`` as the cluster holds it; ``None``: it holds no such worker."""
    try:
        found = await client.get_workflow_handle(record_id(prefix, name)).describe(rpc_timeout=_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if found.status != WorkflowExecutionStatus.RUNNING:  # closed by hand (e.g. terminated): no record
        return None
    return await _record(found)


async def stopped(client: Client, prefix: str, name: str) -> bool:
    """Whether the cluster holds worker ``name`` as stopped: a worker process asks before each step attempt, so
    a step that starts after the stop never runs, even in a run the stop's signal has not reached (one
    ``describe``; a cluster that does not answer says no: the run's own stop check still holds)."""
    try:
        record = await read(client, prefix, name)
    except RPCError:
        return False
    return record is not None and record.status == "stopped"


async def listing(client: Client, prefix: str) -> list[WorkerRecord]:
    """Every worker the cluster holds for the deployment, by name."""
    where = (
        f"WorkflowType = '{WORKER_WORKFLOW}' AND TaskQueue = '{registry_queue(prefix)}' AND ExecutionStatus = 'Running'"
    )
    found: dict[str, WorkerRecord] = {}
    async for execution in client.list_workflows(where, rpc_timeout=_TIMEOUT):
        record = await _record(execution)
        if record is not None:
            found[record.name] = record
    return [found[name] for name in sorted(found)]


async def write(client: Client, prefix: str, worker: WorkerRecord, *, new: bool) -> None:
    """Store ``worker`` on the cluster; ``new``: only if the cluster holds no record of its name (else
    ``WorkflowAlreadyStartedError``)."""
    await client.start_workflow(
        WORKER_WORKFLOW,
        id=record_id(prefix, worker.name),
        task_queue=registry_queue(prefix),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL if new else WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        memo={"worker": worker.model_dump(mode="json")},
        rpc_timeout=_TIMEOUT,
    )


def _running_runs(prefix: str, where: str) -> str:
    return (
        f"WorkflowType = '{RUN_WORKFLOW}' AND OrchCluster = {literal(prefix)} AND ExecutionStatus = 'Running' "
        f"AND {where}"
    )


async def busy(client: Client, prefix: str, name: str | None = None) -> dict[str, str]:
    """The deployment's workers that a step runs on now (``name``: only that one), each with its run's id (the
    newest run, when several use one worker)."""
    where = f"OrchBusy = {literal(name)}" if name is not None else "OrchBusy IS NOT NULL"
    found: dict[str, str] = {}
    async for execution in client.list_workflows(_running_runs(prefix, where), rpc_timeout=_TIMEOUT):
        for worker in execution.typed_search_attributes.get(BUSY) or []:
            if name is None or worker == name:
                found[worker] = max(found.get(worker, ""), execution.id)
    return found


async def stop_runs(
    client: Client, prefix: str, name: str, reason: str, also: set[str], told_before: frozenset[str] = frozenset()
) -> list[str]:
    """Tell every running run that uses worker ``name`` (by visibility, and the runs of ``also``, which it may
    not list yet) that the worker was stopped, but those of ``told_before``; the runs told."""
    runs = set(also)
    async for execution in client.list_workflows(
        _running_runs(prefix, f"OrchWorkers = {literal(name)}"), rpc_timeout=_TIMEOUT
    ):
        runs.add(execution.id)
    told = []
    for run_id in sorted(runs - told_before):
        try:
            await client.get_workflow_handle(run_id).signal(STOP_SIGNAL, args=[name, reason], rpc_timeout=_TIMEOUT)
            told.append(run_id)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:  # not found: it ended meanwhile
                raise
    return told
