"""Wire and storage contracts: the pydantic models every layer shares.

Field names are snake_case in Python and camelCase on the wire and on disk. The
JSON Schemas in ``contracts/`` are generated from these models
(``python -m mcp_orchestrator.schemas``) and a test fails when they drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, WithJsonSchema, model_serializer
from pydantic.alias_generators import to_camel

__all__ = [
    "SCHEMA_VERSION",
    "STORE_SCHEMA_VERSION",
    "Attempt",
    "Detail",
    "FailureClass",
    "Fallback",
    "FallbackPolicy",
    "Finding",
    "HedgeAttempt",
    "ModelName",
    "PanicState",
    "Priority",
    "ProbeBrief",
    "ReadinessSummary",
    "RouteCandidate",
    "RoutingDecision",
    "Run",
    "RunBudget",
    "RunBudgetArgument",
    "RunError",
    "RunEvent",
    "RunEventName",
    "RunList",
    "RunStatus",
    "RunSummary",
    "RunView",
    "RuntimeBrief",
    "RuntimeInfo",
    "RuntimeList",
    "RuntimeMode",
    "RuntimeSummary",
    "SchedulerView",
    "Step",
    "StepStatus",
    "StepView",
    "StrategyName",
    "Usage",
    "Verdict",
    "Worker",
    "WorkerList",
    "WorkerStatus",
    "Workspace",
    "utcnow",
]

SCHEMA_VERSION = 1  # the run event log's lines
# Stored documents (runs, workers, the panic switch). 1: pretty-printed JSON; 2: compact JSON, the panic switch
# versioned too. A newer server reads older documents and writes them back at its own version; an older one
# refuses a newer document by name instead of quarantining it (``NewerDocument``).
STORE_SCHEMA_VERSION = 2

ModelName = Literal["codex_cli", "gemini_cli", "claude_cli", "mock"]
RuntimeMode = Literal["cli", "openai_sdk", "google_sdk", "mock"]
FallbackPolicy = Literal["on_error", "never"]
WorkerStatus = Literal["idle", "busy", "stopped"]
RunStatus = Literal["accepted", "running", "completed", "failed", "canceled"]
StepStatus = Literal["pending", "running", "completed", "failed", "canceled"]
StrategyName = Literal[
    "single_worker",
    "codex_writes_gemini_reviews",
    "gemini_writes_codex_reviews",
    "parallel_dual_write_review",
    "security_redteam_pass",
    "reviewer_first_plan",
    "parallel_generate_adjudicate",
]
Priority = Literal["interactive", "batch"]
# How much a result says: "compact" (the default view: what a caller acts on) or "full" (the whole record).
Detail = Literal["compact", "full"]
FailureClass = Literal[
    "timeout",
    "stalled",
    "canceled",
    "auth",
    "rate_limited",
    "unavailable",
    "bad_output",
    "process_error",
    "interrupted",
    "deadline_exceeded",
    "budget_exceeded",
    "internal",
]

TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _lean_schema(schema: dict[str, Any]) -> None:
    # Property titles repeat the field names; tools/list costs every conversation tokens.
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)


class Contract(BaseModel):
    """Base of every contract: camelCase aliases, strict about unknown input."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        json_schema_extra=_lean_schema,
    )


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


class PanicState(Contract):
    """The panic write-guard."""

    schema_version: int = STORE_SCHEMA_VERSION
    engaged: bool
    reason: str = ""
    engaged_by: str = ""
    engaged_at: datetime | None = None


class ProcessRef(Contract):
    """The server process that executes a run; used to detect runs orphaned by a crash."""

    pid: int
    start_ticks: int
    host: str
    instance: str = ""

    @property
    def label(self) -> str:
        """``pid@host/instance``, as shown in run telemetry."""
        return f"{self.pid}@{self.host}/{self.instance}"


class RunRecord(Run):
    """A run as stored on disk: the wire run plus bookkeeping."""

    schema_version: int = STORE_SCHEMA_VERSION
    workers: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None
    owner: ProcessRef | None = None
    cancel_requested: bool = False
    timeout_seconds: float | None = None
    runtime_mode: RuntimeMode | None = None
    continue_session: bool = False
    apply_result: bool = False
    keep_worktrees: bool = False

    def to_wire(self) -> Run:
        """The caller-facing view of this record."""
        return Run.model_validate(self.model_dump(include=set(Run.model_fields)))

    def summarize(self) -> RunSummary:
        """The listing view of this record."""
        task = self.task if len(self.task) <= 200 else self.task[:199] + "…"
        return RunSummary(
            run_id=self.run_id,
            status=self.status,
            strategy=self.strategy,
            agent_id=self.agent_id,
            workers=self.workers,
            created_at=self.created_at,
            ended_at=self.ended_at,
            task=task,
            priority=self.priority,
        )


class WorkerRecord(Worker):
    """A worker as stored on disk."""

    schema_version: int = STORE_SCHEMA_VERSION
    current_run_id: str | None = None

    def to_wire(self) -> Worker:
        """The caller-facing view of this record."""
        return Worker.model_validate(self.model_dump(include=set(Worker.model_fields)))


RunEventName = Literal[
    "run_accepted", "run_started", "step_started", "routing", "attempt", "fallback", "step_ended", "run_ended", "audit"
]


class RunEvent(Contract):
    """One line of the run event log (``<home>/logs/events.jsonl``)."""

    schema_version: int = SCHEMA_VERSION
    event: RunEventName
    run_id: str
    ts: datetime
    process: str | None = None
    agent_id: str | None = None
    strategy: str | None = None
    priority: Priority | None = None
    status: str | None = None
    step_index: int | None = None
    worker_name: str | None = None
    role: str | None = None
    runtime_mode: RuntimeMode | None = None
    attempt: int | None = None
    delay_before_ms: int | None = None
    fallback_to: RuntimeMode | None = None
    failure_class: str | None = None
    message: str | None = None
    queue_wait_ms: int | None = None
    run_ms: int | None = None
    duration_ms: int | None = None
    output_bytes: int | None = None
    usage: Usage | None = None
    routing: RoutingDecision | None = None
    principal: str | None = None  # audit: the credential's id (never the token)
    tool: str | None = None  # audit: the tool called


# ---- compact views: what a calling model reads by default (``detail: "full"`` gives the whole record) --------


class CompactView(Contract):
    """A result view that leaves out nulls and empty fields when serialized.

    Every view's fields are a subset of its full record's, with compatible types, so one advertised
    ``outputSchema`` validates both the view and the full record.
    """

    # No return annotation on purpose: pydantic then keeps the fields' schema for serialization.
    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        pruned: dict[str, Any] = _prune(handler(self))
        return pruned


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def _prune(value: Any) -> Any:
    """``value`` without nulls and empty strings, lists and objects, at any depth (``0`` and ``false`` stay)."""
    if isinstance(value, dict):
        return {k: p for k, v in value.items() if not _empty(p := _prune(v))}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


class StepView(CompactView):
    """One step of a run view: who did it and how it ended; a failed step also says why and where it ran."""

    worker_name: str
    role: str
    status: StepStatus
    failure_class: FailureClass | None = None
    verdict: str | None = None  # a reviewer's decision
    output: str = ""  # a failed step's output, cut short
    attempts: list[Attempt] = Field(default_factory=list)  # failed steps only
    routing: RoutingDecision | None = None  # failed steps only


class RunView(CompactView):
    """A run as ``dispatch_task``, ``get_run`` and ``cancel_run`` return it by default."""

    run_id: str
    status: RunStatus
    strategy: StrategyName
    answer: str = ""  # the final answer's excerpt
    steps: list[StepView] = Field(default_factory=list)
    error: RunError | None = None
    next: str = ""  # what the caller can do now
    notice: str | None = None


class ProbeBrief(CompactView):
    """One readiness probe in a summary: its verdict and, when it is not ok, how to fix it."""

    probe: str
    status: Literal["ok", "warn", "fail"]
    summary: str
    remediation: str = ""


class ReadinessSummary(CompactView):
    """The ``readiness`` report in short: failing and warning probes first, passing ones by name."""

    status: Literal["ok", "warn", "fail"]
    counts: dict[str, int]
    probes: list[ProbeBrief]
    ok: list[str] = Field(default_factory=list)


class RuntimeBrief(CompactView):
    """One runtime adapter in a summary: can it run now, its version, what to do about it."""

    mode: RuntimeMode
    model: ModelName
    status: Literal["ready", "unavailable"]
    version: str | None = None
    detail: str = ""


class RuntimeSummary(CompactView):
    """The ``runtimes`` result in short: unavailable adapters first, no capabilities."""

    runtimes: list[RuntimeBrief]
