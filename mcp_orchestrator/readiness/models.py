"""Readiness contracts: probe results, the readiness report, probe fixtures and the release evidence files.

Field names are snake_case in Python and camelCase on the wire and on disk, like every other
contract (they subclass :class:`~mcp_orchestrator.contracts.Contract`). The JSON Schemas are
published in ``contracts/`` (``python -m mcp_orchestrator.schemas``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from mcp_orchestrator.contracts import Contract

__all__ = [
    "GateResult",
    "GateStatus",
    "Level",
    "ProbeEvidence",
    "ProbeFixture",
    "ProbeResult",
    "ProbeStatus",
    "ReadinessReport",
    "ReleaseSummary",
    "Risk",
    "RiskRegister",
    "worst",
]

ProbeStatus = Literal["ok", "warn", "fail"]
GateStatus = Literal["pass", "warn", "fail", "skipped"]
Level = Literal["low", "medium", "high"]

_RANK: dict[str, int] = {"ok": 0, "warn": 1, "fail": 2}


def worst(statuses: list[ProbeStatus]) -> ProbeStatus:
    """The worst of ``statuses`` (``ok`` when there are none)."""
    found: ProbeStatus = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[found]:
            found = status
    return found


class ProbeEvidence(Contract):
    """What a probe saw: the command it ran (if any), its exit code and latency, and probe-specific facts.

    Facts hold presence flags, variable *names*, paths and sizes; never a credential's value.
    """

    command: str | None = None
    exit_code: int | None = None
    latency_ms: int | None = None
    version: str | None = None
    path: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)


class ProbeResult(Contract):
    """One probe: ``ok``, ``warn`` (works, with a caveat) or ``fail``, why, and how to fix it."""

    probe: str
    status: ProbeStatus
    summary: str
    evidence: ProbeEvidence = Field(default_factory=ProbeEvidence)
    remediation: str = ""


class ReadinessReport(Contract):
    """The result of the ``readiness`` tool and of ``mcp-orchestrator probe --json``."""

    status: ProbeStatus
    generated_at: datetime
    version: str
    host: str
    live: bool
    counts: dict[str, int]
    duration_ms: int
    probes: list[ProbeResult]


class ProbeFixture(Contract):
    """One recorded probe result (``fixtures/probes/*.json``); ``timeless`` fixtures are exempt from the age audit."""

    recorded_at: datetime
    timeless: bool = False
    note: str = ""
    result: ProbeResult


class GateResult(Contract):
    """One release gate (ruff, mypy, tests, probes, a benchmark, ...) as run by ``scripts/release-evidence``."""

    name: str
    required: bool
    status: GateStatus
    detail: str = ""
    command: str | None = None
    exit_code: int | None = None
    duration_ms: int = 0
    log: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class Risk(Contract):
    """One entry of the risk register."""

    id: str
    title: str
    likelihood: Level
    impact: Level
    mitigation: str
    source: Literal["static", "gate", "probe"] = "static"
    score: int = 0


class RiskRegister(Contract):
    """``risk-register.json``: static risks plus the ones raised by failed or warning gates and probes."""

    generated_at: datetime
    risks: list[Risk]


class ReleaseSummary(Contract):
    """``summary.json``: the go/no-go decision of one release evidence bundle."""

    decision: Literal["go", "no-go"]
    generated_at: datetime
    commit: str | None = None
    dirty: bool | None = None
    blocking: list[str] = Field(default_factory=list)
    required_failed: list[str] = Field(default_factory=list)
    gates: list[GateResult]
    top_risks: list[Risk] = Field(default_factory=list)
