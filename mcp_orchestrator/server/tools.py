"""The MCP tools: validate, call the service, return a contract. No business logic here."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal, ParamSpec, TypeVar, cast, get_args

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import Tool, ToolAnnotations

from mcp_orchestrator.contracts import (
    Detail,
    ModelName,
    PanicState,
    Priority,
    ReadinessSummary,
    Run,
    RunBudgetArgument,
    RunList,
    RuntimeList,
    RuntimeMode,
    RuntimeSummary,
    RunView,
    SchedulerView,
    StrategyName,
    Worker,
    WorkerList,
    WorkerRecord,
)
from mcp_orchestrator.errors import InvalidArgument, NewerDocument, StoreError, UsageError
from mcp_orchestrator.observability.diagnose import Kind, diagnose_home
from mcp_orchestrator.observability.models import Diagnosis
from mcp_orchestrator.readiness import ReadinessReport, run_probes
from mcp_orchestrator.server.identity import act_as, caller, readable_agent, require, visible
from mcp_orchestrator.server.registry import ToolSpec
from mcp_orchestrator.server.state import AppState
from mcp_orchestrator.server.views import readiness_summary, run_view, runtime_summary
from mcp_orchestrator.service import Orchestrator
from mcp_orchestrator.service.adapters import describe_runtimes, worker_runtime_status
from mcp_orchestrator.service.events import RunEvent

__all__ = ["TOOLS"]

P = ParamSpec("P")
T = TypeVar("T")

Ctx = Context[AppState]
MAX_WAIT = 600.0
STRATEGIES: tuple[str, ...] = get_args(StrategyName)


def _tool_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn the caller's mistakes into ``ToolError`` text that says what to do next."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (UsageError, NewerDocument) as e:
            raise ToolError(str(e)) from e
        except StoreError as e:
            raise ToolError(f"The data directory failed: {e}. Check its free space and permissions.") from e

    return wrapper


def _orch(ctx: Ctx) -> Orchestrator:
    return ctx.request_context.lifespan_context.orch


def _audited(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """With auth on, write a mutating call to the event log: principal (never the token), tool, outcome."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        who = caller()
        if who is None:
            return await fn(*args, **kwargs)
        ctx = kwargs["ctx"]
        assert isinstance(ctx, Context)
        agent = str(kwargs.get("agentId", ""))
        try:
            result = await fn(*args, **kwargs)
        except UsageError as e:
            _orch(ctx).runlog.emit(
                "audit", str(kwargs.get("runId") or "-"), principal=who.id, tool=fn.__name__, agent_id=agent,
                status="refused", message=str(e), process=_orch(ctx).process.instance,
            )  # fmt: skip
            raise
        run_id = getattr(result, "run_id", None) or kwargs.get("runId") or "-"
        _orch(ctx).runlog.emit(
            "audit", str(run_id), principal=who.id, tool=fn.__name__, agent_id=agent, status="ok",
            process=_orch(ctx).process.instance,
        )  # fmt: skip
        return result

    return wrapper


def with_runtime_status(worker: WorkerRecord) -> Worker:
    """The wire view of a worker with its runtime's current status."""
    wire = worker.to_wire()
    wire.runtime_status = worker_runtime_status(worker)  # type: ignore[assignment]
    return wire


def _wait(value: float) -> float:
    if not 0 <= value <= MAX_WAIT:
        raise InvalidArgument("waitSeconds", f"must be between 0 and {MAX_WAIT:g}", hint="Use 0 to return at once.")
    return value


def _seconds(field: str, value: float | None) -> None:
    if value is not None and not 1 <= value <= 86_400:
        raise InvalidArgument(field, "must be between 1 and 86400 seconds", hint="Omit it for the default.")


@_tool_errors
@_audited
async def spawn_worker(
    agentId: str,
    name: str,
    model: ModelName,
    ctx: Ctx,
    runtimeMode: RuntimeMode | None = None,
    fallbackPolicy: Literal["on_error", "never"] = "on_error",
    workdir: str | None = None,
    role: str | None = None,
    timeoutSeconds: float | None = None,
    stallSeconds: float | None = None,
    modelName: str | None = None,
    machine: str | None = None,
) -> Worker:
    """Create a named worker (mock needs no key); workdir under an allowed root."""
    act_as(agentId)
    if role is not None and not (1 <= len(role) <= 64 and role.replace("_", "").replace("-", "").isalnum()):
        raise InvalidArgument("role", "must be 1-64 letters, digits, - or _", hint="e.g. 'writer' or 'reviewer'.")
    _seconds("timeoutSeconds", timeoutSeconds)
    _seconds("stallSeconds", stallSeconds)
    if modelName is not None and not (1 <= len(modelName) <= 128 and modelName.isprintable()):
        raise InvalidArgument("modelName", "must be 1-128 printable characters", hint="e.g. 'gpt-5.5'.")
    worker = await _orch(ctx).spawn_worker(
        agentId,
        name,
        model,
        runtime_mode=runtimeMode,
        fallback_policy=fallbackPolicy,
        workdir=workdir,
        role=role,
        timeout_seconds=timeoutSeconds,
        stall_seconds=stallSeconds,
        model_name=modelName,
        machine=machine,
    )
    return worker.to_wire()


@_tool_errors
async def list_workers(ctx: Ctx, status: Literal["idle", "busy", "stopped"] | None = None) -> WorkerList:
    """Workers, optionally by status; runtimeStatus: can it run now."""
    orch = _orch(ctx)
    who = require("runs:read")
    workers = [w for w in await orch.list_workers(status) if who is None or who.sees(w.owner_agent_id)]
    return WorkerList(workers=await orch.io(lambda: [with_runtime_status(w) for w in workers]))


def _run(run: Run, detail: Detail | None) -> Run | RunView:
    return run if detail == "full" else run_view(run)


@_tool_errors
async def runtimes(ctx: Ctx, detail: Detail | None = None) -> RuntimeList | RuntimeSummary:
    """Runtime adapters: ready or not, version, how to fix. detail full: capabilities."""
    require("runs:read")
    found = await _orch(ctx).io(describe_runtimes)
    return RuntimeList(runtimes=found) if detail == "full" else runtime_summary(found)


@_tool_errors
async def readiness(ctx: Ctx, detail: Detail | None = None) -> ReadinessReport | ReadinessSummary:
    """Probe CLIs, SDKs, store, server, workers: problems first, with fixes; detail full: evidence."""
    require("runs:read")
    server = ctx.mcp_server

    async def this_server() -> list[Tool]:  # never spawn a server from inside one
        return await server.list_tools()

    report = await run_probes(_orch(ctx).settings, lister=this_server)
    return report if detail == "full" else readiness_summary(report)


async def _diagnosis(ctx: Ctx, kind: Kind, window: int) -> Diagnosis:
    require("operator")  # diagnoses read every agent's runs
    if not 1 <= window <= 10_000:
        raise InvalidArgument("window", "must be between 1 and 10000", hint="e.g. 50 (runs).")
    orch = _orch(ctx)
    cluster = await orch.cluster_overview() if kind == "diag" else None
    return await orch.io(lambda: diagnose_home(kind, orch.settings, orch.store, describe_runtimes(), window, cluster))


@_tool_errors
async def diag(ctx: Ctx, window: int = 50) -> Diagnosis:
    """Anomalies in the last `window` runs (and the Temporal cluster), with evidence and a fix."""
    return await _diagnosis(ctx, "diag", window)


@_tool_errors
async def optimize(ctx: Ctx, window: int = 50) -> Diagnosis:
    """Tuning advice from the last `window` runs, with evidence and a command."""
    return await _diagnosis(ctx, "optimize", window)


@_tool_errors
@_audited
async def stop_worker(agentId: str, name: str, ctx: Ctx) -> Worker:
    """Stop your worker: its running step is canceled; it takes no new work."""
    act_as(agentId)
    return (await _orch(ctx).stop_worker(agentId, name)).to_wire()


@_tool_errors
@_audited
async def dispatch_task(
    agentId: str,
    task: str,
    ctx: Ctx,
    strategy: StrategyName = "single_worker",
    workers: list[str] | None = None,
    waitSeconds: float = 30,
    idempotencyKey: str | None = None,
    continueSession: bool = False,
    timeoutSeconds: float | None = None,
    runtimeMode: RuntimeMode | None = None,
    priority: Priority = "interactive",
    deadlineSeconds: float | None = None,
    applyResult: bool = False,
    keepWorktrees: bool = False,
    budget: RunBudgetArgument = None,
    detail: Detail | None = None,
) -> Run | RunView:
    """Run a task on your workers; waits up to waitSeconds, returns the run so far (status, answer, steps,
    error, next). It outlives the call: get_run follows, cancel_run stops. Full record: detail full or
    runs://{runId}."""
    who = act_as(agentId)
    orch = _orch(ctx)
    wait = _wait(waitSeconds)
    _seconds("timeoutSeconds", timeoutSeconds)
    _seconds("deadlineSeconds", deadlineSeconds)
    limiter = ctx.request_context.lifespan_context.limiter
    if who is not None and limiter is not None:
        limiter.take(who.id)
    run = await orch.dispatch(
        agentId,
        task,
        strategy=strategy,
        workers=workers,
        idempotency_key=idempotencyKey,
        continue_session=continueSession,
        timeout_seconds=timeoutSeconds,
        runtime_mode=runtimeMode,
        priority=priority,
        deadline_seconds=deadlineSeconds,
        apply_result=applyResult,
        keep_worktrees=keepWorktrees,
        budget=budget,
        follow=wait > 0,
    )
    return _run((await orch.wait_run(run.run_id, wait, _progress(ctx))).to_wire(), detail)


def _progress(ctx: Ctx) -> Callable[[RunEvent], Awaitable[None]]:
    count = 0

    async def report(event: RunEvent) -> None:
        nonlocal count
        count += 1
        await ctx.report_progress(count, None, event.message)

    return report


@_tool_errors
async def get_run(runId: str, ctx: Ctx, waitSeconds: float = 0, detail: Detail | None = None) -> Run | RunView:
    """A run as dispatch_task returns it; waitSeconds > 0 waits for its end."""
    wait, orch = _wait(waitSeconds), _orch(ctx)
    if caller() is None:
        return _run((await orch.wait_run(runId, wait, _progress(ctx))).to_wire(), detail)
    run = await orch.get_run(runId)
    visible(run.agent_id, "run", runId)  # before waiting: another agent's run is not there to wait for
    if wait > 0 and not run.terminal:
        run = await orch.wait_run(runId, wait, _progress(ctx))
    return _run(run.to_wire(), detail)


@_tool_errors
async def list_worker_runs(
    ctx: Ctx,
    workerName: str | None = None,
    agentId: str | None = None,
    status: Literal["accepted", "running", "completed", "failed", "canceled"] | None = None,
    strategy: str | None = None,  # a plain string: the strategy enum is in dispatch_task's schema once
    limit: int = 20,
    cursor: str | None = None,
) -> RunList:
    """Runs newest first; pass nextCursor as cursor for more."""
    if not 1 <= limit <= 200:
        raise InvalidArgument("limit", "must be between 1 and 200", hint="Page with cursor instead.")
    if strategy is not None and strategy not in STRATEGIES:
        raise InvalidArgument("strategy", "is not a strategy", hint=f"One of: {', '.join(STRATEGIES)}.")
    return await _orch(ctx).list_runs(
        worker_name=workerName,
        agent_id=readable_agent(agentId),
        status=status,
        strategy=cast("StrategyName | None", strategy),
        limit=limit,
        cursor=cursor,
    )


@_tool_errors
async def scheduler(ctx: Ctx) -> SchedulerView:
    """Queue depth per priority, running steps, oldest wait, throughput per live server."""
    require("runs:read")
    return await _orch(ctx).scheduler_overview()


@_tool_errors
@_audited
async def cancel_run(agentId: str, runId: str, ctx: Ctx, detail: Detail | None = None) -> Run | RunView:
    """Cancel your run; its workers' processes are stopped."""
    act_as(agentId)
    orch = _orch(ctx)
    before = await orch.get_run(runId)
    run = (await orch.cancel_run(agentId, runId)).to_wire()
    if before.terminal:
        run.notice = f"Nothing was canceled: the run had already ended ({before.status})."
    return _run(run, detail)


@_tool_errors
@_audited
async def panic(agentId: str, reason: str, ctx: Ctx) -> PanicState:
    """Emergency stop: cancels running steps; refuses writes until `mcp-orchestrator panic off`."""
    act_as(agentId)
    return await _orch(ctx).panic(agentId, reason)


# idempotentHint and destructiveHint mean something only for tools that write (MCP spec): read-only tools omit them.
_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(spawn_worker, ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)),
    ToolSpec(list_workers, _READ),
    ToolSpec(runtimes, _READ, RuntimeSummary),
    ToolSpec(readiness, _READ, ReadinessSummary),
    ToolSpec(stop_worker, _DESTRUCTIVE),
    ToolSpec(
        dispatch_task, ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True), RunView
    ),
    ToolSpec(get_run, _READ, RunView),
    ToolSpec(list_worker_runs, _READ),
    ToolSpec(scheduler, _READ),
    ToolSpec(cancel_run, _DESTRUCTIVE, RunView),
    ToolSpec(panic, _DESTRUCTIVE),
    ToolSpec(diag, _READ),
    ToolSpec(optimize, _READ),
)
