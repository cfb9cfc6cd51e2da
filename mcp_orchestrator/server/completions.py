"""``completion/complete``: run ids (newest first), worker names and step indexes that match what was typed.

Arguments are completed by name, whatever the reference: ``run_id`` / ``runId`` (the resource
templates ``runs://{run_id}...`` and ``replays://{run_id}``) get run ids, ``workerName`` /
``worker_name`` / ``worker`` get worker names, and ``index`` (``runs://{run_id}/steps/{index}/output``)
gets the step indexes of the run named in the context. Anything else completes to nothing (an empty
list, not an error: clients ask speculatively). With HTTP auth on, only what the caller may read is
offered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.context import ServerRequestContext
from mcp.types import CompleteRequestParams, CompleteResult, Completion

from mcp_orchestrator.errors import Forbidden, NotFound, UsageError
from mcp_orchestrator.server.auth.principal import Principal
from mcp_orchestrator.server.identity import require, visible
from mcp_orchestrator.server.state import AppState

if TYPE_CHECKING:  # annotations only: the modules load when a request needs them (issue 15: start-up)
    from mcp_orchestrator.service import Orchestrator

__all__ = ["MAX_VALUES", "complete"]

MAX_VALUES = 100  # the protocol's cap on one answer
RUN_ARGS = frozenset({"run_id", "runId"})
WORKER_ARGS = frozenset({"workerName", "worker_name", "worker"})
SCAN_LIMIT = 10_000  # runs looked at per agent for a restricted caller
PAGE = 500


async def complete(ctx: ServerRequestContext[AppState], params: CompleteRequestParams) -> CompleteResult:
    """Answer one ``completion/complete`` request."""
    orch = ctx.lifespan_context.orch
    name, prefix = params.argument.name, params.argument.value
    context = (params.context.arguments if params.context else None) or {}
    try:
        who = require("runs:read")
        if name in RUN_ARGS:
            values, total = await _run_ids(orch, who, prefix)
        elif name in WORKER_ARGS:
            values, total = await _worker_names(orch, who, prefix)
        elif name == "index":
            values, total = await _step_indexes(orch, context.get("run_id") or context.get("runId"), prefix)
        else:
            values, total = [], 0
    except (Forbidden, NotFound):
        values, total = [], 0
    return CompleteResult(completion=Completion(values=values[:MAX_VALUES], total=total, has_more=total > MAX_VALUES))


async def _run_ids(orch: Orchestrator, who: Principal | None, prefix: str) -> tuple[list[str], int]:
    """Matching run ids newest first, and how many match."""
    if who is None or who.operator:

        def scan() -> list[str]:
            return [r for r in orch.store.iter_run_ids() if r.startswith(prefix)]

        found = await orch.io(scan)
        return found[: MAX_VALUES + 1], len(found)
    ids: set[str] = set()
    for agent in sorted(who.agents):
        cursor: str | None = None
        for _ in range(SCAN_LIMIT // PAGE):
            page = await orch.list_runs(agent_id=agent, limit=PAGE, cursor=cursor)
            ids.update(s.run_id for s in page.runs if s.run_id.startswith(prefix))
            cursor = page.next_cursor
            if cursor is None:
                break
    ordered = sorted(ids, reverse=True)  # run ids sort by creation time
    return ordered, len(ordered)


async def _worker_names(orch: Orchestrator, who: Principal | None, prefix: str) -> tuple[list[str], int]:
    """Matching worker names in name order, and how many match."""
    workers = await orch.list_workers()
    names = sorted(w.name for w in workers if w.name.startswith(prefix) and (who is None or who.sees(w.owner_agent_id)))
    return names, len(names)


async def _step_indexes(orch: Orchestrator, run_id: str | None, prefix: str) -> tuple[list[str], int]:
    """The step indexes of ``run_id`` (from the context) that start with ``prefix``."""
    if not run_id:
        return [], 0
    try:
        run = await orch.get_run(run_id)
    except UsageError:
        return [], 0
    visible(run.agent_id, "run", run_id)
    indexes = [str(s.index) for s in run.steps if str(s.index).startswith(prefix)]
    return indexes, len(indexes)
