"""Build the MCP server: lifespan-owned services, thin tools, run resources."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from mcp_orchestrator import __version__
from mcp_orchestrator.config import Settings
from mcp_orchestrator.errors import NotFound, StoreError, UsageError
from mcp_orchestrator.server.catalog import catalog_tools
from mcp_orchestrator.server.identity import caller, visible
from mcp_orchestrator.server.protocol import register_protocol
from mcp_orchestrator.server.state import AppState, StartOnDemand
from mcp_orchestrator.server.task_listen import TaskListen
from mcp_orchestrator.server.tasks import TasksExtension

if TYPE_CHECKING:  # annotations only: the modules load when a request needs them (issue 15: start-up)
    from mcp_orchestrator.contracts import RunRecord, Step
    from mcp_orchestrator.server.auth.exposure import Exposure
    from mcp_orchestrator.service import Orchestrator
    from mcp_orchestrator.service.executor import ExecutorLink

__all__ = ["AppState", "build_server"]

INSTRUCTIONS = (
    "Orchestrates coding-agent workers. spawn_worker, then dispatch_task (it waits up to waitSeconds and "
    "returns the run as it stands); follow with get_run, cancel with cancel_run. Every mutating tool needs "
    "agentId. Model 'mock' needs no API key."
)


def build_server(
    settings: Settings | None = None,
    *,
    state: AppState | None = None,
    exposure: Exposure | None = None,
    front_end: bool = False,
) -> MCPServer[AppState]:
    """A ready-to-run server.

    Without ``state`` the services start in the MCP lifespan (stdio, in-memory clients). HTTP
    transports pass the ``state`` of an orchestrator they run for the whole process, because the
    SSE transport enters the MCP lifespan once per connection, and their ``exposure``: with auth on,
    the SDK's bearer middleware verifies every request and serves the protected-resource metadata.
    ``front_end`` hands runs to the data directory's executor process (started when none runs); the front
    end's own orchestrator starts on the first request that needs it (``state.StartOnDemand``), so the
    handshake and ``tools/list`` are answered without importing the service (issue 15: start-up).
    The tools are advertised from ``catalog.json`` and built on their first call (``catalog``).
    """
    resolved = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if state is not None:
            yield state
            return
        if not front_end:  # this process runs the runs: it takes over dead instances' runs at once
            from mcp_orchestrator.service import Orchestrator

            orch = Orchestrator(resolved)
            async with orch.running(take_over=True):
                yield AppState(orch)
            return
        from mcp_orchestrator.service.executor import ExecutorLink

        link = ExecutorLink(resolved)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            # Start the executor now, so the first dispatch need not wait for it (the orchestrator would too).
            tg.start_soon(partial(anyio.to_thread.run_sync, link.spawn, abandon_on_cancel=True))
            try:
                yield AppState(start=partial(tg.start, partial(_front_end, resolved, link, stop)))
            finally:
                stop.set()

    verifier = exposure.verifier() if exposure else None
    tools = catalog_tools()
    tasks = TasksExtension(tools)
    server: MCPServer[AppState] = MCPServer(
        "mcp-orchestrator",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=tools,
        token_verifier=verifier,
        auth=exposure.auth_settings() if exposure else None,
        extensions=[tasks],
        middleware=[StartOnDemand(), TaskListen(tasks.views)],
    )
    _register_resources(server)
    register_protocol(server)
    return server


async def _front_end(
    settings: Settings, link: ExecutorLink, stop: anyio.Event, *, task_status: TaskStatus[Orchestrator]
) -> None:
    """Run a front end's orchestrator (in the lifespan's task group) until ``stop``."""
    from mcp_orchestrator.service import front_end_orchestrator

    orch = front_end_orchestrator(settings, link)
    async with orch.running(take_over=False):
        task_status.started(orch)
        await stop.wait()


async def _load_run(ctx: Context[AppState], run_id: str) -> RunRecord:
    """The run, or the resource error that says why not (not found: -32602)."""
    try:
        run = await ctx.request_context.lifespan_context.orch.get_run(run_id)
        if caller() is not None:
            visible(run.agent_id, "run", run_id)
        return run
    except NotFound as e:
        raise ResourceNotFoundError(str(e)) from e
    except UsageError as e:
        raise ResourceError(str(e)) from e


def _cluster_excerpt(step: Step) -> str:
    """A step's output as the run record carries it, marked when it is only the bounded excerpt."""
    if not step.output_truncated:
        return step.output
    where = step.executed_by or "the machine that ran it"
    return (
        f"{step.output}\n[excerpt: the full output ({step.output_bytes} bytes) is spooled on {where}, "
        "runs/<runId>/steps/<i>/output.log under its data directory]\n"
    )


def _register_resources(server: MCPServer[AppState]) -> None:
    @server.resource("runs://{run_id}", name="run", mime_type="application/json")
    async def run_resource(run_id: str, ctx: Context[AppState]) -> str:
        """The whole run as JSON."""
        run = await _load_run(ctx, run_id)
        return json.dumps(run.to_wire().model_dump(mode="json"), indent=1)

    @server.resource("runs://{run_id}/summary", name="run-summary", mime_type="text/markdown")
    async def run_summary(run_id: str, ctx: Context[AppState]) -> str:
        """Who did what in which order: steps, verdicts, durations, tokens, fallbacks, failures, files changed."""
        from mcp_orchestrator.strategies import audit_summary

        return audit_summary((await _load_run(ctx, run_id)).to_wire())

    @server.resource("replays://{run_id}", name="replay", mime_type="application/json")
    async def replay_resource(run_id: str, ctx: Context[AppState]) -> str:
        """The run's replay package: frozen request, effective policy (versioned), runtimes, each step's path."""
        from mcp_orchestrator.observability.replay import load as load_replay

        orch = ctx.request_context.lifespan_context.orch
        run = await _load_run(ctx, run_id)
        try:
            package = await orch.io(load_replay, orch.settings.home, run_id, run)
        except StoreError as e:
            raise ResourceError(str(e)) from e
        return json.dumps(package.model_dump(mode="json"), indent=1)

    @server.resource("runs://{run_id}/steps/{index}/output", name="step-output", mime_type="text/plain")
    async def step_output(run_id: str, index: str, ctx: Context[AppState]) -> str:
        """A step's full captured output (tool results carry only an excerpt)."""
        orch = ctx.request_context.lifespan_context.orch
        if not (index.isascii() and index.isdigit()) or len(index) > 6:  # "²".isdigit() is True
            raise ResourceError(f"step index {index!r} is not a number")
        run = await _load_run(ctx, run_id)
        if int(index) >= len(run.steps):
            raise ResourceNotFoundError(f"run {run_id} has no step {index}")
        path = orch.step_output_path(run_id, int(index))
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:  # on Temporal the spool is on the worker's machine: what the cluster holds
            return await orch.io(orch.redactor.text, _cluster_excerpt(run.steps[int(index)]))
        return await orch.io(orch.redactor.text, text)  # a step still running (or cut by a crash) is not yet redacted
