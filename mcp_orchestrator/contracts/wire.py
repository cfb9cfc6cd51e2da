"""Wire contracts: what the tools answer (workers, runtimes, the scheduler view, runs, steps and everything a
step records: usage, attempts, fallbacks, findings, verdicts, workspaces, routing, budgets)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from mcp_orchestrator.contracts.base import (
    TERMINAL_RUN_STATUSES,
    Contract,
    FailureClass,
    FallbackPolicy,
    ModelName,
    Priority,
    RunStatus,
    RuntimeMode,
    StepStatus,
    StrategyName,
    WorkerStatus,
)

__all__ = [
    "Attempt",
    "Fallback",
    "Finding",
    "HedgeAttempt",
    "RouteCandidate",
    "RoutingDecision",
    "Run",
    "RunBudget",
    "RunBudgetArgument",
    "RunError",
    "RunList",
    "RunSummary",
    "RuntimeInfo",
    "RuntimeList",
    "SchedulerView",
    "Step",
    "Usage",
    "Verdict",
    "Worker",
    "WorkerList",
    "Workspace",
]


class Worker(Contract):
    """A named worker: a model identity run through a runtime, owned by one agent."""

    name: str
    model: ModelName
    runtime_mode: RuntimeMode
    fallback_policy: FallbackPolicy = "on_error"
    workdir: str
    role: str = "writer"
    status: WorkerStatus = "idle"
    owner_agent_id: str
    created_at: datetime
    timeout_seconds: float | None = None
    stall_seconds: float | None = None
    model_name: str | None = None
    session_id: str | None = None
    runtime_status: Literal["ready", "unavailable"] | None = None
    machine: str | None = None  # pinned: its steps run on worker processes of this machine only (Temporal)


class RuntimeInfo(Contract):
    """One runtime adapter: whether it can run now, and what it can do."""

    mode: RuntimeMode
    model: ModelName
    status: Literal["ready", "unavailable"]
    version: str | None = None
    detail: str = ""
    capabilities: dict[str, Any] = Field(default_factory=dict)


class RuntimeList(Contract):
    """The result of ``runtimes``."""

    runtimes: list[RuntimeInfo]


class SchedulerView(Contract):
    """The scheduler as every live server process sees it (each reports in its heartbeat)."""

    processes: list[dict[str, Any]]
    depth: dict[str, int]
    running: int
    oldest_wait_ms: dict[str, int]
    throughput_per_minute: int
    unfinished_runs: int
    cluster: dict[str, Any] | None = None  # the Temporal engine: task queues, their pollers and backlogs


class WorkerList(Contract):
    """The result of ``list_workers``."""

    workers: list[Worker]


class Usage(Contract):
    """Token usage reported by a runtime."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class Fallback(Contract):
    """The runtime a step tried first, and why it failed over."""

    runtime_mode: RuntimeMode
    failure_class: FailureClass
    message: str


class Attempt(Contract):
    """One try of a step; retries and fallbacks add attempts (the dead-letter record)."""

    attempt: int
    runtime_mode: RuntimeMode
    failure_class: FailureClass | None = None
    message: str = ""
    delay_before_ms: int = 0
    started_at: datetime
    ended_at: datetime | None = None


class Finding(Contract):
    """One finding of a review or red-team pass."""

    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    location: str = ""
    description: str
    suggested_fix: str = ""


class Verdict(Contract):
    """A reviewer's verdict, parsed from its answer; ``unparseable`` is recorded, never guessed."""

    decision: Literal["approve", "request_changes", "unparseable"]
    findings: list[Finding] = Field(default_factory=list)
    rationale: str = ""


class Workspace(Contract):
    """Where a writer worked: its directory and, in a git repository, its own branch."""

    workdir: str
    branch: str | None = None
    base_commit: str | None = None
    commit: str | None = None
    diff_stat: str = ""
    isolated: bool = False


class RouteCandidate(Contract):
    """One runtime a step could run on, as the gateway saw it when routing the step."""

    runtime_mode: RuntimeMode
    endpoint: str
    availability: Literal["healthy", "degraded", "down"]
    breaker: Literal["closed", "open", "half_open", "misconfigured"]
    score: float | None = None
    eligible: bool = True
    reason: str = ""


class HedgeAttempt(Contract):
    """A runtime a hedged step started (or did not), and how it ended."""

    runtime_mode: RuntimeMode
    outcome: Literal["won", "lost", "failed", "canceled", "not_started"]
    started_after_ms: int | None = None
    duration_ms: int | None = None
    failure_class: FailureClass | None = None


class RoutingDecision(Contract):
    """Why a step ran where it ran: the strategy, every candidate in order, the choice and any hedges."""

    strategy: str
    chosen: RuntimeMode | None = None
    candidates: list[RouteCandidate] = Field(default_factory=list)
    hedges: list[HedgeAttempt] = Field(default_factory=list)


class RunBudget(Contract):
    """A run's spending limits: a step that would exceed one is not started (class ``budget_exceeded``)."""

    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, gt=0, allow_inf_nan=False)


# ``dispatch_task.budget``: a tool's input schema describes the budget inline (tools/list carries no $ref), without
# the model's docstring (the tool's description says what a budget does).
_budget_argument = {k: v for k, v in RunBudget.model_json_schema(by_alias=True).items() if k != "description"}
RunBudgetArgument = Annotated[
    RunBudget | None,
    WithJsonSchema({"anyOf": [_budget_argument, {"type": "null"}], "default": None}),
]


class Step(Contract):
    """One unit of work by one worker inside a run."""

    index: int
    worker_name: str
    role: str
    runtime_mode: RuntimeMode
    fallback_from: Fallback | None = None
    status: StepStatus = "pending"
    attempt: int = 1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    output: str = ""
    output_truncated: bool = False
    output_bytes: int = 0
    usage: Usage | None = None
    session_id: str | None = None
    flags: list[str] = Field(default_factory=list)
    home: str | None = None  # the CLI configuration home the step ran with
    commands: list[str] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    workspace: Workspace | None = None
    verdict: Verdict | None = None
    routing: RoutingDecision | None = None
    executed_by: str | None = None  # the worker process that ran it (Temporal: its label); None: this server


class RunError(Contract):
    """Why a run failed or was canceled."""

    model_config = ConfigDict(populate_by_name=True)

    failure_class: str = Field(alias="class")
    message: str


class Run(Contract):
    """A dispatched task: its steps, status and outcome."""

    run_id: str
    status: RunStatus
    strategy: StrategyName
    task: str
    agent_id: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    steps: list[Step] = Field(default_factory=list)
    summary: str = ""
    error: RunError | None = None
    priority: Priority = "interactive"
    deadline_at: datetime | None = None
    queue_wait_ms: int | None = None
    run_ms: int | None = None
    executed_by: str | None = None
    budget: RunBudget | None = None
    notice: str | None = None  # what the caller should know about this answer (e.g. nothing was canceled)

    @property
    def terminal(self) -> bool:
        """True once the run can no longer change."""
        return self.status in TERMINAL_RUN_STATUSES


class RunSummary(Contract):
    """A run as ``list_worker_runs`` shows it."""

    run_id: str
    status: RunStatus
    strategy: StrategyName
    agent_id: str
    workers: list[str]
    created_at: datetime
    ended_at: datetime | None = None
    task: str
    priority: Priority = "interactive"


class RunList(Contract):
    """A page of runs, newest first; pass ``nextCursor`` back as ``cursor``."""

    runs: list[RunSummary]
    next_cursor: str | None = None
