"""Compact views: what a calling model reads by default (``detail: "full"`` gives the whole record).

Every view's fields are a subset of its full record's, with compatible types, so one advertised
``outputSchema`` validates both; nulls and empty fields are left out when serialized."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from mcp_orchestrator.contracts.base import (
    Contract,
    FailureClass,
    ModelName,
    RunStatus,
    RuntimeMode,
    StepStatus,
    StrategyName,
)
from mcp_orchestrator.contracts.wire import Attempt, RoutingDecision, RunError

__all__ = ["CompactView", "ProbeBrief", "ReadinessSummary", "RunView", "RuntimeBrief", "RuntimeSummary", "StepView"]


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
