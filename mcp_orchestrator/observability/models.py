"""Contracts of the observability payloads: log checks, log stats, diagnostics, replays, retention.

camelCase on the wire, like every contract; the JSON Schemas are published in ``contracts/``
(``python -m mcp_orchestrator.schemas``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from mcp_orchestrator.contracts import SCHEMA_VERSION, Contract, FallbackPolicy, ModelName, Priority, RuntimeMode
from mcp_orchestrator.observability.severity import SEVERITIES, Severity

__all__ = [
    "SEVERITIES",
    "Action",
    "Diagnosis",
    "EffectivePolicy",
    "FieldPopulation",
    "LogFailureClass",
    "LogStats",
    "LogValidation",
    "PathDelta",
    "PruneReport",
    "PruneSection",
    "Rate",
    "ReplayDiff",
    "ReplayOutcome",
    "ReplayPackage",
    "ReplayRequest",
    "ReplayStep",
    "Rollup",
    "Severity",
    "WorkerProfile",
]

LogFailureClass = Literal[
    "invalid_json", "schema_violation", "missing_field", "null_field", "unknown_event", "out_of_order"
]


# ---- logs validate / logs stats ------------------------------------------------------------------


class LogValidation(Contract):
    """The summary of ``mcp-orchestrator logs validate`` (the line diagnostics go to stderr)."""

    file: str
    lines: int
    valid_lines: int
    runs: int
    events: dict[str, int]
    failures: dict[str, int]
    ok: bool


class FieldPopulation(Contract):
    """How often one field of one event type is present in the window, and its drift from the previous window."""

    event: str
    field: str
    required: bool
    events: int
    state: Literal["complete", "partial", "missing"]
    current: float
    previous: float | None = None
    drift: float | None = None
    drifted: bool = False


class Rollup(Contract):
    """A distribution: count, mean and nearest-rank percentiles."""

    count: int
    mean: float
    p50: float
    p95: float
    max: float


class Rate(Contract):
    """A share of steps, e.g. those of a runtime that fell back to another runtime."""

    steps: int
    events: int
    rate: float


class LogStats(Contract):
    """The result of ``mcp-orchestrator logs stats``: field population with drift, and rollups."""

    file: str
    window: int
    runs: int
    previous_runs: int
    drift_threshold: float
    fields: list[FieldPopulation]
    drifted: list[str]
    queue_wait_ms: dict[str, Rollup]
    attempts_per_run: Rollup
    fallback_rate: dict[str, Rate]


# ---- diag / optimize -----------------------------------------------------------------------------


class Action(Contract):
    """One anomaly with its remediation: what was seen (evidence), why it matters, and what to run."""

    id: str
    severity: Severity
    rationale: str
    evidence: dict[str, Any]
    command: str


class Diagnosis(Contract):
    """The result of the ``diag`` and ``optimize`` tools and commands: actions, most severe first."""

    kind: Literal["diag", "optimize"]
    window: int
    runs: int
    generated_at: datetime
    sources: list[str]
    open_breakers: list[str] = Field(default_factory=list)
    actions: list[Action]


# ---- replay --------------------------------------------------------------------------------------


class WorkerProfile(Contract):
    """A worker as it was when the run was dispatched."""

    name: str
    model: ModelName
    runtime_mode: RuntimeMode
    fallback_policy: FallbackPolicy
    role: str
    workdir: str
    timeout_seconds: float | None = None
    stall_seconds: float | None = None
    model_name: str | None = None
    machine: str | None = None  # where its steps run (issue 14: placement); None: any machine


class ReplayRequest(Contract):
    """The frozen request: what was asked, of whom, with which options (the task is stored redacted)."""

    agent_id: str
    task: str
    strategy: str
    workers: list[WorkerProfile]
    priority: Priority
    runtime_mode: RuntimeMode | None = None
    timeout_seconds: float | None = None
    deadline_seconds: float | None = None
    continue_session: bool = False
    apply_result: bool = False
    keep_worktrees: bool = False


class EffectivePolicy(Contract):
    """The settings that decide a run's path; ``version`` is a content hash of everything else here."""

    version: str
    runtime_default: RuntimeMode | None = None
    fallback_policies: dict[str, FallbackPolicy]
    sdk_credentials: dict[str, bool]
    retry: dict[str, int | float]
    caps: dict[str, Any]
    timeouts: dict[str, float | None]


class ReplayStep(Contract):
    """One step's path: who ran it on which runtime, how it fell back and how it ended."""

    index: int
    worker_name: str
    model: str
    role: str
    runtime_mode: RuntimeMode
    fallback_from: RuntimeMode | None = None
    fallback_class: str | None = None
    status: str
    failure_class: str | None = None
    attempts: int
    attempt_classes: list[str | None] = Field(default_factory=list)


class ReplayOutcome(Contract):
    """How the run ended, step by step."""

    status: str
    failure_class: str | None = None
    steps: list[ReplayStep]
    recorded_at: datetime


class ReplayPackage(Contract):
    """``<home>/runs/<runId>/replay.json``: enough to run the same request again and compare the paths."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    created_at: datetime
    request: ReplayRequest
    policy: EffectivePolicy
    runtimes: dict[str, RuntimeMode]
    outcome: ReplayOutcome | None = None
    rerun_of: str | None = None


class PathDelta(Contract):
    """One difference between two runs' paths."""

    path: str
    a: Any = None
    b: Any = None


class ReplayDiff(Contract):
    """The result of ``mcp-orchestrator replay diff``: empty ``deltas`` means the same path."""

    run_a: str
    run_b: str
    same_path: bool
    deltas: list[PathDelta]


# ---- retention -----------------------------------------------------------------------------------


class PruneSection(Contract):
    """What prune removed (or would remove) from one kind of data."""

    removed: list[str] = Field(default_factory=list)
    freed_bytes: int = 0
    kept_bytes: int = 0
    kept_unfinished: int = 0


class PruneReport(Contract):
    """The result of ``mcp-orchestrator prune``; unfinished runs are never touched."""

    dry_run: bool
    policy: dict[str, float]
    runs: PruneSection
    replays: PruneSection
    log: PruneSection
    log_lines_removed: int = 0
