"""The workers registry on the Temporal engine: the cluster's record workflows, this data directory's store a cache.

Writes (spawn, stop) go to the cluster first (one that does not answer refuses them: ``Unavailable``), then to
the store. Reads ask the cluster, where the Temporal server itself answers (never a worker process), and fall
back on the store when it does not answer. Of the cluster's copy of a worker and the store's, the one written
last (``updated_at``) counts, and a newer copy from the cluster is written into the store, so that what reads
only the store (diag, a restarted server resuming its runs) sees it too. A listing is visibility, which lags a
write by a moment: the store's own newer copies (this server's writes) cover that moment here.

Busy or idle comes from the runs, not the records: a listing marks busy each worker that a running run's
step runs on now (its ``OrchBusy``, from visibility: one more read per listing), whichever server accepted
the run. A stop signals every running run of the worker, whose workflow cancels the worker's step; it looks
again 1 s and 3 s later for runs another server started just before it (visibility lists them late).
"""

from __future__ import annotations

import logging

import anyio
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from mcp_orchestrator.contracts import WorkerRecord, utcnow
from mcp_orchestrator.engine.temporal import registry
from mcp_orchestrator.engine.temporal.engine import TemporalEngine
from mcp_orchestrator.errors import NotFound, Unavailable
from mcp_orchestrator.service.host import StoreHost
from mcp_orchestrator.store.json_store import check_name_free

__all__ = ["get", "listing", "spawn", "stop"]

log = logging.getLogger(__name__)

TELL_LATE = (1.0, 2.0)  # seconds, one after the other: a stop looks again for its worker's runs then


def _cluster(orch: StoreHost) -> tuple[Client, str]:
    engine = orch.engine
    assert isinstance(engine, TemporalEngine)
    return engine.client, engine.cfg.task_queue_prefix


def _unavailable(orch: StoreHost, what: str, e: RPCError) -> Unavailable:
    return Unavailable(
        f"the Temporal cluster at {orch.settings.temporal.address} did not take {what}: {e}",
        hint="Check the cluster (`temporal operator cluster health`) and retry; nothing was changed.",
    )


def _newer(cluster: WorkerRecord | None, local: WorkerRecord | None) -> WorkerRecord | None:
    """The copy written last (the cluster's on a tie)."""
    if cluster is None or local is None:
        return cluster or local
    if local.updated_at is not None and (cluster.updated_at is None or local.updated_at > cluster.updated_at):
        return local
    return cluster


async def spawn(orch: StoreHost, worker: WorkerRecord) -> WorkerRecord:
    """Store a new worker on the cluster (refused if another holds its name, as the store refuses), then here."""
    client, prefix = _cluster(orch)
    worker = worker.model_copy(update={"updated_at": utcnow()})
    try:
        try:
            await registry.write(client, prefix, worker, new=True)
        except WorkflowAlreadyStartedError:
            check_name_free(await registry.read(client, prefix, worker.name), worker)
            await registry.write(client, prefix, worker, new=False)
    except RPCError as e:
        raise _unavailable(orch, f"worker {worker.name!r}", e) from e
    return await orch.io(orch.store.put_worker, worker)


async def stop(orch: StoreHost, worker: WorkerRecord, reason: str) -> WorkerRecord:
    """Mark ``worker`` stopped on the cluster, then here; then tell each running run that uses it, whose
    workflow cancels the worker's running step (as a local stop cancels it) and gives it no further one."""
    client, prefix = _cluster(orch)
    stopped = worker.model_copy(update={"status": "stopped", "updated_at": utcnow()})
    try:
        await registry.write(client, prefix, stopped, new=False)
    except RPCError as e:
        raise _unavailable(orch, f"the stop of worker {worker.name!r}", e) from e
    stopped = await orch.io(orch.store.put_worker, stopped)
    followed = orch.engine.running()  # this server's runs, which visibility may not list yet

    def using() -> set[str]:
        found = set()
        for run_id in followed:
            try:
                if worker.name in orch.store.get_run(run_id).workers:
                    found.add(run_id)
            except NotFound:
                continue
        return found

    try:
        told = await registry.stop_runs(client, prefix, worker.name, reason, await orch.io(using))
    except RPCError as e:
        raise Unavailable(
            f"worker {worker.name!r} is stopped, but the Temporal cluster at {orch.settings.temporal.address} did "
            f"not take the cancel of its running step: {e}",
            hint="Check the cluster (`temporal operator cluster health`) and stop the worker again.",
        ) from e
    if told:
        log.info("worker %s stopped: told runs %s", worker.name, ", ".join(told))
    orch.start_soon(_tell_late, orch, worker.name, reason, frozenset(told), name=f"stop:{worker.name}")
    return stopped


async def _tell_late(orch: StoreHost, name: str, reason: str, told: frozenset[str]) -> None:
    """Look again a moment after a stop, for runs of the worker that another server started just before it
    (visibility lists a run a moment after its start), and tell those too."""
    client, prefix = _cluster(orch)
    for wait in TELL_LATE:
        await anyio.sleep(wait)
        try:
            told |= frozenset(await registry.stop_runs(client, prefix, name, reason, set(), told))
        except RPCError as e:
            log.warning("worker %s stopped: the cluster did not answer a second look for its runs (%s)", name, e)
            return


async def _local(orch: StoreHost, name: str) -> WorkerRecord | None:
    try:
        return await orch.io(orch.store.get_worker, name)
    except NotFound:
        return None


async def _cache(orch: StoreHost, found: list[tuple[WorkerRecord, WorkerRecord | None]]) -> None:
    """Write the cluster's copies that are newer than the store's into the store (one thread hop)."""
    stale = [cluster for cluster, local in found if cluster != local and _newer(cluster, local) is cluster]
    if stale:
        await orch.io(lambda: [orch.store.put_worker(w) for w in stale])


async def get(orch: StoreHost, name: str) -> WorkerRecord:
    """Worker ``name``: the newer of the cluster's copy and the store's (``NotFound`` if neither has one)."""
    client, prefix = _cluster(orch)
    local = await _local(orch, name)
    try:
        cluster = await registry.read(client, prefix, name)
    except RPCError as e:
        log.warning("worker %s: the cluster did not answer (%s); the store's copy", name, e)
        cluster = None
    if cluster is not None:
        await _cache(orch, [(cluster, local)])
    found = _newer(cluster, local)
    if found is None:
        raise NotFound("worker", name, hint="Spawn it with spawn_worker, or list workers with list_workers.")
    return found


async def listing(orch: StoreHost, *, busy: bool = True) -> list[WorkerRecord]:
    """Every worker of the deployment, by name: the cluster's, and the store's that it does not list (yet);
    with ``busy``, each busy while a step runs on it (in any server's run), else idle (or stopped)."""
    client, prefix = _cluster(orch)
    local = {w.name: w for w in await orch.io(orch.store.list_workers)}
    running: dict[str, str] | None = None
    try:
        cluster = await registry.listing(client, prefix)
    except RPCError as e:
        log.warning("list_workers: the cluster did not answer (%s); the store's workers", e)
        cluster, busy = [], False
    if busy:
        try:
            running = await registry.busy(client, prefix)
        except RPCError as e:  # e.g. a namespace without OrchBusy: the records as they are (idle)
            log.warning("list_workers: the cluster did not say which workers are busy (%s)", e)
    await _cache(orch, [(w, local.get(w.name)) for w in cluster])
    merged = dict(local)
    for w in cluster:
        merged[w.name] = _newer(w, local.get(w.name)) or w
    return [_with_status(merged[name], running) for name in sorted(merged)]


def _with_status(worker: WorkerRecord, busy: dict[str, str] | None) -> WorkerRecord:
    """``worker`` busy with the run a step of it runs in, or idle (a stopped worker stays stopped, as local)."""
    if busy is None:  # the cluster did not say: the record as it is
        return worker
    run_id = busy.get(worker.name)
    status = worker.status if worker.status == "stopped" else ("busy" if run_id else "idle")
    return worker.model_copy(update={"status": status, "current_run_id": run_id})
