"""Step attempts as Temporal activities, executed by ``mcp-orchestrator worker`` processes.

One activity is one attempt of one step on one runtime, on the machine of the worker process that polls
its backend's task queue. The process tree of a CLI step lives and dies with the activity: the activity
heartbeats every second (with the step's latest progress line as its details), learns of a cancellation
through that heartbeat, and its cancellation kills the tree. A step's full output is spooled in the
worker process's data directory; the bounded excerpt travels back in the result.

An attempt of a hedged step (``StepSpec.hedged``: it races another backend) spools into
``output.hedge-<runtime>.log``, tells the run's workflow once when its first output arrives
(``OUTPUT_SIGNAL``: a running candidate that answers holds off the next hedge), and a successful one
moves its spool into the step's output.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

import anyio
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import RuntimeMode, Usage, WorkerRecord
from mcp_orchestrator.engine.steps import execute_step
from mcp_orchestrator.engine.temporal.client import connect
from mcp_orchestrator.engine.temporal.registry import stopped
from mcp_orchestrator.errors import OrchestratorError, RunFailure
from mcp_orchestrator.guards import jail_workdir
from mcp_orchestrator.runtimes import OutputSink, StepContext, WorkerRuntime, load_runtime
from mcp_orchestrator.runtimes.base import bound_text
from mcp_orchestrator.store.json_store import JsonRunStore

__all__ = ["OUTPUT_SIGNAL", "STEP_ACTIVITY", "StepActivities", "StepResult", "StepSpec", "failure_error"]

log = logging.getLogger(__name__)

STEP_ACTIVITY = "mcp-orchestrator.step"
OUTPUT_SIGNAL = "step_output"  # to a run's workflow: (step index, runtime); a hedged attempt's first output


class StepSpec(BaseModel):
    """One attempt of one step: who, what, where and under which limits."""

    run_id: str
    index: int
    worker: WorkerRecord
    prompt: str
    runtime_mode: RuntimeMode
    attempt: int = 1
    continue_session: bool = False
    timeout_seconds: float
    stall_seconds: float | None = None
    hedged: bool = False


class StepResult(BaseModel):
    """What a completed attempt produced (failures are raised as ``ApplicationError`` of the class's type)."""

    text: str
    truncated: bool = False
    output_bytes: int = 0
    exit_code: int | None = None
    usage: Usage | None = None
    session_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    executed_by: str = ""
    started_at: datetime | None = None  # when a worker took the attempt (its wait for a slot ends there)


def failure_error(failure_class: str, message: str, output_bytes: int = 0, exit_code: int | None = None) -> Exception:
    """A step failure as the activity's error: its type is the failure class; Temporal never retries it
    (the workflow applies the orchestrator's own retry policy, which also knows the output size)."""
    return ApplicationError(
        message, {"outputBytes": output_bytes, "exitCode": exit_code}, type=failure_class, non_retryable=True
    )


class StepActivities:
    """The activities a worker process serves, with the runtimes it has loaded."""

    def __init__(self, settings: Settings, label: str, caps: dict[str, int] | None = None) -> None:
        self.settings = settings
        self.label = label
        # A backend's cap across its queues (the shared one and this machine's): one limiter per backend.
        self._caps = {backend: anyio.CapacityLimiter(cap) for backend, cap in (caps or {}).items()}
        self.store = JsonRunStore(settings.home, fsync=settings.fsync)
        self._runtimes: dict[str, WorkerRuntime] = {}
        self._client: Client | None = None

    async def aclose(self) -> None:
        """Close the runtimes (their clients and connections)."""
        for runtime in self._runtimes.values():
            await runtime.aclose()

    async def _registry(self) -> Client:
        """A client of its own for the stop check (reads on the pollers' client, ``activity.client()``, kept the
        worker's shutdown waiting 20 s)."""
        if self._client is None:
            self._client = await connect(self.settings.temporal)
        return self._client

    def _runtime(self, mode: RuntimeMode) -> WorkerRuntime:
        if mode not in self._runtimes:
            try:
                self._runtimes[mode] = load_runtime(mode)
            except (LookupError, ImportError) as e:
                raise failure_error("unavailable", f"runtime {mode!r} cannot be loaded here: {e}") from e
        return self._runtimes[mode]

    @activity.defn(name=STEP_ACTIVITY)
    async def step(self, spec: StepSpec) -> StepResult:
        """Run one attempt of a step here; heartbeat until it ends."""
        try:  # the workdir is jailed to this machine's roots, whatever the server that accepted the run allowed
            workdir = jail_workdir(spec.worker.workdir, self.settings.roots)
        except OrchestratorError as e:
            raise failure_error("invalid_request", f"{e} (on {self.label})") from e
        if await stopped(await self._registry(), self.settings.temporal.task_queue_prefix, spec.worker.name):
            raise failure_error("canceled", "the worker was stopped")  # a stop the run has not heard of yet
        main = self.store.step_output_path(spec.run_id, spec.index)
        path = main.with_name(f"output.hedge-{spec.runtime_mode}.log") if spec.hedged else main
        if spec.attempt > 1 and path.exists():
            path.replace(path.with_name(f"output.attempt-{spec.attempt - 1}.log"))
        sink = OutputSink(
            path, excerpt_bytes=self.settings.output_excerpt_bytes, spool_cap=self.settings.output_spool_bytes
        )
        latest = ""

        async def report(message: str) -> None:
            nonlocal latest
            latest = message[:200]

        ctx = StepContext(
            run_id=spec.run_id,
            step_index=spec.index,
            prompt=spec.prompt,
            worker=spec.worker.model_copy(update={"workdir": str(workdir)}),
            workdir=workdir,
            output=sink,
            report=report,
            continue_session=spec.continue_session,
            extra_env=self.settings.extra_env,
            attempt=spec.attempt,
        )
        runtime = self._runtime(spec.runtime_mode)
        failure: RunFailure | None = None
        try:
            async with anyio.create_task_group() as tg:

                async def beat() -> None:
                    told = not spec.hedged
                    while True:
                        activity.heartbeat({"progress": latest, "outputBytes": sink.total_bytes})
                        if not told and sink.total_bytes > 0:
                            told = await _tell_output(spec)
                        await anyio.sleep(0.2 if not told else 1.0)

                tg.start_soon(beat)
                cap = self._caps.get(f"{spec.worker.model}/{spec.runtime_mode}")
                try:  # caught here, inside the group: it must leave the group as itself, not in a group
                    async with cap if cap is not None else contextlib.nullcontext():
                        outcome = await execute_step(
                            runtime, ctx, total_seconds=spec.timeout_seconds, stall=spec.stall_seconds
                        )
                except RunFailure as e:
                    failure = e
                finally:
                    tg.cancel_scope.cancel()
        finally:
            sink.close()
        if failure is not None:
            raise failure_error(failure.failure_class, failure.message, sink.total_bytes, failure.exit_code)
        if path != main and path.exists():  # a hedged attempt that won: its spool is the step's output
            path.replace(main)
        text, truncated = bound_text(outcome.text, self.settings.output_excerpt_bytes)
        details = {k: v for k, v in outcome.details.items() if k in ("flags", "home", "commands", "files_changed")}
        return StepResult(
            text=text,
            truncated=truncated,
            output_bytes=sink.total_bytes,
            exit_code=outcome.exit_code,
            usage=outcome.usage,
            session_id=outcome.session_id,
            details={k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in details.items()},
            executed_by=self.label,
            started_at=activity.info().started_time,
        )


async def _tell_output(spec: StepSpec) -> bool:
    """Signal the run's workflow that this hedged attempt has output; ``True`` once told (or not to be)."""
    try:
        handle = activity.client().get_workflow_handle(spec.run_id)
        await handle.signal(OUTPUT_SIGNAL, args=[spec.index, spec.runtime_mode])
    except Exception as e:  # the hedge then goes by its delay alone
        log.warning("run %s step %s: cannot tell the workflow of its output: %s", spec.run_id, spec.index, e)
    return True
