"""Listing runs from the cluster: Temporal visibility over the run workflows' search attributes.

A run's workflow starts with OrchCluster (the deployment's task-queue prefix), OrchAgentId, OrchWorkers,
OrchStrategy and OrchStatus, and upserts OrchStatus as the run changes and OrchBusy (the workers a step of it
runs on now: the registry's busy/idle) as its steps start and end; its memo keeps what a listing shows
that no attribute carries (the task excerpt, the priority). Every server of the
deployment lists the same pages, whatever its data directory.

Pages match the local store's: newest first by runId (a run id starts with its creation time in ms), the
cursor is the last runId of the previous page. Visibility cannot sort (SQL visibility refuses ORDER BY), so
a page is read in windows of creation time, each a ``WorkflowId`` range, widened until the page is full or
``count`` says no older run is left; each window is sorted here.

Visibility is eventually consistent: a run just accepted, or a status just changed, shows a moment later.
"""

from __future__ import annotations

import time
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from mcp_orchestrator.contracts import RunRecord, RunSummary
from mcp_orchestrator.contracts.storage import task_excerpt
from mcp_orchestrator.engine.spec import RunSpec
from mcp_orchestrator.store import RunFilter

__all__ = [
    "ATTRIBUTES",
    "BUSY",
    "STATUS",
    "described_record",
    "how_to_register",
    "list_page",
    "literal",
    "register",
    "start_attributes",
    "start_memo",
]

CLUSTER = SearchAttributeKey.for_keyword("OrchCluster")
AGENT = SearchAttributeKey.for_keyword("OrchAgentId")
WORKERS = SearchAttributeKey.for_keyword_list("OrchWorkers")
STATUS = SearchAttributeKey.for_keyword("OrchStatus")
STRATEGY = SearchAttributeKey.for_keyword("OrchStrategy")
BUSY = SearchAttributeKey.for_keyword_list("OrchBusy")
ATTRIBUTES = {k.name: k.indexed_value_type for k in (CLUSTER, AGENT, WORKERS, STATUS, STRATEGY, BUSY)}

FIRST_WINDOW_MS = 10 * 60 * 1000  # then x8 per window: a page of a quiet cluster takes a few reads
ALL_AT_ONCE = 500  # fewer older runs than this: read them in one go

# A workflow that closed without recording its end (terminated, timed out) ends the listing's way too.
_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "canceled",
}


async def register(client: Client, namespace: str) -> None:
    """Add the Orch* search attributes the namespace lacks (a cluster that refuses says why in an RPCError)."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    have = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {k: int(v) for k, v in ATTRIBUTES.items() if k not in have.custom_attributes}
    if missing:
        request = AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)  # type: ignore[arg-type]
        await client.operator_service.add_search_attributes(request)


def how_to_register(namespace: str) -> str:
    """The operator commands that register the attributes by hand (one per type)."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in ATTRIBUTES.items():  # KEYWORD_LIST -> KeywordList, as the CLI spells it
        by_kind.setdefault("".join(w.capitalize() for w in kind.name.split("_")), []).append(name)
    return "; ".join(
        f"temporal operator search-attribute create --namespace {namespace} --type {kind} "
        + " ".join(f"--name {n}" for n in names)
        for kind, names in by_kind.items()
    )


def start_attributes(spec: RunSpec, cluster: str) -> TypedSearchAttributes:
    """The search attributes a run's workflow starts with."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(CLUSTER, cluster),
            SearchAttributePair(AGENT, spec.agent_id),
            SearchAttributePair(WORKERS, [w.name for w in spec.workers]),
            SearchAttributePair(STRATEGY, spec.strategy),
            SearchAttributePair(STATUS, "accepted"),
        ]
    )


def start_memo(spec: RunSpec) -> dict[str, Any]:
    """What a listing shows that no search attribute carries (the task as stored: redacted)."""
    return {"task": task_excerpt(spec.task_record or spec.task), "priority": spec.priority}


def literal(value: str) -> str:
    """``value`` as a visibility query's string literal (a quote or backslash in it is refused)."""
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be listed")
    return f"'{value}'"


def query(cluster: str, workflow_type: str, flt: RunFilter) -> str:
    """The visibility filter of a listing, without its runId range."""
    parts = [f"WorkflowType = {literal(workflow_type)}", f"OrchCluster = {literal(cluster)}"]
    for key, value in (
        ("OrchWorkers", flt.worker_name),
        ("OrchAgentId", flt.agent_id),
        ("OrchStatus", flt.status),
        ("OrchStrategy", flt.strategy),
    ):
        if value is not None:
            parts.append(f"{key} = {literal(value)}")
    return " AND ".join(parts)


def _id_at(ms: int) -> str:
    """The smallest run id created at ``ms``."""
    return f"run_{max(ms, 0):012x}"


def _ms_of(run_id: str) -> int:
    return int(run_id[4:16], 16)


async def _summary(found: WorkflowExecution) -> RunSummary:
    attrs = found.typed_search_attributes
    memo = await found.memo()
    status = attrs.get(STATUS) or "accepted"
    if found.status not in (None, WorkflowExecutionStatus.RUNNING) and status in ("accepted", "running"):
        status = _CLOSED.get(found.status, "failed")
    return RunSummary(
        run_id=found.id,
        status=status,
        strategy=attrs.get(STRATEGY) or "single_worker",
        agent_id=attrs.get(AGENT) or "",
        workers=list(attrs.get(WORKERS) or []),
        created_at=found.start_time,  # as get_run shows it: the workflow's start
        ended_at=found.close_time if status not in ("accepted", "running") else None,
        task=str(memo.get("task", "")),
        priority=memo.get("priority", "interactive"),
    )


async def described_record(found: WorkflowExecution) -> RunRecord:
    """A run as its workflow's start and search attributes tell it (what the Temporal server itself answers):
    status, strategy, agent, workers, times and the task excerpt; no steps."""
    summary = await _summary(found)
    notice = "the cluster's outline of the run: no worker process answered for its steps just now"
    return RunRecord.model_validate(summary.model_dump() | {"notice": notice})


async def _window(client: Client, where: str) -> list[WorkflowExecution]:
    found = [w async for w in client.list_workflows(where, page_size=1000)]
    found.sort(key=lambda w: w.id, reverse=True)
    return found


async def list_page(
    client: Client, cluster: str, workflow_type: str, flt: RunFilter, limit: int, cursor: str | None
) -> tuple[list[RunSummary], str | None]:
    """A page of the deployment's runs, newest first; the cursor is the last runId of the previous page."""
    base = query(cluster, workflow_type, flt)
    upper = cursor
    top_ms = _ms_of(cursor) if cursor else int(time.time() * 1000)
    width = FIRST_WINDOW_MS
    rows: list[WorkflowExecution] = []
    while len(rows) <= limit:
        older = base + (f" AND WorkflowId < {literal(upper)}" if upper else "")
        left = (await client.count_workflows(older)).count
        if left == 0:
            break
        if left <= ALL_AT_ONCE:  # the rest fits one read
            rows += await _window(client, older)
            break
        lower = _id_at(top_ms - width)
        rows += await _window(client, f"{older} AND WorkflowId >= {literal(lower)}")
        upper, top_ms, width = lower, top_ms - width, width * 8
    page = [await _summary(w) for w in rows[:limit]]
    return page, (page[-1].run_id if len(rows) > limit else None)
