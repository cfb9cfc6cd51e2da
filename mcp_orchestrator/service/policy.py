"""Which runtime a worker uses: explicit, else the server default, else the model's natural one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import get_args

from mcp_orchestrator.contracts import FailureClass, ModelName, RuntimeMode, WorkerRecord
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.gateway.router import FALLBACK_SAFE, alternative_blocked, has_credentials

__all__ = ["COMPATIBLE", "FALLBACK_SAFE", "NATURAL", "fallback_runtime", "has_credentials", "select_runtime"]

NATURAL: dict[str, RuntimeMode] = {"codex_cli": "cli", "gemini_cli": "cli", "claude_cli": "cli", "mock": "mock"}
# The mock runtime can stand in for any model (demos and tests); SDK runtimes only for their vendor.
COMPATIBLE: dict[str, tuple[RuntimeMode, ...]] = {
    "codex_cli": ("cli", "openai_sdk", "mock"),
    "gemini_cli": ("cli", "google_sdk", "mock"),
    "claude_cli": ("cli", "mock"),
    "mock": ("mock",),
}


def select_runtime(model: str, requested: RuntimeMode | None, server_default: RuntimeMode | None) -> RuntimeMode:
    """Deterministic runtime choice for ``model``; refuses an unknown or incompatible request."""
    if model not in get_args(ModelName):
        raise InvalidArgument(
            "model", f"unknown model {model!r}", hint=f"Use one of: {', '.join(get_args(ModelName))}."
        )
    valid = COMPATIBLE[model]
    if requested is not None:
        if requested not in valid:
            raise InvalidArgument(
                "runtimeMode",
                f"{requested!r} cannot run model {model!r}",
                hint=f"Valid modes for {model}: {', '.join(valid)}.",
            )
        return requested
    if server_default is not None and server_default in valid:
        return server_default
    return NATURAL[model]


def fallback_runtime(
    worker: WorkerRecord, failed: RuntimeMode, failure_class: FailureClass, environ: Mapping[str, str] | None = None
) -> RuntimeMode | None:
    """The runtime to rerun a failed step on, or ``None``.

    Only with ``fallbackPolicy: on_error`` and a fallback-safe class (never ``canceled``), and only
    what the gateway's rules allow (``gateway.router.alternative_blocked``): an SDK falls back to its
    model's CLI; a read-only CLI step falls back to its model's SDK when that SDK's credentials are
    present. Deterministic: the same worker, failure and environment give the same answer.
    """
    if worker.fallback_policy != "on_error" or failure_class not in FALLBACK_SAFE or failed == "mock":
        return None
    env = os.environ if environ is None else environ
    for alt in COMPATIBLE[worker.model]:
        if alt not in (failed, "mock") and not alternative_blocked(worker.model, failed, alt, worker.role, env):
            return alt
    return None
