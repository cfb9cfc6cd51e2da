"""Which runtime a worker uses: explicit, else the server default, else the model's natural one."""

from __future__ import annotations

from typing import get_args

from mcp_orchestrator.contracts import ModelName, RuntimeMode
from mcp_orchestrator.errors import InvalidArgument

__all__ = ["COMPATIBLE", "NATURAL", "select_runtime"]

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
