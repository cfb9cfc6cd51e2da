"""Long-running calls as MCP Tasks: the ``io.modelcontextprotocol/tasks`` extension (SEP-2663) over durable runs.

A client that declares the extension in a request's capabilities (2026-07-28 wire) and calls a tool that
starts a run gets a ``CreateTaskResult`` at once: ``taskId`` is the run id. ``tasks/get`` reads the stored
run, ``tasks/cancel`` is ``cancel_run``, ``tasks/update`` acknowledges (runs never ask for input).
Everything is derived from the run document, so any server process on the data directory answers for a
task, before and after a restart; there is no task table. ``notifications/tasks`` are in ``task_listen``.

Task status from run status: accepted/running -> working, completed and failed -> completed (a failed run
is still the tool's result, not a JSON-RPC error, and the spec keeps ``failed`` for the latter),
canceled -> cancelled. The terminal result is the ``CallToolResult`` the tool returns when it waits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, CallToolRequestParams, CallToolResult
from mcp_types import RequestParams as _RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from mcp_orchestrator.errors import InvalidArgument, NewerDocument, NotFound, StoreError, UsageError
from mcp_orchestrator.server.identity import act_as, caller, visible
from mcp_orchestrator.server.registry import TASK_TOOLS, structured_result
from mcp_orchestrator.server.state import AppState

if TYPE_CHECKING:  # annotations only: the modules load when a request needs them (issue 15: start-up)
    from mcp_orchestrator.contracts import RunRecord

__all__ = ["EXTENSION", "POLL_INTERVAL_MS", "TaskParams", "TaskViews", "TasksExtension", "opted_in", "task_errors"]

EXTENSION = "io.modelcontextprotocol/tasks"
POLL_INTERVAL_MS = 2000
_STATUS = {"accepted": "working", "running": "working", "completed": "completed", "failed": "completed"}


class TaskParams(_RequestParams):
    """``tasks/get`` and ``tasks/cancel`` params."""

    task_id: str = Field(alias="taskId")


class UpdateTaskParams(TaskParams):
    """``tasks/update`` params: responses to input requests (this server never issues any)."""

    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


def opted_in(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Did this request declare the Tasks extension? Only the 2026-07-28 wire carries per-request capabilities."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    caps = ctx.session.client_capabilities
    return caps is not None and EXTENSION in (caps.extensions or {})


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _status_message(run: RunRecord) -> str:
    if run.status == "accepted":
        return f"Queued ({run.priority})."
    if run.status == "running":
        if not run.steps:
            return "Running."
        step = run.steps[-1]
        return f"Step {step.index + 1} of {len(run.steps)}: {step.worker_name} ({step.role}) {step.status}."
    if run.status == "completed":
        return run.summary or "Completed."
    reason = f": {run.error.message}" if run.error and run.error.message else "."
    return f"Run {'canceled' if run.status == 'canceled' else 'failed'}{reason}"


class TaskViews:
    """Task shapes built from a stored run; without a ``ttl_ms``, tasks live as long as the store keeps runs."""

    def __init__(self, ttl_ms: int | None = None) -> None:
        if ttl_ms is not None:
            self.ttl_ms = ttl_ms

    @cached_property
    def ttl_ms(self) -> int | None:
        """Milliseconds a task is kept: the retention policy's, read on the first task (issue 15: start-up)."""
        from mcp_orchestrator.observability.retention import RetentionPolicy

        return int(RetentionPolicy.from_env().runs_days * 86_400_000)

    def task(self, run: RunRecord) -> dict[str, Any]:
        """The ``Task`` fields (a ``CreateTaskResult`` body without ``resultType``)."""
        stamps = [run.created_at, run.started_at, run.ended_at]
        stamps += [t for s in run.steps for t in (s.started_at, s.ended_at)]
        return {
            "taskId": run.run_id,
            "status": _STATUS.get(run.status, "cancelled"),
            "statusMessage": _status_message(run),
            "createdAt": _iso(run.created_at),
            "lastUpdatedAt": _iso(max(t for t in stamps if t is not None)),
            "ttlMs": self.ttl_ms,
            "pollIntervalMs": POLL_INTERVAL_MS,
        }

    def detailed(self, run: RunRecord) -> dict[str, Any]:
        """The ``DetailedTask``: a completed task carries the ``CallToolResult`` the waiting call returns by
        default (the compact run view; the whole record stays at ``runs://{runId}``)."""
        out = self.task(run)
        if out["status"] == "completed":
            from mcp_orchestrator.server.views import run_view

            result = structured_result(run_view(run.to_wire()))
            out["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return out


@contextmanager
def task_errors() -> Iterator[None]:
    """Our errors as the JSON-RPC errors the spec names: an unknown task is -32602, a refusal -32600."""
    try:
        yield
    except (NotFound, InvalidArgument) as e:  # another agent's run is "not found" too: ids are not confirmed
        raise MCPError(INVALID_PARAMS, f"Failed to retrieve task: {e}") from e
    except UsageError as e:
        raise MCPError(INVALID_REQUEST, str(e)) from e
    except (StoreError, NewerDocument) as e:
        raise MCPError(INTERNAL_ERROR, f"The data directory failed: {e}") from e


async def readable_run(state: AppState, task_id: str) -> RunRecord:
    """The task's run, refused (as not found) unless the caller may read it."""
    run = await state.orch.get_run(task_id)
    if caller() is not None:
        visible(run.agent_id, "task", task_id)
    return run


class TasksExtension(Extension):
    """Answers run-starting tools with a task for clients that opt in; serves ``tasks/get|update|cancel``."""

    identifier = EXTENSION

    def __init__(self, tools: Sequence[Tool], *, ttl_ms: int | None = None) -> None:
        self._tools = {t.name: t for t in tools if t.name in TASK_TOOLS}
        self.views = TaskViews(ttl_ms)  # without one, the store keeps runs this long

    def methods(self) -> Sequence[MethodBinding]:
        """``tasks/get``, ``tasks/update`` and ``tasks/cancel``."""
        return (
            MethodBinding("tasks/get", TaskParams, self._get),
            MethodBinding("tasks/update", UpdateTaskParams, self._update),
            MethodBinding("tasks/cancel", TaskParams, self._cancel),
        )

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Run a task tool without waiting and hand back the run as a task; every other call is untouched."""
        tool = self._tools.get(params.name)
        if tool is None or not opted_in(ctx):
            return await call_next(ctx)
        if "waitSeconds" in tool.parameters.get("properties", {}):
            params.arguments = {**(params.arguments or {}), "waitSeconds": 0}  # the handler reads these params
        result = await call_next(ctx)
        if not isinstance(result, CallToolResult) or result.is_error or not isinstance(result.structured_content, dict):
            return result  # refused or invalid: the tool's own error result, as without the extension
        state: AppState = ctx.lifespan_context
        with task_errors():
            run = await state.orch.get_run(str(result.structured_content["runId"]))
        if run.terminal:
            return result  # e.g. an idempotent replay of a finished run: the result itself is cheaper
        return {"resultType": "task", **self.views.task(run)}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        state: AppState = ctx.lifespan_context
        with task_errors():
            run = await readable_run(state, params.task_id)
            return await state.orch.io(self.views.detailed, run)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        with task_errors():
            await readable_run(ctx.lifespan_context, params.task_id)
        return {}  # runs never request input: every response is for a key that is not outstanding

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        state: AppState = ctx.lifespan_context
        who = caller()
        with task_errors():
            run = await readable_run(state, params.task_id)
            try:
                act_as(run.agent_id)
                await state.orch.cancel_run(run.agent_id, run.run_id)
            except UsageError as e:
                if who is not None:
                    state.orch.runlog.emit(
                        "audit", run.run_id, principal=who.id, tool="tasks/cancel", agent_id=run.agent_id,
                        status="refused", message=str(e), process=state.orch.process.instance,
                    )  # fmt: skip
                raise
        if who is not None:
            state.orch.runlog.emit(
                "audit", run.run_id, principal=who.id, tool="tasks/cancel", agent_id=run.agent_id, status="ok",
                process=state.orch.process.instance,
            )  # fmt: skip
        return {}
