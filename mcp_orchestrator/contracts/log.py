"""The log contract: one line of the run event log (``<home>/logs/events.jsonl``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mcp_orchestrator.contracts.base import SCHEMA_VERSION, Contract, Priority, RuntimeMode
from mcp_orchestrator.contracts.wire import RoutingDecision, Usage

__all__ = ["RunEvent", "RunEventName"]


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
