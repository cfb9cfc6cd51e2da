"""``notifications/tasks``: a ``subscriptions/listen`` stream that follows tasks (runs) while the client listens.

The SDK's own listen handler knows list-changed and resource events only, and ``subscriptions/listen`` is a
spec method an extension cannot bind, so this is a server middleware: a listen request that names
``notifications.taskIds`` is served here, every other message passes through. The stream acknowledges the
task ids the caller may read (the others are left out, as the spec's ack allows), sends a ``DetailedTask``
(what ``tasks/get`` returns) whenever a task's status or message changes, and ends gracefully once every
followed task is terminal. Changes are heard through the orchestrator's ``wait_run`` (the executor daemon's
events, the stored run as the truth), so a run executed by another process is followed as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from mcp_types import MISSING_REQUIRED_CLIENT_CAPABILITY, Notification, ServerNotification

from mcp_orchestrator.server.state import AppState
from mcp_orchestrator.server.tasks import EXTENSION, TaskViews, opted_in, readable_run, task_errors
from mcp_orchestrator.service.events import RunEvent

if TYPE_CHECKING:  # annotations only: the modules load when a request needs them (issue 15: start-up)
    from mcp_orchestrator.contracts import RunRecord

__all__ = ["MAX_TASKS", "TaskListen"]

MAX_TASKS = 100  # task ids one listen stream follows
_RECHECK_SECONDS = 5.0  # the store is read at least this often while a task runs


def _task_ids(ctx: ServerRequestContext[Any, Any]) -> list[str] | None:
    params = ctx.params if isinstance(ctx.params, Mapping) else {}
    notes = params.get("notifications")
    ids = notes.get("taskIds") if isinstance(notes, Mapping) else None
    if not isinstance(ids, list) or not ids:
        return None
    return list(dict.fromkeys(str(i) for i in ids))[:MAX_TASKS]


async def _notify(ctx: ServerRequestContext[Any, Any], method: str, params: dict[str, Any]) -> None:
    note = Notification[dict[str, Any], str](method=method, params=params)
    await ctx.session.send_notification(cast(ServerNotification, note), related_request_id=ctx.request_id)


class TaskListen:
    """Server middleware serving ``subscriptions/listen`` requests for ``taskIds``."""

    def __init__(self, views: TaskViews) -> None:
        self.views = views

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Serve a task listen stream; pass every other message on."""
        ids = _task_ids(ctx) if ctx.method == "subscriptions/listen" else None
        if ids is None:
            return await call_next(ctx)
        if not opted_in(ctx):
            raise MCPError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                "Missing required client capability",
                data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
            )
        state: AppState = ctx.lifespan_context
        meta = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
        honored: list[str] = []
        for task_id in ids:
            try:
                with task_errors():
                    await readable_run(state, task_id)
            except MCPError:
                continue  # unknown or another agent's: not honored, and not confirmed either
            honored.append(task_id)
        await _notify(
            ctx, "notifications/subscriptions/acknowledged", {"notifications": {"taskIds": honored}, "_meta": meta}
        )
        async with anyio.create_task_group() as tg:
            for task_id in honored:
                tg.start_soon(self._follow, ctx, state, task_id, meta)
        # A middleware that answers owns the whole envelope (the SDK serializes handler results only).
        return {"resultType": "complete", "_meta": meta}  # every followed task ended: the stream closes

    async def _follow(
        self, ctx: ServerRequestContext[Any, Any], state: AppState, task_id: str, meta: dict[str, Any]
    ) -> None:
        orch = state.orch
        last: tuple[str, ...] = ()

        async def emit() -> RunRecord:
            nonlocal last
            with task_errors():
                run = await orch.get_run(task_id)
            view = await orch.io(self.views.detailed, run)
            key = (view["status"], view["statusMessage"], view["lastUpdatedAt"])
            if key != last:
                last = key
                await _notify(ctx, "notifications/tasks", {**view, "_meta": meta})
            return run

        async def on_event(_: RunEvent) -> None:
            await emit()

        while not (await emit()).terminal:
            with task_errors():
                await orch.wait_run(task_id, _RECHECK_SECONDS, on_event)
