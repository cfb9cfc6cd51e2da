"""The Temporal engine: each accepted run is a workflow (id = runId) on the cluster.

``submit`` starts the run's workflow on the runs task queue and returns; ``mcp-orchestrator worker``
processes execute it (the plan on any of them, each step attempt on a worker that serves the step's
backend). A second submit of the same run (a restart) is refused by Temporal and followed instead: a
run never executes twice. ``follow`` yields the workflow's record of the run as it changes, which the
service keeps in its store, so get_run and the resources read it as they read a local run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal, Self

import anyio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from mcp_orchestrator.config import TemporalConfig
from mcp_orchestrator.contracts import PanicState, RunError, RunRecord, RunSummary, utcnow
from mcp_orchestrator.engine.base import ExecutionEngine, RunSpec
from mcp_orchestrator.engine.temporal.client import (
    RUN_QUERY,
    RUN_WORKFLOW,
    connect,
    runs_queue,
    step_queue,
    task_priority,
    workspace_queue,
)
from mcp_orchestrator.engine.temporal.control import CONTROL_WORKFLOW, PANIC_TTL, control_id
from mcp_orchestrator.engine.temporal.keys import claim_key
from mcp_orchestrator.engine.temporal.pacing import QueryPace
from mcp_orchestrator.engine.temporal.visibility import (
    described_record,
    how_to_register,
    list_page,
    register,
    start_attributes,
    start_memo,
)
from mcp_orchestrator.errors import Unavailable
from mcp_orchestrator.store import RunFilter

__all__ = ["TemporalEngine"]

log = logging.getLogger(__name__)

FOLLOW_INTERVAL = 0.5  # a followed run's progress: queried at most this often
FOLLOW_RATE = 20.0  # and all of them together at most this many times a second (``QueryPace``)


class TemporalEngine(ExecutionEngine):
    """Runs as workflows on a Temporal cluster; use as an async context manager."""

    def __init__(self, cfg: TemporalConfig, client: Client | None = None) -> None:
        self.cfg = cfg
        self._client = client
        self._held: set[str] = set()
        self._panic: tuple[float, PanicState] | None = None
        self._submitted = 0
        self._unlisted_until = 0.0  # monotonic: until then runs start without the search attributes
        self._busy_listed = False  # the namespace has OrchBusy: runs say which workers they keep busy
        self.pace = QueryPace(FOLLOW_RATE, FOLLOW_INTERVAL)

    async def __aenter__(self) -> Self:
        if self._client is None:  # before the task group: an unreachable cluster leaves nothing open
            self._client = await connect(self.cfg)
        try:
            await register(self._client, self.cfg.namespace)
            self._busy_listed = True
        except RPCError as e:  # e.g. a hosted namespace: its operator registers them
            log.warning(
                "the Orch* search attributes could not be registered (%s); until they are, list_worker_runs reads "
                "each server's own store. Register them: %s",
                e,
                how_to_register(self.cfg.namespace),
            )
        return await super().__aenter__()

    @property
    def visibility(self) -> bool:
        """Whether runs start with the search attributes that cluster-wide listings need."""
        return time.monotonic() >= self._unlisted_until

    @property
    def client(self) -> Client:
        """The cluster's client (inside the context)."""
        if self._client is None:
            raise RuntimeError("the Temporal engine is not running")
        return self._client

    async def submit(self, spec: RunSpec, *, force: bool = False) -> None:
        """Start the run's workflow (at most once per runId); its deadline becomes the workflow's timeout."""
        timeout = None
        if spec.deadline_at is not None:
            timeout = timedelta(seconds=max((spec.deadline_at - utcnow()).total_seconds(), 1.0) + 60)
        try:
            try:
                await self._start(spec, timeout, self.visibility)
            except RPCError as e:
                if not self.visibility or "search attribute" not in str(e).lower():
                    raise
                log.warning(
                    "the cluster refused the Orch* search attributes (%s): runs start without them for a minute, "
                    "and list_worker_runs reads this server's store; register them: %s",
                    e,
                    how_to_register(self.cfg.namespace),
                )
                self._unlisted_until = time.monotonic() + 60.0  # then try again: they may be registered by then
                await self._start(spec, timeout, False)
            self._submitted += 1
        except WorkflowAlreadyStartedError:
            log.info("run %s: its workflow was started before; following it", spec.run_id)
        except RPCError as e:
            raise Unavailable(
                f"the Temporal cluster at {self.cfg.address} refused run {spec.run_id}: {e}",
                hint="Check the cluster (`temporal operator cluster health`); nothing was started.",
            ) from e
        self._held.add(spec.run_id)

    async def _start(self, spec: RunSpec, execution_timeout: timedelta | None, visible: bool) -> None:
        await self.client.start_workflow(
            RUN_WORKFLOW,
            spec,
            id=spec.run_id,
            task_queue=runs_queue(self.cfg),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            execution_timeout=execution_timeout,
            priority=task_priority(spec.priority),
            search_attributes=start_attributes(spec, self.cfg.task_queue_prefix) if visible else None,
            memo=start_memo(spec) | ({"busy": True} if visible and self._busy_listed else {}),
        )

    async def claim_key(self, agent_id: str, key: str, run_id: str) -> str:
        """Claim ``agent_id``'s idempotency ``key`` for ``run_id`` on the cluster; the runId the key names."""
        try:
            return await claim_key(self.client, self.cfg.task_queue_prefix, runs_queue(self.cfg), agent_id, key, run_id)
        except RPCError as e:
            raise Unavailable(
                f"the Temporal cluster at {self.cfg.address} did not say whether idempotencyKey {key!r} was used: {e}",
                hint="Check the cluster (`temporal operator cluster health`) and retry; nothing was accepted.",
            ) from e

    async def exists(self, run_id: str) -> bool:
        """Whether the cluster has the run's workflow (the Temporal server answers: no worker is asked)."""
        try:
            await self.client.get_workflow_handle(run_id).describe()
            return True
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return False
            raise

    async def list_runs(
        self, flt: RunFilter, limit: int, cursor: str | None
    ) -> tuple[list[RunSummary], str | None] | None:
        """A page of the deployment's runs from the cluster's visibility; ``None``: it has none to offer."""
        if not self.visibility:
            return None
        try:
            return await list_page(self.client, self.cfg.task_queue_prefix, RUN_WORKFLOW, flt, limit, cursor)
        except RPCError as e:
            log.warning("list_worker_runs: the cluster's visibility did not answer (%s); reading the store", e)
            return None

    def cancel(self, run_id: str) -> Literal["dequeued", "canceled"] | None:
        """Ask the cluster to cancel the run's workflow (whoever started it); the workflow records how it ended."""
        assert self._tg is not None

        async def cancel() -> None:
            try:
                await self.client.get_workflow_handle(run_id).cancel()
            except RPCError as e:
                log.warning("run %s: cancel not delivered: %s", run_id, e)

        self._tg.start_soon(cancel)
        return "canceled"

    def running(self) -> frozenset[str]:
        """Runs this process follows (started here or taken up after a restart)."""
        return frozenset(self._held)

    def snapshot(self) -> dict[str, Any]:
        """Where the runs execute, and how many this process follows."""
        return {
            "engine": "temporal",
            "address": self.cfg.address,
            "namespace": self.cfg.namespace,
            "taskQueue": runs_queue(self.cfg),
            "following": len(self._held),
            "submitted": self._submitted,
            "progressQueries": self.pace.spent,
        }

    async def get_panic(self) -> PanicState:
        """The cluster's panic switch (read at most every ``PANIC_TTL`` seconds)."""
        now = time.monotonic()
        if self._panic is not None and now - self._panic[0] < PANIC_TTL:
            return self._panic[1]
        handle = self.client.get_workflow_handle(control_id(self.cfg.task_queue_prefix))
        try:
            state: PanicState = await handle.query("panic", result_type=PanicState, rpc_timeout=timedelta(seconds=2))
        except RPCError as e:
            if "not found" not in str(e).lower():
                raise Unavailable(
                    f"the Temporal cluster at {self.cfg.address} did not say whether panic is engaged: {e}",
                    hint="Start a `mcp-orchestrator worker` (it serves the control workflow); nothing was accepted.",
                ) from e
            state = PanicState(engaged=False)
        self._panic = (now, state)
        return state

    async def set_panic(self, state: PanicState) -> PanicState:
        """Engage or release the switch for every server of the cluster."""
        await self.client.start_workflow(
            CONTROL_WORKFLOW,
            id=control_id(self.cfg.task_queue_prefix),
            task_queue=runs_queue(self.cfg),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="set_panic",
            start_signal_args=[state],
        )
        self._panic = (time.monotonic(), state)
        return state

    async def cancel_all(self) -> int:
        """Cancel every running run of this deployment, whoever started it; how many."""
        query = (
            f"WorkflowType = '{RUN_WORKFLOW}' AND ExecutionStatus = 'Running' AND TaskQueue = '{runs_queue(self.cfg)}'"
        )
        count = 0
        async for found in self.client.list_workflows(query):
            try:
                await self.client.get_workflow_handle(found.id).cancel()
                count += 1
            except RPCError as e:
                log.warning("run %s: cancel not delivered: %s", found.id, e)
        return count

    async def cluster_view(self, backends: list[tuple[str, str, str | None]]) -> dict[str, Any]:
        """The deployment's task queues on the cluster: who polls each, and its backlog; a backend of pinned
        workers (machine set) by its machine's queue, with that machine's workspace queue."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        activity = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
        wanted = [(runs_queue(self.cfg), TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)]
        wanted += [(workspace_queue(self.cfg), activity)]
        wanted += [(workspace_queue(self.cfg, machine), activity) for _, _, machine in backends if machine]
        wanted += [(step_queue(self.cfg, m, r, machine), activity) for m, r, machine in backends]
        queues: dict[str, Any] = {}
        for name, kind in dict.fromkeys(wanted):
            request = DescribeTaskQueueRequest(
                namespace=self.cfg.namespace, task_queue=TaskQueue(name=name), task_queue_type=kind, report_stats=True
            )
            try:
                found = await self.client.workflow_service.describe_task_queue(request, timeout=timedelta(seconds=5))
            except RPCError as e:
                queues[name] = {"error": str(e)}
                continue
            queues[name] = {
                "pollers": sorted({p.identity for p in found.pollers}),
                "backlog": found.stats.approximate_backlog_count,
                "backlogAgeMs": int(found.stats.approximate_backlog_age.ToTimedelta().total_seconds() * 1000),
            }
        return {"address": self.cfg.address, "namespace": self.cfg.namespace, "queues": queues}

    async def read(self, run_id: str) -> RunRecord | None:
        """The run for a server that does not follow it; ``None`` when the cluster has no such run.

        An ended run's record is its workflow's result (history, which the Temporal server serves); a running
        one's is the workflow's query, and when no worker process answers that within 3 s, the outline the
        Temporal server describes (``described_record``): a read that never waits on one worker process."""
        handle = self.client.get_workflow_handle(run_id, result_type=RunRecord)
        try:
            found = await handle.describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if found.workflow_type != RUN_WORKFLOW:
            return None
        if found.status == WorkflowExecutionStatus.COMPLETED:
            ended: RunRecord = await handle.result()
            return ended
        try:
            return await self.record(run_id, timedelta(seconds=3))
        except RPCError as e:
            log.info("run %s: no worker answered its query (%s); the cluster's outline instead", run_id, e)
        return await described_record(found)

    async def record(self, run_id: str, rpc_timeout: timedelta | None = None) -> RunRecord | None:
        """The workflow's record of the run now; ``None`` when the cluster has no such run."""
        handle = self.client.get_workflow_handle(run_id)
        try:
            found: RunRecord = await handle.query(RUN_QUERY, result_type=RunRecord, rpc_timeout=rpc_timeout)
            return found
        except RPCError as e:
            if "not found" in str(e).lower():
                return None
            raise

    async def follow(self, run_id: str, seen: Callable[[RunRecord], Awaitable[bool]]) -> None:
        """Hand ``seen`` the run's record each time it changes, until it returns ``True`` or the run ends.

        The end comes from a long poll on the workflow's result (at once, and cheap); progress in between
        from a query (a task on the worker that holds the workflow) at the pace of ``self.pace``: the first
        one ``FOLLOW_INTERVAL`` after the start (a run that ends sooner is seen once, from its result), then
        at most every ``FOLLOW_INTERVAL``, and all followed runs together at most ``FOLLOW_RATE`` a second."""
        self._held.add(run_id)
        handle = self.client.get_workflow_handle(run_id, result_type=RunRecord)
        last: str | None = None
        final: list[RunRecord | None] = []

        async def offer(record: RunRecord | None) -> bool:
            nonlocal last
            if record is None or record.model_dump_json() == last:
                return False
            last = record.model_dump_json()
            return await seen(record)

        try:
            async with anyio.create_task_group() as tg:

                async def wait_end() -> None:
                    try:
                        final.append(await handle.result())
                    except WorkflowFailureError:  # terminated or timed out: its last record says how far it got
                        final.append(await self.record(run_id))
                    tg.cancel_scope.cancel()

                tg.start_soon(wait_end)
                asked = time.monotonic()
                while True:
                    await self.pace.turn(asked)
                    asked = time.monotonic()
                    if await offer(await self._progress(run_id)):
                        tg.cancel_scope.cancel()
                        return
            if final:
                record = final[0]
                if record is not None and not record.terminal:  # terminated or timed out on the cluster
                    error = RunError(
                        failure_class="interrupted",
                        message="the run's workflow ended on the cluster before the run did (terminated or timed out)",
                    )
                    record = record.model_copy(update={"status": "failed", "error": error, "ended_at": utcnow()})
                await offer(record)
        except BaseExceptionGroup as group:  # the cluster went away: one RPCError, as the callers expect
            rpc, rest = group.split(RPCError)
            if rest is not None or rpc is None:
                raise
            raise _first(rpc) from group
        finally:
            self._held.discard(run_id)

    async def _progress(self, run_id: str) -> RunRecord | None:
        """The record between polls; a query its worker could not answer (killed mid-query) is just skipped."""
        try:
            return await self.record(run_id)
        except RPCError as e:
            if e.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
                raise
            log.debug("run %s: a progress query went unanswered (%s)", run_id, e)
            return None


def _first(group: BaseExceptionGroup[RPCError]) -> RPCError:
    """The first RPCError of a (nested) group."""
    found = group.exceptions[0]
    return _first(found) if isinstance(found, BaseExceptionGroup) else found
