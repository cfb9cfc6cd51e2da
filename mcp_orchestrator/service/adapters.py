"""What each runtime adapter can do and whether it can run now (the ``runtimes`` tool)."""

from __future__ import annotations

from typing import Any

from pydantic.alias_generators import to_camel

from mcp_orchestrator.contracts import RuntimeInfo, WorkerRecord
from mcp_orchestrator.runtimes.cli import ADAPTERS, adapter_status, cli_capabilities

__all__ = ["describe_runtimes", "worker_runtime_status"]

_MOCK_CAPABILITIES = {
    "jsonlNative": False,
    "schemaStrict": False,
    "transport": "in-process",
    "supportsResume": True,
    "sandboxModes": [],
}


def _camel(d: dict[str, Any]) -> dict[str, Any]:
    return {to_camel(k): v for k, v in d.items()}


def describe_runtimes() -> list[RuntimeInfo]:
    """Every runnable (model, runtime) adapter with its normalised status."""
    out = [RuntimeInfo(mode="mock", model="mock", status="ready", capabilities=_MOCK_CAPABILITIES)]
    for model in ADAPTERS:
        status = adapter_status(model)
        out.append(
            RuntimeInfo(
                mode="cli",
                model=model,
                status=status["status"],
                version=status["version"],
                detail=status["detail"],
                capabilities=_camel(cli_capabilities(model)),
            )
        )
    return out


def worker_runtime_status(worker: WorkerRecord) -> str:
    """``ready`` or ``unavailable`` for the runtime this worker uses."""
    if worker.runtime_mode == "cli":
        return str(adapter_status(worker.model)["status"])
    return "ready" if worker.runtime_mode == "mock" else "unavailable"
