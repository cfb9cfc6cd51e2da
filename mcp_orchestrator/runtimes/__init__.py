"""Worker runtimes, chosen by name and imported lazily (vendor SDKs cost nothing until used).

``base.WorkerRuntime`` is the seam; ``mock``, ``cli/`` (the codex, gemini and claude processes),
``openai_sdk`` and ``google_sdk`` (over ``_sdk_common``, ``_sdk_seam`` and ``_sdk_wire``) implement it.
Imports only ``contracts`` and ``errors`` (and the vendors' packages)."""

from __future__ import annotations

import importlib

from mcp_orchestrator.contracts import RuntimeMode
from mcp_orchestrator.runtimes.base import OutputSink, StepContext, StepOutcome, WorkerRuntime

__all__ = ["OutputSink", "StepContext", "StepOutcome", "WorkerRuntime", "load_runtime"]

# mode -> (module, class); a module is imported only when its runtime is first used.
_RUNTIMES: dict[str, tuple[str, str]] = {
    "mock": ("mcp_orchestrator.runtimes.mock", "MockRuntime"),
    "cli": ("mcp_orchestrator.runtimes.cli", "CliRuntime"),
    "openai_sdk": ("mcp_orchestrator.runtimes.openai_sdk", "OpenAISdkRuntime"),
    "google_sdk": ("mcp_orchestrator.runtimes.google_sdk", "GoogleSdkRuntime"),
}


def load_runtime(mode: RuntimeMode) -> WorkerRuntime:
    """Instantiate the runtime registered for ``mode``."""
    try:
        module_name, class_name = _RUNTIMES[mode]
    except KeyError:
        raise LookupError(f"runtime {mode!r} is not available in this build") from None
    cls: type[WorkerRuntime] = getattr(importlib.import_module(module_name), class_name)
    return cls()
