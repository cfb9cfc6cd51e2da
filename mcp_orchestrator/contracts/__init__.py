"""Wire, storage and log contracts: the pydantic models every layer shares, importable from anywhere.

Field names are snake_case in Python and camelCase on the wire and on disk. The
JSON Schemas in ``contracts/`` are generated from these models
(``python -m mcp_orchestrator.schemas``) and a test fails when they drift.

``base``: the vocabulary and the base model; ``wire``: what tools answer; ``storage``: what the store
keeps; ``log``: the run event log line; ``views``: the compact views. Imports only pydantic (and ``lazy``:
each name's module loads on the name's first use).
"""

from __future__ import annotations

import typing

from mcp_orchestrator.lazy import lazy_exports as _lazy

if typing.TYPE_CHECKING:
    from mcp_orchestrator.contracts.base import (
        SCHEMA_VERSION,
        STORE_SCHEMA_VERSION,
        TERMINAL_RUN_STATUSES,
        Contract,
        Detail,
        FailureClass,
        FallbackPolicy,
        ModelName,
        Priority,
        RunStatus,
        RuntimeMode,
        StepStatus,
        StrategyName,
        WorkerStatus,
        utcnow,
    )
    from mcp_orchestrator.contracts.log import (
        RunEvent,
        RunEventName,
    )
    from mcp_orchestrator.contracts.storage import (
        PanicState,
        ProcessRef,
        RunRecord,
        WorkerRecord,
    )
    from mcp_orchestrator.contracts.views import (
        CompactView,
        ProbeBrief,
        ReadinessSummary,
        RuntimeBrief,
        RuntimeSummary,
        RunView,
        StepView,
    )
    from mcp_orchestrator.contracts.wire import (
        Attempt,
        Fallback,
        Finding,
        HedgeAttempt,
        RouteCandidate,
        RoutingDecision,
        Run,
        RunBudget,
        RunBudgetArgument,
        RunError,
        RunList,
        RunSummary,
        RuntimeInfo,
        RuntimeList,
        SchedulerView,
        Step,
        Usage,
        Verdict,
        Worker,
        WorkerList,
        Workspace,
    )

__all__ = [
    "SCHEMA_VERSION",
    "STORE_SCHEMA_VERSION",
    "TERMINAL_RUN_STATUSES",
    "Attempt",
    "CompactView",
    "Contract",
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
    "ProcessRef",
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
    "RunRecord",
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
    "WorkerRecord",
    "WorkerStatus",
    "Workspace",
    "utcnow",
]

# The modules with the exported names, imported in turn until one has the name asked for (``lazy``). ``serve`` answers
# ``tools/list`` before it needs most models (issue 15: start-up).
_MODULES = ("base", "wire", "storage", "views", "log")

if not typing.TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute
    __getattr__, __dir__ = _lazy(__name__, globals(), __all__, _MODULES)
