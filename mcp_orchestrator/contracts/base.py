"""The vocabulary every contract shares: schema versions, the literal types (models, runtimes, statuses,
strategies, failure classes), ``utcnow`` and ``Contract``, the base model (camelCase aliases, strict about
unknown input, lean schemas)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = [
    "SCHEMA_VERSION",
    "STORE_SCHEMA_VERSION",
    "TERMINAL_RUN_STATUSES",
    "Contract",
    "Detail",
    "FailureClass",
    "FallbackPolicy",
    "ModelName",
    "Priority",
    "RunStatus",
    "RuntimeMode",
    "StepStatus",
    "StrategyName",
    "WorkerStatus",
    "utcnow",
]


SCHEMA_VERSION = 1  # the run event log's lines
# Stored documents (runs, workers, the panic switch). 1: pretty-printed JSON; 2: compact JSON, the panic switch
# versioned too; 3: the same JSON inside a file of two checksummed slots, changed in place (``store.slots``).
# A newer server reads older documents and writes them back at its own version; an older one refuses a newer
# document by name instead of quarantining it (``NewerDocument``).
STORE_SCHEMA_VERSION = 3

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
