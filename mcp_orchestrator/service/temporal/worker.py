"""``mcp-orchestrator worker``: a process that executes runs and steps for the Temporal engine.

It polls the runs task queue (run workflows: the plans), the workspace queue (git operations of
multi-writer plans) and one task queue per backend it serves (``<prefix>.<model>.<runtime>``), each
with the backend's cap as its ``max_concurrent_activities``. Start as many as you like, on any machine:
each runs steps in workdirs inside its own ``MCP_ORCHESTRATOR_ROOTS`` and spools their output in its
own data directory.

A worker process has a machine name (``--machine``, else ``MCP_ORCHESTRATOR_MACHINE``, else the hostname).
Besides the shared queues it polls its machine's own: ``<prefix>.<model>.<runtime>@<machine>`` per backend
and ``<prefix>.workspace@<machine>``, where the steps and workspace operations of workers pinned to that
machine (``spawn_worker.machine``) go. Those pollers are few (one concurrent poll each), and a backend's cap
holds across both of its queues: the activities share one limiter per backend (``StepActivities``).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import get_args

import anyio
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import ModelName
from mcp_orchestrator.engine.temporal.client import connect, runs_queue, step_queue, workspace_queue
from mcp_orchestrator.engine.temporal.control import ControlWorkflow
from mcp_orchestrator.engine.temporal.keys import KeyWorkflow
from mcp_orchestrator.engine.temporal.probe import QueueProbe
from mcp_orchestrator.engine.temporal.steps import StepActivities
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.guards import check_machine
from mcp_orchestrator.service.temporal.workflow import RunWorkflow
from mcp_orchestrator.service.temporal.workspace import WorkspaceActivity

__all__ = ["default_backends", "parse_backends", "run_worker"]

log = logging.getLogger(__name__)


def default_backends() -> list[str]:
    """What this machine can run: every model on the mock runtime, and each ready CLI and SDK adapter."""
    from mcp_orchestrator.service.adapters import describe_runtimes

    found = [f"{m}/mock" for m in get_args(ModelName)]
    found += [f"{r.model}/{r.mode}" for r in describe_runtimes() if r.status == "ready" and r.mode != "mock"]
    return list(dict.fromkeys(found))


def parse_backends(raw: list[str]) -> list[tuple[str, str]]:
    """``["codex_cli/cli", ...]`` as (model, runtime) pairs; a clear error for anything else."""
    valid_models = set(get_args(ModelName))
    out = []
    for item in raw:
        model, _, runtime = item.partition("/")
        if model not in valid_models or runtime not in ("cli", "mock", "openai_sdk", "google_sdk"):
            raise InvalidArgument(
                "backend",
                f"{item!r} is not <model>/<runtime>",
                hint=f"Use e.g. codex_cli/cli; models: {', '.join(sorted(valid_models))}.",
            )
        out.append((model, runtime))
    return out


async def run_worker(
    settings: Settings,
    backends: list[str] | None = None,
    *,
    label: str | None = None,
    machine: str | None = None,
    on_ready: Callable[[list[str]], None] | None = None,
) -> None:
    """Serve runs and steps until cancelled (SIGTERM/SIGINT cancel it through the CLI)."""
    cfg = settings.temporal
    pairs = parse_backends(backends or default_backends())
    machine = check_machine(machine) if machine else settings.machine
    label = label or f"worker {socket.gethostname()}:{os.getpid()}"
    client = await connect(cfg)
    caps = {f"{m}/{r}": settings.backend_caps.get(f"{m}/{r}", settings.backend_caps.get(r, 4)) for m, r in pairs}
    steps = StepActivities(settings, label, caps)
    workspace = WorkspaceActivity(settings.roots)
    identity = f"{label} ({settings.home})"
    pollers = [
        Worker(
            client,
            task_queue=runs_queue(cfg),
            workflows=[RunWorkflow, ControlWorkflow, KeyWorkflow],
            activities=[QueueProbe(client, cfg.namespace).polled],  # the runs' local activity (routing)
            workflow_runner=UnsandboxedWorkflowRunner(),
            identity=identity,
            # A run whose worker died moves on to another one within a second, not the default five.
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        ),
        Worker(client, task_queue=workspace_queue(cfg), activities=[workspace.workspace], identity=identity),
        Worker(  # this machine's: one poll at a time is enough for the few pinned workers' git operations
            client,
            task_queue=workspace_queue(cfg, machine),
            activities=[workspace.workspace],
            identity=identity,
            max_concurrent_activity_task_polls=1,
        ),
    ]
    queues = [runs_queue(cfg), workspace_queue(cfg), workspace_queue(cfg, machine)]
    for model, runtime in pairs:
        cap = caps[f"{model}/{runtime}"]
        for queue, polls in ((step_queue(cfg, model, runtime), 5), (step_queue(cfg, model, runtime, machine), 1)):
            queues.append(queue)
            pollers.append(
                Worker(
                    client,
                    task_queue=queue,
                    activities=[steps.step],
                    max_concurrent_activities=cap,
                    max_concurrent_activity_task_polls=min(polls, cap),
                    identity=identity,
                )
            )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(steps.aclose)
        for poller in pollers:
            await stack.enter_async_context(poller)
        log.info("%s (machine %s): polling %s", label, machine, ", ".join(queues))
        if on_ready is not None:
            on_ready(queues)
        await anyio.sleep_forever()
